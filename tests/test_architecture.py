"""The shape of the package: no import cycles (function-level imports included), one-way layers, small modules.

`lint-imports` (pyproject's [tool.importlinter], run by CI) checks the layers and that the product
never imports its measurement tooling; this checks the cycles it cannot see inside a layer.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

grimp = pytest.importorskip("grimp", reason="install the test extra (import-linter brings grimp)")

MAX_LINES = 450


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("assistant")  # every import statement, at module level or inside functions
    modules = sorted(graph.modules)
    cycles = []
    for i, a in enumerate(modules):
        for b in modules[i + 1 :]:
            there = graph.find_shortest_chain(importer=a, imported=b)
            back = there and graph.find_shortest_chain(importer=b, imported=a)
            if there and back and not (b.startswith(a + ".") or a.startswith(b + ".")):
                cycles.append(" -> ".join(there) + " -> … -> " + a)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_import_contracts_hold():
    run = subprocess.run([sys.executable, "-m", "importlinter.cli", "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0 and "No module named" in run.stderr:
        run = subprocess.run(["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_module_is_over_a_readable_size():
    long = {p.relative_to(ROOT).as_posix(): n for p in (ROOT / "assistant").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
