#!/usr/bin/env python3
"""Which BLAS to load: every candidate timed on the training step's products: vaeas_tools.perf.blas_table (its docstring and --help give the usage)."""
import os
import sys

# The package lives in tools/ beside scripts/: put it on the path so that this file runs from anywhere.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from vaeas_tools.perf.blas_table import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
