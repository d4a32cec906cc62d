"""--download: fetch, verify, rename; from a local HTTP server serving ../shared or fakes."""

from __future__ import annotations

import functools
import hashlib
import io
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark.datasets import download
from benchmark.datasets.download import Archive, download_dataset
from benchmark.errors import DataError, UsageError
from conftest import ROOT, SHARED, read_results, run_cli

REAL = SHARED / "data" / "gtsrb"
needs_real = pytest.mark.skipif(not (REAL / "GTSRB_Final_Test_GT.zip").is_file(),
                                reason="../shared/data/gtsrb (the GTSRB archives) not present")


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def serve():
    """``serve(directory)`` -> base URL of an HTTP server on 127.0.0.1 (stopped afterwards)."""
    servers = []

    def start(directory):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                    functools.partial(_Handler, directory=str(directory)))
        httpd.requests = []
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/", httpd

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake(tmp_path, monkeypatch, files: dict[str, bytes], table: dict[str, bytes] | None = None):
    """Serve ``files`` from a tmp folder; the expected table describes ``table`` (default same)."""
    src = tmp_path / "served"
    src.mkdir()
    for name, blob in files.items():
        (src / name).write_bytes(blob)
    table = files if table is None else table
    monkeypatch.setitem(download.FILES, "gtsrb", tuple(
        Archive(n, len(b), hashlib.sha256(b).hexdigest()) for n, b in table.items()))
    return src


def _free_port() -> int:
    """A local port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@needs_real
def test_real_archives_download_verify_and_are_not_fetched_twice(tmp_path, serve):
    base, httpd = serve(REAL)
    dest = tmp_path / "gtsrb"
    t0 = time.perf_counter()
    got = download_dataset("gtsrb", dest, url=base, progress=False)
    assert time.perf_counter() - t0 < 20
    assert [(p.name, fresh) for p, fresh in got] == [(a.name, True)
                                                     for a in download.FILES["gtsrb"]]
    for a in download.FILES["gtsrb"]:
        assert (dest / a.name).stat().st_size == a.size and _sha(dest / a.name) == a.sha256
        assert _sha(REAL / a.name) == a.sha256          # the table is the reference copy
    assert _leftovers(dest) == sorted(a.name for a in download.FILES["gtsrb"])
    n = len(httpd.requests)
    again = download_dataset("gtsrb", dest, url=base, progress=False)
    assert [fresh for _, fresh in again] == [False] * 3 and len(httpd.requests) == n


def test_fake_archives_and_progress_lines(tmp_path, serve, monkeypatch):
    blobs = {"GTSRB_Final_Training_Images.zip": b"t" * 300_000,
             "GTSRB_Final_Test_Images.zip": b"e" * 1000, "GTSRB_Final_Test_GT.zip": b"g"}
    base, _ = serve(_fake(tmp_path, monkeypatch, blobs))
    monkeypatch.setattr(download, "_CHUNK", 30_000)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logs = []
    download_dataset("gtsrb", tmp_path / "d" / "deeper", url=base, log=logs.append)
    for name, blob in blobs.items():
        assert (tmp_path / "d" / "deeper" / name).read_bytes() == blob
    lines = err.getvalue().splitlines()
    big = [x for x in lines if x.startswith("GTSRB_Final_Training_Images.zip: ")]
    assert [x.split()[1] for x in big] == [f"{p}%" for p in range(10, 101, 10)]
    assert logs[0].startswith(f"downloading {base}GTSRB_Final_Training_Images.zip")


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    s = Tty()
    bar = download.Progress("x.zip", 1000, s)
    for _ in range(4):
        bar.update(250)
    bar.close()
    out = s.getvalue()
    assert out.startswith("\rx.zip [") and out.endswith("100% 0.0/0.0 MB\n")
    assert "#" * 30 in out


def test_checksum_mismatch_deletes_the_temp_file(tmp_path, serve, monkeypatch):
    good, bad = b"the real archive", b"the evil archive"            # same size
    src = _fake(tmp_path, monkeypatch, {"GTSRB_Final_Test_GT.zip": bad},
                table={"GTSRB_Final_Test_GT.zip": good})
    base, _ = serve(src)
    dest = tmp_path / "d"
    with pytest.raises(DataError) as e:
        download_dataset("gtsrb", dest, url=base, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "checksum mismatch for GTSRB_Final_Test_GT.zip" in msg
    assert hashlib.sha256(good).hexdigest() in msg and hashlib.sha256(bad).hexdigest() in msg
    assert _leftovers(dest) == []


def test_wrong_size_stops_before_downloading(tmp_path, serve, monkeypatch):
    src = _fake(tmp_path, monkeypatch, {"GTSRB_Final_Test_GT.zip": b"x" * 5000},
                table={"GTSRB_Final_Test_GT.zip": b"short"})
    base, _ = serve(src)
    with pytest.raises(DataError, match=r"GTSRB_Final_Test_GT.zip is 5000 bytes, expected 5 for "
                                        r"GTSRB_Final_Test_GT.zip"):
        download_dataset("gtsrb", tmp_path / "d", url=base, progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_existing_wrong_file_is_left_alone(tmp_path, serve, monkeypatch):
    src = _fake(tmp_path, monkeypatch, {"GTSRB_Final_Test_GT.zip": b"right"})
    base, httpd = serve(src)
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "GTSRB_Final_Test_GT.zip").write_bytes(b"wrong")
    with pytest.raises(DataError, match="exists but is not the expected file .*delete it"):
        download_dataset("gtsrb", dest, url=base, progress=False)
    assert (dest / "GTSRB_Final_Test_GT.zip").read_bytes() == b"wrong" and httpd.requests == []


def test_network_errors_are_one_line(tmp_path, serve, monkeypatch):
    port = _free_port()
    with pytest.raises(DataError, match=r"cannot download http://127.0.0.1:\d+/GTSRB_Final_"):
        download_dataset("gtsrb", tmp_path / "d", url=f"http://127.0.0.1:{port}/",
                         progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    base, _ = serve(empty)
    with pytest.raises(DataError, match="HTTP 404"):
        download_dataset("gtsrb", tmp_path / "d", url=base, progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_base_url_precedence_and_checks(monkeypatch):
    monkeypatch.delenv("EDGETPU_BENCH_GTSRB_URL", raising=False)
    assert download.base_url("gtsrb") == download.GTSRB_OFFICIAL_URL
    monkeypatch.setenv("EDGETPU_BENCH_GTSRB_URL", "http://mirror.example/gtsrb")
    assert download.base_url("gtsrb") == "http://mirror.example/gtsrb/"
    assert download.base_url("gtsrb", "file:///data/x/") == "file:///data/x/"
    with pytest.raises(UsageError, match="must start with http://, https:// or file://"):
        download.base_url("gtsrb", "ftp://x/")
    with pytest.raises(UsageError, match="not available for dataset 'carolo-synth'"):
        download.base_url("carolo-synth")
    with pytest.raises(UsageError, match="needs --data-dir"):
        download_dataset("gtsrb", None)


def test_missing_gtsrb_error_mentions_download(tmp_path):
    from benchmark.datasets.registry import load_dataset
    with pytest.raises(DataError, match=f"into {tmp_path}, or add --download"):
        load_dataset("gtsrb", data_dir=tmp_path, cache_dir=tmp_path / "c", verbose=False)


@needs_real
def test_cli_env_url_and_a_missing_file_is_one_line(tmp_path, serve):
    """The standalone command takes the base URL from the environment; a 404 is one line."""
    small = tmp_path / "mirror"
    small.mkdir()
    gt = (REAL / "GTSRB_Final_Test_GT.zip").read_bytes()
    (small / "GTSRB_Final_Test_GT.zip").write_bytes(gt)
    base, _ = serve(small)
    r = run_cli("benchmark.datasets.download", "--data-dir", tmp_path / "d",
                env={"EDGETPU_BENCH_GTSRB_URL": base})
    # the two image archives are missing on this mirror: one clean line, exit 3
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"benchmark.datasets.download: error: cannot download {base}"
        "GTSRB_Final_Training_Images.zip: HTTP 404")
    assert _leftovers(tmp_path / "d") == []


@needs_real
def test_cli_one_file_table(tmp_path, serve, monkeypatch):
    """main() in-process with the table narrowed to the real GT archive."""
    gt = next(a for a in download.FILES["gtsrb"] if a.name == "GTSRB_Final_Test_GT.zip")
    monkeypatch.setitem(download.FILES, "gtsrb", (gt,))
    base, _ = serve(REAL)
    assert download.main(["--data-dir", str(tmp_path / "d"), "--url", base, "--quiet"]) == 0
    assert _sha(tmp_path / "d" / gt.name) == gt.sha256


def test_run_download_then_evaluate(tmp_path, serve, monkeypatch):
    """``benchmark.run --dataset gtsrb --download`` fetches fake archives, then evaluates."""
    model = ROOT / "models" / "signnet-gtsrb" / "verification" / "signnet-gtsrb_int8.tflite"
    if not model.is_file():
        pytest.skip("models/signnet-gtsrb/verification not present")
    from test_gtsrb import make_fixture

    from benchmark import run
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    make_fixture(fixture)
    blobs = {p.name: p.read_bytes() for p in sorted(fixture.iterdir())}
    base, _ = serve(_fake(tmp_path, monkeypatch, blobs))
    out = tmp_path / "run"
    assert run.main(["--model", "signnet-gtsrb", "--dataset", "gtsrb", "--data-dir",
                     str(tmp_path / "data"), "--download", "--download-url", base,
                     "--device", "cpu", "--out", str(out), "--no-report", "--quiet",
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    res = read_results(out)
    assert res["n_eval"] == 6 and res["config"]["download"] is True
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(blobs)


def test_run_download_failure_is_one_line(tmp_path):
    port = _free_port()
    r = run_cli("benchmark.run", "--model", "signnet-gtsrb", "--dataset", "gtsrb",
                "--data-dir", tmp_path / "d", "--download", "--download-url",
                f"http://127.0.0.1:{port}/", "--device", "cpu", "--out", tmp_path / "run",
                "--no-report")
    if "no trained signnet-gtsrb" in r.stderr:
        pytest.skip("models/signnet-gtsrb not present")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        "benchmark.run: error: cannot download http://127.0.0.1:")


def test_train_download_runs_before_tensorflow(tmp_path, monkeypatch):
    """``benchmark.train --download`` fetches (here: fails to) before anything heavy happens."""
    from benchmark import train
    port = _free_port()
    with pytest.raises(DataError, match=r"cannot download http://127.0.0.1:\d+/GTSRB_"):
        train.main(["--model", "signnet-gtsrb", "--dataset", "gtsrb", "--split",
                    "verification", "--data-dir", str(tmp_path / "d"), "--download",
                    "--download-url", f"http://127.0.0.1:{port}/",
                    "--model-dir", str(tmp_path / "m")])
    with pytest.raises(UsageError, match="not available for dataset 'carolo-synth'"):
        train.main(["--split", "full", "--data-dir", str(tmp_path), "--download",
                    "--model-dir", str(tmp_path / "m")])


def test_official_release_is_accepted_by_its_md5(tmp_path, serve, monkeypatch):
    """The official archives (other bytes than the reference copy) pass on their published MD5."""
    official, other = b"official release bytes, any size", b"something else entirely!"
    src = tmp_path / "served"
    src.mkdir()
    (src / "GTSRB_Final_Test_GT.zip").write_bytes(official)
    ref = Archive("GTSRB_Final_Test_GT.zip", 5, hashlib.sha256(b"12345").hexdigest(),
                  hashlib.md5(official).hexdigest())
    monkeypatch.setitem(download.FILES, "gtsrb", (ref,))
    base, _ = serve(src)
    [(path, fresh)] = download_dataset("gtsrb", tmp_path / "d", url=base, progress=False)
    assert fresh and path.read_bytes() == official
    # present now: accepted again without a download
    assert download_dataset("gtsrb", tmp_path / "d", url=base, progress=False)[0][1] is False
    (src / "GTSRB_Final_Test_GT.zip").write_bytes(other)
    with pytest.raises(DataError, match=r"or the official release, md5 "
                                        + hashlib.md5(official).hexdigest()):
        download_dataset("gtsrb", tmp_path / "e", url=base, progress=False)
    assert _leftovers(tmp_path / "e") == []


def test_table_holds_the_published_official_md5s():
    md5 = {a.name: a.official_md5 for a in download.FILES["gtsrb"]}
    assert md5 == {"GTSRB_Final_Training_Images.zip": "f33fd80ac59bff73c82d25ab499e03a3",
                   "GTSRB_Final_Test_Images.zip": "c7e4e6327067d32654124b0fe9e82185",
                   "GTSRB_Final_Test_GT.zip": "fe31e9c9270bbcd7b84b7f21a9d9d9e5"}
