#!/usr/bin/env bash
# Runs vaeas-dist on P data-parallel ranks on this machine:
#
#   scripts/mpirun.sh -n P <vaeas-dist arguments…>
#   e.g. scripts/mpirun.sh -n 2 train --config configs/mnist-vae-quick.yaml --data-dir ../shared/data
#
# - exports OPENBLAS_NUM_THREADS = max(1, nproc / P) unless already set;
# - adds --oversubscribe when P exceeds the cores (nproc), so Open MPI accepts
#   the ranks;
# - adds --bind-to none when oversubscribing (else ranks are pinned to the same
#   core) and when a rank has more than one BLAS thread (Open MPI pins each of
#   up to 2 ranks to one core by default, and OpenBLAS then runs 1 thread only);
# - exports OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 when running as root;
# - turns SIGTERM, SIGINT (Ctrl-C) and SIGHUP to this script into SIGUSR1 to
#   mpirun, which forwards it to every rank: the ranks write a checkpoint and
#   exit 75, and so does this script (mpirun itself, sent SIGTERM or SIGINT,
#   ends the ranks after a second and exits 1, so a requeue keyed on 75 would
#   not happen). mpirun runs in its own session so that a terminal's Ctrl-C
#   reaches it only through this script. A second signal is forwarded too:
#   the ranks then exit at once.
# VAEAS_BIN overrides the binary (default: <repo>/.build/release/vaeas-dist).
# Relative paths in the arguments are taken from the current directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() { printf 'usage: %s -n P <vaeas-dist arguments…>\n' "$0" >&2; exit 2; }

[ "$#" -ge 2 ] || usage
case "$1" in -n|-np) ;; *) usage ;; esac
ranks="$2"
shift 2
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { printf 'mpirun.sh: -n expects a positive integer, got %s\n' "'$ranks'" >&2; exit 2; }

bin="${VAEAS_BIN:-$root/.build/release/vaeas-dist}"
[ -x "$bin" ] || { printf 'mpirun.sh: %s is missing or not executable: run scripts/setup.sh (or set VAEAS_BIN)\n' "$bin" >&2; exit 1; }
command -v mpirun >/dev/null 2>&1 || { printf 'mpirun.sh: mpirun not found on PATH: run scripts/setup.sh (installs openmpi-bin)\n' >&2; exit 1; }

cores="$(nproc)"
if [ -z "${OPENBLAS_NUM_THREADS:-}" ]; then
    threads=$((cores / ranks))
    [ "$threads" -ge 1 ] || threads=1
    export OPENBLAS_NUM_THREADS="$threads"
fi
opts=(-n "$ranks")
if [ "$ranks" -gt "$cores" ]; then
    opts+=(--oversubscribe --bind-to none)
elif [ "$OPENBLAS_NUM_THREADS" != 1 ]; then
    opts+=(--bind-to none)
fi
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

printf 'mpirun.sh: OPENBLAS_NUM_THREADS=%s mpirun %s %s %s\n' \
    "$OPENBLAS_NUM_THREADS" "${opts[*]}" "$bin" "$*" >&2
setsid mpirun "${opts[@]}" "$bin" "$@" &
mpirun_pid=$!
forward() { kill -USR1 "$mpirun_pid" 2>/dev/null || true; }
trap forward TERM INT HUP USR1
set +e
while true; do
    wait "$mpirun_pid"
    rc=$?
    # wait returns early (status > 128) when a trapped signal arrives; go on until mpirun has exited.
    kill -0 "$mpirun_pid" 2>/dev/null || exit "$rc"
done
