#!/usr/bin/env python3
"""An independent PyTorch training of a vaeas-dist configuration: vaeas_tools.torch_ref.train (its docstring and --help give the usage)."""
import os
import sys

# The package lives in tools/ beside scripts/: put it on the path so that this file runs from anywhere.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from vaeas_tools.torch_ref.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
