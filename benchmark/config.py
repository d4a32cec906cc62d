"""The run configuration: one dataclass, filled from defaults < config file < CLI."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.variants import BASE_VARIANTS as VARIANTS

DEVICES = ("cpu", "edgetpu", "auto")
OUTPUT_KINDS = ("probabilities", "logits")
SPLIT_CHOICES = ("full", "verification", "all")
#: Sweep settings and their defaults; left out of ``to_dict`` when unset.
SWEEP_FIELDS = {"act_bits": (), "calibration_sizes": (), "calibration_seeds": 1,
                "calibration_from": None}


def observer_names() -> list[str]:
    """Activation observers ``--act-observer`` accepts (from their registry)."""
    from benchmark.quant.observers import OBSERVER_REGISTRY
    return OBSERVER_REGISTRY.names()


@dataclass
class RunConfig:
    """Everything that determines a benchmark run (saved in results.json)."""

    model: str = "signnet"
    dataset: str | None = None
    split: str = "verification"
    device: str = "cpu"
    variants: tuple[str, ...] = VARIANTS
    seed: int = 0
    batch_size: int = 64
    num_threads: int | None = None
    #: CPU evaluation worker processes (None: chosen from the cores and the model)
    workers: int | None = None
    #: reuse float/int8 predictions of identical (model, data, preprocessing, kernels)
    prediction_cache: bool = True
    limit: int | None = None
    edgetpu_device: str | None = None
    latency: int = 0
    latency_warmup: int = 10
    report: bool = True
    weight_bits: tuple[int, ...] = ()
    #: activation-bit sweep: the int8 model with activations on these grids (a<b>)
    act_bits: tuple[int, ...] = ()
    #: calibration sweep: the float model converted with these representative-set sizes,
    #: ``calibration_seeds`` draws each, from ``calibration_from`` (a SPEC) when given
    calibration_sizes: tuple[int, ...] = ()
    calibration_seeds: int = 1
    calibration_from: str | None = None
    weights: str | None = None
    #: .tflite files of a model given by path (see docs/own-model.md)
    float_model: str | None = None
    int8_model: str | None = None
    edgetpu_model: str | None = None
    #: what the model outputs: probabilities or logits (None: from the graph)
    outputs: str | None = None
    #: the model's class names (labels file: one per line, or Coral's "index name")
    model_labels: str | None = None
    #: data classes -> model outputs: auto (by name), positional, or a TOML file
    class_map: str | None = None
    #: declared preprocessing of a model given by path (preset, input_size, scale, mean,
    #: std, resize, crop, channel_order, layout)
    preprocessing: dict = field(default_factory=dict)
    act_observer: str = "minmax"
    #: CPU kernels of the interpreter: xnnpack (default), builtin or reference
    cpu_kernels: str = "xnnpack"
    bins: int = 20
    dataset_options: dict = field(default_factory=dict)
    data_dir: str | None = None
    download: bool = False
    download_url: str | None = None
    num_classes: int | None = None
    on_bad_image: str = "fail"
    model_dir: str | None = None
    cache_dir: str | None = None
    out: str | None = None
    #: keep the finished splits of an interrupted run in ``out`` and run the rest
    resume: bool = False
    #: ``"i/n"``: evaluate only the i-th of n contiguous pieces of the images (studies merge them)
    shard: str | None = None

    def splits(self) -> tuple[str, ...]:
        return ("full", "verification") if self.split == "all" else (self.split,)

    def validate(self) -> "RunConfig":
        if self.split not in SPLIT_CHOICES:
            raise UsageError(f"--split must be one of {', '.join(SPLIT_CHOICES)}, "
                             f"got {self.split!r}")
        if self.device not in DEVICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise UsageError(f"--variants must be a comma list of {', '.join(VARIANTS)}, "
                             f"got {','.join(self.variants) or 'nothing'}")
        for name in ("batch_size", "bins"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
        if any(not 2 <= b <= 8 for b in self.weight_bits) or \
                len(set(self.weight_bits)) != len(self.weight_bits):
            raise UsageError("--weight-bits must be distinct bit widths in 2..8, e.g. 8,6,4")
        if any(not 2 <= b <= 8 for b in self.act_bits) or \
                len(set(self.act_bits)) != len(self.act_bits):
            raise UsageError("--act-bits must be distinct bit widths in 2..8, e.g. 8,6,4")
        self._validate_calibration()
        if self.act_observer not in observer_names():
            raise UsageError(f"--act-observer must be one of {', '.join(observer_names())}, "
                             f"got {self.act_observer!r}")
        if self.cpu_kernels not in ("xnnpack", "builtin", "reference"):
            raise UsageError("--cpu-kernels must be one of xnnpack, builtin, reference, "
                             f"got {self.cpu_kernels!r}")
        if self.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {self.seed}")
        if self.latency < 0 or self.latency_warmup < 0:
            raise UsageError("--latency and --latency-warmup must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise UsageError("--limit must be >= 1")
        if self.num_threads is not None and self.num_threads < 1:
            raise UsageError("--num-threads must be >= 1")
        if self.workers is not None and self.workers < 1:
            raise UsageError("--workers must be >= 1")
        if self.num_classes is not None and self.num_classes < 1:
            raise UsageError("--num-classes must be >= 1")
        if self.outputs is not None and self.outputs not in OUTPUT_KINDS:
            raise UsageError(f"--outputs must be one of {', '.join(OUTPUT_KINDS)}, "
                             f"got {self.outputs!r}")
        if not isinstance(self.preprocessing, dict):
            raise UsageError("preprocessing must be a table of name = value")
        if self.shard is not None:
            shard_numbers(self.shard)
        if self.resume and not self.out:
            raise UsageError("--resume needs --out (the run directory to finish)")
        return self

    def _validate_calibration(self) -> None:
        if any(n < 1 for n in self.calibration_sizes) or \
                len(set(self.calibration_sizes)) != len(self.calibration_sizes):
            raise UsageError("--calibration-sizes must be distinct image counts >= 1, "
                             "e.g. 1,4,16,64,300")
        if self.calibration_seeds < 1:
            raise UsageError(f"--calibration-seeds must be >= 1, got {self.calibration_seeds}")
        if not self.calibration_sizes and (self.calibration_seeds != 1 or
                                           self.calibration_from is not None):
            raise UsageError("--calibration-seeds and --calibration-from need "
                             "--calibration-sizes (e.g. 1,16)")
        from benchmark.quant.calibration import parse_spec
        parse_spec(self.calibration_from)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["variants"] = list(self.variants)
        d["weight_bits"] = list(self.weight_bits)
        for name in SWEEP_FIELDS:   # absent when unset: results and fingerprints as before
            if d[name] == SWEEP_FIELDS[name]:
                del d[name]
            elif isinstance(d[name], tuple):
                d[name] = list(d[name])
        return d


def shard_numbers(shard: str) -> tuple[int, int]:
    """``(i, n)`` of a ``"i/n"`` shard (0 <= i < n), else UsageError.

    >>> shard_numbers("1/4")
    (1, 4)
    """
    try:
        i, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise UsageError(f"shard must be i/n with 0 <= i < n, got {shard!r}")
    return i, n


def load_config_file(path: str | Path) -> dict:
    """Read a ``.toml`` or ``.json`` config file into a dict of RunConfig fields."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        data = tomllib.loads(text.decode()) if p.suffix == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"config file {p} is not valid {p.suffix[1:] or 'json'}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {p} must hold a table/object of settings")
    from benchmark.validate import check_types
    return check_types(RunConfig, data, source=f"config file {p}")


def make_config(cli: dict, config_file: str | None = None, *,
                defaults: dict | None = None) -> RunConfig:
    """Merge defaults < ``defaults`` < config file < CLI values (``None`` means unset)."""
    values: dict = dict(defaults or {})
    if config_file:
        values.update(load_config_file(config_file))
    if cli.get("preprocessing") and isinstance(values.get("preprocessing"), dict):
        cli = dict(cli, preprocessing={**values["preprocessing"], **cli["preprocessing"]})
    values.update({k: v for k, v in cli.items() if v is not None})
    if isinstance(values.get("variants"), str):
        values["variants"] = tuple(v.strip() for v in values["variants"].split(",") if v.strip())
    elif "variants" in values:
        values["variants"] = tuple(values["variants"])
    for name in ("weight_bits", "act_bits", "calibration_sizes"):
        _int_list(values, name)
    return RunConfig(**values).validate()


def _int_list(values: dict, name: str) -> None:
    """``values[name]`` as a tuple of ints ("8,6,4" from the command line)."""
    if isinstance(values.get(name), str):
        try:
            values[name] = tuple(int(b) for b in values[name].split(",") if b.strip())
        except ValueError:
            raise UsageError(f"--{name.replace('_', '-')} must be integers, got "
                             f"{values[name]!r}") from None
    elif name in values:
        values[name] = tuple(values[name])
