"""Progress bars: drawn on a terminal only, never with --quiet, and they do not change output."""

import io

import pytest

from benchmark import progress


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv("EDGETPU_BENCH_PROGRESS", raising=False)
    progress.set_quiet(False)
    yield
    progress.set_quiet(False)


def test_off_without_a_terminal_and_with_quiet(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress.bar("x") is None
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress.bar("x") is not None
    progress.set_quiet(True)
    assert progress.bar("x") is None
    monkeypatch.setenv("EDGETPU_BENCH_PROGRESS", "1")
    assert progress.bar("x") is not None   # forced on
    monkeypatch.setenv("EDGETPU_BENCH_PROGRESS", "0")
    progress.set_quiet(False)
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress.bar("x") is None       # forced off


def test_bar_draws_to_stderr_and_closes_at_the_end(monkeypatch):
    err = Tty()
    monkeypatch.setattr("sys.stderr", err)
    b = progress.bar("decoding", unit="img")
    b(5, 10)
    assert "decoding" in err.getvalue() and "5/10" in err.getvalue()
    b(10, 10)
    assert b._bar is None


def test_evaluate_reports_every_batch_and_predictions_do_not_change(monkeypatch):
    import numpy as np
    from benchmark.backends.fake import FakeBackend
    from benchmark.evaluate import evaluate
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 4, 4, 3), np.uint8)
    labels = np.arange(10) % 3
    seen = []
    with FakeBackend(input_shape=(1, 4, 4, 3), num_classes=3) as be:
        a = evaluate(be, images, labels, np.arange(10), batch_size=4,
                     progress=lambda d, t: seen.append((d, t)))
        b = evaluate(be, images, labels, np.arange(10), batch_size=4)
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert np.array_equal(a.probs, b.probs)


def test_chain_skips_nones():
    got = []
    assert progress.chain(None, None) is None
    progress.chain(None, lambda d, t: got.append(d))(3, 4)
    assert got == [3]
