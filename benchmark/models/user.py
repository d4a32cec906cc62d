"""Models given by path: a ``.keras`` file, a SavedModel, or ``.tflite`` files of any network.

``--model PATH`` (or ``--float-model F`` / ``--int8-model Q`` /
``--edgetpu-model E``) names the model instead of a registered name:

- a ``.keras`` file or a SavedModel directory: converted with the same
  post-training quantization as SignNet (:func:`benchmark.convert.convert_keras`,
  representative set from the training split), cached like ``--weights``;
- ``.tflite`` files: each goes to the slot its tensors say (float weights:
  ``float``; 8-bit weights: ``int8``; an ``edgetpu-custom-op``:
  ``compiled``), a directory holding them is searched; an explicit
  ``--float-model`` / ``--int8-model`` / ``--edgetpu-model`` is checked
  against its slot (:func:`benchmark.modelcheck.check_slot`).

What the harness cannot read from the file is declared
(:func:`resolve_preprocessing`): flags, then a TOML file beside the model
(``<stem>.toml`` or ``model.toml``), then the model's metadata (the
``train_meta.json`` ``benchmark.train`` writes beside a ``.keras``), then the
graph (input size only). Class names come from ``--model-labels``, the TOML's
``labels``, a labels file beside the model (``<stem>.txt``,
``<stem>_labels.txt``, ``labels.txt``), a labels file packed into the
``.tflite`` (TFLite metadata's associated file) or the train metadata.
"""

from __future__ import annotations

import json
import re
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import DataError, UsageError
from benchmark.preprocess import CHANNEL_ORDERS, LAYOUTS, PRESETS, RESIZE_METHODS, Preprocessing

#: Keys of a model TOML (top level, or preprocessing keys under ``[preprocessing]``).
TOML_MODEL_KEYS = frozenset({"outputs", "labels", "preprocessing"})
PREPROCESS_KEYS = frozenset({"preset", "input_size", "scale", "mean", "std", "resize", "crop",
                             "channel_order", "layout"})
OUTPUT_KINDS = ("probabilities", "logits")
SLOT_FLAGS = {"float": "--float-model", "int8": "--int8-model", "compiled": "--edgetpu-model"}


@dataclass(frozen=True)
class UserModel:
    """A model given by path, resolved (files in their slots, declarations read)."""

    name: str
    kind: str                                  # keras | savedmodel | tflite
    source: Path | None                        # the .keras / SavedModel to convert
    files: dict = field(default_factory=dict)  # slot -> .tflite Path
    class_names: tuple[str, ...] | None = None
    names_source: str = "the model"
    preprocessing: Preprocessing | None = None
    outputs: str | None = None                 # declared kind (None: detect from the graph)
    outputs_source: str = ""
    config_file: Path | None = None
    train_meta: dict | None = None

    def record(self) -> dict:
        """``model_source`` of results.json: what was evaluated, with checksums."""
        from benchmark.results import file_sha256
        rec = {"kind": self.kind, "name": self.name, "class_names_from": self.names_source,
               "config_file": str(self.config_file) if self.config_file else None}
        if self.source is not None:
            rec["source"] = str(self.source)
            rec["source_sha256"] = source_sha256(self.source)
        rec["files"] = {s: {"path": str(p), "sha256": file_sha256(p)}
                        for s, p in self.files.items()}
        return rec


def source_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and bytes, sorted)."""
    import hashlib
    from benchmark.results import file_sha256
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def looks_like_path(model: str) -> bool:
    """True when ``--model`` names a file or folder rather than a registered model."""
    return ("/" in model or "\\" in model or model.endswith((".keras", ".tflite", ".h5"))
            or Path(model).exists())


def safe_name(path: Path) -> str:
    """A file-name-safe model name from a path (``my model_int8.tflite`` -> ``my-model``)."""
    stem = path.name
    for suffix in ("_edgetpu.tflite", ".tflite", ".keras"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
    stem = re.sub(r"_(int8|float|quant|uint8)$", "", stem)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"


def _slot_of(path: Path) -> str:
    from benchmark.modelcheck import is_compiled, slot_problem
    from benchmark.tflite_graph import read_graph
    g = read_graph(path)
    if is_compiled(g):
        return "compiled"
    return "int8" if slot_problem(g, "int8") is None else "float"


def _classify_dir(d: Path) -> tuple[str, Path | None, dict]:
    """``(kind, source, files)`` of a model directory."""
    if (d / "saved_model.pb").is_file():
        return "savedmodel", d, {}
    kerases = sorted(d.glob("*.keras"))
    if len(kerases) == 1:
        return "keras", kerases[0], {}
    if len(kerases) > 1:
        raise UsageError(f"--model {d}: {len(kerases)} .keras files in it "
                         f"({', '.join(p.name for p in kerases[:3])}); name one")
    files: dict[str, Path] = {}
    for p in sorted(d.glob("*.tflite")):
        slot = _slot_of(p)
        if slot in files:
            raise UsageError(f"--model {d}: two {slot} models in it ({files[slot].name}, "
                             f"{p.name}); give {SLOT_FLAGS[slot]} FILE")
        files[slot] = p
    if not files:
        raise DataError(f"--model {d}: no .keras, SavedModel (saved_model.pb) or .tflite in it")
    return "tflite", None, files


def _model_files(cfg) -> tuple[str, Path | None, dict, Path]:
    """``(kind, source, files, anchor)`` from ``--model`` and the slot flags."""
    from benchmark.modelcheck import check_slot
    kind, source, files, anchor = "tflite", None, {}, None
    explicit = {s: getattr(cfg, f"{s if s != 'compiled' else 'edgetpu'}_model")
                for s in SLOT_FLAGS}
    if any(explicit.values()) and cfg.model not in ("signnet", None) \
            and not looks_like_path(cfg.model):
        raise UsageError(f"--model {cfg.model} is a registered model: give either it or your "
                         "own files (--float-model / --int8-model / --edgetpu-model)")
    if cfg.model and looks_like_path(cfg.model):
        anchor = Path(cfg.model)
        if not anchor.exists():
            raise DataError(f"--model {anchor}: no such file or folder")
        if anchor.is_dir():
            kind, source, files = _classify_dir(anchor)
        elif anchor.suffix == ".keras":
            kind, source = "keras", anchor
        elif anchor.suffix == ".tflite":
            files = {_slot_of(anchor): anchor}
        else:
            raise UsageError(f"--model {anchor}: expected a .keras file, a SavedModel folder, "
                             "a .tflite file or a folder holding them")
    for slot, value in explicit.items():
        if value is None:
            continue
        p = Path(value)
        if not p.is_file():
            raise DataError(f"{SLOT_FLAGS[slot]} {p}: no such file")
        check_slot(p, slot, flag=SLOT_FLAGS[slot])
        files[slot] = p
        anchor = anchor or p
    if source is not None and files:
        raise UsageError(f"--model {source} is converted here: do not also give .tflite files")
    compiled = files.get("compiled")
    if compiled is not None and "int8" not in files:
        plain = compiled.with_name(compiled.name.replace("_edgetpu.tflite", ".tflite"))
        if plain != compiled and plain.is_file() and _slot_of(plain) == "int8":
            files["int8"] = plain
    return kind, source, files, anchor


def _config_file(anchor: Path) -> Path | None:
    """The model TOML beside ``anchor``: ``<stem>.toml`` or ``model.toml``."""
    d = anchor if anchor.is_dir() else anchor.parent
    candidates = [] if anchor.is_dir() else [anchor.with_suffix(".toml")]
    candidates.append(d / "model.toml")
    return next((c for c in candidates if c.is_file()), None)


def read_model_toml(path: Path) -> dict:
    """A model TOML as ``{"outputs", "labels", "preprocessing": {...}}`` (keys checked)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"model config {path}: not a readable TOML file ({e})") from None
    pre = dict(data.pop("preprocessing", {}) or {})
    for k in list(data):
        if k in PREPROCESS_KEYS:
            pre[k] = data.pop(k)
    unknown = sorted(set(data) - TOML_MODEL_KEYS) + sorted(set(pre) - PREPROCESS_KEYS)
    if unknown:
        raise UsageError(f"model config {path}: unknown key(s) {', '.join(unknown)} (known: "
                         f"{', '.join(sorted(TOML_MODEL_KEYS | PREPROCESS_KEYS))})")
    if "labels" in data:
        lab = Path(data["labels"])
        data["labels"] = str(lab if lab.is_absolute() else path.parent / lab)
    data["preprocessing"] = pre
    return data


def _labels_beside(files: list[Path]) -> tuple[tuple[str, ...] | None, str]:
    """Class names from a labels file beside (or packed into) the model files."""
    from benchmark.classmap import parse_labels, read_labels
    for p in files:
        stem = p.name[:-len(".tflite")] if p.name.endswith(".tflite") else p.stem
        base = safe_name(p)
        inside = [p / "labels.txt", p / "assets" / "labels.txt"] if p.is_dir() else []
        for cand in (*inside, p.parent / f"{stem}.txt", p.parent / f"{stem}_labels.txt",
                     p.parent / f"{base}.txt", p.parent / f"{base}_labels.txt",
                     p.parent / "labels.txt"):
            if cand.is_file():
                return read_labels(cand), str(cand)
    for p in files:
        if p.suffix == ".tflite" and p.is_file() and zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                txt = [n for n in z.namelist() if n.endswith(".txt")]
                if txt:
                    text = z.read(txt[0]).decode("utf-8", errors="replace")
                    return parse_labels(text, source=f"{p}:{txt[0]}"), f"{p} ({txt[0]})"
    return None, ""


def _train_meta_beside(source: Path | None) -> dict | None:
    if source is None or not source.is_file():
        return None
    meta = source.parent / "train_meta.json"
    if not meta.is_file():
        return None
    from benchmark.artifacts import read_train_meta
    return read_train_meta(meta).to_json()


def keras_input_shape(path: Path) -> tuple | None:
    """The input shape in a ``.keras`` file's ``config.json`` (no TensorFlow), or None."""
    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    stack = [cfg]
    while stack:
        o = stack.pop(0)
        if isinstance(o, dict):
            for k in ("batch_shape", "batch_input_shape"):
                if isinstance(o.get(k), list):
                    return tuple(o[k])
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return None


def graph_input_shape(kind: str, source: Path | None, files: dict) -> tuple | None:
    """``(batch, H, W, C)`` of the model's input as the file says (None: unknown)."""
    if files:
        from benchmark.tflite_graph import read_graph
        return tuple(read_graph(next(iter(files.values()))).input_tensors()[0].shape)
    if kind == "keras":
        return keras_input_shape(source)
    return None


def _number(v, what: str) -> float:
    """A float from a number or a fraction string (``"1/255"``)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            num, _, den = v.partition("/")
            return float(num) / float(den) if den else float(num)
        except (ValueError, ZeroDivisionError):
            pass
    raise UsageError(f"{what} must be a number (or a fraction like 1/255), got {v!r}")


def _channels(v, what: str) -> tuple[float, ...]:
    items = v.split(",") if isinstance(v, str) else v if isinstance(v, (list, tuple)) else [v]
    out = tuple(_number(x.strip() if isinstance(x, str) else x, what) for x in items)
    if len(out) not in (1, 3):
        raise UsageError(f"{what} must be one value or three (R,G,B), got {len(out)}")
    return out


def _choice(v, choices: tuple, what: str) -> str:
    if v not in choices:
        raise UsageError(f"{what} must be one of {', '.join(choices)}, got {v!r}")
    return v


def _layer_values(layer: dict, where: str) -> dict:
    """One source's preprocessing values, checked; a preset expanded to scale/mean/std."""
    out: dict = {}
    if layer.get("preset") is not None:
        p = _choice(layer["preset"], tuple(PRESETS), f"{where}: preset")
        out.update(zip(("scale", "mean", "std"), PRESETS[p]), preset=p)
    if layer.get("scale") is not None:
        out["scale"] = _number(layer["scale"], f"{where}: scale")
    for k in ("mean", "std"):
        if layer.get(k) is not None:
            out[k] = _channels(layer[k], f"{where}: {k}")
    if layer.get("input_size") is not None:
        size = layer["input_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UsageError(f"{where}: input_size must be an integer >= 1, got {size!r}")
        out["input_size"] = size
    if layer.get("crop") is not None:
        crop = _number(layer["crop"], f"{where}: crop")
        if not 0 < crop <= 1:
            raise UsageError(f"{where}: crop must be in (0, 1] (the centre fraction kept), "
                             f"got {crop}")
        out["crop"] = crop
    for k, choices in (("resize", RESIZE_METHODS), ("channel_order", CHANNEL_ORDERS),
                       ("layout", LAYOUTS)):
        if layer.get(k) is not None:
            out[k] = _choice(layer[k], choices, f"{where}: {k}")
    return out


def _graph_size(shape: tuple | None, model: str) -> int | None:
    """The square input side of an NHWC RGB input; DataError for anything else."""
    if not shape:
        return None
    if len(shape) != 4:
        raise DataError(f"{model}: input shape {list(shape)} is not one image batch (N, H, W, C)")
    _, h, w, c = shape
    if shape[1] in (1, 3) and c not in (1, 3, None):
        raise DataError(f"{model}: input shape {list(shape)} is channels-first (NCHW); the "
                        "harness feeds channels-last (NHWC) images: export the model NHWC")
    if c != 3:
        raise DataError(f"{model}: input shape {list(shape)} has {c} channels; the datasets "
                        "give RGB images (3 channels)")
    if h != w:
        raise DataError(f"{model}: input shape {list(shape)} is not square; the datasets give "
                        "square images")
    return h


def resolve_preprocessing(layers: list[tuple[dict, str]], shape: tuple | None, *,
                          model: str) -> Preprocessing:
    """The declared preprocessing: later ``(values, where)`` layers override earlier ones."""
    merged: dict = {}
    used = []
    for layer, where in layers:
        vals = _layer_values(layer, where)
        if vals:
            used.append(where)
            merged.update(vals)
    if "scale" not in merged:
        raise UsageError(f"{model}: declare how its inputs are made: --preprocess "
                         f"{'|'.join(PRESETS)} (or --scale/--mean/--std), or preset = ... in a "
                         "model.toml beside it (docs/own-model.md)")
    if merged.get("layout", "nhwc") != "nhwc":
        raise UsageError(f"{model}: layout {merged['layout']} (channels-first) is not supported: "
                         "the TFLite models here take NHWC inputs")
    size = _graph_size(shape, model)
    declared = merged.get("input_size")
    if declared is not None and size is not None and declared != size:
        raise UsageError(f"{model}: input_size {declared} is declared but the model's input is "
                         f"{size} x {size}")
    if declared is None and size is None:
        raise UsageError(f"{model}: its input size is not in the file: declare --input-size N "
                         "(or input_size in model.toml)")
    merged.pop("preset", None)
    return Preprocessing(input_size=declared or size, source=" < ".join(used), **{
        k: v for k, v in merged.items() if k != "input_size"})


def _metadata_preprocessing(meta: dict | None) -> dict:
    """Preprocessing of a ``.keras`` trained here: its registered model's, from train_meta."""
    if not meta:
        return {}
    from benchmark.models.registry import MODELS
    if meta.get("model") not in MODELS.names():
        return {}
    t = MODELS.get(meta["model"]).preprocess
    return {"scale": t.scale, "mean": t.mean, "std": t.std, "input_size": meta["input_size"]}


def _class_names(cfg, toml: dict, files: list[Path], meta: dict | None):
    """``(names or None, where they came from)`` in the order of the sources' precedence."""
    from benchmark.classmap import read_labels
    if cfg.model_labels:
        return read_labels(cfg.model_labels), str(cfg.model_labels)
    if toml.get("labels"):
        return read_labels(toml["labels"]), toml["labels"]
    names, where = _labels_beside(files)
    if names is not None:
        return names, where
    if meta and meta.get("class_names"):
        return tuple(meta["class_names"]), "train_meta.json"
    return None, ""


def resolve_user_model(cfg) -> UserModel:
    """The :class:`UserModel` named by ``cfg`` (``--model PATH`` and the slot flags)."""
    kind, source, files, anchor = _model_files(cfg)
    cfg_file = _config_file(anchor)
    toml = read_model_toml(cfg_file) if cfg_file else {"preprocessing": {}}
    meta = _train_meta_beside(source)
    beside = list(files.values()) + ([source] if source is not None else [])
    names, names_src = _class_names(cfg, toml, beside, meta)
    if names is None and cfg.class_map != "positional":
        raise UsageError(f"{source or anchor} has no class names (no labels file beside it, no "
                         "train metadata): give --model-labels FILE, or --class-map positional "
                         "to score output i as data class i")
    layers = [(_metadata_preprocessing(meta), "train_meta.json"),
              (toml["preprocessing"], str(cfg_file)), (dict(cfg.preprocessing or {}), "flags")]
    pre = resolve_preprocessing(layers, graph_input_shape(kind, source, files),
                                model=str(source or anchor))
    outputs, out_src = cfg.outputs, "--outputs"
    if outputs is None and toml.get("outputs") is not None:
        outputs, out_src = toml["outputs"], str(cfg_file)
    if outputs is not None:
        _choice(outputs, OUTPUT_KINDS, out_src)
    return UserModel(name=safe_name(source or anchor), kind=kind, source=source, files=files,
                     class_names=names, names_source=names_src or "none",
                     preprocessing=pre, outputs=outputs, outputs_source=out_src if outputs else "",
                     config_file=cfg_file, train_meta=meta)


def user_entry(um: UserModel):
    """The :class:`~benchmark.models.base.ModelEntry` the pipeline runs a user model with."""
    from benchmark.models.base import ModelEntry
    where = um.source or next(iter(um.files.values()))
    return ModelEntry(name=um.name, builder=None, default_dataset="imagefolder",
                      input_size=um.preprocessing.input_size,
                      num_classes=len(um.class_names) if um.class_names else 0,
                      description=f"{um.kind} model {where}",
                      preprocess=um.preprocessing.transform(),
                      outputs="logits" if um.outputs == "logits" else "probs", any_ops=True)


def load_source(kind: str, source: Path, input_size: int):
    """The Keras model of a ``.keras`` file or a SavedModel folder (imports Keras)."""
    from benchmark.cli import require_tensorflow
    require_tensorflow("converting a Keras model")
    import keras
    try:
        if kind == "keras":
            from benchmark.kerasfile import load_keras
            return load_keras(source)
        layer = keras.layers.TFSMLayer(str(source), call_endpoint="serving_default")
        inp = keras.Input((input_size, input_size, 3), batch_size=1)
        out = layer(inp)
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"cannot load {source}: {str(e).splitlines()[0]}") from None
    if isinstance(out, dict):
        if len(out) != 1:
            raise DataError(f"{source}: the serving signature has {len(out)} outputs "
                            f"({', '.join(out)}); one is needed")
        out = next(iter(out.values()))
    return keras.Model(inp, out)


def batch1_copy(model):
    """The same network with a fixed batch of 1 (the Edge TPU graph), sharing the weights."""
    import keras
    if model.inputs and model.inputs[0].shape[0] == 1:
        return model
    inp = keras.Input(shape=tuple(model.inputs[0].shape[1:]), batch_size=1)
    return keras.Model(inp, model(inp, training=False))
