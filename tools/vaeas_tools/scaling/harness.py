"""The scaling sweep over `vaeas-dist bench` (`scaling.py run`), the collectives benchmark at each P
(`scaling.py collectives`) and the sweep's report (`scaling.py report`: OUT/SCALING.md and its PNGs).

Strong scaling keeps the config's global batch; weak scaling multiplies it by P. Points with more ranks than
cores are marked oversubscribed: they show that the code runs, not how fast."""
import collections
import json
import os
import shlex
import subprocess
import sys

from .. import io, paths, plots
from . import timeline

#: --quick: a small model and 2000 samples, to check the pipeline in a minute, not to measure.
QUICK_SETS = ["model.hidden=64", "model.latent=8", "model.enc_layers=2", "model.dec_layers=2",
              "model.cls_layers=1", "data.limit=2000", "train.batch=64"]


def cores():
    """The cores the ranks share: SLURM's task count inside an allocation, else this machine's."""
    if "SLURM_NTASKS" in os.environ:
        return int(os.environ["SLURM_NTASKS"])
    return os.cpu_count() or 1


def launcher_cmd(launcher, ranks):
    """The command prefix that starts `ranks` ranks of vaeas-dist (srun inside SLURM, else scripts/mpirun.sh,
    which adds the binary)."""
    if launcher == "srun":
        return ["srun", "--mpi=pmix", "-n", str(ranks)]
    return [os.path.join(paths.ROOT, "scripts", "mpirun.sh"), "-n", str(ranks)]


def points(args):
    """The sweep's points (mode, model, V or None for the plain VAE, P), in run order."""
    models = args.models.split(",")
    labels = [int(v) for v in args.labels.split(",")]
    ranks = [int(p) for p in args.ranks.split(",")]
    for mode in ("strong", "weak"):
        for model in models:
            for v in ([None] if model == "vae" else labels):
                for p in ranks:
                    yield mode, model, v, p


def point_name(mode, model, v, p):
    """A point's name, e.g. strong-full-V10000-P2 (its timeline's file name too)."""
    return f"{mode}-{model}" + (f"-V{v}" if v else "") + f"-P{p}"


def bench_command(args, sets, base_batch, mode, model, v, p, timeline_path, window):
    """The `bench --json --timeline` command of one point."""
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
    if mode == "weak":
        cmd += ["--set", f"train.batch={base_batch * p}"]
    return cmd + ["--timeline", timeline_path, "--timeline-steps", f"{args.warmup + 1}:{args.warmup + window}"]


def run(args):
    """Runs every point into OUT/points.jsonl (one bench JSON per point with its mode, model, V, P, whether it
    was oversubscribed and its phases' ms from its timeline), then `report`. --append keeps the file's other
    points and reruns same-named ones."""
    os.makedirs(os.path.join(args.out, "timelines"), exist_ok=True)
    sets = (QUICK_SETS if args.quick else []) + args.set
    path = os.path.join(args.out, "points.jsonl")
    kept = []
    if args.append and os.path.exists(path):
        todo = {point_name(*pt) for pt in points(args)}
        kept = [r for r in io.read_jsonl(path) if r["point"] not in todo]
    base_batch = batch_of(args.config, sets)
    # Written point by point (not atomically at the end): a sweep that fails at its tenth point keeps nine.
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
        f.flush()
        for mode, model, v, p in points(args):
            name = point_name(mode, model, v, p)
            window = min(args.steps, 5)
            tl = os.path.join(args.out, "timelines", name + ".json")
            cmd = bench_command(args, sets, base_batch, mode, model, v, p, tl, window)
            print("scaling:", name, flush=True)
            r = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"scaling: {name} failed ({shlex.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
            row = io.last_json(r.stdout, what=f"scaling: {name}")
            row.update(point=name, mode=mode, model=model, V=v or 0, P=p, oversubscribed=p > cores(),
                       timeline=os.path.relpath(tl, args.out), phases_ms=timeline.phase_ms(tl, window))
            f.write(json.dumps(row) + "\n")
            f.flush()
    report(args)


def batch_of(config, sets):
    """train.batch of the config with the --set overrides, as `vaeas-dist show-config` resolves it (128 if absent)."""
    cmd = [paths.binary(), "show-config", "--config", config] + sum((["--set", s] for s in sets), [])
    out = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, check=True).stdout
    section = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "train" and line.strip().startswith("batch:"):
            return int(line.split(":")[1].split("#")[0])
    return 128


def collectives(args):
    """`bench collectives --json` at each P into OUT/collectives.jsonl (rows of other P kept)."""
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "collectives.jsonl")
    ranks = [int(p) for p in args.ranks.split(",")]
    kept = [r for r in io.read_jsonl(path, missing_ok=True) if r["ranks"] not in ranks]
    rows = []
    for p in ranks:
        cmd = launcher_cmd(args.launcher, p) + ["bench", "collectives", "--json"] + (["--bytes"] + args.bytes.split(",") if args.bytes else [])
        print("scaling: collectives at P =", p, flush=True)
        r = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"scaling: collectives at P = {p} failed ({shlex.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
        for row in io.json_lines(r.stdout):
            row["oversubscribed"] = p > cores()
            rows.append(row)
    io.write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept + rows))
    print("scaling: wrote", path, f"({len(rows)} rows)")


# ----------------------------------------------------------------------- report

def group(rows):
    """{(mode, model, V): [rows]}: the curves of the report, each over P."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["mode"], r["model"], r["V"])].append(r)
    return groups


def report_lines(rows, groups, ncores, quick=False):
    """SCALING.md's text (without figures) as lines. Sets each row's "efficiency": samples/s(P) over
    P · samples/s(1) of its curve (strong: the speed-up's share of ideal; weak: the per-rank throughput
    ratio), NaN when the curve has no P = 1 point."""
    lines = ["# Scaling sweep", "",
             f"{len(rows)} points from `scripts/scaling.py` ({'--quick' if quick else 'run'}); "
             f"machine cores: {ncores}. Oversubscribed points (P > cores) show that the code runs, not its speed.",
             "Efficiency: strong = samples/s(P) / (P · samples/s(1)); weak = the same per-rank throughput ratio.",
             "Phases: mean over ranks of each phase's self time per step in the timeline (ms); comm is communication the",
             "rank waited for (exposed).", "",
             "| mode | model | V | P | batch | samples/s | efficiency | step ms | data | fwd | bwd | classifier | comm (exposed) | grad reduce in flight | optimizer | oversubscribed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key in sorted(groups):
        g = sorted(groups[key], key=lambda r: r["P"])
        one = next((r for r in g if r["P"] == 1), None)
        for r in g:
            eff = r["samples_per_s"] / (r["P"] * one["samples_per_s"]) if one else float("nan")
            r["efficiency"] = eff
            ph = r.get("phases_ms", {})
            cells = [r["mode"], r["model"], r["V"] or "-", r["P"], r["batch"], f"{r['samples_per_s']:.0f}", f"{eff:.2f}",
                     f"{r['step_ms']:.2f}"]
            cells += [f"{ph.get(k, 0):.2f}" for k in ("data", "forward", "backward", "classifier", "communication")]
            cells += [f"{r.get('ms_gradient_reduction_in_flight', 0):.2f}", f"{ph.get('optimizer', 0):.2f}",
                      "yes" if r["oversubscribed"] else ""]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    comm_rows = [r for r in rows if r["model"] != "vae" and r["mode"] == "strong"]
    if comm_rows:
        lines += ["", "Classifier output layer, bytes sent per step by rank 0 (partitioned) vs what a replicated V x h layer would allreduce:", "",
                  "| softmax | V | P | partitioned bytes/step | replicated bytes/step | layer memory/rank |", "|---|---:|---:|---:|---:|---:|"]
        for r in sorted(comm_rows, key=lambda r: (r["model"], r["V"], r["P"])):
            lines.append(f"| {r['model']} | {r['V']} | {r['P']} | {r.get('output_layer_bytes_sent_per_step', 0)} | "
                         f"{r.get('replicated_layer_allreduce_bytes_per_step', 0)} | {r.get('output_layer_memory_bytes_per_rank', 0)} |")
    return lines


def report(args):
    """OUT/SCALING.md (the table of every point, the output layer's traffic) and the figures from OUT/points.jsonl."""
    rows = io.read_jsonl(os.path.join(args.out, "points.jsonl"))
    groups = group(rows)
    lines = report_lines(rows, groups, cores(), quick=getattr(args, "quick", False))
    figures = figures_of(args.out, rows, groups)
    lines += [""] + [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.basename(p)})" for p in figures]
    path = os.path.join(args.out, "SCALING.md")
    io.write_text_atomic(path, "\n".join(lines) + "\n")
    print("scaling: wrote", path, "and", len(figures), "figure(s)")


def figures_of(out, rows, groups):
    """The report's PNGs in `out` (paths returned; [] without matplotlib): samples/s and efficiency against P,
    strong and weak; the output layer's bytes per step against V at the largest P; the first 2-rank full-softmax
    strong point's timeline. Needs report_lines' efficiencies."""
    plt = plots.pyplot(required=False, who="scaling")
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
        made.append(os.path.join(out, f"{mode}.png"))
        plots.save(fig, made[-1], dpi=110)
    cr = [r for r in rows if r["model"] != "vae" and r["mode"] == "strong" and r["P"] == max(x["P"] for x in rows)]
    if cr:
        fig, ax = plt.subplots(figsize=(6, 4))
        for model in sorted({r["model"] for r in cr}):
            g = sorted((r for r in cr if r["model"] == model), key=lambda r: r["V"])
            ax.loglog([r["V"] for r in g], [r["output_layer_bytes_sent_per_step"] for r in g], "o-", label=f"partitioned {model}")
        g = sorted(cr, key=lambda r: r["V"])
        ax.loglog([r["V"] for r in g], [r["replicated_layer_allreduce_bytes_per_step"] for r in g], "k--",
                  label="replicated V x h (allreduce)")
        ax.set_xlabel("labels V"); ax.set_ylabel("bytes per step (rank 0)"); ax.legend(fontsize=8)
        ax.set_title(f"classifier output layer traffic, P = {cr[0]['P']}")
        fig.tight_layout()
        made.append(os.path.join(out, "bytes_vs_V.png"))
        plots.save(fig, made[-1], dpi=110)
    two = [r for r in rows if r["P"] == 2 and r["model"] == "full" and r["mode"] == "strong"]
    if two:
        r = two[0]
        made.append(os.path.join(out, "timeline_2ranks.png"))
        timeline.timeline_png(os.path.join(out, r["timeline"]), made[-1], title=f"2-rank VAE-AS timeline ({r['point']})")
    return made
