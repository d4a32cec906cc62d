"""``python -m benchmark.study``: see :mod:`benchmark.study.cli`."""

import sys

from benchmark.cli import main_wrapper
from benchmark.study.cli import main

if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.study", main))
