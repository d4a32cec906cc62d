"""The paper's Figure 1 / Figure 2 data from a study's cells (the study file's ``[paper]`` table).

``benchmark.paper`` analyses one run holding float, int8 and the ``w<b>``
sweep. A study holds the same predictions as one cell per variant; for each
model x dataset x observer x device of the study this module gathers the
float cell and the quantized cells of every split, and writes the paper's
files with :func:`benchmark.paper.analyse_split` and
:func:`benchmark.paper.write_outputs` into ``<study>/paper/<name>/``, where
``name`` is the ``[paper]`` ``out`` pattern (``{model_id}``, ``{model}``,
``{dataset_id}``, ``{observer}``, ``{device}``). The files named by
``files`` are also copied to ``<folder of the study file>/<name>/`` (how the
committed CSVs under ``results/`` are regenerated)::

    [paper]
    out = "cifar100-{model_id}-{observer}"
    files = ["paper_fig2_sweep.csv", "paper_fig1_reliability.csv"]
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

PAPER_KEYS = {"out", "files", "swap_bins", "reliability_bins"}


def _split_view(cells) -> SimpleNamespace:
    """What :func:`benchmark.paper.analyse_split` reads of a split, gathered from its cells."""
    from benchmark.rundir import read_run
    record, variants = {"variants": {}, "swaps": {}}, {}
    for st in cells:
        run = read_run(st.dir).splits[st.cell.split]
        v = st.cell.result_variant
        record["variants"][v] = run.record["variants"][v]
        if v != "float":
            record["swaps"][v] = run.record["swaps"][v]
        p = run.predictions(v)
        variants[v] = SimpleNamespace(predictions=SimpleNamespace(probs=p["probs"],
                                                                  labels=p["labels"]))
    return SimpleNamespace(record=record, variants=variants)


def groups(study, states, pattern: str):
    """``(name, {split: [cells]})`` per model x dataset x observer x device; a split is
    listed only when all its cells are done (see :func:`complete_groups`)."""
    done = {(s.cell.model, s.cell.dataset.id, s.cell.split, s.cell.observer, s.cell.device,
             s.cell.variant): s for s in states if s.status in ("done", "ran")}
    quantized = [v for v in study.variants if v != "float"]
    for m in study.models:
        for d in study.datasets:
            for o in study.observers:
                for dev in study.devices:
                    splits = {}
                    for s in study.splits:
                        cells = [done.get((m, d.id, s, "minmax", "cpu", "float"))]
                        cells += [done.get((m, d.id, s, o, dev, v)) for v in quantized]
                        if all(cells):
                            splits[s] = cells
                    name = pattern.format(model_id=m.id, model=m.name, dataset_id=d.id,
                                          observer=o, device=dev)
                    yield name, splits


def complete_groups(study, states, pattern: str, *, what: str, log=None):
    """The :func:`groups` whose every split is done; the others are logged as not written."""
    for name, splits in groups(study, states, pattern):
        if len(splits) < len(study.splits):
            if log:
                log(f"{what}: {name}: not every split's cells are done; not written")
            continue
        yield name, splits


def write_paper(study, states, log=None) -> list[Path]:
    """Write the paper's files of every complete group; the folders written."""
    from benchmark.paper import PaperConfig, analyse_split, write_outputs
    from benchmark.results import atomic_write_bytes
    bins = {"n_bins": study.paper.get("reliability_bins", PaperConfig.reliability_bins),
            "swap_bins": study.paper.get("swap_bins", PaperConfig.swap_bins)}
    written = []
    for name, splits in complete_groups(study, states, study.paper["out"], what="paper",
                                        log=log):
        analyses = {s: analyse_split(_split_view(c), **bins) for s, c in splits.items()}
        out = study.out / "paper" / name
        out.mkdir(parents=True, exist_ok=True)
        write_outputs(out, analyses)
        written.append(out)
        for f in study.paper.get("files", []):
            atomic_write_bytes(study.path.parent / name / f, (out / f).read_bytes())
    return written
