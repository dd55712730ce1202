#!/usr/bin/env python3
"""The paper's experiments (Tables 1-3, Figures 2-5) as small sweeps over vaeas-dist.

    python3 scripts/experiments.py list
    python3 scripts/experiments.py run NAME|all [--ranks R] [--epochs E] [--iw-samples K]
                                           [--rows ID,ID] [--limit-data N] [--force] [--dry-run]
                                           [--launcher mpirun|srun] [--data-dir DIR]
    python3 scripts/experiments.py report [--out FILE]

NAME is a spec in experiments/NAME.yaml (format: experiments/README.md). Runs go to
runs/experiments/NAME/ROW/ (train output, eval JSON, logs, done.json); a row with a
done.json is skipped unless --force. `report` reads whatever runs exist and writes
docs/RESULTS-full-N.md, with figures under docs/figures/ (matplotlib is optional: without it the
figures' numbers are still tabulated and the plots are skipped with a message). When the
runs are partial (a row not run, or run with --limit-data), the report goes to
runs/experiments/REPORT-partial.md (figures in runs/experiments/figures/) instead, so the
tracked results are never replaced by validation numbers; `--out docs/RESULTS-full-N.md` forces it.

Needs Python 3 and PyYAML. Paths are taken from the repository root (this file's parent's parent).
"""

import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("experiments.py: PyYAML is missing: python3 -m pip install pyyaml")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_DIR = os.path.join(ROOT, "experiments")
RUNS = os.path.join("runs", "experiments")          # relative to ROOT
DOCS = "docs"
RESULTS = os.path.join(DOCS, "RESULTS-full-N.md")
PARTIAL_REPORT = os.path.join(RUNS, "REPORT-partial.md")
# Figures go beside the report being written (cmd_report sets these).
REPORT_DIR = DOCS
FIGURES = os.path.join(DOCS, "figures")
BIN = os.environ.get("VAEAS_BIN", os.path.join(ROOT, ".build", "release", "vaeas-dist"))

PAPER_EPOCHS = 300
PAPER_K = 4096
# log N of the paper's training sets, for the MI bound log V (V = N).
PAPER_LOG_N = {"table2": math.log(55000), "table3": math.log(24345)}
TABLE_COLUMNS = ["NLL_test", "KL_test", "AU", "NLL_train", "KL_train", "MI", "MD", "SC"]


class ExperimentError(Exception):
    pass


# --------------------------------------------------------------------------- specs

def spec_names():
    return sorted(f[:-5] for f in os.listdir(SPEC_DIR) if f.endswith(".yaml"))


def load_spec(name):
    path = os.path.join(SPEC_DIR, name + ".yaml")
    if not os.path.exists(path):
        raise ExperimentError(f"no experiment '{name}': {os.path.relpath(path, ROOT)} does not exist "
                              f"(known: {', '.join(spec_names())})")
    with open(path) as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise ExperimentError(f"{path}: expected a mapping at the top level")
    spec.setdefault("name", name)
    kind = spec.get("kind", "table")
    spec["kind"] = kind
    if kind in ("table", "estimate"):
        for key in ("config", "rows", "budget"):
            if key not in spec:
                raise ExperimentError(f"{path}: missing key '{key}'")
        seen = set()
        for i, row in enumerate(spec["rows"]):
            if "id" not in row:
                raise ExperimentError(f"{path}: row {i + 1} has no 'id'")
            row["id"] = str(row["id"])
            row.setdefault("label", row["id"])
            row["label"] = str(row["label"])
            row.setdefault("set", {})
            if row["id"] in seen:
                raise ExperimentError(f"{path}: row id '{row['id']}' appears twice")
            seen.add(row["id"])
            if kind == "table" and "paper" in row and len(row["paper"]) != len(spec.get("columns", [])):
                raise ExperimentError(f"{path}: row '{row['id']}' has {len(row['paper'])} paper values "
                                      f"for {len(spec.get('columns', []))} columns")
    elif kind == "reconstruct":
        if "figures" not in spec:
            raise ExperimentError(f"{path}: missing key 'figures'")
    else:
        raise ExperimentError(f"{path}: unknown kind '{kind}' (table, estimate, reconstruct)")
    return spec


def load_base_config(spec):
    with open(os.path.join(ROOT, spec["config"])) as f:
        return yaml.safe_load(f) or {}


def setting(spec, row, key, base=None):
    """The value of a dotted config key for a row: row set, then spec set, then the base config."""
    if key in row.get("set", {}):
        return row["set"][key]
    if key in (spec.get("set") or {}):
        return spec["set"][key]
    base = base if base is not None else load_base_config(spec)
    node = base
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def select_rows(spec, rows_arg):
    if not rows_arg:
        return list(spec["rows"])
    wanted = [r.strip() for r in rows_arg.split(",") if r.strip()]
    chosen = []
    for w in wanted:
        match = [r for r in spec["rows"] if r["id"] == w] or [r for r in spec["rows"] if r["label"] == w]
        if not match:
            raise ExperimentError(f"--rows: '{w}' is not a row of {spec['name']} "
                                  f"(ids: {', '.join(r['id'] for r in spec['rows'])})")
        chosen.append(match[0])
    return chosen


# --------------------------------------------------------------------------- running

def data_dir_for(spec, args):
    if getattr(args, "data_dir", None):
        return args.data_dir
    env = spec.get("data_dir_env", "VAEAS_DATA_DIR")
    if os.environ.get(env):
        return os.environ[env]
    return spec.get("data_dir_default", "../shared/data")


def binary_for_commands():
    """The vaeas-dist binary as commands name it: ./.build/release/vaeas-dist (commands run from
    the repository root), or $VAEAS_BIN as given."""
    if "VAEAS_BIN" in os.environ:
        return BIN
    rel = os.path.relpath(BIN, ROOT)
    return BIN if rel.startswith("..") else "./" + rel


def launcher(args):
    """The launcher and, for srun, the binary; the vaeas-dist subcommand follows.
    scripts/mpirun.sh adds the binary itself; srun needs it named. Since Slurm 22.05, srun
    does not inherit the allocation's --cpus-per-task, so it is passed on when set."""
    if args.launcher == "srun":
        cmd = ["srun", "--mpi=pmix", "-n", str(args.ranks)]
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        if cpus:
            cmd.append(f"--cpus-per-task={cpus}")
        return cmd + [binary_for_commands()]
    return ["scripts/mpirun.sh", "-n", str(args.ranks)]


def row_dir(name, row_id):
    return os.path.join(RUNS, name, row_id)


def quote(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def log(msg):
    print(f"experiments: {msg}", flush=True)


def run_logged(cmd, log_path, dry_run):
    """Runs cmd from ROOT, streams its output to the terminal and to log_path; returns (stdout, seconds)."""
    print("  $ " + quote(cmd), flush=True)
    if dry_run:
        return "", 0.0
    os.makedirs(os.path.dirname(os.path.join(ROOT, log_path)), exist_ok=True)
    t0 = time.time()
    out_lines = []
    with open(os.path.join(ROOT, log_path), "w") as logf:
        logf.write("$ " + quote(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            logf.write(line)
            out_lines.append(line)
            # Progress lines of train are worth seeing; eval/estimate JSON lines too.
            sys.stdout.write("    " + line)
            sys.stdout.flush()
        rc = proc.wait()
    seconds = time.time() - t0
    if rc != 0:
        raise ExperimentError(f"command failed with exit code {rc} (log: {log_path}):\n  {quote(cmd)}")
    return "".join(out_lines), seconds


def last_json(text, what):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ExperimentError(f"{what}: no JSON line in its output")


def all_json(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def read_json(path):
    with open(os.path.join(ROOT, path)) as f:
        return json.load(f)


def write_json(path, obj):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, full)


def last_metrics(run):
    path = os.path.join(ROOT, run, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    last = json.loads(line)
                except json.JSONDecodeError:
                    pass
    return last


def budget(spec, args):
    b = spec.get("budget", {})
    epochs = args.epochs if args.epochs is not None else b.get("epochs")
    k = args.iw_samples if args.iw_samples is not None else b.get("iw_samples", PAPER_K)
    if epochs is None:
        raise ExperimentError(f"{spec['name']}: no epochs in budget and no --epochs")
    return int(epochs), int(k)


def train_command(spec, row, args, epochs, out):
    cmd = launcher(args) + ["train", "--config", spec["config"], "--data-dir", data_dir_for(spec, args)]
    sets = dict(spec.get("set") or {})
    sets.update(row.get("set", {}))
    if args.limit_data:
        # Cutting N also caps V = objective.labels at N: more labels than samples is refused
        # (labels no sample carries). A validation run with --limit-data then has V = N.
        labels = sets.get("objective.labels")
        if labels is not None and int(labels) > args.limit_data:
            sets["objective.labels"] = args.limit_data
    for k, v in sets.items():
        cmd += ["--set", f"{k}={yaml_scalar(v)}"]
    cmd += ["--set", f"train.epochs={epochs}"]
    if args.limit_data:
        cmd += ["--set", f"data.limit={args.limit_data}"]
    cmd += ["--out", out, "--overwrite"]
    return cmd


def checkpoint_command(spec, args, sub, run, extra):
    cmd = launcher(args) + [sub, "--checkpoint", os.path.join(run, "model.safetensors"),
                            "--data-dir", data_dir_for(spec, args)]
    # MI/MD/SC come from the run's metrics.jsonl; eval's own classifier pass
    # over the training set would only repeat them (slowly, at V = N).
    if sub == "eval":
        cmd.append("--no-classifier")
    return cmd + extra


def is_done(name, row_id):
    return os.path.exists(os.path.join(ROOT, row_dir(name, row_id), "done.json"))


def train_row(spec, row, args, epochs):
    """Trains one row into its directory; returns (run dir, train seconds, command)."""
    run = row_dir(spec["name"], row["id"])
    if not args.dry_run:
        for stale in ("done.json", "eval-test.json", "eval-train.json", "estimate.jsonl"):
            p = os.path.join(ROOT, run, stale)
            if os.path.exists(p):
                os.remove(p)
    cmd = train_command(spec, row, args, epochs, run)
    _, seconds = run_logged(cmd, os.path.join(run, "train.log"), args.dry_run)
    return run, seconds, cmd


def skip_if_done(spec, row, args, epochs, k):
    if args.force or not is_done(spec["name"], row["id"]):
        return False
    done = read_json(os.path.join(row_dir(spec["name"], row["id"]), "done.json"))
    if done.get("limit_data", 0) != (args.limit_data or 0):
        # A run on cut data never stands in for one on all of it (nor the reverse): redo it.
        log(f"{spec['name']}/{row['id']}: done with --limit-data {done.get('limit_data', 0) or 'none'}, "
            f"asked {args.limit_data or 'none'}: rerunning")
        return False
    note = ""
    differs = [f"{key} {done.get(key)} (asked {want})"
               for key, want in (("epochs", epochs), ("iw_samples", k), ("ranks", args.ranks),
                                 ("limit_data", args.limit_data or 0))
               if key in done and want is not None and done.get(key) != want]
    if differs:
        note = "; NOTE it was run with " + ", ".join(differs)
    log(f"{spec['name']}/{row['id']}: done already (done.json), skipped; --force reruns it{note}")
    return True


def run_table_row(spec, row, args):
    epochs, k = budget(spec, args)
    if skip_if_done(spec, row, args, epochs, k):
        return
    log(f"{spec['name']}/{row['id']} ({row['label']}): train {epochs} epoch(s) on {args.ranks} rank(s), "
        f"then eval (test K = {k}; train K = 1)")
    t0 = time.time()
    run, train_s, train_cmd = train_row(spec, row, args, epochs)
    test_split = setting(spec, row, "data.test_split") or "test"
    lim = ["--limit", str(args.limit_data)] if args.limit_data else []
    test_cmd = checkpoint_command(spec, args, "eval", run,
                                  ["--split", test_split, "--iw-samples", str(k), "--json"] + lim)
    out, test_s = run_logged(test_cmd, os.path.join(run, "eval-test.log"), args.dry_run)
    train_limit = min(10000, args.limit_data) if args.limit_data else 10000
    train_eval_cmd = checkpoint_command(spec, args, "eval", run,
                                        ["--split", "train", "--limit", str(train_limit), "--iw-samples", "1", "--json"])
    out2, train_eval_s = run_logged(train_eval_cmd, os.path.join(run, "eval-train.log"), args.dry_run)
    if args.dry_run:
        return
    test = last_json(out, "eval --split " + test_split)
    train = last_json(out2, "eval --split train")
    write_json(os.path.join(run, "eval-test.json"), test)
    write_json(os.path.join(run, "eval-train.json"), train)
    done = {
        "experiment": spec["name"], "row": row["id"], "label": row["label"],
        "epochs": epochs, "iw_samples": k, "ranks": args.ranks, "limit_data": args.limit_data or 0,
        "launcher": args.launcher, "data_dir": data_dir_for(spec, args),
        "train_seconds": train_s, "eval_test_seconds": test_s, "eval_train_seconds": train_eval_s,
        "wall_seconds": time.time() - t0,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commands": [quote(train_cmd), quote(test_cmd), quote(train_eval_cmd)],
        "test": test, "train": train,
    }
    write_json(os.path.join(run, "done.json"), done)
    log(f"{spec['name']}/{row['id']}: NLL_test {test['nll']:.2f}  KL_test {test['kl']:.2f}  AU {test['active_units']}  "
        f"NLL_train {train['recon']:.2f}  KL_train {train['kl']:.2f}  "
        f"(train {train_s:.0f} s, eval {test_s + train_eval_s:.0f} s)")


def run_estimate_row(spec, row, args):
    epochs, _ = budget(spec, args)
    if skip_if_done(spec, row, args, epochs, None):
        return
    est = spec.get("estimate", {})
    split = est.get("split", "train")
    log(f"{spec['name']}/{row['id']} ({row['label']}): train {epochs} epoch(s) on {args.ranks} rank(s), then estimate")
    t0 = time.time()
    run, train_s, train_cmd = train_row(spec, row, args, epochs)
    if args.dry_run:
        n = args.limit_data or 50000
    else:
        m = last_metrics(run)
        n = int(m["samples"]) if m and "samples" in m else (args.limit_data or 50000)
    # Clip the sample counts to N; the largest count is then N itself (the paper's 55000 = its N).
    counts = sorted({min(int(s), n) for s in est.get("samples", [100, 500, 1000, 5000, 10000, 50000])})
    extra = ["--split", split, "--samples", ",".join(map(str, counts)), "--json"]
    if args.limit_data:
        extra += ["--limit", str(args.limit_data)]
    cmd = checkpoint_command(spec, args, "estimate", run, extra)
    out, est_s = run_logged(cmd, os.path.join(run, "estimate.log"), args.dry_run)
    if args.dry_run:
        return
    lines = [j for j in all_json(out) if "samples" in j]
    if not lines:
        raise ExperimentError(f"estimate for {run}: no JSON lines in its output")
    with open(os.path.join(ROOT, run, "estimate.jsonl"), "w") as f:
        for j in lines:
            f.write(json.dumps(j, sort_keys=True) + "\n")
    m = last_metrics(run) or {}
    done = {
        "experiment": spec["name"], "row": row["id"], "label": row["label"],
        "epochs": epochs, "ranks": args.ranks, "limit_data": args.limit_data or 0, "launcher": args.launcher,
        "data_dir": data_dir_for(spec, args), "samples": counts,
        "train_seconds": train_s, "estimate_seconds": est_s, "wall_seconds": time.time() - t0,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commands": [quote(train_cmd), quote(cmd)],
        "classifier": {k: m.get(k) for k in ("mi", "md", "sc", "kl", "labels", "samples")},
        "estimate": lines,
    }
    write_json(os.path.join(run, "done.json"), done)
    log(f"{spec['name']}/{row['id']}: classifier MI {m.get('mi', float('nan')):.3f} MD {m.get('md', float('nan')):.3f}; "
        f"Monte Carlo at S = {lines[-1]['samples']}: MI {lines[-1]['mi']:.3f} MD {lines[-1]['md']:.3f} "
        f"(train {train_s:.0f} s, estimate {est_s:.0f} s)")


def binary_subcommand_help(sub):
    """The help text of `vaeas-dist SUB --help`, or None if the binary lacks SUB."""
    if not os.access(BIN, os.X_OK):
        raise ExperimentError(f"{BIN} is missing: build it with `swift build -c release` (or set VAEAS_BIN)")
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    listed = any(line.strip().split(" ")[0] == sub for line in (p.stdout + p.stderr).splitlines())
    if not listed:
        return None
    p = subprocess.run([BIN, sub, "--help"], capture_output=True, text=True)
    return p.stdout + p.stderr if p.returncode == 0 else None


def run_reconstruct(spec, args):
    help_text = binary_subcommand_help("reconstruct")
    if help_text is None:
        log(f"{spec['name']}: SKIPPED: {BIN} has no `reconstruct` subcommand, so Figures 4 and 5 cannot be drawn. "
            "Build a vaeas-dist that has it, then rerun `python3 scripts/experiments.py run figure45`. "
            "(Other experiments are unaffected.)")
        return "skipped"
    for fig in spec["figures"]:
        src = load_spec(fig["experiment"])
        for row_id in fig["rows"]:
            row = select_rows(src, row_id)[0]
            if not is_done(src["name"], row["id"]) or args.force:
                log(f"{spec['name']}/{fig['id']}: the checkpoint of {src['name']}/{row['id']} is needed; running that row")
                run_table_row(src, row, args)
            run = row_dir(src["name"], row["id"])
            for split in spec.get("splits", ["test", "train"]):
                png = os.path.join(RUNS, spec["name"], fig["id"], f"{row['id']}-{split}.png")
                os.makedirs(os.path.join(ROOT, os.path.dirname(png)), exist_ok=True)
                cmd = [BIN, "reconstruct", "--checkpoint", os.path.join(run, "model.safetensors"),
                       "--split", split, "--out", png]
                if "--data-dir" in help_text:
                    cmd += ["--data-dir", data_dir_for(src, args)]
                run_logged(cmd, os.path.join(RUNS, spec["name"], fig["id"], f"{row['id']}-{split}.log"), args.dry_run)
    return "done"


KIND_ORDER = {"table": 0, "estimate": 1, "reconstruct": 2}


def ordered_specs():
    return sorted((load_spec(n) for n in spec_names()), key=lambda sp: (KIND_ORDER[sp["kind"]], sp["name"]))


def cmd_run(args):
    if args.name == "all":
        if args.rows:
            raise ExperimentError("--rows does not apply to `run all`")
        failed = []
        for spec in ordered_specs():
            log(f"=== {spec['name']}")
            try:
                run_one(spec, args)
            except ExperimentError as e:
                print(f"experiments.py: error in {spec['name']}: {e}", file=sys.stderr)
                failed.append(spec["name"])
        if failed:
            raise ExperimentError(f"failed: {', '.join(failed)} (the others ran)")
        return
    run_one(load_spec(args.name), args)


def run_one(spec, args):
    if not args.dry_run and spec["kind"] != "reconstruct" and not os.access(BIN, os.X_OK):
        raise ExperimentError(f"{BIN} is missing: build it with `swift build -c release` (or set VAEAS_BIN)")
    if spec["kind"] == "reconstruct":
        if args.rows:
            raise ExperimentError("--rows does not apply to figure45 (its rows are named in the spec)")
        run_reconstruct(spec, args)
        return
    rows = select_rows(spec, args.rows)
    t0 = time.time()
    for row in rows:
        if spec["kind"] == "table":
            run_table_row(spec, row, args)
        else:
            run_estimate_row(spec, row, args)
    if not args.dry_run:
        log(f"{spec['name']}: {len(rows)} row(s) in {time.time() - t0:.0f} s; "
            "`python3 scripts/experiments.py report` writes the report")


def cmd_list(args):
    for name in spec_names():
        spec = load_spec(name)
        rows = spec.get("rows") or [r for f in spec.get("figures", []) for r in f["rows"]]
        done = sum(1 for r in spec.get("rows", []) if is_done(name, r["id"]))
        b = spec.get("budget", {})
        print(f"{name:10s} {spec['kind']:11s} {len(rows):2d} row(s), {done} done  budget {b}  {spec.get('title', '')}")


# --------------------------------------------------------------------------- report

def fmt(v, column=None):
    if v is None:
        return "–"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if column == "AU" or isinstance(v, int):
        return str(int(round(v)))
    return f"{v:.2f}"


def fmt_seconds(s):
    if s is None:
        return "–"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def ours_row(spec, row):
    """Our numbers for a table row, keyed by column, plus done.json; None if not run."""
    run = row_dir(spec["name"], row["id"])
    path = os.path.join(ROOT, run, "done.json")
    if not os.path.exists(path):
        return None, None
    done = read_json(os.path.join(run, "done.json"))
    test, train = done["test"], done["train"]
    vals = {"NLL_test": test.get("nll"), "KL_test": test.get("kl"), "AU": test.get("active_units"),
            "NLL_train": train.get("recon"), "KL_train": train.get("kl")}
    m = last_metrics(run) or {}
    for col, key in (("MI", "mi"), ("MD", "md"), ("SC", "sc")):
        vals[col] = m.get(key)
    vals["_labels"] = m.get("labels")
    vals["_samples"] = m.get("samples")
    return vals, done


def row_alpha_beta(spec, row, base):
    kind = setting(spec, row, "objective.kind", base)
    if kind != "vaeas":
        return None, None
    return setting(spec, row, "objective.alpha", base), setting(spec, row, "objective.beta", base)


def full_budget_commands(spec):
    fb = spec.get("full_budget", {})
    epochs = fb.get("epochs", PAPER_EPOCHS)
    k = fb.get("iw_samples")
    kk = f" --iw-samples {k}" if k else ""
    name = spec["name"]
    row = spec["rows"][0]

    class A:  # the arguments train_command reads
        pass
    a = A()
    a.launcher, a.ranks, a.limit_data, a.data_dir = "mpirun", 8, 0, "$VAEAS_DATA_DIR"
    cmd = train_command(spec, row, a, epochs, row_dir(name, row["id"]))
    one = quote(cmd).replace("'$VAEAS_DATA_DIR'", '"$VAEAS_DATA_DIR"')
    # The same row as `--launcher srun` runs it inside the sbatch job below
    # (SLURM_CPUS_PER_TASK=8 there): srun needs the binary named.
    srun = ["srun", "--mpi=pmix", "-n", "8", "--cpus-per-task=8", "./.build/release/vaeas-dist"] + cmd[3:]
    srun_one = quote(srun).replace("'$VAEAS_DATA_DIR'", '"$VAEAS_DATA_DIR"')
    return [
        f"python3 scripts/experiments.py run {name} --ranks 8 --epochs {epochs}{kk}",
        f"# which runs, per row, e.g. row '{row['id']}':",
        one,
        "# on SLURM (srun launches the ranks inside the allocation; set --time for your site):",
        f"sbatch --nodes=2 --ntasks-per-node=4 --cpus-per-task=8 --export=ALL,OPENBLAS_NUM_THREADS=8 "
        f"--wrap \"python3 scripts/experiments.py run {name} --launcher srun --ranks 8 --epochs {epochs}{kk}\"",
        "# which runs, per row, e.g.:",
        srun_one,
    ]


def describe_seq(seq):
    vals = [v for v in seq if v is not None]
    if not vals:
        return "–"
    return "→".join(fmt(v) if not isinstance(v, int) else str(v) for v in vals)


def trend(seq):
    vals = [v for v in seq if v is not None]
    if len(vals) < 2:
        return "n/a"
    if all(b == a for a, b in zip(vals, vals[1:])):
        return "constant"
    if all(b <= a for a, b in zip(vals, vals[1:])):
        return "non-increasing"
    if all(b >= a for a, b in zip(vals, vals[1:])):
        return "non-decreasing"
    return "not monotone"


def au_seq(vals):
    return [None if v is None else int(v) for v in vals]


def table_facts(spec, results, base):
    """Factual bullets for one table, computed from our runs and the paper's numbers."""
    facts = []
    cols = spec.get("columns", [])
    done = [(row, ours, d) for row, ours, d in results if ours is not None]
    if not done:
        return facts
    epochs = sorted({d["epochs"] for _, _, d in done})
    ks = sorted({d["iw_samples"] for _, _, d in done})
    limits = sorted({d.get("limit_data", 0) for _, _, d in done})
    fb = spec.get("full_budget", {})
    facts.append(f"Budget: {', '.join(map(str, epochs))} epoch(s) (paper {fb.get('epochs', PAPER_EPOCHS)}), "
                 f"NLL_test with K = {', '.join(map(str, ks))} importance samples (paper {PAPER_K}).")
    if any(limits):
        facts.append(f"Training data cut to the first {', '.join(map(str, limits))} examples (--limit-data); "
                     "test and train evaluations on that many examples spread over each split (eval --limit). "
                     "These are validation numbers, not results.")
    if spec.get("dataset_note"):
        facts.append(f"Data: {spec['dataset_note']}.")

    def paper(row, col):
        if "paper" not in row or col not in cols:
            return None
        return row["paper"][cols.index(col)]

    if spec["name"] == "table1" or cols == ["AU"]:
        rows = [(row, ours) for row, ours, _ in done]
        ours_au = au_seq([o["AU"] for _, o in rows])
        paper_au = [paper(r, "AU") for r, _ in rows]
        depth = "/".join(r["label"] for r, _ in rows)
        facts.append(f"AU by decoder depth {depth}: ours {describe_seq(ours_au)} ({trend(ours_au)}), "
                     f"paper {describe_seq(paper_au)} ({trend(paper_au)}).")
        nll = [o["NLL_test"] for _, o in rows]
        facts.append(f"NLL_test by decoder depth {depth} (not in the paper's table): ours {describe_seq(nll)}.")
        missing = [r["id"] for r, o, _ in results if o is None]
        if missing:
            facts.append(f"Not run: decoder depth {', '.join(missing)}.")
        return facts

    by_id = {row["id"]: (row, ours) for row, ours, _ in done}
    # VAE against VAE-AS alpha = beta = 1.
    vae = next(((r, o) for r, o in by_id.values() if row_alpha_beta(spec, r, base) == (None, None)), None)
    ab11 = next(((r, o) for r, o in by_id.values() if row_alpha_beta(spec, r, base) == (1.0, 1.0)), None)
    if vae and ab11:
        d_ours = ab11[1]["NLL_test"] - vae[1]["NLL_test"]
        d_paper = paper(ab11[0], "NLL_test") - paper(vae[0], "NLL_test")
        same = abs(d_ours) < 1e-9 and ab11[1]["AU"] == vae[1]["AU"]
        why = ("ours are identical, as they must be: at α = β the encoder and decoder follow the plain ELBO's "
               "gradients bit for bit, and the classifier only measures; the paper's VAE-AS row differs from its VAE row"
               if same else "at α = β the objective is the plain ELBO, so our difference comes from float "
               "summation order or a different run set-up, not the objective")
        facts.append(f"VAE-AS α = β = 1 minus VAE, NLL_test: ours {d_ours:+.2f} nats, paper {d_paper:+.2f}; "
                     f"AU ours {ab11[1]['AU']} vs {vae[1]['AU']}, paper {paper(ab11[0], 'AU')} vs {paper(vae[0], 'AU')}: "
                     f"{why}.")
    # Sweeps.
    vaeas = [(r, o) for r, o in by_id.values() if row_alpha_beta(spec, r, base)[0] is not None]
    beta_sweep = sorted([(r, o) for r, o in vaeas if row_alpha_beta(spec, r, base)[0] == 1.0],
                        key=lambda ro: row_alpha_beta(spec, ro[0], base)[1])
    alpha_sweep = sorted([(r, o) for r, o in vaeas if row_alpha_beta(spec, r, base)[1] == 1.0],
                         key=lambda ro: row_alpha_beta(spec, ro[0], base)[0])
    for label, sweep, idx in (("β (α = 1)", beta_sweep, 1), ("α (β = 1)", alpha_sweep, 0)):
        if len(sweep) < 2:
            continue
        xs = "/".join(f"{row_alpha_beta(spec, r, base)[idx]:g}" for r, _ in sweep)
        for col in ("KL_test", "AU", "MI"):
            o = [ov[col] for _, ov in sweep]
            p = [paper(r, col) for r, _ in sweep]
            if col == "AU":
                o = au_seq(o)
            facts.append(f"{col} as {label} runs {xs}: ours {describe_seq(o)} ({trend(o)}), "
                         f"paper {describe_seq(p)} ({trend(p)}).")
        gap_o = [ov["NLL_test"] - ov["NLL_train"] for _, ov in sweep]
        gap_p = [paper(r, "NLL_test") - paper(r, "NLL_train") for r, _ in sweep]
        facts.append(f"Generalisation gap NLL_test − NLL_train as {label} runs {xs}: ours {describe_seq(gap_o)}, "
                     f"paper {describe_seq(gap_p)}.")
    # MI bound.
    mis = [(r, o) for r, o in vaeas if o.get("MI") is not None and o.get("_labels")]
    if mis:
        def vv(o):  # the bound of the true MI: log min(V, N)
            return min(o["_labels"], o["_samples"] or o["_labels"])
        worst = max(mis, key=lambda ro: ro[1]["MI"] - math.log(vv(ro[1])))
        v = vv(worst[1])
        labels, n = worst[1]["_labels"], worst[1]["_samples"] or worst[1]["_labels"]
        excess = worst[1]["MI"] - math.log(v)
        ok = "stays ≤" if excess <= 1e-6 else "EXCEEDS"
        sizes = f"V = N = {v}" if labels == n else f"V = {labels} labels, N = {n} training samples"
        facts.append(f"Classifier MI {ok} log min(V, N) in every VAE-AS row: largest MI {max(o['MI'] for _, o in mis):.2f} "
                     f"against {'log V' if labels <= n else 'log N'} = {math.log(v):.2f} ({sizes}); the paper's bound is log N = "
                     f"{PAPER_LOG_N.get(spec['name'], float('nan')):.2f}, its largest MI "
                     f"{max((paper(r, 'MI') or 0) for r, _ in vaeas):.2f}.")
    # Best NLL_test.
    best_o = min(by_id.values(), key=lambda ro: ro[1]["NLL_test"])
    run_rows = [r for r, _ in by_id.values() if paper(r, "NLL_test") is not None]
    if run_rows:
        best_p = min(run_rows, key=lambda r: paper(r, "NLL_test"))
        facts.append(f"Best NLL_test among the rows run: ours {best_o[1]['NLL_test']:.2f} ({row_name(spec, best_o[0], base)}), "
                     f"paper {paper(best_p, 'NLL_test'):.2f} ({row_name(spec, best_p, base)}).")
    missing = [r["id"] for r, o, _ in results if o is None]
    if missing:
        facts.append(f"Not run: {', '.join(missing)}.")
    return facts


def row_name(spec, row, base):
    a, b = row_alpha_beta(spec, row, base)
    if a is None:
        return row.get("method", row["label"])
    return f"α = {a:g}, β = {b:g}"


def report_table(spec, lines, all_facts):
    base = load_base_config(spec)
    cols = spec.get("columns", [])
    results = []
    for row in spec["rows"]:
        ours, done = ours_row(spec, row)
        results.append((row, ours, done))
    lines.append(f"## {spec['title']}")
    lines.append("")
    lines.append(f"Spec: `experiments/{spec['name']}.yaml`; base config `{spec['config']}`"
                 + (f" with {', '.join(f'`{k}={yaml_scalar(v)}`' for k, v in spec['set'].items())}" if spec.get("set") else "")
                 + f". Data: {spec.get('dataset_note', '')}.")
    ran = [d for _, o, d in results if o is not None]
    if ran:
        total = sum(d["wall_seconds"] for d in ran)
        lines.append("")
        def values(key):
            return ", ".join(str(v) for v in sorted({d.get(key, 0) for d in ran}))
        lines.append(f"Our runs: {len(ran)} of {len(results)} rows; epochs {values('epochs')}, "
                     f"ranks {values('ranks')}, NLL_test on the test split with K = {values('iw_samples')}"
                     + (f", training data cut to the first {values('limit_data')} examples (validation only)"
                        if any(d.get('limit_data') for d in ran) else "")
                     + f"; total wall time {fmt_seconds(total)} (training + both evaluations). "
                     "NLL_train and KL_train are `eval --split train --limit 10000 --iw-samples 1`'s `recon` and `kl` "
                     "(single-sample reconstruction NLL and KL over 10000 training examples spread over the split, every "
                     "⌊N/10000⌋-th); MI, MD and SC "
                     "are the last epoch's `mi`, `md`, `sc` in metrics.jsonl (classifier estimates averaged over that "
                     "training epoch).")
    else:
        lines.append("")
        lines.append("Not run yet.")
    lines.append("")
    lines.append("Cells are **ours / paper**.")
    lines.append("")
    if cols == ["AU"]:
        head = [spec.get("row_header", "row"), "AU ours / paper", "NLL_test (ours)", "epochs", "wall"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
        for row, ours, done in results:
            p = row.get("paper", [None])[0]
            if ours is None:
                lines.append(f"| {row['label']} | not run / {fmt(p, 'AU')} | not run | | |")
            else:
                lines.append(f"| {row['label']} | {fmt(ours['AU'], 'AU')} / {fmt(p, 'AU')} | {fmt(ours['NLL_test'])} | "
                             f"{done['epochs']} | {fmt_seconds(done['wall_seconds'])} |")
    else:
        head = ["Method", "α", "β"] + cols + ["epochs", "wall"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|---:|---:|" + "|".join("---:" for _ in cols + ["e", "w"]) + "|")
        for row, ours, done in results:
            a, b = row_alpha_beta(spec, row, base)
            method = row.get("method", "VAE-AS" if a is not None else "VAE")
            cells = [method, "–" if a is None else f"{a:g}", "–" if b is None else f"{b:g}"]
            for i, col in enumerate(cols):
                p = row.get("paper", [None] * len(cols))[i]
                if ours is None:
                    cells.append(f"not run / {fmt(p, col)}")
                else:
                    o = ours.get(col) if a is not None or col not in ("MI", "MD", "SC") else None
                    cells.append(f"{fmt(o, col)} / {fmt(p, col)}")
            cells += [str(done["epochs"]) if done else "", fmt_seconds(done["wall_seconds"]) if done else ""]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Full budget (the paper's epochs and K = 4096), on a cluster:")
    lines.append("")
    lines.append("```")
    lines += full_budget_commands(spec)
    lines.append("```")
    lines.append("")
    facts = table_facts(spec, results, base)
    if facts:
        all_facts.append((spec["title"], facts))


def load_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def report_estimate(spec, lines, all_facts, plt):
    lines.append(f"## {spec['title']}")
    lines.append("")
    lines.append(f"Spec: `experiments/{spec['name']}.yaml`; base config `{spec['config']}` with "
                 + ", ".join(f"`{k}={yaml_scalar(v)}`" for k, v in (spec.get("set") or {}).items())
                 + f". Data: {spec.get('dataset_note', '')}. Monte Carlo: `vaeas-dist estimate --split train` "
                 "(Hoffman & Johnson, one z per example, S examples). Classifier: the last epoch's `mi`, `md` in metrics.jsonl.")
    lines.append("")
    runs = []
    for row in spec["rows"]:
        p = os.path.join(ROOT, row_dir(spec["name"], row["id"]), "done.json")
        if os.path.exists(p):
            runs.append((row, read_json(os.path.join(row_dir(spec["name"], row["id"]), "done.json"))))
        else:
            lines.append(f"- {row['label']}: not run")
    # `estimate` also prints a line for the classifier (classifier_mi, …); the
    # Monte Carlo curve is the lines with a sample count.
    for _, d in runs:
        d["estimate"] = [e for e in d.get("estimate", []) if "samples" in e]
    if not runs:
        lines.append("")
        lines.append("Not run yet.")
        lines.append("")
        return
    lines.append("")
    for row, d in runs:
        c = d["classifier"]
        lines.append(f"**{row['label']}** — {d['epochs']} epoch(s), {d['ranks']} rank(s), N = {c.get('samples')}, "
                     f"V = {c.get('labels')}"
                     + (f", data cut to {d['limit_data']}" if d.get("limit_data") else "")
                     + f"; wall {fmt_seconds(d['wall_seconds'])} (estimate {fmt_seconds(d['estimate_seconds'])}). "
                     f"Classifier: Î = {fmt(c.get('mi'))}, MD̂ = {fmt(c.get('md'))}, Î + MD̂ = "
                     f"{fmt((c.get('mi') or 0) + (c.get('md') or 0))}, SC = {fmt(c.get('sc'))}, training KL = {fmt(c.get('kl'))}.")
        lines.append("")
        lines.append("| S | MI (MC) | MD (MC) | MI + MD (MC) | mean KL | seconds |")
        lines.append("|---:|---:|---:|---:|---:|---:|")
        for e in d["estimate"]:
            lines.append(f"| {e['samples']} | {fmt(e['mi'])} | {fmt(e['md'])} | {fmt(e['mi_plus_md'])} | "
                         f"{fmt(e['mean_kl'])} | {e['seconds']:.1f} |")
        lines.append("")
    if plt is None:
        lines.append("Plots skipped: matplotlib is not installed (`python3 -m pip install matplotlib`, then rerun "
                     "`python3 scripts/experiments.py report`).")
        lines.append("")
    else:
        os.makedirs(os.path.join(ROOT, FIGURES), exist_ok=True)
        colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, title in ((axes[0], "mi", "I(z, x)"), (axes[1], "md", "KL(q(z) || p(z))")):
            for i, (row, d) in enumerate(runs):
                s = [e["samples"] for e in d["estimate"]]
                ax.plot(s, [e[key] for e in d["estimate"]], "o-", color=colors[i % 4], label=f"Monte Carlo, {row['label']}")
                v = d["classifier"].get(key)
                if v is not None:
                    ax.axhline(v, color=colors[i % 4], ls="--", label=f"classifier, {row['label']}")
            ax.set_xscale("log")
            ax.set_xlabel("Monte Carlo samples S")
            ax.set_title(title)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(ROOT, FIGURES, "figure2.png"), dpi=110)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for i, (row, d) in enumerate(runs):
            s = [e["samples"] for e in d["estimate"]]
            ax.plot(s, [e["mi_plus_md"] for e in d["estimate"]], "o-", color=colors[i % 4], label=f"MI + MD (MC), {row['label']}")
            ax.plot(s, [e["mean_kl"] for e in d["estimate"]], "s:", color=colors[i % 4], label=f"mean KL, {row['label']}")
            c = d["classifier"]
            if c.get("mi") is not None:
                ax.axhline(c["mi"] + c["md"], color=colors[i % 4], ls="--", label=f"Î + MD̂ (classifier), {row['label']}")
        ax.set_xscale("log")
        ax.set_xlabel("Monte Carlo samples S")
        ax.set_title("MI + MD against the mean KL")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(ROOT, FIGURES, "figure3.png"), dpi=110)
        plt.close(fig)
        lines.append("![Figure 2: MI and MD, classifier vs Monte Carlo](figures/figure2.png)")
        lines.append("")
        lines.append("![Figure 3: MI + MD against the mean KL](figures/figure3.png)")
        lines.append("")
    lines.append("Full budget (the paper's section-5.2 run: 120 epochs):")
    lines.append("")
    lines.append("```")
    lines += full_budget_commands(spec)
    lines.append("```")
    lines.append("")
    facts = []
    for row, d in runs:
        c, est = d["classifier"], d["estimate"]
        big, small = est[-1], est[0]
        if c.get("mi") is not None:
            facts.append(f"{row['label']}: classifier Î {c['mi']:.2f} vs Monte Carlo MI {big['mi']:.2f} at S = {big['samples']} "
                         f"(and {small['mi']:.2f} at S = {small['samples']}); classifier MD̂ {c['md']:.2f} vs MC MD "
                         f"{big['md']:.2f} at S = {big['samples']} ({small['md']:.2f} at S = {small['samples']}).")
            if c.get("labels"):
                v, n = c["labels"], c.get("samples") or c["labels"]
                facts.append(f"{row['label']}: Î {c['mi']:.2f} against log V = {math.log(v):.2f} (the estimate's bound, "
                             f"V = {v}) and log N = {math.log(n):.2f} (the true MI's bound, N = {n}): "
                             f"{'≤ both' if c['mi'] <= math.log(min(v, n)) + 1e-6 else ('≤ log V only' if c['mi'] <= math.log(v) + 1e-6 else 'ABOVE log V')}"
                             "; MC MI ≤ log S at every S: "
                             f"{'yes' if all(e['mi'] <= math.log(e['samples']) + 1e-6 for e in est) else 'NO'}.")
        facts.append(f"{row['label']}: MC MI + MD {big['mi_plus_md']:.2f} vs mean KL {big['mean_kl']:.2f} at S = {big['samples']}.")
        if d.get("epochs") != spec.get("full_budget", {}).get("epochs"):
            facts.append(f"{row['label']}: trained {d['epochs']} epoch(s), the paper 120.")
    if len(runs) >= 2:
        a, b = runs[0][1]["estimate"], runs[1][1]["estimate"]
        if [(e["mi"], e["md"]) for e in a] == [(e["mi"], e["md"]) for e in b]:
            facts.append(f"The Monte Carlo estimates of '{runs[0][0]['label']}' and '{runs[1][0]['label']}' are identical: "
                         "at α = β the classifier does not act on the encoder, so both runs train the same VAE and only "
                         "the classifier (V) differs.")
    all_facts.append((spec["title"], facts))


def report_reconstruct(spec, lines, all_facts):
    lines.append(f"## {spec['title']}")
    lines.append("")
    try:
        has = binary_subcommand_help("reconstruct") is not None
    except ExperimentError:
        has = False
    any_png = False
    splits = spec.get("splits", ["test", "train"])
    for fig in spec["figures"]:
        lines.append(f"### {fig['title']}")
        lines.append("")
        src = load_spec(fig["experiment"])
        base = load_base_config(src)
        rows = [select_rows(src, r)[0] for r in fig["rows"]]
        heads = []
        for row in rows:
            a, b = row_alpha_beta(src, row, base)
            heads.append(f"α = {a:g}, β = {b:g} (`{src['name']}/{row['id']}`)")
        lines.append("| split | " + " | ".join(heads) + " |")
        lines.append("|---|" + "|".join(":---:" for _ in rows) + "|")
        for split in splits:
            cells = []
            for row in rows:
                png = os.path.join(RUNS, spec["name"], fig["id"], f"{row['id']}-{split}.png")
                if os.path.exists(os.path.join(ROOT, png)):
                    os.makedirs(os.path.join(ROOT, FIGURES), exist_ok=True)
                    dst = os.path.join(FIGURES, f"{fig['id']}-{row['id']}-{split}.png")
                    shutil.copyfile(os.path.join(ROOT, png), os.path.join(ROOT, dst))
                    cells.append(f"![{fig['id']} {row['id']} {split}]({os.path.relpath(dst, REPORT_DIR)})")
                    any_png = True
                else:
                    cells.append("not run")
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
        lines.append("")
    if not has:
        lines.append(f"The `vaeas-dist` binary here ({os.path.relpath(BIN, ROOT)}) has no `reconstruct` subcommand, "
                     "so these figures were skipped.")
        lines.append("")
    elif not any_png:
        lines.append("Run `python3 scripts/experiments.py run figure45` to draw them.")
        lines.append("")


def report_completeness():
    """What keeps the runs from being a whole report: rows not run, rows run on cut data."""
    missing, cut = [], []
    for spec in ordered_specs():
        if spec["kind"] == "reconstruct":
            for fig in spec["figures"]:
                for row_id in fig["rows"]:
                    for split in spec.get("splits", ["test", "train"]):
                        png = os.path.join(RUNS, spec["name"], fig["id"], f"{row_id}-{split}.png")
                        if not os.path.exists(os.path.join(ROOT, png)):
                            missing.append(f"{spec['name']}/{fig['id']}/{row_id}-{split}")
            continue
        for row in spec["rows"]:
            path = os.path.join(row_dir(spec["name"], row["id"]), "done.json")
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(f"{spec['name']}/{row['id']}")
            elif read_json(path).get("limit_data"):
                cut.append(f"{spec['name']}/{row['id']}")
    return missing, cut


def cmd_report(args):
    global REPORT_DIR, FIGURES
    missing, cut = report_completeness()
    partial = bool(missing or cut)
    why = "; ".join(filter(None, [
        f"{len(missing)} row(s) not run ({', '.join(missing[:4])}{', …' if len(missing) > 4 else ''})" if missing else "",
        f"{len(cut)} row(s) run with --limit-data ({', '.join(cut[:4])}{', …' if len(cut) > 4 else ''})" if cut else ""]))
    out_rel = args.out
    if out_rel is None:
        out_rel = PARTIAL_REPORT if partial else RESULTS
        if partial:
            log(f"the runs are partial: {why}; writing {out_rel}, not {RESULTS} "
                f"(`report --out {RESULTS}` writes it there anyway)")
    out_rel = os.path.relpath(os.path.join(ROOT, out_rel), ROOT)
    REPORT_DIR = os.path.dirname(out_rel) or "."
    FIGURES = os.path.join(REPORT_DIR, "figures")
    plt = load_matplotlib()
    lines = ["# Appendix: the paper's experiments at full N and reduced epochs", "",
             "> **Caveat:** at the reduced budgets (fewer epochs than the paper's 300, at full N) the classifier does "
             "not converge (each label is seen once per epoch), so these tables confirm or refute nothing about the "
             "paper's claims. The converged reduced-N experiments are in [RESULTS.md](RESULTS.md).", ""]
    if partial:
        lines += [f"**Partial report**: {why}. These are not the paper's full set of results.", ""]
    lines += [
             f"Generated by `python3 scripts/experiments.py report` on "
             f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from the runs under "
             f"`{RUNS}/`. Specs and budgets: `experiments/README.md`. The paper's numbers are copied from its "
             "Tables 1–3; ours come from `done.json`, `eval-*.json` and `metrics.jsonl` of each run.", ""]
    facts = []
    for spec in ordered_specs():
        if spec["kind"] == "table":
            report_table(spec, lines, facts)
        elif spec["kind"] == "estimate":
            report_estimate(spec, lines, facts, plt)
        else:
            report_reconstruct(spec, lines, facts)
    lines.append("## Differences from the paper")
    lines.append("")
    lines.append("Computed from the runs above by `scripts/experiments.py`.")
    lines.append("")
    if not facts:
        lines.append("- No runs yet, so nothing to compare.")
    for title, fs in facts:
        lines.append(f"**{title}**")
        lines.append("")
        for f in fs:
            lines.append(f"- {f}")
        lines.append("")
    # The interpretation (why our trends differ) is written by hand and kept
    # beside the specs; the facts above are recomputed on every report.
    analysis = os.path.join(ROOT, "experiments", "ANALYSIS.md")
    if os.path.exists(analysis):
        lines.append("## Discussion")
        lines.append("")
        with open(analysis) as f:
            lines.extend(f.read().rstrip().splitlines())
        lines.append("")
    out = os.path.join(ROOT, out_rel)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    log(f"wrote {os.path.relpath(out, ROOT)}")
    if plt is None:
        log("plots skipped: matplotlib is not installed (python3 -m pip install matplotlib)")


# --------------------------------------------------------------------------- CLI

def positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {s}")
    return v


def main(argv=None):
    p = argparse.ArgumentParser(prog="experiments.py", description="The paper's experiments on vaeas-dist.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate the rows of one experiment")
    r.add_argument("name", help="experiment (experiments/NAME.yaml), or `all` (each in turn; a failure does not stop the others)")
    r.add_argument("--ranks", type=positive_int, default=2, help="MPI ranks (default 2)")
    r.add_argument("--epochs", type=positive_int, help="training epochs (default: the spec's budget)")
    r.add_argument("--iw-samples", type=positive_int, help="importance samples K for NLL_test (default: the spec's budget)")
    r.add_argument("--rows", help="comma-separated row ids or labels (default: all)")
    r.add_argument("--limit-data", type=positive_int, help="use only N examples: the first N for training (data.limit), N spread over the split for eval/estimate (--limit)")
    r.add_argument("--data-dir", help="dataset folder (default: $VAEAS_DATA_DIR, else the spec's data_dir_default)")
    r.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun",
                   help="mpirun: scripts/mpirun.sh -n R (default); srun: srun --mpi=pmix -n R inside a SLURM allocation")
    r.add_argument("--force", action="store_true", help="rerun rows that have a done.json")
    r.add_argument("--dry-run", action="store_true", help="print the commands only")
    rep = sub.add_parser("report", help="write docs/RESULTS-full-N.md (or, for partial runs, runs/experiments/REPORT-partial.md) "
                                        "from the runs that exist")
    rep.add_argument("--out", help="output file, relative to the repository root (default: docs/RESULTS-full-N.md when every row "
                                   "is run on all the data, else runs/experiments/REPORT-partial.md); figures go to "
                                   "figures/ beside it")
    sub.add_parser("list", help="list the experiments and how many rows are done")
    args = p.parse_args(argv)
    try:
        {"run": cmd_run, "report": cmd_report, "list": cmd_list}[args.command](args)
    except ExperimentError as e:
        print(f"experiments.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("experiments.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
