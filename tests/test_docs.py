"""The documentation: README size, results tables vs their CSVs, the docs checker itself.

Fast (no benchmark runs): the examples themselves are re-run by ``make docs-check``.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


results_tables = _load("results_tables")
docs_check = _load("docs_check")


def test_readme_is_short_and_links_the_documents():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for doc in ("docs/commands.md", "docs/run-directory.md", "docs/datasets.md",
                "docs/edge-tpu.md", "docs/development.md", "docs/paper.md", "results/README.md"):
        assert f"]({doc})" in text, doc
        assert (ROOT / doc).is_file(), doc
    # the first screen says how to use your own images and model
    first_screen = "\n".join(text.splitlines()[:50])
    assert "imagefolder" in first_screen and "Your own model" in first_screen


def test_rundir_table_is_between_its_markers():
    text = (ROOT / "docs" / "run-directory.md").read_text()
    m = re.search(r"<!-- rundir-table:begin -->\n(.*?)<!-- rundir-table:end -->", text, re.S)
    assert m, "rundir-table markers missing"
    body = m.group(1)
    assert "\n|---" in body or "\n| ---" in body, "no table between the markers"
    assert "`results.json`" in body


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "results").glob("*.md")))
def test_results_tables_match_their_csvs(page):
    text = (ROOT / "results" / page).read_text()
    assert results_tables.render(text) == text, (
        f"results/{page} differs from what tools/results_tables.py builds from the committed "
        "CSVs; run .venv/bin/python tools/results_tables.py")


def test_every_results_table_has_its_sources_committed():
    used = set()
    for page in (ROOT / "results").glob("*.md"):
        used |= set(re.findall(r"<!-- results-table:([\w-]+) -->", page.read_text()))
    assert used == set(results_tables.TABLES), "a table is defined but not shown, or vice versa"
    for name, source in results_tables.SOURCES.items():
        for f in source.files:
            assert (ROOT / "results" / name / f).is_file(), f"results/{name}/{f}"


def test_results_tables_fail_loudly_without_their_csv(monkeypatch, tmp_path):
    monkeypatch.setattr(results_tables, "RESULTS", tmp_path)
    with pytest.raises(FileNotFoundError):
        results_tables.render("<!-- results-table:carolo-accuracy -->\nold\n"
                              "<!-- /results-table:carolo-accuracy -->\n")


def test_results_tables_check_mode_reports_a_stale_table(monkeypatch, tmp_path, capsys):
    page = tmp_path / "x.md"
    page.write_text("<!-- results-table:carolo-accuracy -->\nstale\n"
                    "<!-- /results-table:carolo-accuracy -->\n")
    monkeypatch.setattr(results_tables, "pages", lambda: [page])
    monkeypatch.setattr(results_tables, "ROOT", tmp_path)
    assert results_tables.main(["--check"]) == 1
    assert "stale" in page.read_text()
    assert results_tables.main([]) == 0 and "stale" not in page.read_text()


def test_docs_check_doctests():
    failed, _ = doctest.testmod(docs_check)
    assert failed == 0


def test_docs_check_parses_every_marked_block():
    files = docs_check.default_files()
    blocks = [b for f in files for b in docs_check.parse_blocks(f.read_text(), f)]
    assert len(blocks) >= 5
    assert all(b.steps for b in blocks)
    commands = " ".join(s.command for b in blocks for s in b.steps)
    for needed in ("--device edgetpu", "--limit 300", "--analyze-only", "--help"):
        assert needed in commands


def test_docs_check_links_resolve():
    bad = [msg for f in docs_check.default_files()
           for msg in docs_check.check_links(f, f.read_text())]
    assert not bad, "\n".join(bad)


def test_docs_check_runs_a_block_and_reports_a_mismatch(tmp_path):
    good = docs_check.parse_blocks(
        "<!-- docs-check -->\n```\n$ OUT=$(mktemp -d)\n$ echo $OUT/x in 2.5 s; false\n"
        "$OUT/x in 9 s\n$ echo $?\n1\n```\n", tmp_path / "a.md")[0]
    assert docs_check.run_block(good) == []
    bad = docs_check.parse_blocks("<!-- docs-check -->\n```\n$ echo two\none\n```\n",
                                  tmp_path / "b.md")[0]
    (msg,) = docs_check.run_block(bad)
    assert "-one" in msg and "+two" in msg


def test_docs_check_rejects_a_marker_without_a_block():
    with pytest.raises(ValueError, match="not followed by a code block"):
        docs_check.parse_blocks("<!-- docs-check -->\ntext\n")
