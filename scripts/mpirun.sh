#!/usr/bin/env bash
# Runs vaeas-dist on P data-parallel ranks on this machine:
#
#   scripts/mpirun.sh -n P <vaeas-dist arguments…>
#   e.g. scripts/mpirun.sh -n 2 train --config configs/mnist-vae-quick.yaml --data-dir ../shared/data
#
# - exports OPENBLAS_NUM_THREADS = max(1, nproc / P) unless already set;
# - adds --oversubscribe when P exceeds the cores (nproc), so Open MPI accepts
#   the ranks;
# - pins each rank to its own cores (P × OPENBLAS_NUM_THREADS of them), chosen
#   among the CPUs this process may use that no other job started through this
#   script holds: a lock file per CPU in $VAEAS_CORE_LOCKS (default
#   /tmp/vaeas-dist-cores-<uid>), held by the job until its last rank exits.
#   So concurrent jobs on one machine get distinct cores (issue #21: two 1-rank
#   jobs were both pinned to core 0 by Open MPI's default). When too few CPUs
#   are free, when oversubscribing, or with VAEAS_BIND=none, the ranks are not
#   pinned (--bind-to none) and the OS places them;
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
opts=(-n "$ranks" --bind-to none)
[ "$ranks" -le "$cores" ] || opts+=(--oversubscribe)

# The CPUs this process may use (a cgroup or taskset may restrict them), as OS numbers.
allowed_cpus() {
    local list part a b c
    list="$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)"
    IFS=, read -ra parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then
            a="${part%-*}"; b="${part#*-}"
            for ((c = a; c <= b; c++)); do echo "$c"; done
        else
            echo "$part"
        fi
    done
}

# Claim P × threads free CPUs: a non-blocking flock on each CPU's lock file, kept
# open (and inherited by mpirun and the ranks) for the job's lifetime.
rank_cpus=""
threads_per_rank="$OPENBLAS_NUM_THREADS"
[[ "$threads_per_rank" =~ ^[1-9][0-9]*$ ]] || threads_per_rank=1
need=$((ranks * threads_per_rank))
bind_note=""
if [ "${VAEAS_BIND:-core}" = none ]; then
    bind_note="VAEAS_BIND=none: ranks not pinned"
elif [ "$need" -gt "$cores" ]; then
    bind_note="$need CPUs wanted (P × OPENBLAS_NUM_THREADS), $cores available: ranks not pinned"
elif command -v flock >/dev/null 2>&1 && command -v taskset >/dev/null 2>&1; then
    lockdir="${VAEAS_CORE_LOCKS:-${TMPDIR:-/tmp}/vaeas-dist-cores-$(id -u)}"
    mkdir -p "$lockdir"
    claimed=()
    for cpu in $(allowed_cpus); do
        [ "${#claimed[@]}" -lt "$need" ] || break
        exec {fd}>>"$lockdir/cpu-$cpu"
        if flock -n "$fd"; then claimed+=("$cpu"); else exec {fd}>&-; fi
    done
    if [ "${#claimed[@]}" -eq "$need" ]; then
        sets=()
        for ((r = 0; r < ranks; r++)); do
            set_r="${claimed[*]:$((r * threads_per_rank)):$threads_per_rank}"
            sets+=("${set_r// /,}")
        done
        rank_cpus="$(IFS=';'; echo "${sets[*]}")"
    else
        bind_note="only ${#claimed[@]} of the $need CPUs wanted are free of other jobs (locks in $lockdir): ranks not pinned"
        # Closing this script's descriptors releases the locks (mpirun has not inherited them yet).
        for fd_path in /proc/$$/fd/*; do
            [[ "$(readlink "$fd_path" 2>/dev/null)" == "$lockdir"/cpu-* ]] && eval "exec ${fd_path##*/}>&-"
        done
    fi
else
    bind_note="flock or taskset missing: ranks not pinned"
fi
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

if [ -n "$rank_cpus" ]; then
    printf 'mpirun.sh: OPENBLAS_NUM_THREADS=%s mpirun %s %s %s (rank CPUs: %s)\n' \
        "$OPENBLAS_NUM_THREADS" "${opts[*]}" "$bin" "$*" "${rank_cpus//;/ | }" >&2
    # Each rank pins itself: taskset with its local rank's CPUs, then exec (same pid, same signals).
    export VAEAS_RANK_CPUS="$rank_cpus"
    setsid mpirun "${opts[@]}" -x VAEAS_RANK_CPUS bash -c \
        'IFS=";" read -ra s <<<"$VAEAS_RANK_CPUS"; exec taskset -c "${s[${OMPI_COMM_WORLD_LOCAL_RANK:-0}]}" "$0" "$@"' \
        "$bin" "$@" &
else
    printf 'mpirun.sh: OPENBLAS_NUM_THREADS=%s mpirun %s %s %s (%s)\n' \
        "$OPENBLAS_NUM_THREADS" "${opts[*]}" "$bin" "$*" "$bind_note" >&2
    setsid mpirun "${opts[@]}" "$bin" "$@" &
fi
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
