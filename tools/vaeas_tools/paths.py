"""Where things are: the repository root, the vaeas-dist binary and the data directory, decided in one place."""
import os

#: The repository root (tools/vaeas_tools/paths.py -> ../..).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: The data directory when neither --data-dir nor $VAEAS_DATA_DIR names one (relative to ROOT, as the CI lays
#: out a clone with ../shared beside it).
DEFAULT_DATA_DIR = "../shared/data"


def binary():
    """The vaeas-dist binary: $VAEAS_BIN if set (a copy outside .build, so that rebuilds do not touch a long
    experiment), else ROOT/.build/release/vaeas-dist."""
    return os.environ.get("VAEAS_BIN") or os.path.join(ROOT, ".build", "release", "vaeas-dist")


def binary_for_commands():
    """The binary as a printed command names it: `./.build/release/vaeas-dist` (commands run from ROOT) unless
    $VAEAS_BIN or a path outside the repository says otherwise."""
    path = binary()
    if "VAEAS_BIN" in os.environ:
        return path
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else "./" + rel


def data_dir(given=None):
    """The data directory: the given one (--data-dir), else $VAEAS_DATA_DIR, else DEFAULT_DATA_DIR."""
    return given or os.environ.get("VAEAS_DATA_DIR") or DEFAULT_DATA_DIR


def repo_path(path):
    """A path given relative to the repository root, made absolute (absolute paths are kept)."""
    return path if os.path.isabs(path) else os.path.join(ROOT, path)
