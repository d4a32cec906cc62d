"""A run's ``metrics.csv`` rebuilt from a study's cells (the study file's ``[export]`` table).

For each model x dataset x observer x device of the study, the cells of
every split are gathered into one record per split, in the order
``benchmark.run`` evaluates the variants (float, int8, int8-edgetpu,
w8 ... w2), and flattened with :func:`benchmark.rundir.metrics_rows`: the
``metrics.csv`` that ``benchmark.run --split all`` with the same variants
writes. It goes to ``<study>/export/<name>/`` and, for the names in
``files``, beside the study file (``<folder of the study file>/<name>/``)::

    [export]
    out = "gtsrb-run"               # a folder pattern: {model_id} {model} {dataset_id} ...
    files = ["metrics.csv"]
"""

from __future__ import annotations

import re
from pathlib import Path

EXPORT_KEYS = {"out", "files"}


def _order(v: str) -> tuple:
    m = re.fullmatch(r"w(\d)", v)
    return (3, -int(m.group(1))) if m else ({"float": 0, "int8": 1}.get(v, 2), 0)


def merged_record(cells) -> dict:
    """One split's record with every variant, swap and comparison of its cells."""
    from benchmark.rundir import read_run
    records = [read_run(st.dir).splits[st.cell.split].record for st in cells]
    first = records[0]
    rec = {"split": first["split"], "class_names": first["class_names"], "variants": {},
           "swaps": {}, "recall_change": {}}
    for r in records:
        for key in ("variants", "swaps", "recall_change"):
            for v, x in r.get(key, {}).items():
                rec[key].setdefault(v, x)
        if "attribution" in r:
            rec["attribution"] = r["attribution"]
    for key in ("variants", "swaps", "recall_change"):
        items = sorted(rec[key].items(), key=lambda kv: (kv[0] != "reference", _order(kv[0])))
        rec[key] = dict(items)
        if not rec[key]:
            del rec[key]
    return rec


def write_exports(study, states, log=None) -> list[Path]:
    """Write the merged ``metrics.csv`` of every complete group; the folders written."""
    from benchmark.results import atomic_write_bytes, write_csv
    from benchmark.rundir import METRICS, METRICS_HEADER, metrics_rows
    from benchmark.study.paper import complete_groups
    written = []
    for name, splits in complete_groups(study, states, study.export["out"], what="export",
                                        log=log):
        rows = []
        for s in study.splits:
            rows += metrics_rows(merged_record(splits[s]))
        out = study.out / "export" / name
        write_csv(out / METRICS, METRICS_HEADER, rows)
        written.append(out)
        for f in study.export.get("files", []):
            atomic_write_bytes(study.path.parent / name / f, (out / f).read_bytes())
    return written
