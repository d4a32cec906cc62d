"""Dataset registry: ``load_dataset(name, ...)`` by name."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.datasets import cache
from benchmark.datasets.base import Dataset

DATASETS = ("carolo-synth",)


def load_dataset(name: str, *, image_size: int = 80, seed: int = 0,
                 options: dict | None = None, cache_dir: Path | None = None,
                 verbose: bool = True) -> Dataset:
    """Load (rendering or reading from the cache) the dataset ``name``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    image_size : int
        Side of the square RGB images, the model's input size.
    seed : int
        Dataset seed (carolo-synth renders from it).
    options : dict, optional
        Dataset-specific options; for carolo-synth ``n_sessions`` and
        ``per_class_per_session``.
    cache_dir : Path, optional
        Defaults to :func:`benchmark.paths.cache_root`.
    """
    options = dict(options or {})
    if name == "carolo-synth":
        return _load_carolo_synth(image_size=image_size, seed=seed, options=options,
                                  cache_dir=cache_dir, verbose=verbose)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


def _load_carolo_synth(*, image_size, seed, options, cache_dir, verbose) -> Dataset:
    from benchmark.datasets import carolo_synth
    from benchmark.paths import cache_root

    fields = {f.name for f in dataclasses.fields(carolo_synth.SynthSpec)}
    unknown = set(options) - (fields - {"seed", "image_size"})
    if unknown:
        raise ValueError(f"unknown carolo-synth option(s): {', '.join(sorted(unknown))}")
    spec = carolo_synth.SynthSpec(seed=seed, image_size=image_size, **options)
    import PIL

    # Pillow draws the shapes; a different Pillow may rasterize edges differently.
    description = {"dataset": "carolo-synth", "renderer_version": carolo_synth.RENDERER_VERSION,
                   "spec": dataclasses.asdict(spec), "pillow": PIL.__version__}
    key = cache.cache_key(description)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    hit = cache.load(root, key)
    if hit is None:
        t0 = time.perf_counter()
        if verbose:
            print(f"rendering carolo-synth ({spec.n_sessions} sessions x 30 classes x "
                  f"{spec.per_class_per_session} images, {image_size}px) into {root / key}",
                  file=sys.stderr)
        images, labels, sessions = carolo_synth.render_arrays(spec)
        meta = dict(description, cache_key=key, n_images=int(labels.size),
                    render_seconds=round(time.perf_counter() - t0, 2))
        cache.store(root, key, {"images": images, "labels": labels, "groups": sessions}, meta)
        hit = cache.load(root, key)
    arrays, meta = hit
    n_held = max(1, spec.n_sessions // 4)
    held = tuple(range(spec.n_sessions - n_held, spec.n_sessions))
    return Dataset(name="carolo-synth", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64),
                   groups=np.asarray(arrays["groups"], np.int64),
                   class_names=tuple(carolo_synth.CLASS_NAMES),
                   verification_groups=held, meta=meta)
