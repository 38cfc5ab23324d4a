from __future__ import annotations

import importlib.util

from conftest import ROOT


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("gen_cli_help", ROOT / "scripts" / "gen_cli_help.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == module.render_help(), (
        "docs/cli.md is stale: run python scripts/gen_cli_help.py"
    )
