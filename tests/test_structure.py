"""The shape of the package: no import cycles, a light CLI, short functions, one registry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "benchmark"
#: Functions allowed past MAX_LINES, with the reason (see the closing notes of issue #11).
LONG_OK: dict[str, str] = {}
MAX_LINES = 60


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Modules of ours that ``path`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("benchmark")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("benchmark"):
                continue
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in mods.items():
        graph[name] = {m for m in _imports(path) if m in mods and m != name}
    return graph


def test_no_import_cycle_in_the_package():
    graph = _graph()
    assert "benchmark.run" in graph and "benchmark.rundir" in graph
    # A package's __init__ is imported by its submodules' import; ignore edges into
    # __init__ modules that hold no code of their own.
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The walker is not vacuous: a two-module cycle in a scratch package is found."""
    pkg = tmp_path / "benchmark"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from benchmark import b\n")
    (pkg / "b.py").write_text("def f():\n    from benchmark.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="benchmark.a -> benchmark.b -> benchmark.a"):
        g = _graph()
        g["benchmark.run"] = g["benchmark.rundir"] = set()
        monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: g)
        test_no_import_cycle_in_the_package()


def test_model_modules_do_not_import_the_registry():
    for name in ("signnet", "cifar_resnet", "imagenet"):
        assert "benchmark.models.registry" not in _imports(PKG / "models" / f"{name}.py")


@pytest.mark.parametrize("module", ["benchmark.run", "benchmark.paper", "benchmark.commands"])
def test_help_loads_neither_tensorflow_nor_matplotlib(module):
    code = (f"import sys, runpy\nsys.argv = ['{module}', '--help']\n"
            f"try:\n    runpy.run_module('{module}', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'matplotlib', 'ai_edge_litert', 'tflite_runtime', "
            "'torch'))\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert "usage:" in r.stdout
    assert "HEAVY []" in r.stderr, r.stderr[-2000:]


def _functions():
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(ROOT)}:{node.name}", node.end_lineno - node.lineno + 1


def test_no_function_longer_than_60_lines():
    long = {name: n for name, n in _functions() if n > MAX_LINES and name not in LONG_OK}
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_dead_variant_path_is_gone():
    import benchmark.run
    assert not hasattr(benchmark.run, "variant_path")


def test_registration_never_hides_the_builtin_models():
    """Registering a model before the first lookup used to hide every built-in one."""
    from benchmark.models.base import ModelEntry
    from benchmark.models.registry import MODELS, get_model, list_models
    entry = ModelEntry(name="my-net", builder=lambda **kw: None, default_dataset="imagefolder",
                       input_size=32, num_classes=2, description="test")
    MODELS.register("my-net", entry)
    try:
        assert {"signnet", "resnet56", "my-net"} <= set(list_models())
        assert get_model("signnet").num_classes == 30
    finally:
        MODELS.unregister("my-net")


def test_available_messages_come_from_the_registries():
    from benchmark.datasets.registry import DATASETS
    from benchmark.errors import UsageError
    from benchmark.models.registry import MODELS
    for reg, bad in ((MODELS, "nope"), (DATASETS, "nope")):
        with pytest.raises(UsageError) as e:
            reg.get(bad)
        assert str(e.value).endswith("available: " + ", ".join(reg.names()))


def test_run_directory_doc_is_generated_from_the_format_module():
    """docs/run-directory.md embeds rundir's tables; regenerate with
    ``python -m benchmark.rundir --update docs/run-directory.md``."""
    from benchmark import rundir
    doc = (ROOT / "docs" / "run-directory.md").read_text()
    assert rundir.embedded_block(doc) == rundir.docs_block()
    for f in rundir.FILES:
        assert f"`{f.pattern}`" in doc


def test_reading_a_newer_format_says_which_version_is_needed(tmp_path):
    import json

    from benchmark import rundir
    from benchmark.errors import DataError
    (tmp_path / "results.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DataError, match="format_version 99 needs a newer edgetpu-bench"):
        rundir.read_run(tmp_path)


def test_a_format_1_run_still_reads_and_reports(tmp_path):
    """Runs written before format_version (and kind/weight_bits/reference) existed."""
    import json

    from benchmark import report, rundir
    from conftest import run_cli
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--limit", "30", "--weight-bits", "6", "--out", out, "--quiet",
                "--no-report", "--no-prediction-cache")
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["format_version"] == rundir.FORMAT_VERSION
    del res["format_version"]
    for m in res["variants"].values():
        for k in ("kind", "weight_bits", "reference"):
            m.pop(k)
    for sw in res["swaps"].values():
        if isinstance(sw, dict):
            sw.pop("agreement_with_float")
    (out / "results.json").write_text(json.dumps(res))
    run = rundir.read_run(out)
    assert run.format_version == 1
    assert report.sweep_table(run.records()).count("verification") == 1   # w6 found by name
    rows = rundir.metrics_rows(run.splits["verification"].record)
    assert [r[3] for r in rows if r[2] == "agreement_with_float"]
    html_path, _ = report.write_report([out])
    assert "Weight-bit sweep" in html_path.read_text()
