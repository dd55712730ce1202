#!/usr/bin/env python3
"""One training step of vaeas-dist against PyTorch autograd (run by TorchCrossCheckTests): vaeas_tools.torch_ref.crosscheck (its docstring and --help give the usage)."""
import os
import sys

# The package lives in tools/ beside scripts/: put it on the path so that this file runs from anywhere.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from vaeas_tools.torch_ref.crosscheck import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
