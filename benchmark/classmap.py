"""Classes by name: the model's class names against the dataset's, never by position alone.

:func:`match_classes` compares the two lists after :func:`normalise_name`
(Unicode NFKC, case folded, spaces, underscores and hyphens removed:
``"Speed_Limit 30"`` equals ``"SPEEDLIMIT30"`` and ``"speed-limit 30"``):

- the same names in the same order: nothing to do (``identity``);
- the same names in another order: the data's labels are remapped to the
  model's output indices (``reordered``);
- every data class is a model class, the model has more (an ImageNet model's
  ``background`` at output 0, classes the data lacks): remapped, and the
  model's other outputs stay in the argmax, so predicting one of them is an
  error (``subset``);
- some data classes are not model classes: an error, unless ``--class-map
  auto`` (match by name, evaluate the images of the shared classes only) or
  ``--class-map FILE`` (a TOML table ``"data class" = "model class"`` or
  ``= output index``; classes it does not list are matched by name) is given;
  the images of unmatched data classes are dropped and counted (``partial``);
- a model without class names needs ``--model-labels FILE`` or, to score
  output ``i`` as data class ``i``, ``--class-map positional``;
- data classes that are numbers (folders ``00000`` .. ``00042``, GTSRB's
  layout) are class indices: data class ``"00012"`` is output 12.

Labels files hold one name per line (line ``i`` is output ``i``), or Coral's
``<index> <name>`` per line (``0 background``, ``1 tench, Tinca tinca``).
The remap is applied to the dataset (:func:`apply_class_map`): labels become
model output indices, so predictions, confusion matrices and class names of
a run are in the model's class order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.datasets.base import Dataset, split_indices
from benchmark.errors import DataError, UsageError

_CORAL_LINE = re.compile(r"^\s*(\d+)[\s:,]+(\S.*?)\s*$")
_SEPARATORS = re.compile(r"[\s_\-]+")
MODES = ("identity", "reordered", "subset", "partial", "positional")


def normalise_name(name: str) -> str:
    """The form class names are compared in.

    >>> normalise_name("  Speed_Limit--30 "), normalise_name("SPEEDLIMIT30")
    ('speedlimit30', 'speedlimit30')
    """
    s = unicodedata.normalize("NFKC", str(name)).casefold()
    return _SEPARATORS.sub("", s)


def parse_labels(text: str, *, source: str = "labels") -> tuple[str, ...]:
    """Class names of a labels file's text: one per line, or Coral's ``index name`` lines.

    Blank lines are skipped. When every line is ``<int> <name>`` with distinct
    indices, index ``i`` names output ``i`` (outputs no line names get ``""``).

    >>> parse_labels("0 background\\n1 tench, Tinca tinca\\n")
    ('background', 'tench, Tinca tinca')
    >>> parse_labels("stop\\nyield\\n")
    ('stop', 'yield')
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{source}: no class names in it")
    coral = [_CORAL_LINE.match(ln) for ln in lines]
    if all(coral):
        idx = [int(m.group(1)) for m in coral]
        if len(set(idx)) == len(idx):
            names = [""] * (max(idx) + 1)
            for i, m in zip(idx, coral):
                names[i] = m.group(2)
            return tuple(names)
    return tuple(lines)


def read_labels(path: str | Path) -> tuple[str, ...]:
    """The class names in a labels file (see :func:`parse_labels`)."""
    from benchmark.results import read_text_file
    return parse_labels(read_text_file(path, "labels file", encoding="utf-8-sig"),
                        source=str(path))


def read_class_map(path: str | Path) -> dict[str, str | int]:
    """A ``--class-map`` TOML file: ``"data class" = "model class"`` or ``= output index``.

    The pairs may sit at the top level or under ``[classes]``.
    """
    import tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--class-map {path}: no such file (or use --class-map auto)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"--class-map {path}: not a readable TOML table ({e})") from None
    table = data.get("classes", data)
    bad = [k for k, v in table.items() if isinstance(v, bool) or not isinstance(v, (str, int))]
    if bad or not table:
        raise UsageError(f"--class-map {path}: each entry must be \"data class\" = \"model "
                         f"class\" or = output index (bad: {bad[0] if bad else 'empty'})")
    return dict(table)


@dataclass(frozen=True)
class ClassMap:
    """How data labels become model outputs: ``data_to_model[label]`` (-1: not evaluated)."""

    mode: str
    model_names: tuple[str, ...]
    data_names: tuple[str, ...]
    data_to_model: np.ndarray = field(repr=False)
    how: str = "by name"

    @property
    def changes_labels(self) -> bool:
        return not np.array_equal(self.data_to_model, np.arange(len(self.data_names))) or \
            len(self.model_names) != len(self.data_names)

    def dropped(self) -> list[str]:
        return [n for n, m in zip(self.data_names, self.data_to_model) if m < 0]

    def describe(self) -> str:
        """One line for the run's log (empty for ``identity``)."""
        km, kd = len(self.model_names), len(self.data_names)
        shared = int((self.data_to_model >= 0).sum())
        if self.mode == "identity":
            return ""
        if self.mode == "positional":
            return "classes by position (--class-map positional): output i is data class i"
        if self.mode == "reordered":
            return (f"the data's {kd} classes are the model's in another order: labels "
                    f"remapped {self.how}")
        if self.mode == "subset":
            return (f"all {kd} data classes are among the model's {km} outputs ({self.how}); "
                    f"the other {km - kd} outputs stay in the argmax")
        drop = self.dropped()
        return (f"--class-map: {shared} of {kd} data classes matched {self.how} to the model's "
                f"{km}; images of {len(drop)} classes are not evaluated "
                f"({', '.join(repr(d) for d in drop[:3])}{', ...' if len(drop) > 3 else ''})")

    def record(self, labels: np.ndarray | None = None) -> dict:
        """The ``class_map`` record of results.json.

        ``labels``: data labels of the evaluated images, for the counts of the
        images not evaluated (per class).
        """
        rec = {"mode": self.mode, "how": self.how, "model_classes": len(self.model_names),
               "data_classes": len(self.data_names),
               "evaluated_classes": int((self.data_to_model >= 0).sum()),
               "data_to_model": self.data_to_model.tolist(),
               "normalisation": "NFKC, casefold, spaces/underscores/hyphens removed"}
        if labels is not None:
            counts = np.bincount(np.asarray(labels, np.int64), minlength=len(self.data_names))
            rec["dropped"] = {n: int(counts[i]) for i, n in enumerate(self.data_names)
                              if self.data_to_model[i] < 0}
            rec["dropped_images"] = int(sum(rec["dropped"].values()))
        return rec


def _keys(names: tuple[str, ...]) -> list[tuple[str, int] | None]:
    """``(normalised name, occurrence)`` of each name (None for an unnamed output).

    Names that repeat after normalising (ImageNet has two ``crane`` and a
    ``Cardigan`` corgi beside the ``cardigan`` sweater) are told apart by their
    order of occurrence: the k-th ``crane`` of the data is the k-th of the model.
    """
    seen: dict[str, int] = {}
    out = []
    for n in names:
        key = normalise_name(n)
        if not key:
            out.append(None)
            continue
        out.append((key, seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return out


def _repeated(names: tuple[str, ...]) -> set[str]:
    keys = [k[0] for k in _keys(names) if k is not None]
    return {k for k in keys if keys.count(k) > 1}


def _numbered(data_names, model_names, num_outputs: int) -> np.ndarray | None:
    """Output index of each data class when the data's classes are numbers, not names.

    Folders named ``00000`` .. ``00042`` (GTSRB's layout) are class indices: data
    class ``"00012"`` is output 12. Only when every data name is a non-negative
    integer below ``num_outputs`` and the model's names are not numbers
    themselves (then they are compared by name, ``"12"`` = ``"12"``).
    """
    def as_int(n):
        n = str(n).strip()
        return int(n) if n.isdigit() else None

    values = [as_int(n) for n in data_names]
    if not values or any(v is None or v >= num_outputs for v in values):
        return None
    if all(as_int(n) is not None for n in model_names if str(n).strip()):
        return None
    return np.array(values, np.int64)


_WNID_SUFFIX = re.compile(r"\s*\(n\d{8}\)$")


def _match_first_synonyms(model_names, data_names, d2m: np.ndarray) -> str:
    """Match still-unmatched data classes to model names ``"name, synonym, ..."`` by ``name``.

    TF's and Coral's ImageNet label files list synonyms (``tench, Tinca tinca``);
    a dataset names the class by the first (``tench``), and tells repeated names
    apart by their WordNet id (``crane (n02012849)``), which is dropped here:
    repeated names are matched in order of occurrence, as :func:`_keys` does.
    Fills ``d2m`` in place; returns what to add to the "how" note ('' if unused).
    """
    if (d2m >= 0).all() or not any("," in n for n in model_names):
        return ""
    first = tuple(n.split(",")[0] for n in model_names)
    alias = {k: i for i, k in enumerate(_keys(first)) if k is not None}
    taken = set(d2m[d2m >= 0].tolist())
    plain = tuple(_WNID_SUFFIX.sub("", n) for n in data_names)
    matched = 0
    for j, k in enumerate(_keys(plain)):
        if d2m[j] < 0 and k is not None and alias.get(k, -1) >= 0 and alias[k] not in taken:
            d2m[j] = alias[k]
            taken.add(alias[k])
            matched += 1
    return (f"; {matched} by the first of the model's synonyms ('tench, Tinca tinca' = "
            "'tench')" if matched else "")


def _first_difference(model: tuple[str, ...], data: tuple[str, ...]) -> str:
    for i, (m, d) in enumerate(zip(model, data)):
        if normalise_name(m) != normalise_name(d):
            return f"first difference at index {i}: model {m!r}, data {d!r}"
    return f"the model has {len(model)} classes, the data {len(data)}"


def _lookup(names: tuple[str, ...], name: str, path: str, who: str) -> int:
    """Index of ``name`` among ``names`` (normalised); UsageError if absent or repeated."""
    key = normalise_name(name)
    hits = [i for i, n in enumerate(names) if normalise_name(n) == key]
    if not hits:
        raise UsageError(f"--class-map {path}: {name!r} is not a class of the {who}")
    if len(hits) > 1:
        raise UsageError(f"--class-map {path}: {name!r} names {len(hits)} classes of the {who} "
                         f"(indices {hits[:3]}); use the model's output index")
    return hits[0]


def _from_file(path: str, model_names, data_names, d2m: np.ndarray) -> tuple[np.ndarray, str]:
    """``d2m`` (matched by name) with the entries of the map file applied."""
    table = read_class_map(path)
    d2m = d2m.copy()
    for data_name, target in table.items():
        i = _lookup(data_names, data_name, path, "data")
        if isinstance(target, int):
            if not 0 <= target < len(model_names):
                raise UsageError(f"--class-map {path}: {data_name!r} = {target} is not an output "
                                 f"index of the model (0..{len(model_names) - 1})")
            d2m[i] = target
        else:
            d2m[i] = _lookup(model_names, target, path, "model")
    return d2m, f"by {Path(path).name} and by name"


def match_classes(model_names: tuple[str, ...] | None, data_names: tuple[str, ...], *,
                  num_outputs: int, class_map: str | None = None,
                  source: str = "the model") -> ClassMap:
    """The :class:`ClassMap` from the data's classes to the model's outputs (see module doc).

    ``source`` names where the model's names came from (for messages).
    """
    data_names = tuple(data_names)
    if class_map == "positional" or model_names is None:
        if class_map != "positional":
            raise UsageError(f"{source} has no class names (no labels file beside it, no train "
                             "metadata): give --model-labels FILE, or --class-map positional to "
                             "score output i as data class i")
        if num_outputs != len(data_names):
            raise DataError(f"--class-map positional: the model has {num_outputs} outputs but "
                            f"the data {len(data_names)} classes")
        names = tuple(model_names) if model_names else data_names
        return ClassMap("positional", names, data_names, np.arange(len(data_names)), "position")
    model_names = tuple(model_names)
    if len(model_names) != num_outputs:
        raise DataError(f"{source} names {len(model_names)} classes but the model has "
                        f"{num_outputs} outputs")
    numbered = _numbered(data_names, model_names, num_outputs)
    if numbered is not None:
        d2m, how = numbered, "by index (the data's classes are numbered 0..K-1)"
    else:
        model_idx = {k: i for i, k in enumerate(_keys(model_names)) if k is not None}
        d2m = np.array([model_idx.get(k, -1) if k is not None else -1
                        for k in _keys(data_names)], np.int64)
        repeated = sorted(_repeated(model_names) | _repeated(data_names))
        how = "by name" + (f" (repeated names {', '.join(repeated[:3])}"
                           f"{', ...' if len(repeated) > 3 else ''} matched in order)"
                           if repeated else "")
        how += _match_first_synonyms(model_names, data_names, d2m)
    if class_map not in (None, "auto"):
        d2m, how = _from_file(class_map, model_names, data_names, d2m)
    if (d2m >= 0).all() and len(set(d2m.tolist())) == d2m.size:
        if np.array_equal(d2m, np.arange(len(data_names))) and num_outputs == len(data_names):
            return ClassMap("identity", model_names, data_names, d2m, how)
        mode = "reordered" if num_outputs == len(data_names) else "subset"
        return ClassMap(mode, model_names, data_names, d2m, how)
    missing = [n for n, m in zip(data_names, d2m) if m < 0]
    if class_map is None:
        shown = ", ".join(repr(n) for n in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(f"class names of {source} and the data do not match "
                        f"({_first_difference(model_names, data_names)}); {len(missing)} of "
                        f"{len(data_names)} data classes are not model classes ({shown}): "
                        f"--class-map auto evaluates the {len(data_names) - len(missing)} shared "
                        "classes only, or give --class-map FILE (docs/own-model.md)")
    if not (d2m >= 0).any():
        raise DataError(f"--class-map {class_map}: no data class matches a class of {source} "
                        f"({_first_difference(model_names, data_names)})")
    taken = d2m[d2m >= 0]
    if len(set(taken.tolist())) != taken.size:
        raise UsageError(f"--class-map {class_map}: two data classes map to one model output")
    return ClassMap("partial", model_names, data_names, d2m, how)


def apply_class_map(ds, cmap: ClassMap):
    """``ds`` with labels as model output indices and the model's class names.

    The splits are drawn on the original labels (so they are the dataset's
    own), then the images of unmatched classes leave the evaluated part.
    Returns ``ds`` itself for ``identity``.
    """
    if not cmap.changes_labels:
        return ds
    return MappedDataset.of(ds, cmap)


@dataclass
class MappedDataset(Dataset):
    """A dataset whose labels are model output indices (-1: a class not evaluated)."""

    original_labels: np.ndarray | None = None

    @classmethod
    def of(cls, ds: Dataset, cmap: ClassMap) -> "MappedDataset":
        orig = np.asarray(ds.labels, np.int64)
        values = {f.name: getattr(ds, f.name) for f in dataclasses.fields(Dataset)}
        key = ds.meta.get("cache_key")
        meta = dict(ds.meta, class_map=cmap.mode)
        if key is not None:  # predictions under the remapped labels are cached apart
            meta["cache_key"] = f"{key}+classmap-{_map_key(cmap)}"
        values.update(labels=cmap.data_to_model[orig], class_names=cmap.model_names, meta=meta)
        return cls(**values, original_labels=orig)

    def split(self, split: str, *, seed: int = 0,
              train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's own split (drawn on the original labels), unmatched classes dropped."""
        train, ev = split_indices(self.original_labels, self.groups, split, seed=seed,
                                  train_fraction=train_fraction,
                                  verification_groups=self.verification_groups,
                                  train_pool=self.train_pool, by_group=self.full_split_by_group)
        return train, ev[self.labels[ev] >= 0]


def _map_key(cmap: ClassMap) -> str:
    blob = repr((cmap.model_names, cmap.data_to_model.tolist())).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
