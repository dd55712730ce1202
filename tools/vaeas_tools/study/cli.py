"""`python3 scripts/study.py`: list, run, summary and report for the paper's specs (experiments/NAME.yaml) and
the study files (--study experiments/converged/study.yaml, experiments/paper-length/study.yaml).

    python3 scripts/study.py list                                   # specs and the converged study's groups
    python3 scripts/study.py run table2 --rows vae,a1-b1 --epochs 8 # a spec's rows
    python3 scripts/study.py run all                                # every spec: tables, figure23, figure45
    python3 scripts/study.py --study experiments/converged/study.yaml run lr levers   # a study file's groups
    python3 scripts/study.py --study experiments/paper-length/study.yaml run headline --dry-run
    python3 scripts/study.py summary [NAME]                         # one JSON line per done run
    python3 scripts/study.py report converged                       # docs/RESULTS.md's generated section
    python3 scripts/study.py report full [--out FILE]               # docs/RESULTS-full-N.md (partial: runs/experiments/REPORT-partial.md)
    python3 scripts/study.py report csv [--out FILE]                # docs/results.csv: every finished run of every study file
    python3 scripts/study.py report results                         # docs/RESULTS.md's eq. 14 tables, from docs/results.csv

A run with a done.json is skipped (unless --force), a trained one only measured, a stopped one resumed
(train --resume); `run` exits non-zero when any run failed, after running the others. A study file with
`records: DIR` keeps each finished run's done.json, config.yaml, metrics.jsonl and run.jsonl in DIR/GROUP/ID (run
directories do not outlive their machine); the reports read a run from there when its directory is gone."""
import argparse
import datetime
import json
import os
import sys
import time

from .. import paths
from ..io import FormatError
from . import report_converged, report_full, report_results, results_csv
from . import spec as S
from .commands import Options
from .runner import RunError, run_study

CONVERGED = os.path.join("experiments", "converged", "study.yaml")


def positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {s}")
    return v


def deadline(s, now=None):
    """--deadline: 'HH:MM' today (local time) or '+MINUTES' from now, as seconds since the epoch."""
    now = time.time() if now is None else now
    try:
        if s.startswith("+"):
            return now + 60 * float(s[1:])
        h, m = (int(x) for x in s.split(":"))
        t = datetime.datetime.fromtimestamp(now).replace(hour=h, minute=m, second=0, microsecond=0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: expected HH:MM (today, local time) or +MINUTES")
    if t.timestamp() <= now:
        raise argparse.ArgumentTypeError(f"{s}: already past (now {datetime.datetime.fromtimestamp(now):%H:%M})")
    return t.timestamp()


def parser():
    p = argparse.ArgumentParser(prog="study.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", help="a study file (e.g. experiments/converged/study.yaml); its groups are run by name")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and measure runs (resumable)")
    r.add_argument("names", nargs="+", help="with --study: its groups; else a spec (experiments/NAME.yaml) or `all`")
    r.add_argument("--rows", "--only", dest="only", help="comma-separated run ids (or labels)")
    r.add_argument("--ranks", type=positive_int, default=2, help="MPI ranks (default 2)")
    r.add_argument("--epochs", type=positive_int, help="training epochs (default: the spec's budget, the study's config)")
    r.add_argument("--iw-samples", type=positive_int, help="importance samples K for NLL_test")
    r.add_argument("--limit-data", type=positive_int, help="N examples only: the first N for training (data.limit), "
                   "N spread over the split for eval/estimate (--limit); V capped at N")
    r.add_argument("--data-dir", help="dataset folder (default: $VAEAS_DATA_DIR, else ../shared/data)")
    r.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun",
                   help="mpirun: scripts/mpirun.sh -n R (default); srun: srun --mpi=pmix -n R BIN in a SLURM allocation")
    r.add_argument("--force", action="store_true", help="redo runs that are done, from scratch")
    r.add_argument("--dry-run", action="store_true", help="print the commands only")
    r.add_argument("--deadline", type=deadline, help="HH:MM (today, local time) or +MINUTES: start no run whose "
                   "expected time (the longest finished run of its group, else of the study) would end after it; "
                   "for a machine or SLURM allocation that ends then (the runs not started are listed)")
    sub.add_parser("list", help="the studies, their groups and how many runs are done")
    s = sub.add_parser("summary", help="one JSON line per done run")
    s.add_argument("names", nargs="*", help="specs (default: the --study file, else every spec)")
    rep = sub.add_parser("report", help="converged: docs/RESULTS.md's section; full: docs/RESULTS-full-N.md; "
                         "csv: docs/results.csv; results: docs/RESULTS.md's eq. 14 tables from docs/results.csv")
    rep.add_argument("which", choices=["converged", "full", "csv", "results"])
    rep.add_argument("--out", help="the output file, relative to the repository root (full: default "
                     "docs/RESULTS-full-N.md when every row is run on all the data, else runs/experiments/REPORT-partial.md; "
                     "csv: default docs/results.csv; results: the page whose tables to rewrite, default docs/RESULTS.md)")
    return p


def _studies(args, names):
    if args.study:
        return [S.load(args.study)]
    if not names or names == ["all"]:
        return report_full.ordered_specs()
    return [S.load(n) for n in names]


def cmd_list(args):
    studies = [S.load(args.study)] if args.study else report_full.ordered_specs() + [S.load(CONVERGED)]
    for st in studies:
        for g, runs in st.groups.items():
            done = sum(os.path.exists(os.path.join(st.run_dir(r), "done.json")) for r in runs)
            label = g if st.is_spec else f"{st.name}/{g}"
            print(f"{label:24s} {st.kind:9s} {len(runs):2d} run(s), {done} done  {st.raw.get('budget', '')}")
        if st.kind == "reconstruct":
            print(f"{st.name:24s} {st.kind:9s} figures of {', '.join(f['experiment'] for f in st.raw['figures'])}")


def cmd_summary(args):
    for st in _studies(args, args.names):
        for r in st.all_runs():
            p = os.path.join(st.run_dir(r), "done.json")
            if os.path.exists(p):
                with open(p) as f:
                    print(json.dumps(json.load(f)))


def cmd_run(args):
    opts = Options(ranks=args.ranks, epochs=args.epochs, iw_samples=args.iw_samples, limit_data=args.limit_data,
                   launcher=args.launcher, data_dir=args.data_dir, force=args.force, dry_run=args.dry_run,
                   deadline=args.deadline)
    only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
    if args.study:
        st = S.load(args.study)
        return run_study(st, st.select(args.names, only), opts)
    if args.names == ["all"] and only:
        raise S.SpecError("--rows does not apply to `run all`")
    failed = []
    for st in _studies(args, args.names):
        if st.kind == "reconstruct" and only:
            raise S.SpecError(f"--rows does not apply to {st.name} (its rows are named in the spec)")
        failed += run_study(st, st.select(only=only) if st.groups else [], opts)
    return failed


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            cmd_list(args)
        elif args.command == "summary":
            cmd_summary(args)
        elif args.command == "report":
            if args.which == "converged":
                # The section's layout is that study's (its groups lr, levers, table2, …); another study file
                # would overwrite it with empty tables.
                if args.study and os.path.abspath(args.study) != os.path.join(paths.ROOT, CONVERGED):
                    raise S.SpecError(f"`report converged` reports {CONVERGED} only, not {args.study}")
                print("wrote " + report_converged.write(S.load(CONVERGED)))
            elif args.which == "csv":
                path, table, missing = results_csv.write(args.out)
                print(f"wrote {os.path.relpath(path, paths.ROOT)}: {len(table)} run(s), "
                      f"{sum(r['converged'] == 'yes' for r in table)} converged by its criterion")
                by_study = {}
                for name, rid in missing:
                    by_study.setdefault(name, []).append(rid)
                for name, rids in by_study.items():
                    print(f"  {name}: {len(rids)} run(s) with no done.json in their run directory or records: "
                          + ", ".join(rids))
            elif args.which == "results":
                path, n = report_results.write(args.out)
                print(f"wrote {n} tables of {os.path.relpath(path, paths.ROOT)} from docs/results.csv")
            else:
                report_full.write(args.out)
        else:
            failed = cmd_run(args)
            if failed:
                print(f"study.py: {len(failed)} run(s) failed: {', '.join(failed)} (the others ran)", file=sys.stderr)
                return 1
    except (S.SpecError, RunError, FormatError, ValueError) as e:
        print(f"study.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("study.py: interrupted", file=sys.stderr)
        return 130
    return 0
