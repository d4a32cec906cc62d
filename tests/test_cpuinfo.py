"""CPU features: parsed from /proc/cpuinfo, recorded per run, part of the prediction-cache key."""

from __future__ import annotations

from benchmark import cpuinfo, predcache
from benchmark.cpuinfo import cpu_features, parse_cpuinfo
from benchmark.results import environment

INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz
flags\t\t: fpu vme sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz
flags\t\t: fpu vme sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni
"""
AMD = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma f16c\n"
PI5 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid asimdrdm lrcpc dcpop asimddp\n"


def test_model_and_simd_features_of_three_cpus():
    assert parse_cpuinfo(INTEL) == ("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
                                    ["avx", "avx2", "avx512_vnni", "avx512bw", "avx512f",
                                     "avx512vl", "f16c", "fma", "sse4_1", "sse4_2"])
    assert parse_cpuinfo(AMD) == ("AMD EPYC", ["avx", "avx2", "f16c", "fma", "sse4_1",
                                               "sse4_2"])
    assert parse_cpuinfo(PI5) == (None, ["asimd", "asimddp"])
    assert parse_cpuinfo("") == (None, [])


def test_unreadable_cpuinfo_gives_empty_features(tmp_path):
    assert cpu_features(tmp_path / "missing")["simd"] == []


def test_runs_record_the_cpu():
    cpu = environment()["cpu"]
    assert set(cpu) == {"model", "simd"} and isinstance(cpu["simd"], list)


def test_prediction_cache_key_differs_between_cpus(monkeypatch, tmp_path):
    keys = []
    for text in (INTEL, AMD, AMD):
        (tmp_path / "cpuinfo").write_text(text)
        monkeypatch.setattr(cpuinfo, "cpu_features",
                            lambda path=tmp_path / "cpuinfo": cpu_features(path))
        rid = predcache.runtime_id("cpu")
        assert rid is not None
        keys.append(predcache.description_key({"runtime": rid}))
    assert keys[0] != keys[1] and keys[1] == keys[2]
