"""The figure cache shared across runs (benchmark.figcache) and its use by the report."""

import os
import re

from benchmark import figcache, plots, report
from test_report_fast import CM, NAMES, small_run


def _pngs(page: str) -> list[str]:
    return re.findall(r"src='data:image/png;base64,([^']+)'", page)


def test_a_second_run_with_the_same_data_draws_nothing(tmp_path, monkeypatch):
    shared = tmp_path / "cache" / figcache.SUBDIR
    a = small_run(tmp_path / "a", CM, NAMES)
    out_a, _ = report.write_report([a], figure_cache=shared)
    n = report.LAST_RENDER["rendered"]
    assert n >= 5 and report.LAST_RENDER["shared"] == 0
    assert len(list(shared.glob("*.png"))) == n

    def no_drawing(*args, **kwargs):
        raise AssertionError("a figure in the shared cache was drawn again")
    monkeypatch.setattr(plots, "render", no_drawing)
    b = small_run(tmp_path / "b", CM, NAMES)
    out_b, _ = report.write_report([b], figure_cache=shared)
    assert report.LAST_RENDER == {"rendered": 0, "cached": n, "workers": 0, "shared": n}
    assert _pngs(out_b.read_text()) == _pngs(out_a.read_text())
    # the run got its own copies: a rebuild without the shared cache draws nothing either
    assert sorted(p.name for p in (b / report.FIGURE_CACHE).glob("*.png")) == \
        sorted(p.name for p in shared.glob("*.png"))
    report.write_report([b])
    assert report.LAST_RENDER == {"rendered": 0, "cached": n, "workers": 0}


def test_different_data_is_drawn_and_added(tmp_path):
    shared = tmp_path / "figs"
    report.write_report([small_run(tmp_path / "a", CM, NAMES)], figure_cache=shared)
    n = len(list(shared.glob("*.png")))
    other = {"float": CM["float"], "int8": CM["float"]}
    report.write_report([small_run(tmp_path / "b", other, NAMES)], figure_cache=shared)
    # the float heatmap (now also int8's) and float-only figures are shared; what
    # involves int8 is new
    got = report.LAST_RENDER
    assert 0 < got["shared"] < n and got["rendered"] > 0
    assert got["shared"] + got["rendered"] == got["cached"] + got["rendered"]
    assert len(list(shared.glob("*.png"))) == n + report.LAST_RENDER["rendered"]


def test_trim_removes_the_least_recently_used(tmp_path):
    for i, name in enumerate(["old", "mid", "new"]):
        p = tmp_path / f"{name}.png"
        p.write_bytes(b"x" * 100)
        os.utime(p, ns=(10 ** 9 * (i + 1), 10 ** 9 * (i + 1)))
    (tmp_path / "note.txt").write_bytes(b"y" * 1000)       # not a figure: never counted
    figcache.touch(tmp_path / "old.png")                   # just used: now the newest
    removed = figcache.trim(tmp_path, max_bytes=200)
    assert [p.name for p in removed] == ["mid.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "note.txt", "old.png"]
    assert figcache.trim(tmp_path / "missing") == []


def test_shared_dir_follows_the_cache_option(tmp_path, monkeypatch):
    assert figcache.shared_dir(tmp_path) == tmp_path / "figures"
    monkeypatch.setenv("EDGETPU_BENCH_CACHE", str(tmp_path / "env"))
    assert figcache.shared_dir() == tmp_path / "env" / "figures"
