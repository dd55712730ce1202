#!/usr/bin/env bash
# A Python venv with PyTorch (CPU-only) for scripts/compare_torch.py and
# scripts/torch_train.py (which reads YAML configs: pyyaml), kept out of
# the system python3:
#
#   bash scripts/torch-venv.sh            # creates or updates <repo>/.venv-torch
#   .venv-torch/bin/python scripts/compare_torch.py --quick
#
# Pins torch==2.13.0+cpu: the `+cpu` local version is the wheel without CUDA
# (the plain `torch` wheel pulls in gigabytes of CUDA libraries). pip finds it
# as scripts/setup.sh does: through pip's configured find-links (this
# machine's /opt/wheels), or PyTorch's CPU index given as PIP_EXTRA_INDEX_URL
# (https://download.pytorch.org/whl/cpu). VENV overrides the directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv-torch}"
torch_version=2.13.0

say() { printf 'torch-venv: %s\n' "$*"; }
die() { printf 'torch-venv: error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
py="$venv/bin/python"
if "$py" -c "import sys, torch, numpy, safetensors, yaml; sys.exit(0 if torch.__version__.startswith('$torch_version') else 1)" >/dev/null 2>&1; then
    say "present: torch $("$py" -c 'import torch; print(torch.__version__)') in $venv"
    exit 0
fi
say "installing into $venv: torch==$torch_version+cpu numpy safetensors pyyaml"
"$py" -m pip install --quiet "torch==$torch_version+cpu" numpy safetensors pyyaml \
    || die "pip could not install 'torch==$torch_version+cpu' into $venv. Make the wheel findable (pip's find-links, \
or PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) and rerun; do not install the plain 'torch' wheel, which brings CUDA"
"$py" -c "import sys, torch; sys.exit(0 if torch.__version__.startswith('$torch_version') else 1)" \
    || die "torch $torch_version is not importable from $venv after pip install"
say "installed torch $("$py" -c 'import torch; print(torch.__version__)') into $venv"
