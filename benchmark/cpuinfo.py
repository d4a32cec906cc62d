"""The CPU's model name and the SIMD features TFLite's CPU kernels choose their code by.

XNNPACK (and ruy) pick micro-kernels at run time from the CPU's features, and two kernels
may round differently: the same int8 model on the same images gave one image's output one
quantization step apart on an AVX2 machine and the (unrecorded) one the committed results were
made on, with the same package versions (the ECE of the shipped SignNet moved in the 6th
decimal). Runs record these features, and the prediction cache keys on them,
so predictions made on one kind of CPU are never served as another's.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: Features that select different int8/float kernels (x86 flags, Arm "Features" names).
SIMD_FEATURES = frozenset({
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw",
    "avx512dq", "avx512vl", "avx512_vnni", "avx512vnni", "avx512_bf16", "avx512_fp16",
    "amx_int8", "amx_bf16", "asimd", "asimddp", "asimdhp", "fphp", "i8mm", "sve", "sve2", "bf16",
})


def parse_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """``(model name, sorted SIMD features)`` from the text of ``/proc/cpuinfo``.

    >>> parse_cpuinfo("model name\\t: AMD EPYC\\nflags\\t\\t: fpu avx2 fma sse4_2\\n")
    ('AMD EPYC', ['avx2', 'fma', 'sse4_2'])
    """
    model, flags = None, set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model is None:
            model = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split()) & SIMD_FEATURES
    return model, sorted(flags)


def cpu_features(path: Path = Path("/proc/cpuinfo")) -> dict:
    """``{"model": ..., "simd": [...]}`` of this machine (empty values where unknown)."""
    try:
        model, simd = parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        model, simd = None, []
    return {"model": model or platform.processor() or None, "simd": simd}
