"""The match stage: the model's outputs and classes against the loaded data (before evaluation).

:func:`match_model` runs after the artifacts are known (converted if needed):

- the output kind: declared (``--outputs``, model.toml) or read from the graph
  (:func:`benchmark.modelcheck.detect_outputs`); ``logits`` declared for a
  graph that ends in SOFTMAX is an error (the softmax would be applied twice);
- the classes: :func:`benchmark.classmap.match_classes` of the model's names
  and the data's, applied to the dataset (labels become model outputs);
- a probe: outputs claimed to be probabilities are checked on the first
  images before the whole split is evaluated.

:func:`check_results` checks every evaluated row again.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from benchmark.errors import DataError

Log = Callable[[str], None] | None
#: Images the probe runs through each CPU variant before the evaluation.
PROBE_IMAGES = 16


def _graph(path):
    from benchmark.tflite_graph import read_graph
    return read_graph(path)


def _cpu_variants(variants):
    return [v for v in variants if v.device == "cpu" and v.path is not None and v.path.is_file()]


def resolve_outputs(plan, variants) -> tuple[str, dict]:
    """``("probs" | "logits", record)`` of the run's model."""
    from benchmark.modelcheck import detect_outputs
    user = plan.user
    found = {v.name: detect_outputs(_graph(v.path)) for v in variants
             if v.path is not None and v.path.is_file()}
    detected = next((k for k in found.values() if k is not None), None)
    if user is None:
        kind = "logits" if plan.entry.outputs == "logits" else "probabilities"
        return plan.entry.outputs, {"kind": kind, "from": f"registered model {plan.entry.name}",
                                    "graph": detected}
    if user.outputs is not None:
        if user.outputs == "logits" and detected == "probabilities":
            raise DataError(f"{user.outputs_source}: logits declared, but the graph of "
                            f"{user.name} ends in SOFTMAX (its outputs are probabilities)")
        kind, source = user.outputs, user.outputs_source
    elif detected is None:
        raise DataError(f"{user.name}: the compiled graph does not show whether it outputs "
                        "probabilities or logits: pass --outputs probabilities|logits")
    else:
        kind = detected
        source = ("graph: ends in SOFTMAX" if kind == "probabilities"
                  else "graph: no final SOFTMAX (the harness applies the softmax)")
    return ("logits" if kind == "logits" else "probs"), {"kind": kind, "from": source,
                                                         "graph": detected}


def _model_classes(plan, meta: dict, variants) -> tuple[tuple | None, int, str]:
    """``(class names or None, number of outputs, where the names came from)``."""
    user = plan.user
    if user is None:
        return tuple(meta["class_names"]), int(meta["num_classes"]), "train_meta.json"
    shapes = [_graph(v.path).output_tensors()[0].shape for v in variants
              if v.path is not None and v.path.is_file()]
    k = int(shapes[0][-1]) if shapes else int(meta["num_classes"])
    names = user.class_names
    return (tuple(names) if names else None), k, user.names_source


def match_model(plan, ds, meta: dict, variants, log: Log, *, split: str):
    """``(plan, dataset, record extras)``: output kind resolved, classes matched by name."""
    from benchmark.classmap import apply_class_map, match_classes
    outputs, out_rec = resolve_outputs(plan, variants)
    entry = dataclasses.replace(plan.entry, outputs=outputs)
    names, k, where = _model_classes(plan, meta, variants)
    cmap = match_classes(names, ds.class_names, num_outputs=k, class_map=plan.config.class_map,
                         source=f"the model ({where})" if plan.user else f"{entry.name} ({where})")
    _, ev = ds.split(split, seed=plan.config.seed)
    labels = np.asarray(ds.labels)[ev]      # the split's images, before any is dropped
    ds = apply_class_map(ds, cmap)
    if log and cmap.describe():
        log(f"[{split}] {cmap.describe()}")
    if log and plan.user is not None:
        log(f"[{split}] outputs: {out_rec['kind']} ({out_rec['from']}); preprocessing "
            f"{plan.preprocessing.transform().describe()} at {plan.preprocessing.input_size}px "
            f"({plan.preprocessing.source})")
    plan = dataclasses.replace(plan, entry=dataclasses.replace(entry, num_classes=k))
    extras = {"class_map": cmap.record(labels), "outputs": out_rec,
              "preprocessing": plan.preprocessing.record()}
    if plan.user is not None:
        extras["model_source"] = plan.user.record()
    if outputs == "probs":
        _probe(plan, ds, variants, split)
    return plan, ds, extras


def _probe(plan, ds, variants, split: str) -> None:
    """Run the first images through each CPU variant: DataError unless probabilities."""
    from benchmark.backends import make_backend
    from benchmark.modelcheck import check_distribution, output_step
    _, ev = ds.split(split, seed=plan.config.seed)
    idx = ev[:PROBE_IMAGES]
    if not idx.size:
        return
    images = np.asarray(ds.images[idx])
    for v in _cpu_variants(variants):
        with make_backend("cpu", v.path, num_threads=1) as b:
            out = b.predict_images(images, plan.entry.preprocess)
        check_distribution(out, step=output_step(_graph(v.path)),
                           what=f"{v.name} model {v.path}")


def check_results(plan, results: dict) -> None:
    """Every evaluated row of a probabilities model must be a distribution."""
    from benchmark.modelcheck import check_distribution, output_step
    if plan.entry.outputs == "logits":
        return
    for name, r in results.items():
        path = r.variant.path
        if path is None or not path.is_file():
            continue
        g = _graph(path)
        check_distribution(r.predictions.probs, step=output_step(g),
                           what=f"{name} model {path}")
