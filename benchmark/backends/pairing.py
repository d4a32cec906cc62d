"""Which libedgetpu is installed, which TFLite interpreter goes with it, and whether they work.

libedgetpu is built against one TensorFlow Lite revision and only works with an
interpreter built from a compatible one: Coral's 16.0 (TF 2.5) crashes inside
TFLite >= 2.12 (google-coral/edgetpu#812) and fails ``allocate_tensors()``
with "Unsupported data type in custom op handler" on an older one (#44, #259).
This module detects both halves without importing an interpreter:

- libedgetpu: the Debian package version (``dpkg-query -W libedgetpu1-std
  libedgetpu1-max``: ``16.0`` from Coral, ``16.0tf2.17.1-1`` from feranick's
  rebuilds), else ``edgetpu_version()`` of the library through ctypes
  (``BuildLabel(COMPILER=...,DATE=redacted,...), RuntimeVersion(14)`` for
  Coral's release builds);
- the interpreters: installed distributions (``ai-edge-litert``,
  ``tflite-runtime``, ``tensorflow``/``tensorflow-cpu``, ``pycoral``);

and judges the pair with :data:`COMPATIBILITY` (sources cited per row):
``known-good``, ``known-bad`` (refused before the delegate is loaded, one line
saying what to install, exit code 4) or ``unknown`` (one warning, then run).
:func:`check_pairing` is what the Edge TPU backend calls; among several
installed interpreters it picks the known-good one.
``EDGETPU_BENCH_PAIRING=off`` turns the refusal into a warning.

``python -m benchmark.backends.pairing`` prints the detected pair and verdict;
``--table`` prints the compatibility table (docs/edge-tpu.md); ``--probe
MODEL`` also loads the delegate on a compiled model in a child process, so a
crash or hang is reported as one line.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import re
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata

from benchmark.errors import BackendUnavailable, DataError

GOOD, BAD, UNKNOWN = "known-good", "known-bad", "unknown"

#: The pair tools/pi/setup.sh installs (feranick/libedgetpu and feranick/TFlite-builds releases).
MATCHED_PAIR = ("feranick's libedgetpu1-std 16.0tf2.17.1-1 with tflite_runtime 2.17.1 "
                "(tools/pi/setup.sh installs both)")
FIX = (f"install a matched pair: {MATCHED_PAIR}, or Coral's libedgetpu 16.0 with "
       "tflite_runtime 2.5.0.post1 on Python <= 3.9 (docs/edge-tpu.md, 'Runtime pairing')")

#: Distribution name -> import name of the interpreter it provides.
DISTRIBUTIONS = (("ai-edge-litert", "ai_edge_litert"), ("tflite-runtime", "tflite_runtime"),
                 ("tensorflow", "tensorflow"), ("tensorflow-cpu", "tensorflow"),
                 ("pycoral", "pycoral"))

#: feranick's first rebuilds had no TF version in the package version (debian/changelog).
_FERANICK_EARLY = {"16.0-0ppa1": "2.8.4", "16.0pp2": "2.9.3", "16.0pp3": "2.10.1"}
_CORAL_VERSIONS = ("16.0", "15.0", "14.1", "14.0", "13.0")


@dataclass(frozen=True)
class EdgeTPULibrary:
    """The installed libedgetpu, as far as it can be told.

    ``build`` is ``coral-<version>`` (Google's release), ``rebuild`` (built
    against TensorFlow ``tf``) or ``unknown``; ``found_by`` is ``dpkg``,
    ``ctypes`` or ``none``.
    """

    found_by: str
    build: str = "unknown"
    package: str | None = None
    version: str | None = None
    tf: str | None = None
    label: str | None = None
    runtime_version: int | None = None

    def describe(self) -> str:
        if self.found_by == "dpkg":
            return f"{self.package} {self.version}"
        if self.found_by == "ctypes":
            return f"libedgetpu ({self.label})"
        return "libedgetpu (version unknown)"


@dataclass(frozen=True)
class Interp:
    """One installed TFLite interpreter package (import name and version)."""

    package: str
    version: str

    def describe(self) -> str:
        return f"{self.package} {self.version}"


@dataclass(frozen=True)
class Rule:
    """One row of the compatibility table: library x interpreter version range -> status."""

    library: str        # "coral-16.0", "coral-14", "rebuild", "rebuild-2.13", ...
    interpreter: str    # "tflite" (tflite_runtime or tensorflow) or "ai_edge_litert"
    lo: str | None      # lowest interpreter version (inclusive); "same" = the library's TF
    hi: str | None      # first version past the range (exclusive)
    status: str
    evidence: str
    source: str


#: First matching row wins. Interpreter versions are compared by their numeric prefix.
COMPATIBILITY: tuple[Rule, ...] = (
    Rule("coral-16.0", "tflite", "2.5", "2.6", GOOD,
         "Coral's own pair: pycoral 2.0 ships tflite_runtime 2.5.0.post1 (cp36-cp39) for 16.0",
         "google-coral/pycoral releases 2.0.0; google-coral/libedgetpu#31"),
    Rule("coral-16.0", "tflite", "2.12", None, BAD,
         "segmentation fault: 'The last version of TensorFlow Lite to support EdgeTPU is "
         "2.11.1'", "google-coral/edgetpu#812; google-coral/libedgetpu#53"),
    Rule("coral-16.0", "ai_edge_litert", None, None, BAD,
         "LiteRT is built from TFLite newer than 2.11.1, which segfaults with Coral's 16.0",
         "google-coral/edgetpu#812"),
    Rule("coral-16.0", "tflite", None, "2.5", BAD,
         "'Unsupported data type in custom op handler' from allocate_tensors()",
         "google-coral/edgetpu#259, #44"),
    Rule("coral-16.0", "tflite", "2.6", "2.12", UNKNOWN,
         "reported working up to 2.11.1, not verified here", "google-coral/edgetpu#812"),
    Rule("coral-15.0", "tflite", "2.5", "2.6", GOOD,
         "15.0 goes with tflite_runtime 2.5 (the maintainer's answer)",
         "google-coral/edgetpu#259; google-coral/pycoral#1"),
    Rule("coral-15.0", "tflite", None, "2.5", BAD,
         "'Unsupported data type in custom op handler' (15.0 with tflite_runtime 2.1.0.post1)",
         "google-coral/edgetpu#259"),
    Rule("coral-14", "tflite", "2.3", None, BAD,
         "'Unsupported data type in custom op handler' (14.1 with tflite_runtime 2.3.0 and 2.5.0)",
         "google-coral/edgetpu#214; google-coral/pycoral#1"),
    Rule("coral-13.0", "tflite", "2.1", "2.2", GOOD,
         "the fix for 13.0 was tflite_runtime 2.1.0", "google-coral/edgetpu#44"),
    Rule("coral-13.0", "tflite", None, "2.1", BAD,
         "'Unsupported data type in custom op handler' (13.0 with tflite_runtime 1.15.0)",
         "google-coral/edgetpu#44"),
    Rule("rebuild", "tflite", "same", "same", GOOD,
         "libedgetpu rebuilt against the interpreter's own TensorFlow minor version "
         "(e.g. 16.0tf2.17.1 with tflite_runtime 2.17.1)",
         "feranick/libedgetpu releases and debian/changelog; feranick/TFlite-builds"),
    Rule("rebuild-2.13", "tflite", "2.13", "2.16", GOOD,
         "a 2.13.1 rebuild 'works perfectly with tflite_runtime 2.13.1, 2.14.1, and 2.15.0'",
         "google-coral/edgetpu#812 (feranick, 2024-01-28)"),
    Rule("rebuild", "ai_edge_litert", None, None, UNKNOWN,
         "said to be 'perfectly compatible' with rebuilds up to TF 2.19.1, no versions given",
         "google-ai-edge/LiteRT#3611"),
)


def _vtuple(version: str | None) -> tuple[int, ...]:
    """Numeric prefix of a version: '2.5.0.post1' -> (2, 5, 0); '16.0tf2.17.1' -> (16, 0)."""
    m = re.match(r"\d+(?:\.\d+)*", version or "")
    return tuple(int(p) for p in m.group(0).split(".")) if m else ()


def _minor(version: str | None) -> tuple[int, ...]:
    return _vtuple(version)[:2]


def classify_package_version(package: str, version: str) -> EdgeTPULibrary:
    """The library a Debian ``libedgetpu1-*`` package version describes.

    Examples
    --------
    >>> classify_package_version("libedgetpu1-std", "16.0").build
    'coral-16.0'
    >>> lib = classify_package_version("libedgetpu1-max", "16.0tf2.17.1-1")
    >>> lib.build, lib.tf
    ('rebuild', '2.17.1')
    >>> classify_package_version("libedgetpu1-std", "16.0pp3").tf
    '2.10.1'
    """
    base = dict(found_by="dpkg", package=package, version=version)
    m = re.match(r"^\d+\.\d+tf(\d+\.\d+(?:\.\d+)?)", version, re.IGNORECASE)
    if m:
        return EdgeTPULibrary(build="rebuild", tf=m.group(1), **base)
    if version in _FERANICK_EARLY:
        return EdgeTPULibrary(build="rebuild", tf=_FERANICK_EARLY[version], **base)
    if version in _CORAL_VERSIONS:
        return EdgeTPULibrary(build=f"coral-{version}", **base)
    return EdgeTPULibrary(**base)


def classify_label(label: str) -> EdgeTPULibrary:
    """The library an ``edgetpu_version()`` string describes.

    Coral's release builds redact the build date (``DATE=redacted``); 16.0 is
    the one with ``RuntimeVersion(14)``. Any other build is a rebuild of
    unknown TensorFlow version.

    Examples
    --------
    >>> classify_label("BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), "
    ...                "RuntimeVersion(14)").build
    'coral-16.0'
    >>> classify_label("BuildLabel(COMPILER=14.2.0,DATE=Feb 22 2026,TIME=09:51:57), "
    ...                "RuntimeVersion(14)").build
    'unknown'
    """
    m = re.search(r"RuntimeVersion\((\d+)\)", label)
    runtime = int(m.group(1)) if m else None
    build = "coral-16.0" if "DATE=redacted" in label and runtime == 14 else "unknown"
    return EdgeTPULibrary(found_by="ctypes", build=build, label=label.strip(),
                          runtime_version=runtime)


def dpkg_libedgetpu(run=subprocess.run) -> EdgeTPULibrary | None:
    """The installed ``libedgetpu1-std``/``-max`` package, or None (no dpkg, not installed)."""
    cmd = ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
           "libedgetpu1-std", "libedgetpu1-max"]
    try:
        proc = run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].startswith("ii") and parts[1]:
            return classify_package_version(parts[0].split(":")[0], parts[1])
    return None


def ctypes_libedgetpu(library: str | None = None, cdll=ctypes.CDLL) -> EdgeTPULibrary | None:
    """The library's own ``edgetpu_version()``, or None when it cannot be loaded."""
    name = library or ctypes.util.find_library("edgetpu") or "libedgetpu.so.1"
    try:
        lib = cdll(name)
        fn = lib.edgetpu_version
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    raw = fn()
    if not raw:
        return None
    return classify_label(raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw))


def detect_library(library: str | None = None, *, run=subprocess.run,
                   cdll=ctypes.CDLL) -> EdgeTPULibrary:
    """The installed libedgetpu: its Debian package, else its ``edgetpu_version()``."""
    lib = dpkg_libedgetpu(run)
    if lib is not None:
        return lib
    return ctypes_libedgetpu(library, cdll) or EdgeTPULibrary(found_by="none")


def installed_interpreters(version_of=metadata.version) -> list[Interp]:
    """Installed interpreter packages, without importing them (pycoral listed as its own)."""
    found, seen = [], set()
    for dist, package in DISTRIBUTIONS:
        try:
            v = version_of(dist)
        except metadata.PackageNotFoundError:
            continue
        if package not in seen:
            seen.add(package)
            found.append(Interp(package, v))
    return found


def _library_keys(lib: EdgeTPULibrary) -> list[str]:
    if lib.build == "rebuild":
        return [f"rebuild-{'.'.join(map(str, _minor(lib.tf)))}", "rebuild"]
    if lib.build.startswith("coral-14"):
        return ["coral-14"]
    return [lib.build]


def _in_range(rule: Rule, lib: EdgeTPULibrary, version: str) -> bool:
    if rule.lo == "same":
        return bool(_minor(lib.tf)) and _minor(version) == _minor(lib.tf)
    v = _vtuple(version)
    return (rule.lo is None or v >= _vtuple(rule.lo)) and (rule.hi is None or v < _vtuple(rule.hi))


@dataclass(frozen=True)
class Verdict:
    """The judgement of one (libedgetpu, interpreter) pair."""

    status: str
    library: EdgeTPULibrary
    interpreter: Interp | None
    evidence: str
    source: str = ""

    def line(self) -> str:
        """``<lib> with <interp>: <status> (<evidence>; <source>)``."""
        interp = self.interpreter.describe() if self.interpreter else "no interpreter"
        src = f"; {self.source}" if self.source else ""
        return f"{self.library.describe()} with {interp}: {self.status} ({self.evidence}{src})"

    def as_dict(self) -> dict:
        return {"status": self.status, "library": asdict(self.library),
                "interpreter": asdict(self.interpreter) if self.interpreter else None,
                "evidence": self.evidence, "source": self.source}


def judge(lib: EdgeTPULibrary, interp: Interp, table=COMPATIBILITY) -> Verdict:
    """The verdict of :data:`COMPATIBILITY` on one pair (``unknown`` when no row matches)."""
    family = "ai_edge_litert" if interp.package == "ai_edge_litert" else "tflite"
    if not _vtuple(interp.version):
        return Verdict(UNKNOWN, lib, interp, "the interpreter's version could not be read")
    keys = _library_keys(lib)
    for rule in table:
        if rule.library in keys and rule.interpreter == family \
                and _in_range(rule, lib, interp.version):
            return Verdict(rule.status, lib, interp, rule.evidence, rule.source)
    if lib.build == "unknown":
        why = ("libedgetpu's version could not be read" if lib.found_by == "none" else
               "a libedgetpu build whose TensorFlow version is not known")
    else:
        why = "no report of this pair"
    return Verdict(UNKNOWN, lib, interp, why)


def interpreter_of(runtime) -> Interp:
    """The interpreter a :class:`~benchmark.backends.runtime.Runtime` runs (pycoral: its
    tflite_runtime)."""
    if runtime.package == "pycoral":
        try:
            return Interp("tflite_runtime", metadata.version("tflite-runtime"))
        except metadata.PackageNotFoundError:
            return Interp("tflite_runtime", "unknown")
    return Interp(runtime.package, str(runtime.version))


def choose(lib: EdgeTPULibrary, interps: list[Interp]) -> Verdict | None:
    """The best installed interpreter for ``lib``: known-good, else unknown, else known-bad."""
    verdicts = [judge(lib, i) for i in interps if i.package != "pycoral"]
    for status in (GOOD, UNKNOWN, BAD):
        for v in verdicts:
            if v.status == status:
                return v
    return None


_WARNED: set[str] = set()


def warn_once(message: str, stream=None) -> None:
    """Print ``warning: message`` to stderr the first time this process sees it."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=stream or sys.stderr)


def refusal(verdict: Verdict) -> str:
    """The one-line error for a known-bad pair."""
    return f"refusing to load the Edge TPU delegate: {verdict.line()}; {FIX}"


def _switch(runtime, lib, verdict, interps, find):
    """A Runtime of a known-good installed interpreter other than ``runtime``'s, or None."""
    best = choose(lib, [i for i in interps if i.package != runtime.package])
    if best is None or best.status != GOOD:
        return None
    if find is None:
        from benchmark.backends.runtime import find_runtime as find
    try:
        new = find(best.interpreter.package)
    except BackendUnavailable as e:  # installed but broken (e.g. built against numpy 1)
        warn_once(f"{best.interpreter.describe()} would match {lib.describe()} but does not "
                  f"load: {e}")
        return None
    print(f"note: the Edge TPU runs with {new.package} {new.version}, known-good with "
          f"{lib.describe()} ({interpreter_of(runtime).describe()} is {verdict.status})",
          file=sys.stderr)
    return new


def check_pairing(runtime, *, prefer: str | None = None, library: str | None = None,
                  lib: EdgeTPULibrary | None = None, interpreters: list[Interp] | None = None,
                  find=None):
    """Judge the pair before the delegate is loaded; returns ``(runtime, verdict)``.

    Parameters
    ----------
    runtime : Runtime
        The interpreter the backend found (``find_runtime(prefer)`` or pycoral's).
    prefer : str, optional
        The interpreter the user asked for; without it a known-good installed
        interpreter replaces a known-bad or unknown one (said on stderr).
    library : str, optional
        Path of the libedgetpu to read ``edgetpu_version()`` from.
    lib, interpreters, find
        Detected library, installed interpreters and ``find_runtime`` (tests).

    Raises
    ------
    BackendUnavailable
        For a known-bad pair (unless ``EDGETPU_BENCH_PAIRING=off``): one line
        naming the pair, the evidence and what to install.
    """
    lib = lib or detect_library(library)
    verdict = judge(lib, interpreter_of(runtime))
    if verdict.status != GOOD and prefer is None and runtime.package != "pycoral":
        interps = installed_interpreters() if interpreters is None else interpreters
        new = _switch(runtime, lib, verdict, interps, find)
        if new is not None:
            return new, judge(lib, interpreter_of(new))
    if verdict.status == BAD:
        if os.environ.get("EDGETPU_BENCH_PAIRING", "").lower() != "off":
            raise BackendUnavailable(refusal(verdict))
        warn_once(f"EDGETPU_BENCH_PAIRING=off, loading a known-bad pair: {verdict.line()}")
    elif verdict.status == UNKNOWN:
        warn_once(f"untested Edge TPU runtime pairing, running anyway: {verdict.line()}; "
                  f"known-good: {MATCHED_PAIR}")
    return runtime, verdict


# --- the probe: load the delegate on a compiled model in a child process -----------------

PROBE_TIMEOUT_SEC = 60


def likely_cause(text: str) -> str:
    """What a delegate error line usually means (the fix to try first)."""
    if "Unsupported data type in custom op handler" in text:
        return f"libedgetpu and the interpreter do not match: {FIX}"
    if "requires runtime version" in text:
        return "the model was compiled for a newer runtime: update libedgetpu or recompile with -m"
    if "Failed to load delegate" in text or "no Edge TPU" in text.lower():
        return ("no device or no permission: check lsusb (18d1:9302 / 1a6e:089a) or /dev/apex_0, "
                "the plugdev/apex group (log in again), and replug the accelerator")
    return "see the probe's stderr"


def probe_command(model, *, library: str, package: str, device: str | None = None) -> list[str]:
    """The child process that loads the delegate on ``model`` and invokes it twice."""
    cmd = [sys.executable, "-m", "benchmark.backends.pairing", "--child", str(model),
           "--library", library, "--runtime", package]
    return cmd + (["--device", device] if device else [])


def probe(model, command: list[str], timeout: float = PROBE_TIMEOUT_SEC) -> str:
    """Run ``command`` (see :func:`probe_command`); its last stdout line, or a one-line error.

    Raises
    ------
    BackendUnavailable
        When the child crashes (a signal such as SIGSEGV), hangs past
        ``timeout`` seconds or fails, naming the likely cause.
    """
    try:
        proc = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(
            f"Edge TPU probe on {model}: no answer within {timeout:g} s (a hung or unplugged "
            "device: replug the accelerator; on USB avoid unpowered hubs)") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise BackendUnavailable(
            f"Edge TPU probe on {model}: the child process died of {name} while loading the "
            f"delegate; a libedgetpu/interpreter mismatch is the usual cause: {FIX}")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise BackendUnavailable(f"Edge TPU probe on {model} failed: {last} ({likely_cause(last)})")
    out = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return out[-1] if out else "probe ok"


def _child(model: str, library: str, package: str, device: str | None) -> int:
    """In the child: load the delegate, allocate, invoke twice on zeros, print the timings."""
    import time

    import numpy as np

    from benchmark.backends.runtime import find_runtime
    rt = find_runtime(package)
    t0 = time.perf_counter()
    delegate = rt.load_delegate(library, {"device": device} if device else {})
    it = rt.Interpreter(model_path=model, experimental_delegates=[delegate])
    it.allocate_tensors()
    t1 = time.perf_counter()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
    it.invoke()
    t2 = time.perf_counter()
    it.invoke()
    t3 = time.perf_counter()
    print(f"probe ok: {model} on the Edge TPU{f' {device}' if device else ''} with {rt.package} "
          f"{rt.version}: delegate + allocate {1e3 * (t1 - t0):.1f} ms, first invoke "
          f"{1e3 * (t2 - t1):.1f} ms, second {1e3 * (t3 - t2):.1f} ms")
    return 0


# --- command line ------------------------------------------------------------------------

def table_markdown(table=COMPATIBILITY) -> str:
    """:data:`COMPATIBILITY` as a Markdown table (docs/edge-tpu.md is generated from it)."""
    def rng(rule):
        if rule.lo == "same":
            return "same minor as the rebuild's TF"
        lo, hi = rule.lo, rule.hi
        return "any" if not lo and not hi else \
            f">= {lo}" if not hi else f"< {hi}" if not lo else f"{lo} <= v < {hi}"
    names = {"tflite": "tflite_runtime / tensorflow", "ai_edge_litert": "ai-edge-litert"}
    rows = ["| libedgetpu | interpreter | version | verdict | evidence | source |",
            "|---|---|---|---|---|---|"]
    for r in table:
        rows.append(f"| {r.library} | {names[r.interpreter]} | {rng(r)} | {r.status} | "
                    f"{r.evidence} | {r.source} |")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    from benchmark.cli import prog_name
    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.backends.pairing"),
                                description="The installed libedgetpu, the TFLite interpreters "
                                "and whether the pair is known to work.")
    p.add_argument("--table", action="store_true", help="print the compatibility table")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--probe", metavar="MODEL", help="also load the delegate on this compiled "
                   "model in a child process and invoke it")
    p.add_argument("--device", help="Edge TPU for --probe: usb, usb:0, pci, pci:0, ...")
    p.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_SEC,
                   help=f"seconds --probe waits (default {PROBE_TIMEOUT_SEC})")
    p.add_argument("--library", help="libedgetpu to read (default: the installed one)")
    p.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    p.add_argument("--runtime", help=argparse.SUPPRESS)
    return p


def _report(args) -> Verdict:
    """Print the detected pair; raise for a missing library or a known-bad-only choice."""
    lib = detect_library(args.library)
    interps = installed_interpreters()
    best = choose(lib, interps)
    if args.json:
        import json
        print(json.dumps({"library": asdict(lib), "interpreters": [asdict(i) for i in interps],
                          "chosen": best.as_dict() if best else None}, indent=2))
    else:
        print(f"libedgetpu: {lib.describe()} [{lib.build}, found by {lib.found_by}]")
        for i in interps:
            status = "" if i.package == "pycoral" else f": {judge(lib, i).status}"
            print(f"interpreter: {i.describe()}{status}")
    if lib.found_by == "none" and not args.library:
        raise BackendUnavailable("libedgetpu not found (neither a libedgetpu1-std/-max package "
                                 f"nor a loadable libedgetpu.so.1): {FIX}")
    if best is None:
        raise BackendUnavailable(f"no TFLite interpreter installed: {FIX}")
    if best.status == BAD:
        raise BackendUnavailable(refusal(best))
    if not args.json:
        print(f"pairing: {best.line()}")
    return best


def main(argv=None) -> int:
    """Entry point of ``python -m benchmark.backends.pairing``."""
    args = _parser().parse_args(argv)
    if args.child:
        return _child(args.child, args.library, args.runtime, args.device)
    if args.table:
        print(table_markdown())
        return 0
    best = _report(args)
    if args.probe:
        if not os.path.isfile(args.probe):
            raise DataError(f"--probe: model not found: {args.probe}")
        library = args.library or ctypes.util.find_library("edgetpu") or "libedgetpu.so.1"
        cmd = probe_command(args.probe, library=library, package=best.interpreter.package,
                            device=args.device)
        print(probe(args.probe, cmd, timeout=args.timeout))
    return 0


if __name__ == "__main__":
    from benchmark.cli import main_wrapper
    sys.exit(main_wrapper("benchmark.backends.pairing", main))
