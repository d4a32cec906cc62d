"""The dataset command-line flags, the same for every command (train, convert, run).

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_dataset_arguments(p)
>>> values = vars(p.parse_args(["--dataset", "gtsrb", "--roi-crop"]))
>>> dataset_options_from_args(values), values["dataset"], values["on_bad_image"]
({'roi_crop': True}, 'gtsrb', None)
>>> "roi_crop" in values
False
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.datasets.entry import ON_BAD_IMAGE
from benchmark.datasets.registry import DATASETS

#: argparse destinations of the per-loader option flags, and the option each one sets.
OPTION_DESTS = {"roi_crop": "roi_crop", "synth_sessions": "n_sessions",
                "synth_per_class": "per_class_per_session", "class_names": "class_names"}


def add_dataset_arguments(parser: argparse.ArgumentParser, *, defaults_none: bool = True,
                          dataset_default: str | None = None,
                          dataset_help: str | None = None) -> None:
    """Add the dataset flags to ``parser`` (in an argument group "dataset").

    ``--dataset``, ``--data-dir``, ``--download``, ``--download-url``,
    ``--num-classes``, ``--class-names``, ``--roi-crop``, ``--on-bad-image``,
    ``--synth-sessions``, ``--synth-per-class``, ``--cache-dir``. Paths stay
    strings (a config file gives strings too).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    defaults_none : bool
        True: every flag not given is None in the parsed namespace (so a
        config file can supply it; ``--download`` and ``--roi-crop`` are then
        True or None). False: the real defaults (``--download`` and
        ``--roi-crop`` False, ``--on-bad-image`` ``fail``).
    dataset_default : str, optional
        Default of ``--dataset`` when ``defaults_none`` is False.
    dataset_help : str, optional
        Help of ``--dataset`` (default: says ``dataset_default``).
    """
    real = not defaults_none
    g = parser.add_argument_group("dataset")
    g.add_argument("--dataset", choices=DATASETS.names(), metavar="NAME",
                   default=dataset_default if real else None,
                   help=dataset_help or f"dataset, one of: {', '.join(DATASETS.names())}"
                   + (f" (default {dataset_default})" if real and dataset_default else ""))
    g.add_argument("--data-dir", metavar="PATH",
                   help="a real dataset's files: the gtsrb archives' folder, an imagefolder "
                        "root, a csv manifest, the cifar100 archive or the imagenet folders "
                        "(see datasets/userdata.md)")
    g.add_argument("--download", action="store_const", const=True, default=False if real else None,
                   help="gtsrb: first fetch the archives into --data-dir (SHA-256 checked)")
    g.add_argument("--download-url", metavar="URL",
                   help="base URL for --download (default $EDGETPU_BENCH_GTSRB_URL, else the "
                        "official GTSRB archive)")
    g.add_argument("--num-classes", type=int, metavar="N",
                   help="imagefolder/csv: the number of classes (labels 0..N-1)")
    g.add_argument("--class-names", metavar="FILE",
                   help="csv: class names, one per line (integer labels index into it)")
    g.add_argument("--roi-crop", action="store_const", const=True,
                   default=False if real else None, help="gtsrb: crop each image to its ROI")
    g.add_argument("--on-bad-image", choices=ON_BAD_IMAGE, default="fail" if real else None,
                   help="unreadable images stop the command (fail, the default) or are "
                        "skipped and listed (skip)")
    g.add_argument("--synth-sessions", type=int, metavar="N",
                   help="carolo-synth: number of recording sessions (default 12)")
    g.add_argument("--synth-per-class", type=int, metavar="N",
                   help="carolo-synth: images per class per session (default 16)")
    g.add_argument("--cache-dir", metavar="PATH",
                   help="dataset cache (default $EDGETPU_BENCH_CACHE, else datasets/cache)")


def dataset_options_from_args(values: dict) -> dict:
    """Pop the per-loader option flags out of ``values`` (an argparse dict); the options dict.

    ``--roi-crop`` gives ``roi_crop: True``, ``--synth-sessions`` ``n_sessions``,
    ``--synth-per-class`` ``per_class_per_session``, ``--class-names`` the
    absolute path as ``class_names``; unset flags (None, or False for
    ``--roi-crop``) give nothing, so no flag gives ``{}``.
    """
    given = {dest: values.pop(dest, None) for dest in OPTION_DESTS}
    opts: dict = {}
    if given["roi_crop"]:
        opts["roi_crop"] = True
    if given["synth_sessions"] is not None:
        opts["n_sessions"] = given["synth_sessions"]
    if given["synth_per_class"] is not None:
        opts["per_class_per_session"] = given["synth_per_class"]
    if given["class_names"] is not None:
        opts["class_names"] = str(Path(given["class_names"]).resolve())
    return opts
