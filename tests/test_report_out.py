"""benchmark.report --out never replaces a run file or a file the user wrote."""

import hashlib

import numpy as np
import pytest

from benchmark import report
from test_report_fast import small_run


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    return small_run(tmp_path / "run", {"float": cm, "int8": cm}, ["a", "b"])


def _report(capsys, *argv):
    from benchmark.cli import main_wrapper
    code = main_wrapper("benchmark.report", report.main, list(argv))
    return code, capsys.readouterr().err


def test_out_onto_results_json_is_refused_and_the_file_kept(run, capsys):
    before = _sha(run / "results.json")
    code, err = _report(capsys, str(run), "--out", str(run / "results.json"))
    assert code == 2
    assert err.count("\n") == 1 and "must be an .html file name" in err
    assert _sha(run / "results.json") == before


def test_out_onto_the_users_own_report_is_refused(run, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("<p>my notes</p>")
    (mine / "metrics.csv").write_text("mine\n")
    code, err = _report(capsys, str(run), "--out", str(mine / "report.html"))
    assert code == 2 and "was not written by benchmark.report" in err
    assert (mine / "report.html").read_text() == "<p>my notes</p>"
    assert (mine / "metrics.csv").read_text() == "mine\n"


def test_a_users_md_beside_the_html_is_refused_too(run, tmp_path, capsys):
    (tmp_path / "r.md").write_text("# my notes\n")
    code, err = _report(capsys, str(run), "--out", str(tmp_path / "r.html"))
    assert code == 2 and "r.md exists" in err
    assert not (tmp_path / "r.html").exists()


def test_an_earlier_report_is_replaced(run, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert _report(capsys, str(run), "--out", str(out))[0] == 0
    first = out.read_bytes()
    assert _report(capsys, str(run), "--out", str(out))[0] == 0
    assert out.read_bytes() == first
    assert _report(capsys, str(run))[0] == 0  # the run's own report.html, twice
    assert _report(capsys, str(run))[0] == 0


def test_out_that_is_a_folder_is_refused(run, tmp_path, capsys):
    (tmp_path / "x.html").mkdir()
    code, err = _report(capsys, str(run), "--out", str(tmp_path / "x.html"))
    assert code == 2 and "is a folder" in err
