#!/usr/bin/env python3
"""The study runner: the paper's specs (experiments/NAME.yaml) and the study files (experiments/*/study.yaml);
`python3 scripts/study.py --help`. The code is tools/vaeas_tools/study/."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from vaeas_tools.study.cli import main  # noqa: E402

sys.exit(main())
