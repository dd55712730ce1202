#!/usr/bin/env bash
# Multi-host training on one machine: two Linux network namespaces stand in
# for two hosts, joined by a veth pair whose addresses (10.77.R.1, 10.77.R.2)
# exist only inside them. mpirun runs in the first "host" and starts the ranks
# of the second through a launch agent that enters its namespace (where a
# cluster uses ssh); the ranks talk over Open MPI's TCP transport only
# (--mca btl tcp,self), on the veth subnet (btl_tcp_if_include,
# oob_tcp_if_include). For each rank count it trains a small VAE-AS model
# across the two hosts and checks that every tensor of model.safetensors
# equals the single-host run's at the same rank count.
#
# Needs root (ip netns) and Open MPI; cleans up its namespaces on exit, also
# on failure or Ctrl-C.
#
#   sudo cluster/netns-test.sh                    # 2 and 3 ranks
#   sudo cluster/netns-test.sh --ranks "2"        # one rank count
#   VAEAS_BIN=/path/vaeas-dist VAEAS_DATA_DIR=/data cluster/netns-test.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
ranks="2 3"
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks="$2"; shift 2 ;;
        --keep) keep=1; shift ;;          # keep the run directories (printed)
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "netns-test: unknown argument '$1' (expected --ranks \"2 3\", --keep)" >&2; exit 2 ;;
    esac
done

bin="${VAEAS_BIN:-$repo/.build/release/vaeas-dist}"
data="${VAEAS_DATA_DIR:-$repo/../shared/data}"
[ -x "$bin" ] || { echo "netns-test: no vaeas-dist at $bin (swift build -c release, or set VAEAS_BIN)" >&2; exit 2; }
[ -d "$data/binarized-mnist" ] || { echo "netns-test: no binarized-mnist under $data (set VAEAS_DATA_DIR)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "netns-test: needs root for ip netns (run with sudo)" >&2; exit 2; }

tag=$$
subnet="10.77.$((tag % 250)).0/24"
prefix="10.77.$((tag % 250))"
nsA="vaeas-hostA-$tag"; nsB="vaeas-hostB-$tag"
ipA="$prefix.1"; ipB="$prefix.2"
work="$(mktemp -d /tmp/vaeas-netns-XXXXXX)"

cleanup() {
    local status=$?
    for ns in "$nsA" "$nsB"; do
        if ip netns list | grep -qw "$ns"; then
            # Ranks or daemons left in a namespace (a failed run): end them, then the namespace.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns delete "$ns" 2>/dev/null || true
        fi
    done
    if [ "$keep" = 1 ]; then echo "netns-test: kept $work"; else rm -rf "$work"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "netns-test: hosts $nsA ($ipA) and $nsB ($ipB) on $subnet, veth pair, Open MPI TCP only"
ip netns add "$nsA"
ip netns add "$nsB"
ip link add "vA$tag" type veth peer name "vB$tag"
ip link set "vA$tag" netns "$nsA"
ip link set "vB$tag" netns "$nsB"
ip -n "$nsA" addr add "$ipA/24" dev "vA$tag"
ip -n "$nsB" addr add "$ipB/24" dev "vB$tag"
for ns in "$nsA" "$nsB"; do ip -n "$ns" link set lo up; done
ip -n "$nsA" link set "vA$tag" up
ip -n "$nsB" link set "vB$tag" up
if ip -4 addr | grep -q "$ipA"; then echo "netns-test: $ipA is visible outside the namespaces" >&2; exit 1; fi

# The launch agent: Open MPI calls it as `agent HOST COMMAND…` (like ssh) to
# start its daemon on HOST; it runs COMMAND in that host's namespace.
agent="$work/netns-agent.sh"
cat > "$agent" <<EOF
#!/bin/sh
host="\$1"; shift
case "\$host" in
    $ipA) ns=$nsA ;;
    $ipB) ns=$nsB ;;
    *) echo "netns-agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
chmod +x "$agent"

train_args=(train --overwrite --data-dir "$data"
    --set data.name=binarized-mnist --set data.limit=1000 --set model.latent=8 --set model.hidden=64
    --set model.enc_layers=2 --set model.dec_layers=2 --set train.batch=50 --set train.epochs=1
    --set train.max_steps=12 --set eval.every=0
    --set objective.kind=vaeas --set objective.labels=1000 --set model.cls_layers=1 --set train.samples=2)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

compare() {   # every tensor of two safetensors files, bit for bit
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n]); body = b[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
differ = sorted(k for k in a if a[k] != b.get(k)) + sorted(set(b) - set(a))
if differ:
    print("netns-test:   DIFFERENT tensors:", ", ".join(differ)); sys.exit(1)
print(f"netns-test:   all {len(a)} tensors bit-identical ({sum(len(v) for v in a.values())} bytes)")
PY
}

status=0
for p in $ranks; do
    slotsA=$(( (p + 1) / 2 )); slotsB=$(( p / 2 ))
    printf '%s slots=%d\n%s slots=%d\n' "$ipA" "$slotsA" "$ipB" "$slotsB" > "$work/hostfile"
    echo "netns-test: P=$p: hostfile: $(tr '\n' ' ' < "$work/hostfile")"
    ip netns exec "$nsA" mpirun -n "$p" --hostfile "$work/hostfile" \
        --mca plm_rsh_agent "$agent" \
        --mca btl tcp,self --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet" \
        --bind-to none -x OPENBLAS_NUM_THREADS \
        /bin/sh -c 'echo "netns-test:   rank $OMPI_COMM_WORLD_RANK on $(ip -4 -o addr show scope global | awk "{print \$4}")"' \
        | sort
    ip netns exec "$nsA" mpirun -n "$p" --hostfile "$work/hostfile" \
        --mca plm_rsh_agent "$agent" \
        --mca btl tcp,self --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet" \
        --bind-to none -x OPENBLAS_NUM_THREADS \
        "$bin" "${train_args[@]}" --out "$work/multi-$p" > "$work/multi-$p.log" 2>&1 \
        || { echo "netns-test: P=$p two-host run failed:"; tail -20 "$work/multi-$p.log"; exit 1; }
    grep -E "^(epoch|vaeas-dist train)" "$work/multi-$p.log" | sed 's/^/netns-test:   two hosts: /' | head -3 || true
    mpirun -n "$p" --oversubscribe --bind-to none "$bin" "${train_args[@]}" --out "$work/single-$p" \
        > "$work/single-$p.log" 2>&1 \
        || { echo "netns-test: P=$p single-host run failed:"; tail -20 "$work/single-$p.log"; exit 1; }
    echo "netns-test: P=$p: two-host model.safetensors vs single-host:"
    compare "$work/multi-$p/model.safetensors" "$work/single-$p/model.safetensors" || status=1
    # Again across the two hosts with the overlapped bucketed reduction and a timeline.
    ip netns exec "$nsA" mpirun -n "$p" --hostfile "$work/hostfile" \
        --mca plm_rsh_agent "$agent" \
        --mca btl tcp,self --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet" \
        --bind-to none -x OPENBLAS_NUM_THREADS \
        "$bin" "${train_args[@]}" --set train.bucket_mb=0.05 --out "$work/bucket-$p" \
        --timeline "$work/bucket-$p/timeline.json" --timeline-steps 11:12 > "$work/bucket-$p.log" 2>&1 \
        || { echo "netns-test: P=$p two-host bucketed run failed:"; tail -20 "$work/bucket-$p.log"; exit 1; }
    echo "netns-test: P=$p: two-host train.bucket_mb=0.05 (MPI_Iallreduce during backward) vs single-host blocking:"
    compare "$work/bucket-$p/model.safetensors" "$work/single-$p/model.safetensors" || status=1
    python3 - "$work/bucket-$p/timeline.json" <<'PY'
import collections, json, sys
ev = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
per = collections.Counter(e["pid"] for e in ev)
starts = {e["pid"]: e["ts"] for e in ev if e["name"] == "step 12"}
skew = max(starts.values()) - min(starts.values())
print(f"netns-test:   timeline: {len(ev)} events, per rank {dict(sorted(per.items()))}; "
      f"step 12 starts within {skew:.0f} us across ranks")
PY
done
[ $status = 0 ] && echo "netns-test: PASS" || echo "netns-test: FAIL"
exit $status
