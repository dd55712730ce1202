#!/usr/bin/env bash
# Set-up for vaeas-dist on Debian with Swift installed. Idempotent: on a machine
# that already has everything it only runs the (incremental) release build.
#
#   bash scripts/setup.sh
#
# 1. apt packages: Open MPI and zlib (linked by the Swift targets), Debian's
#    OpenBLAS (the fallback BLAS, VAEAS_BLAS=openblas) and dataset-fashion-mnist
#    (the default training data, /usr/share/datasets/fashion-mnist).
#    As root also slurmctld, slurmd, slurm-client and munge (no recommends): the
#    one-node SLURM that Tests/IntegrationTests/SlurmTests.swift starts.
# 1b. The BLAS vaeas-dist opens by default: PyPI's scipy-openblas32 (OpenBLAS
#    0.3.34 as numpy and scipy ship it; docs/PERFORMANCE.md "Which BLAS"), its
#    library directory registered with the dynamic loader (/etc/ld.so.conf.d)
#    when root, else printed for LD_LIBRARY_PATH.
# 2. Python's safetensors and numpy (the tests read our checkpoints with them),
#    and PyTorch 2.13.0 CPU-only in the same python3 (scripts/torch_crosscheck.py,
#    run by TorchCrossCheckTests, recomputes a training step with autograd),
#    matplotlib and tensorboardX (scripts/report_run.py: the run's pictures and
#    TensorBoard event files).
# 2b. pytest and PyYAML for the Python tools (tools/vaeas_tools) and their tests.
# 3. swift build -c release  ->  .build/release/vaeas-dist
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ensure_pip_package LABEL MODULE VERSION_TEST PIP_SPEC [HINT]: unless python3 can import MODULE with a
# version v = MODULE.__version__ for which the Python expression VERSION_TEST holds, pip-installs
# PIP_SPEC into it and checks again; HINT is added to the error when pip fails.
ensure_pip_package() {
    local label=$1 module=$2 test=$3 spec=$4 hint=${5:-}
    local check="import sys, $module as m; v = m.__version__; sys.exit(0 if ($test) else 1)"
    if python3 -c "$check" >/dev/null 2>&1; then
        say "python3 module present: $label $(python3 -c "import $module as m; print(m.__version__)")"
        return
    fi
    say "installing $label: python3 -m pip install --quiet '$spec'"
    python3 -m pip install --quiet "$spec" || die "pip could not install '$spec' into $(command -v python3)${hint:+. $hint}"
    python3 -c "$check" \
        || die "$label: '$spec' is installed but python3 ($(command -v python3)) does not import it at that version"
    say "installed $label $(python3 -c "import $module as m; print(m.__version__)")"
}

# --- 1. system packages -------------------------------------------------------
apt_packages=(libopenmpi-dev openmpi-bin libopenblas0-pthread zlib1g-dev dataset-fashion-mnist iproute2)  # iproute2: `ip netns` for cluster/netns-test.sh
# SwiftPM finds the C libraries through pkg-config.
command -v pkg-config >/dev/null 2>&1 || apt_packages+=(pkg-config)

missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 \
            || die "apt packages missing (${missing[*]}) and this is not root and there is no sudo: install them as root"
        sudo=(sudo)
    fi
    say "installing apt packages: ${missing[*]}"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
    say "apt packages present: ${apt_packages[*]}"
fi

# A one-node SLURM for SlurmTests (cluster/slurm-local.sh starts it there): the daemons, the
# client commands and munge, without recommends (mail, documentation). Root only: slurmd must run as root.
slurm_packages=(slurmctld slurmd slurm-client munge)
if [ "$(id -u)" -eq 0 ]; then
    slurm_missing=()
    for p in "${slurm_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || slurm_missing+=("$p"); done
    if [ "${#slurm_missing[@]}" -gt 0 ]; then
        say "installing apt packages for the one-node SLURM tests: ${slurm_missing[*]}"
        # Optional: without them SlurmTests is skipped (saying why), so a failure here does not stop the set-up.
        { [ "${#missing[@]}" -gt 0 ] || apt-get update; } \
            && env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${slurm_missing[@]}" \
            || say "warning: could not install ${slurm_missing[*]}; SlurmTests will be skipped"
    fi
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (the tests need python3 with safetensors and numpy)"

# --- 1b. the BLAS: scipy-openblas32 ---------------------------------------------
# vaeas-dist does not link a BLAS: it dlopens libscipy_openblas.so (or what
# VAEAS_BLAS names) at start-up, so the dynamic loader must find it.
blas_version=0.3.34.481.3
ensure_pip_package "the BLAS, scipy-openblas32" scipy_openblas32 "v == '$blas_version'" "scipy-openblas32==$blas_version"
blas_dir="$(python3 -c 'import scipy_openblas32 as s; print(s.get_lib_dir())')"
[ -f "$blas_dir/libscipy_openblas.so" ] || die "scipy-openblas32 is installed but $blas_dir/libscipy_openblas.so is missing"
if [ "$(id -u)" -eq 0 ]; then
    conf=/etc/ld.so.conf.d/vaeas-dist-scipy-openblas.conf
    if [ "$(cat "$conf" 2>/dev/null)" != "$blas_dir" ]; then
        printf '%s\n' "$blas_dir" > "$conf"
        say "registered $blas_dir with the dynamic loader ($conf)"
    fi
    ldconfig
    ldconfig -p | grep "libscipy_openblas.so " >/dev/null \
        || die "ldconfig does not list libscipy_openblas.so after adding $conf"
    say "BLAS: libscipy_openblas.so from $blas_dir"
elif ! ldconfig -p 2>/dev/null | grep "libscipy_openblas.so " >/dev/null && [[ ":${LD_LIBRARY_PATH:-}:" != *":$blas_dir:"* ]]; then
    say "NOTE: not root, so the loader is not told where the BLAS is. Add this to your shell's start-up file (or your module file):"
    say "  export LD_LIBRARY_PATH=$blas_dir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    say "  (or VAEAS_BLAS=$blas_dir/libscipy_openblas.so). Until then vaeas-dist uses Debian's OpenBLAS and says so."
fi

# --- 2. Python modules for the tests --------------------------------------------
if python3 -c 'import safetensors, numpy' >/dev/null 2>&1; then
    say "python3 modules present: safetensors numpy"
else
    say "installing python3 modules: python3 -m pip install --quiet safetensors numpy"
    python3 -m pip install --quiet safetensors numpy \
        || die "pip could not install safetensors and numpy into $(command -v python3); install them (or use a venv) and rerun"
    python3 -c 'import safetensors, numpy' || die "safetensors/numpy still not importable by $(command -v python3) after pip install"
fi

# PyTorch, CPU-only: the `+cpu` local version is the wheel without CUDA (the
# plain `torch` wheel pulls in gigabytes of CUDA libraries). pip finds it through
# the configured find-links (or PyTorch's CPU index, with PIP_EXTRA_INDEX_URL).
torch_version=2.13.0
ensure_pip_package "PyTorch (CPU)" torch "v.startswith('$torch_version')" "torch==$torch_version+cpu" \
    "Make the wheel findable (pip's find-links, or PIP_EXTRA_INDEX_URL set to PyTorch's CPU wheel index) and rerun; do not install the plain 'torch' wheel, which brings CUDA"

# matplotlib draws the run's pictures; tensorboardX writes TensorBoard event files (scripts/report_run.py).
if python3 -c 'import matplotlib, tensorboardX' >/dev/null 2>&1; then
    say "python3 modules present: matplotlib tensorboardX"
else
    say "installing python3 modules: python3 -m pip install --quiet matplotlib tensorboardX"
    python3 -m pip install --quiet matplotlib tensorboardX \
        || die "pip could not install matplotlib and tensorboardX into $(command -v python3)"
    python3 -c 'import matplotlib, tensorboardX' || die "matplotlib/tensorboardX still not importable by $(command -v python3) after pip install"
fi

# pytest runs the Python tools' tests (tools/tests, the README's test command); PyYAML reads the study and
# config files there.
ensure_pip_package "pytest" pytest "int(v.split('.')[0]) >= 7" "pytest>=7"
ensure_pip_package "PyYAML" yaml "True" "pyyaml"

# --- 3. build -------------------------------------------------------------------
command -v swift >/dev/null 2>&1 \
    || die "swift not found on PATH: install the Swift 6 toolchain for Linux and put its usr/bin on PATH"
say "swift build -c release"
swift build -c release
say "built $(pwd)/.build/release/vaeas-dist"
.build/release/vaeas-dist --version | sed 's/^/setup: /' 
