"""Measuring the product: the question bank (`bank`), phrase-labelled sets (`questions`), fitting the
answer and safety models (`training`), and BEIR retrieval benchmarks (`beir`, `beir_data`, `embedding_cache`).

Tooling, not product: it imports the assistant and runs its own code path with its own settings;
nothing in the product imports it (`lint-imports` checks this in CI).
"""
