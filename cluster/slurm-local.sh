#!/usr/bin/env bash
# A one-node SLURM on this machine, to test cluster/slurm.sbatch end to end
# (requeue, preemption, a stall under srun: Tests/IntegrationTests/SlurmTests.swift).
#
#   cluster/slurm-local.sh start DIR   writes DIR/slurm.conf, starts munged (if it is not
#                                      running), slurmctld and slurmd, waits for the node
#   cluster/slurm-local.sh stop DIR    stops that slurmctld and slurmd (and munged if start started it)
#
# Then: export SLURM_CONF=DIR/slurm.conf; sbatch …; srun --mpi=pmix …
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup.sh
# installs them). Exit status 2: not available here (not root, or a package missing).
# One partition "debug" with this machine's CPUs; ports 16817/16818 (SLURM_LOCAL_PORT
# picks another pair: PORT and PORT + 1). Requeued jobs wait 120 s before they are
# eligible (SLURM's rule); `scontrol update JobId=J StartTime=now` starts one at once.
set -euo pipefail

usage() { printf 'usage: %s start|stop DIR\n' "$0" >&2; exit 64; }
[ "$#" -eq 2 ] || usage
action="$1"; dir="$2"
unavailable() { printf 'slurm-local.sh: %s\n' "$1" >&2; exit 2; }

# Starts a daemon without the file descriptors this script inherited beyond 0–2. A daemon that
# keeps one open holds it for as long as it lives: a caller's pipe never reaches end of file, and
# Foundation's Process (which watches a socket it passes to the child) never sees this script
# exit — that hung the Swift test suite on a machine where munged was not yet running.
detached() {
    (
        for fd in /proc/self/fd/*; do
            n="${fd##*/}"
            if [ "$n" -gt 2 ] && [ "$n" != 255 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
        done
        exec "$@" </dev/null
    )
}

stop() {
    for d in slurmd slurmctld; do
        if [ -f "$dir/$d.pid" ]; then kill "$(cat "$dir/$d.pid" 2>/dev/null)" 2>/dev/null || true; fi
    done
    for _ in $(seq 50); do
        alive=0
        for d in slurmd slurmctld; do
            [ -f "$dir/$d.pid" ] && kill -0 "$(cat "$dir/$d.pid" 2>/dev/null)" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    rm -f "$dir/slurmd.pid" "$dir/slurmctld.pid"
    # munged only if this script started it (a site's own munged is left alone).
    if [ -f "$dir/munged.started" ]; then
        runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || true
        rm -f "$dir/munged.started"
    fi
}

case "$action" in
stop) stop; exit 0 ;;
start) ;;
*) usage ;;
esac

[ "$(id -u)" -eq 0 ] || unavailable "needs root (slurmd launches the job steps)"
for c in slurmctld slurmd sbatch srun scontrol munged; do
    command -v "$c" >/dev/null 2>&1 || unavailable "$c not found: install slurmctld slurmd slurm-client munge (scripts/setup.sh does)"
done

mkdir -p "$dir/state" "$dir/spool" "$dir/log"
dir="$(cd "$dir" && pwd)"
stop
port="${SLURM_LOCAL_PORT:-16817}"
host="$(hostname -s)"
cpus="$(nproc)"
memory=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
cat >"$dir/slurm.conf" <<CONF
# A one-node SLURM for tests (cluster/slurm-local.sh).
ClusterName=vaeaslocal
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
JobRequeue=1
KillWait=30
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munged: its socket directory and files belong to the munge user.
if ! munge -n >/dev/null 2>&1; then
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/mungekey -c; chown munge:munge /etc/munge/munge.key; }
    detached runuser -u munge -- /usr/sbin/munged
    touch "$dir/munged.started"
    for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n >/dev/null 2>&1 || unavailable "munged did not start"
fi

export SLURM_CONF="$dir/slurm.conf"
detached slurmctld -f "$SLURM_CONF"
detached slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
    state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
    [ "$state" = idle ] && break
    sleep 0.2
done
# The daemons could not be brought up here (ports, permissions): not available, with the logs named.
[ "$state" = idle ] || { stop; unavailable "the node is \"$state\", not idle, 20 s after starting the daemons; see $dir/log"; }
printf 'export SLURM_CONF=%s\n' "$SLURM_CONF"
