"""Encoders other than the reference sentence-transformers one, each behind the `Embedder` protocol.

`onnx.OnnxEmbedder` runs the bundled model's ONNX export in ONNX Runtime (fp32, or int8 with
dynamic quantisation). Nothing is imported here, so that importing the package stays free: pick
the module you need (`from assistant.encoders.onnx import OnnxEmbedder`).
"""
