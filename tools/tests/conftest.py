"""pytest set-up for tools/tests: the package is imported from tools/ (no install step), as the entry points in
scripts/ import it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
