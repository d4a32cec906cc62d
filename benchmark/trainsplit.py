"""Which dataset rows a model was fitted on: the training part, a validation part, and proof.

``benchmark.train`` draws a seeded validation part out of a split's training
part (:func:`validation_split`) and records, in ``train_meta.json``, how the
rows were drawn and the SHA-256 of the fitted rows (:func:`rows_record`).
``benchmark.run`` redraws them the same way (:func:`training_rows`) to report
accuracy on the images the model has seen and on those it has not; when the
hash does not match (another dataset, changed files) it says so and reports
neither.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: Default fraction of the training part held out for validation.
DEFAULT_VAL_FRACTION = 0.1


@dataclass(frozen=True)
class TrainRows:
    """Dataset rows of one training run (sorted int64 arrays)."""

    fit: np.ndarray         # rows the weights were fitted on
    validation: np.ndarray  # rows held out to pick the best epoch (may be empty)

    def sha256(self) -> str:
        return rows_sha256(self.fit)


def rows_sha256(rows: np.ndarray) -> str:
    """SHA-256 of the rows as little-endian int64 (sorted first)."""
    return hashlib.sha256(np.sort(np.asarray(rows, "<i8")).tobytes()).hexdigest()


def validation_split(labels, groups, rows, *, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(fit rows, validation rows)``: a seeded ``fraction`` of ``rows`` held out by group.

    The unit drawn is a (class, group) pair: all images of one class in one
    recording session or track go to the same side, so near-identical frames
    never sit on both. Units are shuffled within each class (seeded), laid
    out class after class, and every ``1 / fraction``-th is held out from a
    seeded offset (systematic sampling), so each class loses about
    ``fraction`` of its units and the total is ``fraction`` of all units up
    to one. A class with a single unit is never held out (it would vanish
    from training). Datasets without groups give every image its own group,
    which makes this a per-image split.

    Parameters
    ----------
    labels, groups : array-like of int, shape (N,)
        Of the whole dataset.
    rows : array-like of int
        The training part (dataset rows).
    fraction : float
        In [0, 1); 0 holds out nothing.
    seed : int
    """
    rows = np.sort(np.asarray(rows, np.int64))
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if fraction == 0 or rows.size == 0:
        return rows, np.zeros(0, np.int64)
    pairs = np.stack([np.asarray(labels)[rows], np.asarray(groups)[rows]], axis=1)
    units, inverse = np.unique(pairs, axis=0, return_inverse=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A1]))
    order = []
    for c in np.unique(units[:, 0]):
        ids = np.flatnonzero(units[:, 0] == c)
        if ids.size > 1:
            order.append(rng.permutation(ids))
    u = rng.random()
    chosen = []
    start = 0
    for ids in order:
        pos = np.arange(start, start + ids.size)
        take = np.floor(fraction * (pos + 1) + u) > np.floor(fraction * pos + u)
        take[-1] &= not take[:-1].all()      # keep at least one unit of a class in training
        chosen.append(ids[take])
        start += ids.size
    held = np.isin(inverse.reshape(-1), np.concatenate(chosen) if chosen else [])
    return rows[~held], rows[held]


def draw_rows(ds, split: str, *, data_seed: int, limit: int | None, seed: int,
              val_fraction: float) -> TrainRows:
    """The rows ``benchmark.train`` fits on and validates with (see :func:`validation_split`).

    ``limit``: a seeded subset (``seed``) of that many training images first.
    """
    train_idx, _ = ds.split(split, seed=data_seed)
    if limit:
        rng = np.random.default_rng(seed)
        train_idx = np.sort(rng.choice(train_idx, min(limit, train_idx.size), replace=False))
    fit, val = validation_split(ds.labels, ds.groups, train_idx, fraction=val_fraction,
                                seed=data_seed)
    return TrainRows(fit=fit, validation=val)


def rows_record(rows: TrainRows, *, limit: int | None, val_fraction: float) -> dict:
    """The ``training_rows`` entry of train_meta.json: how to redraw the rows, and their hash."""
    return {"n_fit": int(rows.fit.size), "n_validation": int(rows.validation.size),
            "val_fraction": val_fraction, "limit_train": limit,
            "fit_sha256": rows.sha256(), "validation_sha256": rows_sha256(rows.validation)}


def training_rows(ds, meta: dict) -> tuple[TrainRows | None, str]:
    """The rows the model of ``meta`` (a train_meta.json dict) was fitted on, if provable.

    Returns ``(rows, how)``: ``rows`` None when they cannot be established
    (pretrained weights, another dataset, a hash that does not match) and
    ``how`` says why or how they were found.
    """
    if meta.get("source") == "pretrained" or meta.get("seed") is None:
        return None, "pretrained weights: the training images are not known"
    if meta.get("dataset") != ds.name:
        return None, f"trained on {meta.get('dataset')}, evaluated on {ds.name}"
    rec = meta.get("training_rows")
    split, data_seed = meta["split"], meta["data_seed"]
    if rec is None:  # trained before validation parts: the split's training part, if it fits
        fit, _ = ds.split(split, seed=data_seed)
        if fit.size != meta.get("n_train"):
            return None, "train_meta.json has no training_rows and n_train does not match"
        return TrainRows(fit=fit, validation=np.zeros(0, np.int64)), "split training part"
    rows = draw_rows(ds, split, data_seed=data_seed, limit=rec.get("limit_train"),
                     seed=meta["seed"], val_fraction=rec["val_fraction"])
    if rows.sha256() != rec["fit_sha256"]:
        return None, "the training rows redrawn do not match train_meta.json (data changed?)"
    return rows, "redrawn, sha256 matches train_meta.json"
