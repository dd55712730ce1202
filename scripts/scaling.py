#!/usr/bin/env python3
"""Scaling sweep, collectives benchmark, reports and the α–β projection (docs/SCALING.md):
`python3 scripts/scaling.py {run,collectives,report,project,timeline-png} --help`.
The code is tools/vaeas_tools/scaling/ (cli.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from vaeas_tools.scaling.cli import main  # noqa: E402  (after the path it lives on)

if __name__ == "__main__":
    main()
