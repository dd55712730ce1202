"""Scaling sweep over `vaeas-dist bench`: strong and weak scaling of the plain VAE,
VAE-AS with the full partitioned softmax and with the tree, at several label counts V,
with a per-phase breakdown read from each point's `--timeline`.

    python3 scripts/scaling.py run [--quick] [--ranks 1,2,4] [--labels 10000,100000,1000000]
                                   [--models vae,full,tree] [--steps 30] [--warmup 5]
                                   [--config configs/mnist-vaeas-quick.yaml] [--data-dir DIR]
                                   [--set KEY=VALUE ...] [--launcher mpirun|srun] [--out runs/scaling]
                                   [--append]
    python3 scripts/scaling.py report [--out runs/scaling]
    python3 scripts/scaling.py collectives [--ranks 2,3,4] [--bytes 4,1K,…] [--out runs/scaling]
    python3 scripts/scaling.py project [--alpha-us 2] [--gbit 100] [--compute-speedup 1,32]
                                       [--max-ranks 512] [--cache-split-mib 4] [--out runs/scaling]
    python3 scripts/scaling.py timeline-png TIMELINE.json OUT.png

`run` writes OUT/points.jsonl (one bench JSON per point, with the point's mode, model,
V, P, whether it was oversubscribed, and the per-phase milliseconds from its timeline),
each point's timeline under OUT/timelines/, then `report`: OUT/SCALING.md (tables) and
PNGs (samples/s and parallel efficiency against P, strong and weak; classifier bytes
per step against V, partitioned vs a replicated V x h layer; a rendering of a 2-rank
timeline). Strong scaling keeps the config's global batch; weak scaling multiplies it
by P. Points with more ranks than cores (nproc, or SLURM's allocation under srun) are
marked oversubscribed: they show that the code runs, not how fast.

`run --append` adds points to OUT/points.jsonl (same-named ones are rerun), e.g. V = 10^6 at
P = 1, 2 only. `collectives` runs `vaeas-dist bench collectives` at each P into
OUT/collectives.jsonl. `project` (tools/vaeas_tools/scaling/projection.py, alphabeta.py) fits
the α–β(–γ) model to them, predicts every measured point from its calibration and the fitted
collectives, and projects step time and efficiency to P = 512 for the replicated, partitioned
full and partitioned tree output layers, with and without overlap: OUT/PROJECTION.md and PNGs
(docs/SCALING.md).

--quick: P = 1, 2, V = 10^4, a small model (hidden 64, 2+2 layers, latent 8), 2000
samples, 4 timed steps: a minute on a laptop, to check the pipeline, not to measure.

Memory: the full softmax's output layer holds V x hidden weights, their gradient and two
Adam moments, split over P ranks: 16 V h / P bytes (V = 10^6, h = 500: 8 GB at P = 1).
"""
import argparse
import os

from . import harness, projection, timeline


def parser():
    """The command line: subcommands run, collectives, project, report, timeline-png."""
    ap = argparse.ArgumentParser(prog="scaling.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the sweep: bench at every point, then report")
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
    c = sub.add_parser("collectives", help="time allreduce/allgather/reduce-scatter over sizes at each P (bench collectives)")
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
    rp = sub.add_parser("report", help="OUT/SCALING.md and its PNGs from OUT/points.jsonl")
    rp.add_argument("--out", default="runs/scaling")
    t = sub.add_parser("timeline-png", help="draw a --timeline file")
    t.add_argument("timeline")
    t.add_argument("png")
    return ap


def main(argv=None):
    """Parses argv (default: sys.argv[1:]) and runs the subcommand."""
    args = parser().parse_args(argv)
    if args.cmd == "timeline-png":
        timeline.timeline_png(args.timeline, args.png)
        print("scaling: wrote", args.png)
        return
    if args.cmd == "report":
        return harness.report(args)
    if args.cmd == "collectives":
        return harness.collectives(args)
    if args.cmd == "project":
        return projection.project(args)
    # run: defaults that depend on --quick and on the cores.
    if args.ranks is None:
        args.ranks = "1,2" if args.quick else ",".join(str(p) for p in (1, 2, 4, 8, 16, 32, 64) if p <= max(harness.cores(), 4))
    if args.labels is None:
        args.labels = "10000" if args.quick else "10000,100000,1000000"
    if args.steps is None:
        args.steps = 4 if args.quick else 30
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    # Absolute: the bench commands run from the repository root, not from the caller's directory.
    args.out = os.path.abspath(args.out)
    if args.data_dir:
        args.data_dir = os.path.abspath(args.data_dir)
    harness.run(args)
