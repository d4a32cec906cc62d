"""``python -m benchmark.diagnose``."""

import sys

from benchmark.cli import main_wrapper
from benchmark.diagnose.cli import main

if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.diagnose", main))
