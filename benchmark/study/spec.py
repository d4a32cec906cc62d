"""The study file: a matrix of models x datasets x splits x observers x devices x variants.

A study file is TOML::

    name = "signnet-quant"          # the study directory is runs/study-<name> unless `out`
    splits = ["full", "verification"]
    variants = ["float", "int8", "w6", "w4"]   # float, int8, w8 ... w2
    observers = ["minmax"]          # activation observers (minmax, percentile, mse)
    devices = ["cpu"]               # cpu, edgetpu
    limit = 200                     # evenly spaced images per split (optional)
    shards = 1                      # evaluate each cell in this many pieces (merged exactly)

    [[models]]
    name = "signnet"                # a registered model ...
    # weights = "path/to/weights.npz"   # ... with pretrained weights, or
    # model_dir = "models"              # another models root
    # [[models]]
    # path = "my_model.keras"       # or a model given by path (docs/own-model.md)

    [[datasets]]                    # optional: by default each model's own dataset
    name = "carolo-synth"
    options = {}                    # the loader's options
    # data_dir = "..."

    [metrics]
    bins = 20                       # histogram bins
    seed = 0

    [run]                           # any other benchmark.run setting, for every cell
    batch_size = 64

:func:`load_study` reads and validates it (one-line :class:`UsageError` naming
the file and the key); :meth:`Study.cells` expands the matrix. A float cell
does not depend on the observer or device, so it appears once per model,
dataset and split. Relative paths in the file are relative to the file.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import UsageError

TOP_KEYS = {"name", "out", "splits", "variants", "observers", "devices", "limit", "shards",
            "models", "datasets", "metrics", "run", "description", "paper", "export"}
MODEL_KEYS = {"name", "path", "weights", "model_dir", "label"}
DATASET_KEYS = {"name", "options", "data_dir", "label"}
METRIC_KEYS = {"bins", "seed"}
STUDY_DEVICES = ("cpu", "edgetpu")
#: benchmark.run settings a study sets per cell itself (not allowed under [run]).
CELL_SETTINGS = {"model", "weights", "model_dir", "dataset", "dataset_options", "data_dir",
                 "split", "device", "variants", "weight_bits", "act_observer", "limit", "seed",
                 "bins", "out", "resume", "report", "shard"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weights: str | None = None
    model_dir: str | None = None
    label: str | None = None

    @property
    def id(self) -> str:
        return self.label or (self.name if not self.weights else
                              f"{self.name}:{Path(self.weights).stem}")


@dataclass(frozen=True)
class DatasetSpec:
    name: str | None = None          # None: the model's own dataset
    options: dict = field(default_factory=dict, hash=False)
    data_dir: str | None = None
    label: str | None = None

    @property
    def id(self) -> str:
        if self.label:
            return self.label
        base = self.name or "(model's)"
        return base + (json.dumps(self.options, sort_keys=True) if self.options else "")


@dataclass(frozen=True)
class Cell:
    """One point of the matrix: one variant of one model on one dataset split and device."""

    model: ModelSpec
    dataset: DatasetSpec
    split: str
    observer: str
    device: str
    variant: str

    @property
    def result_variant(self) -> str:
        """The variant name in the cell's run directory."""
        if self.variant == "int8" and self.device == "edgetpu":
            return "int8-edgetpu"
        return self.variant

    def params(self) -> dict:
        """The cell's parameters as table columns."""
        return {"model": self.model.name, "model_id": self.model.id,
                "weights": self.model.weights or "", "dataset": self.dataset.name or "",
                "dataset_id": self.dataset.id,
                "dataset_options": json.dumps(self.dataset.options, sort_keys=True),
                "split": self.split, "observer": self.observer, "device": self.device,
                "variant": self.variant}

    def label(self) -> str:
        return (f"{self.model.id} {self.dataset.id} {self.split} {self.observer} "
                f"{self.device} {self.variant}")


@dataclass(frozen=True)
class Study:
    path: Path
    name: str
    out: Path
    models: tuple[ModelSpec, ...]
    datasets: tuple[DatasetSpec, ...]
    splits: tuple[str, ...]
    variants: tuple[str, ...]
    observers: tuple[str, ...]
    devices: tuple[str, ...]
    limit: int | None = None
    shards: int = 1
    bins: int = 20
    seed: int = 0
    run: dict = field(default_factory=dict)
    #: the [paper] table (benchmark.study.paper): empty when the file has none
    paper: dict = field(default_factory=dict)
    #: the [export] table (benchmark.study.export): empty when the file has none
    export: dict = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        """The expanded matrix, in file order, without duplicates."""
        out, seen = [], set()
        for m in self.models:
            for d in self.datasets:
                for s in self.splits:
                    for o in self.observers:
                        for dev in self.devices:
                            for v in self.variants:
                                c = Cell(m, d, s, "minmax" if v == "float" else o,
                                         "cpu" if v == "float" else dev, v)
                                k = (m, d.id, s, c.observer, c.device, v)
                                if k not in seen:
                                    seen.add(k)
                                    out.append(c)
        return out

    def run_settings(self, cell: Cell) -> dict:
        """The benchmark.run settings of one cell (RunConfig fields, ``out`` not set)."""
        bits = _variant_bits(cell.variant)
        cfg = dict(self.run, model=cell.model.name, weights=cell.model.weights,
                   model_dir=cell.model.model_dir, dataset=cell.dataset.name,
                   dataset_options=dict(cell.dataset.options), data_dir=cell.dataset.data_dir,
                   split=cell.split, device=cell.device, act_observer=cell.observer,
                   variants=("float",) if cell.variant == "float" else ("float", "int8"),
                   weight_bits=(bits,) if cell.variant.startswith("w") else (),
                   limit=self.limit, seed=self.seed, bins=self.bins, report=False)
        return {k: v for k, v in cfg.items() if v is not None}


def _variant_bits(v: str) -> int | None:
    m = re.fullmatch(r"w([2-8])", v)
    return int(m.group(1)) if m else None


def _fail(path: Path, msg: str):
    raise UsageError(f"study file {path}: {msg}")


def _list(path: Path, data: dict, key: str, default, allowed=None) -> tuple:
    val = data.get(key, default)
    if isinstance(val, str):
        val = [val]
    if not isinstance(val, list) or not val or not all(isinstance(x, str) for x in val):
        _fail(path, f"{key} must be a non-empty list of strings")
    if allowed is not None:
        bad = [x for x in val if x not in allowed]
        if bad:
            _fail(path, f"{key}: unknown {', '.join(bad)} (allowed: {', '.join(allowed)})")
    return tuple(dict.fromkeys(val))


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q))


def _entries(path: Path, data: dict, key: str, allowed: set, required: bool) -> list[dict]:
    val = data.get(key)
    if val is None:
        if required:
            _fail(path, f"needs at least one [[{key}]] entry")
        return [{}]
    if not isinstance(val, list) or not val or not all(isinstance(x, dict) for x in val):
        _fail(path, f"{key} must be an array of tables ([[{key}]])")
    for e in val:
        unknown = sorted(set(e) - allowed)
        if unknown:
            _fail(path, f"[[{key}]]: unknown key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(allowed))})")
    return val


def _models(path: Path, data: dict) -> tuple[ModelSpec, ...]:
    from benchmark.models.registry import list_models
    out = []
    for e in _entries(path, data, "models", MODEL_KEYS, True):
        if isinstance(e.get("path"), str) and "name" not in e:
            # a model given by path (docs/own-model.md): a .keras, a .tflite, a folder
            out.append(ModelSpec(_resolve(path.parent, e["path"]), None, None,
                                 e.get("label") or Path(e["path"]).stem))
            continue
        if not isinstance(e.get("name"), str) or "path" in e:
            _fail(path, "every [[models]] entry needs a name (registered) or a path")
        if e["name"] not in list_models():
            _fail(path, f"unknown model {e['name']!r} (available: {', '.join(list_models())}; "
                        "or path = \"...\" for a model file)")
        out.append(ModelSpec(e["name"], _resolve(path.parent, e.get("weights")),
                             _resolve(path.parent, e.get("model_dir")), e.get("label")))
    return tuple(out)


def _datasets(path: Path, data: dict) -> tuple[DatasetSpec, ...]:
    out = []
    for e in _entries(path, data, "datasets", DATASET_KEYS, False):
        opts = e.get("options", {})
        if not isinstance(opts, dict):
            _fail(path, "[[datasets]] options must be a table")
        data_dir = _resolve(path.parent, e.get("data_dir"))
        out.append(DatasetSpec(e.get("name"), dict(opts), data_dir, e.get("label")))
    return tuple(out)


def _int(path: Path, data: dict, key: str, default, low: int):
    v = data.get(key, default)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
        _fail(path, f"{key} must be an integer >= {low}")
    return v


def _tables(path: Path, data: dict) -> tuple[dict, dict]:
    from benchmark.config import RunConfig
    metrics, run = data.get("metrics", {}), data.get("run", {})
    if not isinstance(metrics, dict) or not isinstance(run, dict):
        _fail(path, "[metrics] and [run] must be tables")
    unknown = sorted(set(metrics) - METRIC_KEYS)
    if unknown:
        _fail(path, f"[metrics]: unknown key(s) {', '.join(unknown)}")
    fields = {f.name for f in dataclasses.fields(RunConfig)} - CELL_SETTINGS
    unknown = sorted(set(run) - fields)
    if unknown:
        _fail(path, f"[run]: unknown or per-cell setting(s) {', '.join(unknown)}")
    return metrics, run


def _output_table(path: Path, data: dict, key: str, allowed: set) -> dict:
    """The [paper] or [export] table: an ``out`` folder pattern and the ``files`` to copy."""
    table = data.get(key, {})
    if not isinstance(table, dict):
        _fail(path, f"[{key}] must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        _fail(path, f"[{key}]: unknown key(s) {', '.join(unknown)}")
    if table and not isinstance(table.get("out"), str):
        _fail(path, f"[{key}] needs out = \"<folder pattern>\" "
                    "(e.g. \"{model_id}-{observer}\")")
    files = table.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f
                                              for f in files):
        _fail(path, f"[{key}] files must be a list of file names")
    return table


def load_study(path: str | Path, *, out: str | Path | None = None) -> Study:
    """Read and validate a study file (UsageError naming the file and key)."""
    from benchmark.config import observer_names
    from benchmark.study.export import EXPORT_KEYS
    from benchmark.study.paper import PAPER_KEYS
    from benchmark.paths import PROJECT_ROOT
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read study file {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        _fail(path, f"not valid TOML: {e}")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        _fail(path, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(TOP_KEYS))})")
    variants = _list(path, data, "variants", ["float", "int8"],
                     ["float", "int8"] + [f"w{b}" for b in range(8, 1, -1)])
    metrics, run = _tables(path, data)
    name = str(data.get("name", path.stem))
    where = out or _resolve(path.parent, data.get("out")) or PROJECT_ROOT / "runs" / \
        f"study-{name}"
    return Study(path=path, name=name, out=Path(where), models=_models(path, data),
                 datasets=_datasets(path, data),
                 splits=_list(path, data, "splits", ["verification"], ["full", "verification"]),
                 variants=variants,
                 observers=_list(path, data, "observers", ["minmax"], observer_names()),
                 devices=_list(path, data, "devices", ["cpu"], STUDY_DEVICES),
                 limit=_int(path, data, "limit", None, 1), shards=_int(path, data, "shards", 1, 1),
                 bins=_int(path, metrics, "bins", 20, 1), seed=_int(path, metrics, "seed", 0, 0),
                 run=run, paper=_output_table(path, data, "paper", PAPER_KEYS),
                 export=_output_table(path, data, "export", EXPORT_KEYS))
