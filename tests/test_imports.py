"""The import graph of fer_core: no cycles, and the data package stays free of TensorFlow.

Every import counts, module-level or inside a function (a "late" import is a cycle the
reader has to keep in mind all the same). Importing `a.b.c` also runs `a/b/__init__.py`,
but that implicit edge is not counted: a package's `__init__` re-exports its submodules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "fer_core"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """fer_core module -> the fer_core modules it imports (anywhere in its file)."""
    files = {_module_name(p): p for p in sorted((REPO / PACKAGE).rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package holding this module
                    anchor = name.split(".")
                    anchor = anchor[: len(anchor) - node.level + is_package]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            for target in targets:
                while target and target not in files:  # `import a.b.c` of a name: its module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_known_imports() -> None:
    graph = _import_graph()
    assert "fer_core.data.dataset" in graph["fer_core.data.demo"]
    assert "fer_core.paths" in graph["fer_core.models.registry"]


def test_no_import_cycles_in_fer_core() -> None:
    assert _cycles(_import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_data_package_does_not_load_tensorflow() -> None:
    """Pages and the CLI's `inspect` load data without paying for TensorFlow (seconds)."""
    code = ("import sys, fer_core.data, fer_core.data.demo\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'onnxruntime', 'onnx', 'tf2onnx', "
            "'ai_edge_litert') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


# What docs/ARCHITECTURE.md promises loads no TensorFlow at import: the light CLI commands,
# the Home, Dataset and Evaluate pages and the runs/catalog layer rely on it.
TF_FREE = (
    "paths", "cpu", "files", "labels", "text", "uploads", "probe", "tf_quiet", "data",
    "quality", "params", "config", "runs", "jobs", "progress", "train_form", "run_table",
    "catalog", "charts", "display", "evaluate", "eval_report", "gradcam", "detect", "stream",
    "webrtc", "runtimes", "backends", "model_card", "runtime_uploads", "analysis_jobs",
    "processes", "sweep", "sweep_space", "sweep_jobs", "cli.analyze", "cli.inspect",
    "cli.train", "cli.runs", "cli.evaluate", "cli.export", "cli.cpu", "cli.sweep",
    "ensemble", "teacher", "calibration", "cli.ensemble", "cli.teacher",
)


@pytest.mark.parametrize("module", TF_FREE)
def test_light_modules_do_not_load_tensorflow(module: str) -> None:
    code = (f"import sys, fer_core.{module}\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'onnxruntime', 'onnx', 'tf2onnx', "
            "'ai_edge_litert') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr
