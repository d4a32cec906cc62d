"""The in-memory dataset and the two splits of the blog benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.errors import DataError, UsageError

SPLITS = ("full", "verification")


@dataclass
class Dataset:
    """Images with labels and recording groups.

    Attributes
    ----------
    name : str
    images : ndarray of uint8, shape (N, H, W, 3)
        May be a read-only memory map.
    labels : ndarray of int64, shape (N,)
    groups : ndarray of int64, shape (N,)
        Recording session (or track) of each image; a verification split never
        puts one group on both sides.
    class_names : tuple of str
    verification_groups : tuple of int
        The groups evaluated under the ``verification`` split.
    meta : dict
        JSON-serializable description (spec, cache key, source).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    class_names: tuple[str, ...]
    verification_groups: tuple[int, ...]
    meta: dict = field(default_factory=dict)
    #: images the ``full`` split may train on (None: all); GTSRB: the training set only
    train_pool: np.ndarray | None = None
    #: draw the ``full`` split's training part by group (GTSRB tracks), never by image
    full_split_by_group: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, split: str, *, seed: int = 0,
              train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(train_indices, eval_indices)`` of a split.

        ``full``: a seeded, class-stratified ``train_fraction`` of all images
        for training; evaluation on all images (the blog's deployment setup).
        ``verification``: train on every group not in
        ``verification_groups``, evaluate on those groups only.
        """
        return split_indices(self.labels, self.groups, split, seed=seed,
                             train_fraction=train_fraction,
                             verification_groups=self.verification_groups,
                             train_pool=self.train_pool, by_group=self.full_split_by_group)


def split_indices(labels, groups, split: str, *, seed: int, train_fraction: float = 0.9,
                  verification_groups=(), train_pool=None,
                  by_group: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and evaluation parts of ``split`` (sorted, int64).

    Parameters
    ----------
    labels, groups : array-like of int, shape (N,)
    split : {"full", "verification"}
    seed : int
        Seeds the stratified draw of the ``full`` split.
    train_fraction : float, default 0.9
    verification_groups : sequence of int
        Groups held out by the ``verification`` split.
    train_pool : array-like of bool, optional
        Images the ``full`` split may draw its training part from (default all).
    by_group : bool
        ``full``: draw ``train_fraction`` of each class's *groups* (so one
        recording track never lands on both sides of a held-out part).

    Raises
    ------
    UsageError
        An unknown split name.
    DataError
        ``verification`` when every image, or none, is in a held-out group.
    ValueError
        ``train_fraction`` outside (0, 1] (a programming error).
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    n = labels.shape[0]
    if split == "full":
        if not 0 < train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
        pool = np.ones(n, bool) if train_pool is None else np.asarray(train_pool, bool)
        train = []
        for c in np.unique(labels[pool]):
            idx = np.flatnonzero(pool & (labels == c))
            if by_group:
                g = np.unique(groups[idx])
                k = max(1, int(round(train_fraction * g.size)))
                chosen = rng.permutation(g)[:k]
                train.append(idx[np.isin(groups[idx], chosen)])
            else:
                k = int(round(train_fraction * idx.size))
                train.append(rng.permutation(idx)[:k])
        return np.sort(np.concatenate(train)).astype(np.int64), np.arange(n, dtype=np.int64)
    if split == "verification":
        held = np.isin(groups, np.asarray(verification_groups, dtype=groups.dtype))
        if not held.any() or held.all():
            raise DataError("verification split needs held-out groups on both sides (the data "
                            "has no images outside, or none inside, the held-out part)")
        return np.flatnonzero(~held).astype(np.int64), np.flatnonzero(held).astype(np.int64)
    raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
