#!/usr/bin/env python3
"""Scaling sweep over `vaeas-dist bench`: strong and weak scaling of the plain VAE,
VAE-AS with the full partitioned softmax and with the tree, at several label counts V,
with a per-phase breakdown read from each point's `--timeline`.

    python3 scripts/scaling.py run [--quick] [--ranks 1,2,4] [--labels 10000,100000,1000000]
                                   [--models vae,full,tree] [--steps 30] [--warmup 5]
                                   [--config configs/mnist-vaeas-quick.yaml] [--data-dir DIR]
                                   [--set KEY=VALUE ...] [--launcher mpirun|srun] [--out runs/scaling]
    python3 scripts/scaling.py report [--out runs/scaling]
    python3 scripts/scaling.py collectives [--ranks 2,3,4] [--bytes 4,1K,…] [--out runs/scaling]
    python3 scripts/scaling.py project [--alpha-us 2] [--gbit 100] [--compute-speedup 1,32]
                                       [--max-ranks 512] [--cache-split-mib 4] [--out runs/scaling]
    python3 scripts/scaling.py timeline-png TIMELINE.json OUT.png [--steps a:b]

`run` writes OUT/points.jsonl (one bench JSON per point, with the point's mode, model,
V, P, whether it was oversubscribed, and the per-phase milliseconds from its timeline),
each point's timeline under OUT/timelines/, then `report`: OUT/SCALING.md (tables) and
PNGs (samples/s and parallel efficiency against P, strong and weak; classifier bytes
per step against V, partitioned vs a replicated V x h layer; a rendering of a 2-rank
timeline). Strong scaling keeps the config's global batch; weak scaling multiplies it
by P. Points with more ranks than cores (nproc, or SLURM's allocation under srun) are
marked oversubscribed: they show that the code runs, not how fast.

`run --append` adds points to OUT/points.jsonl (same-named ones are rerun), e.g. V = 10^6 at
P = 1, 2 only. `collectives` runs `vaeas-dist bench --collectives` at each P into
OUT/collectives.jsonl. `project` (projection.py, alphabeta.py) fits the α–β(–γ) model to them,
predicts every measured point from its calibration and the fitted collectives, and projects
step time and efficiency to P = 512 for the replicated, partitioned full and partitioned tree
output layers, with and without overlap: OUT/PROJECTION.md and PNGs (docs/SCALING.md).

--quick: P = 1, 2, V = 10^4, a small model (hidden 64, 2+2 layers, latent 8), 2000
samples, 4 timed steps: a minute on a laptop, to check the pipeline, not to measure.

Memory: the full softmax's output layer holds V x hidden weights, their gradient and two
Adam moments, split over P ranks: 16 V h / P bytes (V = 10^6, h = 500: 8 GB at P = 1).
"""

import argparse
import collections
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("VAEAS_BIN", os.path.join(ROOT, ".build", "release", "vaeas-dist"))

QUICK_SETS = ["model.hidden=64", "model.latent=8", "model.enc_layers=2", "model.dec_layers=2",
              "model.cls_layers=1", "data.limit=2000", "train.batch=64"]

PHASES = ["data", "forward", "backward", "classifier", "communication", "optimizer", "checkpoint", "evaluation", "other"]


def cores():
    if "SLURM_NTASKS" in os.environ:
        return int(os.environ["SLURM_NTASKS"])
    return os.cpu_count() or 1


# ----------------------------------------------------------------------- timeline

def load_events(path):
    with open(path) as f:
        return [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]


def self_times(events):
    """Exclusive (self) microseconds per category and rank on the compute track:
    each event's duration minus its children's, so nested phases are not counted twice."""
    out = collections.defaultdict(lambda: collections.Counter())
    by_rank = collections.defaultdict(list)
    for e in events:
        if e.get("tid", 0) == 0:
            by_rank[e["pid"]].append(e)
    for rank, evs in by_rank.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, category, child_time]
        def close(item):
            end, cat, child, dur = item
            out[rank][cat] += max(0.0, dur - child)
        for e in evs:
            while stack and e["ts"] >= stack[-1][0] - 1e-6:
                close(stack.pop())
            if stack:
                stack[-1][2] += e["dur"]
            cat = e.get("cat", "other")
            stack.append([e["ts"] + e["dur"], "other" if cat == "step" else cat, 0.0, e["dur"]])
        while stack:
            close(stack.pop())
    return out


def phase_ms(path, steps):
    """Mean over ranks of each phase's self time per recorded step (ms)."""
    times = self_times(load_events(path))
    if not times:
        return {}
    result = {}
    for phase in PHASES:
        result[phase] = sum(t[phase] for t in times.values()) / len(times) / steps / 1e3
    return result


def timeline_png(path, out, title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    events = load_events(path)
    colors = {"data": "#8c564b", "forward": "#1f77b4", "backward": "#ff7f0e", "classifier": "#9467bd",
              "communication": "#d62728", "optimizer": "#2ca02c", "checkpoint": "#7f7f7f", "evaluation": "#17becf"}
    ranks = sorted({e["pid"] for e in events})
    t0 = min(e["ts"] for e in events)
    fig, ax = plt.subplots(figsize=(13, 1.2 + 1.1 * len(ranks)))
    lanes = []
    for r in ranks:
        # lane per rank: compute (tid 0, innermost events drawn last so they stay visible) and in-flight (tid 1)
        for tid in (0, 1):
            evs = [e for e in events if e["pid"] == r and e.get("tid", 0) == tid and e.get("cat") != "step"]
            if tid == 1 and not evs:
                continue
            y = len(lanes)
            lanes.append(f"rank {r}" + (" in flight" if tid == 1 else ""))
            for e in sorted(evs, key=lambda e: -e["dur"]):
                ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)], (y - 0.4, 0.8),
                               facecolors=colors.get(e.get("cat"), "#bcbd22"), edgecolor="none")
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(lanes)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the first recorded event (rank clocks aligned at a barrier)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, list(colors), ncol=len(colors), loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(lanes) < 4 else -0.2),
              fontsize=8, frameon=False)
    ax.set_title(title or os.path.basename(path))
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------- run

def launcher_cmd(launcher, ranks):
    if launcher == "srun":
        return ["srun", "--mpi=pmix", "-n", str(ranks)]
    return [os.path.join(ROOT, "scripts", "mpirun.sh"), "-n", str(ranks)]


def points(args):
    models = args.models.split(",")
    labels = [int(v) for v in args.labels.split(",")]
    ranks = [int(p) for p in args.ranks.split(",")]
    for mode in ("strong", "weak"):
        for model in models:
            for v in ([None] if model == "vae" else labels):
                for p in ranks:
                    yield mode, model, v, p


def run(args):
    os.makedirs(os.path.join(args.out, "timelines"), exist_ok=True)
    sets = (QUICK_SETS if args.quick else []) + args.set
    base_batch = None
    rows = []
    path = os.path.join(args.out, "points.jsonl")
    # --append: add points to an earlier sweep (e.g. V = 10^6 at P = 1, 2 only), replacing same-named ones.
    kept = []
    if args.append and os.path.exists(path):
        todo = {f"{mode}-{model}" + (f"-V{v}" if v else "") + f"-P{p}" for mode, model, v, p in points(args)}
        kept = [l for l in open(path) if json.loads(l)["point"] not in todo]
    with open(path, "w") as f:
        f.writelines(kept)
        f.flush()
        for mode, model, v, p in points(args):
            name = f"{mode}-{model}" + (f"-V{v}" if v else "") + f"-P{p}"
            cmd = launcher_cmd(args.launcher, p) + ["bench", "--json", "--steps", str(args.steps), "--warmup", str(args.warmup),
                                                    "--config", args.config]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            for s in sets:
                cmd += ["--set", s]
            if model == "vae":
                cmd += ["--set", "objective.kind=vae"]
            else:
                cmd += ["--set", "objective.kind=vaeas", "--set", f"objective.softmax={model}", "--set", f"objective.labels={v}"]
                if model == "tree":
                    cmd += ["--set", "objective.mi_estimator=ce"]
            if base_batch is None:
                base_batch = batch_of(args, sets)
            if mode == "weak":
                cmd += ["--set", f"train.batch={base_batch * p}"]
            window = min(args.steps, 5)
            timeline = os.path.join(args.out, "timelines", name + ".json")
            cmd += ["--timeline", timeline, "--timeline-steps", f"{args.warmup + 1}:{args.warmup + window}"]
            print("scaling:", name, flush=True)
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"scaling: {name} failed ({shlex.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
            line = [l for l in r.stdout.splitlines() if l.startswith("{")][-1]
            row = json.loads(line)
            row.update(point=name, mode=mode, model=model, V=v or 0, P=p, oversubscribed=p > cores(),
                       timeline=os.path.relpath(timeline, args.out), phases_ms=phase_ms(timeline, window))
            f.write(json.dumps(row) + "\n")
            f.flush()
            rows.append(row)
    report(args)


def batch_of(args, sets):
    cmd = [BIN, "show-config", "--config", args.config] + sum((["--set", s] for s in sets), [])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    section = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "train" and line.strip().startswith("batch:"):
            return int(line.split(":")[1].split("#")[0])
    return 128


def collectives(args):
    """bench --collectives at each P into OUT/collectives.jsonl (rows of other P kept)."""
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "collectives.jsonl")
    ranks = [int(p) for p in args.ranks.split(",")]
    kept = [l for l in open(path) if json.loads(l)["ranks"] not in ranks] if os.path.exists(path) else []
    rows = []
    for p in ranks:
        cmd = launcher_cmd(args.launcher, p) + ["bench", "--collectives", "--json"] + (["--bytes", args.bytes] if args.bytes else [])
        print("scaling: collectives at P =", p, flush=True)
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"scaling: collectives at P = {p} failed ({shlex.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
        for l in r.stdout.splitlines():
            if l.startswith("{"):
                row = json.loads(l)
                row["oversubscribed"] = p > cores()
                rows.append(json.dumps(row) + "\n")
    with open(path + ".tmp", "w") as f:
        f.writelines(kept + rows)
    os.replace(path + ".tmp", path)
    print("scaling: wrote", path, f"({len(rows)} rows)")


# ----------------------------------------------------------------------- report

def report(args):
    path = os.path.join(args.out, "points.jsonl")
    rows = [json.loads(l) for l in open(path)]
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["mode"], r["model"], r["V"])].append(r)
    lines = ["# Scaling sweep", "",
             f"{len(rows)} points from `scripts/scaling.py` ({'--quick' if any('quick' in str(a) for a in sys.argv) else 'run'}); "
             f"machine cores: {cores()}. Oversubscribed points (P > cores) show that the code runs, not its speed.",
             "Efficiency: strong = samples/s(P) / (P · samples/s(1)); weak = the same per-rank throughput ratio.",
             "Phases: mean over ranks of each phase's self time per step in the timeline (ms); comm is communication the",
             "rank waited for (exposed).", "",
             "| mode | model | V | P | batch | samples/s | efficiency | step ms | data | fwd | bwd | classifier | comm (exposed) | grad reduce in flight | optimizer | oversubscribed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2])):
        g = sorted(groups[key], key=lambda r: r["P"])
        one = next((r for r in g if r["P"] == 1), None)
        for r in g:
            eff = r["samples_per_s"] / (r["P"] * one["samples_per_s"]) if one else float("nan")
            r["efficiency"] = eff
            ph = r.get("phases_ms", {})
            lines.append("| {mode} | {model} | {V} | {P} | {batch} | {sps:.0f} | {eff:.2f} | {ms:.2f} | {d:.2f} | {f:.2f} | {b:.2f} | {c:.2f} | {cm:.2f} | {fl:.2f} | {o:.2f} | {ov} |".format(
                mode=r["mode"], model=r["model"], V=r["V"] or "-", P=r["P"], batch=r["batch"], sps=r["samples_per_s"], eff=eff,
                ms=r["step_ms"], d=ph.get("data", 0), f=ph.get("forward", 0), b=ph.get("backward", 0), c=ph.get("classifier", 0),
                cm=ph.get("communication", 0), fl=r.get("ms_gradient_reduction_in_flight", 0), o=ph.get("optimizer", 0),
                ov="yes" if r["oversubscribed"] else ""))
    comm_rows = [r for r in rows if r["model"] != "vae" and r["mode"] == "strong"]
    if comm_rows:
        lines += ["", "Classifier output layer, bytes sent per step by rank 0 (partitioned) vs what a replicated V x h layer would allreduce:", "",
                  "| softmax | V | P | partitioned bytes/step | replicated bytes/step | layer memory/rank |", "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(comm_rows, key=lambda r: (r["model"], r["V"], r["P"])):
            lines.append(f"| {r['model']} | {r['V']} | {r['P']} | {r.get('output_layer_bytes_sent_per_step', 0)} | "
                         f"{r.get('replicated_layer_allreduce_bytes_per_step', 0)} | {r.get('output_layer_memory_bytes_per_rank', 0)} |")
    figures = plots(args, rows, groups)
    lines += [""] + [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.basename(p)})" for p in figures]
    with open(os.path.join(args.out, "SCALING.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("scaling: wrote", os.path.join(args.out, "SCALING.md"), "and", len(figures), "figure(s)")


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None (then only tables are written)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("scaling: matplotlib missing: tables only")
        return None


def plots(args, rows, groups):
    plt = pyplot()
    if plt is None:
        return []
    made = []
    for mode in ("strong", "weak"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        for (m, model, v), g in sorted(groups.items()):
            if m != mode:
                continue
            g = sorted(g, key=lambda r: r["P"])
            label = model + (f" V={v}" if v else "")
            a1.plot([r["P"] for r in g], [r["samples_per_s"] for r in g], "o-", label=label)
            a2.plot([r["P"] for r in g], [r.get("efficiency", float("nan")) for r in g], "o-", label=label)
            for r in g:
                if r["oversubscribed"]:
                    a1.plot(r["P"], r["samples_per_s"], "kx")
        a1.set_xlabel("ranks P"); a1.set_ylabel("samples/s"); a1.set_title(f"{mode} scaling (x: oversubscribed)")
        a2.set_xlabel("ranks P"); a2.set_ylabel("parallel efficiency"); a2.axhline(1, color="gray", lw=0.5)
        a1.legend(fontsize=7)
        fig.tight_layout()
        p = os.path.join(args.out, f"{mode}.png"); fig.savefig(p, dpi=110); plt.close(fig); made.append(p)
    cr = [r for r in rows if r["model"] != "vae" and r["mode"] == "strong" and r["P"] == max(x["P"] for x in rows)]
    if cr:
        fig, ax = plt.subplots(figsize=(6, 4))
        for model in sorted({r["model"] for r in cr}):
            g = sorted((r for r in cr if r["model"] == model), key=lambda r: r["V"])
            ax.loglog([r["V"] for r in g], [r["output_layer_bytes_sent_per_step"] for r in g], "o-", label=f"partitioned {model}")
        g = sorted(cr, key=lambda r: r["V"])
        ax.loglog([r["V"] for r in g], [r["replicated_layer_allreduce_bytes_per_step"] for r in g], "k--", label="replicated V x h (allreduce)")
        ax.set_xlabel("labels V"); ax.set_ylabel("bytes per step (rank 0)"); ax.legend(fontsize=8)
        ax.set_title(f"classifier output layer traffic, P = {cr[0]['P']}")
        fig.tight_layout()
        p = os.path.join(args.out, "bytes_vs_V.png"); fig.savefig(p, dpi=110); plt.close(fig); made.append(p)
    two = [r for r in rows if r["P"] == 2 and r["model"] == "full" and r["mode"] == "strong"]
    if two:
        r = two[0]
        p = os.path.join(args.out, "timeline_2ranks.png")
        timeline_png(os.path.join(args.out, r["timeline"]), p, title=f"2-rank VAE-AS timeline ({r['point']})")
        made.append(p)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--quick", action="store_true")
    r.add_argument("--ranks", default=None)
    r.add_argument("--labels", default=None)
    r.add_argument("--models", default="vae,full,tree")
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--warmup", type=int, default=None)
    r.add_argument("--config", default="configs/mnist-vaeas-quick.yaml")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--set", action="append", default=[])
    r.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun")
    r.add_argument("--out", default="runs/scaling")
    r.add_argument("--append", action="store_true", help="keep OUT/points.jsonl's other points (same-named ones are rerun)")
    c = sub.add_parser("collectives", help="time allreduce/allgather/reduce-scatter over sizes at each P (bench --collectives)")
    c.add_argument("--ranks", default="2,3,4")
    c.add_argument("--bytes", default=None, help="bench --bytes (default: its 4 B … 64 MiB)")
    c.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun")
    c.add_argument("--out", default="runs/scaling")
    pj = sub.add_parser("project", help="fit the α–β model, check it against the sweep, project to cluster scale")
    pj.add_argument("--out", default="runs/scaling")
    pj.add_argument("--alpha-us", type=float, default=2.0, help="cluster latency per message (µs)")
    pj.add_argument("--gbit", type=float, default=100.0, help="cluster link bandwidth (Gb/s)")
    pj.add_argument("--max-ranks", type=int, default=512)
    pj.add_argument("--cache-split-mib", type=float, default=4.0,
                    help="fit collectives separately below and above this message size (MiB): cache- and DRAM-resident")
    pj.add_argument("--compute-speedup", default="1,32",
                    help="per-rank compute ÷ these factors, one projection each (1 = one core of this machine per rank)")
    rp = sub.add_parser("report")
    rp.add_argument("--out", default="runs/scaling")
    t = sub.add_parser("timeline-png")
    t.add_argument("timeline")
    t.add_argument("png")
    args = ap.parse_args()
    if args.cmd == "timeline-png":
        timeline_png(args.timeline, args.png)
        print("scaling: wrote", args.png)
        return
    if args.cmd == "report":
        return report(args)
    if args.cmd == "collectives":
        return collectives(args)
    if args.cmd == "project":
        import projection
        return projection.project(args)
    if args.ranks is None:
        args.ranks = "1,2" if args.quick else ",".join(str(p) for p in (1, 2, 4, 8, 16, 32, 64) if p <= max(cores(), 4))
    if args.labels is None:
        args.labels = "10000" if args.quick else "10000,100000,1000000"
    if args.steps is None:
        args.steps = 4 if args.quick else 30
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    args.out = os.path.abspath(args.out)
    if args.data_dir:
        args.data_dir = os.path.abspath(args.data_dir)
    run(args)


if __name__ == "__main__":
    main()
