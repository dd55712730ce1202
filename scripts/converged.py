#!/usr/bin/env python3
"""The converged reduced-N experiments of docs/RESULTS.md (issue #12).

Every run trains configs/mnist-vaeas-small.yaml (N = V = 2000, 300 epochs, 2 ranks) with a few --set
overrides, then measures the checkpoint on the same 2000 training images (eval --split train, estimate
at S = N) and on test images spread over the test set. A run is a directory under runs/converged/;
one with done.json is skipped, one with a training-state checkpoint is resumed (--resume), so the
study can be built over several sittings:

    python3 scripts/converged.py run lr levers          # groups of runs, in order
    python3 scripts/converged.py run table2 --dry-run   # the commands only
    python3 scripts/converged.py list
    python3 scripts/converged.py summary                # one JSON line per finished run

The groups and their runs are in experiments/converged.yaml.
"""
import argparse, json, os, shlex, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "experiments", "converged.yaml")
OUT = os.path.join(ROOT, "runs", "converged")


def load_spec():
    import yaml
    with open(SPEC) as f:
        return yaml.safe_load(f)


def runs_of(spec, groups):
    out = []
    for g in groups:
        if g not in spec["groups"]:
            sys.exit(f"converged.py: unknown group '{g}' (groups: {', '.join(spec['groups'])})")
        for r in spec["groups"][g]:
            out.append((g, r))
    return out


def sh(cmd, log, dry):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    if dry:
        return ""
    t0 = time.time()
    with open(log, "a") as f:
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        f.write(p.stdout)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode} after {time.time() - t0:.0f} s: see {log}\n" + p.stdout[-2000:])
    return p.stdout


def last_json(text, key=None):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            if key is None or key in d:
                return d
    raise RuntimeError("no JSON line in the output")


def finished(d):
    """Training ran to its last epoch: model.safetensors written and the run's summary printed."""
    log = os.path.join(d, "train.log")
    return (os.path.exists(os.path.join(d, "train", "model.safetensors")) and os.path.exists(log)
            and "\nsummary of " in open(log).read())


def run_one(spec, group, run, args):
    rid = run["id"]
    d = os.path.join(OUT, group, rid)
    if os.path.exists(os.path.join(d, "done.json")) and not args.force:
        print(f"{group}/{rid}: done", flush=True)
        return
    os.makedirs(d, exist_ok=True)
    launcher = ["scripts/mpirun.sh", "-n", str(args.ranks)]
    data = ["--data-dir", args.data_dir]
    sets = []
    for k, v in {**spec.get("set", {}), **run.get("set", {})}.items():
        sets += ["--set", f"{k}={v}"]
    t0 = time.time()
    state = os.path.join(d, "train", "checkpoints")
    if finished(d) and not args.force:
        train = None   # trained; only the measurements are missing
    elif os.path.isdir(state) and os.listdir(state) and not args.force:
        train = launcher + ["train", "--resume", os.path.join(d, "train")]
    else:
        train = launcher + ["train", "--config", run.get("config", spec["config"])] + data + sets + [
            "--out", os.path.join(d, "train"), "--overwrite"]
    if train:
        sh(train, os.path.join(d, "train.log"), args.dry_run)
    t1 = time.time()
    ckpt = os.path.join(d, "train", "model.safetensors")
    k = str(run.get("iw_samples", spec["groups_iw_samples"].get(group, spec["iw_samples"])))
    ev_test = sh(launcher + ["eval", "--checkpoint", ckpt] + data + [
        "--split", "test", "--limit", str(spec["test_examples"]), "--iw-samples", k, "--no-classifier", "--json"],
        os.path.join(d, "eval-test.log"), args.dry_run)
    ev_train = sh(launcher + ["eval", "--checkpoint", ckpt] + data + [
        "--split", "train", "--iw-samples", "1", "--json"], os.path.join(d, "eval-train.log"), args.dry_run)
    est = sh(launcher + ["estimate", "--checkpoint", ckpt] + data + ["--json"] + (
        ["--samples", run["estimate_samples"]] if "estimate_samples" in run else []),
        os.path.join(d, "estimate.log"), args.dry_run)
    if args.dry_run:
        return
    est_lines = [json.loads(l) for l in est.splitlines() if l.strip().startswith("{")]
    metrics = [json.loads(l) for l in open(os.path.join(d, "train", "metrics.jsonl"))]
    done = {
        "group": group, "id": rid, "set": {**spec.get("set", {}), **run.get("set", {})},
        "config": run.get("config", spec["config"]), "ranks": args.ranks,
        "train_seconds": t1 - t0, "measure_seconds": time.time() - t1,
        "last_epoch": metrics[-1], "eval_test": last_json(ev_test), "eval_train": last_json(ev_train),
        "estimate": est_lines,
    }
    with open(os.path.join(d, "done.json.tmp"), "w") as f:
        json.dump(done, f, indent=1)
    os.replace(os.path.join(d, "done.json.tmp"), os.path.join(d, "done.json"))
    print(f"{group}/{rid}: done in {time.time() - t0:.0f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("groups", nargs="+")
    r.add_argument("--ranks", type=int, default=2)
    r.add_argument("--data-dir", default=os.environ.get("VAEAS_DATA_DIR", "../shared/data"))
    r.add_argument("--only", help="comma-separated run ids")
    r.add_argument("--force", action="store_true")
    r.add_argument("--dry-run", action="store_true")
    sub.add_parser("list")
    sub.add_parser("summary")
    args = ap.parse_args()
    spec = load_spec()
    if args.cmd == "list":
        for g, runs in spec["groups"].items():
            done = sum(os.path.exists(os.path.join(OUT, g, x["id"], "done.json")) for x in runs)
            print(f"{g:10s} {len(runs):2d} run(s), {done} done")
        return
    if args.cmd == "summary":
        for g, runs in spec["groups"].items():
            for x in runs:
                p = os.path.join(OUT, g, x["id"], "done.json")
                if os.path.exists(p):
                    print(open(p).read().replace("\n", ""))
        return
    failures = 0
    for g, run in runs_of(spec, args.groups):
        if args.only and run["id"] not in args.only.split(","):
            continue
        try:
            run_one(spec, g, run, args)
        except Exception as e:  # one failed run does not stop the rest
            failures += 1
            print(f"{g}/{run['id']}: FAILED: {e}", file=sys.stderr, flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
