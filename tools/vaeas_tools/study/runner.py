"""Running a study: one resume policy for every run directory, decided from the run's own records (done.json,
config.yaml, metrics.jsonl, model.safetensors, checkpoints/), never from a command's prose; each command's exit
status checked and its --json lines parsed; done.json written atomically; one failed run does not stop the rest.

The policy (`decide`), in order:
    skip     done.json exists, made with the same --limit-data (other epochs/K/ranks: skipped, with a note);
             --force, or a done.json of other data, redoes the run from scratch;
    measure  training finished as asked: config.yaml's train.epochs is the last metrics.jsonl epoch (and the
             epochs asked, if any), model.safetensors exists, and the data limit is the one asked;
    resume   train/checkpoints/ holds a checkpoint of a run with the asked data limit: `train --resume DIR`;
    train    a fresh `train … --out DIR --overwrite`."""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

from .. import paths
from ..io import FormatError, json_lines, last_json, read_jsonl, read_yaml, write_json_atomic
from . import commands as C

SKIP, MEASURE, RESUME, TRAIN = "skip", "measure", "resume", "train"
#: A done run's files kept in the study's `records:` (its train directory's, and done.json).
RECORD_FILES = ("config.yaml", "metrics.jsonl", "run.jsonl")
#: Files of an earlier measurement, removed before a fresh training so that none outlives its model.
STALE = ("done.json", "eval-test.json", "eval-train.json", "estimate.jsonl") + tuple(
    C.reconstruct_png(s) for s in C.RECONSTRUCT_SPLITS)
#: What `reconstruct` prints of its picture: "… mean BCE 82.81 nats (KL 15.02), wrote PATH (W×H)".
RECONSTRUCTED = re.compile(r"mean BCE (-?[0-9.]+) nats \(KL (-?[0-9.]+)\), wrote (\S+)")


class RunError(RuntimeError):
    """A command of a run failed (non-zero exit) or printed no JSON record; the message names its log."""


def _saved_config(train_dir):
    try:
        return read_yaml(os.path.join(train_dir, "config.yaml")) or {}
    except (OSError, ValueError):
        return None


def last_metrics(train_dir):
    """The last record of a run's metrics.jsonl (a line cut short by a kill is dropped), or None."""
    try:
        rows = read_jsonl(os.path.join(train_dir, "metrics.jsonl"), missing_ok=True)
    except FormatError:
        return None
    return rows[-1] if rows else None


def training_finished(train_dir, want_epochs=None):
    """Training ran to its last epoch, by the run's records: model.safetensors exists and the last metrics.jsonl
    record is the epoch config.yaml's train.epochs asks for (and want_epochs, when given)."""
    cfg = _saved_config(train_dir)
    last = last_metrics(train_dir)
    try:
        epochs = cfg["train"]["epochs"]
    except (TypeError, KeyError):
        return False
    if last is None or last.get("epoch") != epochs or (want_epochs is not None and epochs != want_epochs):
        return False
    return os.path.exists(os.path.join(train_dir, "model.safetensors"))


def _limit_of(cfg):
    try:
        return int(cfg["data"]["limit"] or 0)
    except (TypeError, KeyError, ValueError):
        return 0


def decide(study, run, opts):
    """(action, note): what `run` does with a run directory now (one of SKIP, MEASURE, RESUME, TRAIN), and why
    when it is not the obvious (a done.json of other settings, a stopped run)."""
    d, t = study.run_dir(run), study.train_dir(run)
    if opts.force:
        return TRAIN, "--force"
    want_epochs = C.epochs(study, opts)
    done_path = os.path.join(d, "done.json")
    if os.path.exists(done_path):
        done = _read_done(done_path)
        if done is not None and int(done.get("limit_data") or 0) == opts.limit_data:
            want = {"epochs": want_epochs, "iw_samples": C.iw_samples(study, run, opts), "ranks": opts.ranks}
            differs = [f"{k} {done[k]} (asked {v})" for k, v in want.items()
                       if k in done and v is not None and done[k] != v]
            return SKIP, "; NOTE it was run with " + ", ".join(differs) if differs else ""
        # A run on cut data never stands in for one on all of it (nor the reverse).
        was = (done or {}).get("limit_data") or "none"
        return TRAIN, f"done with --limit-data {was}, asked {opts.limit_data or 'none'}"
    kept = study.record_dir(run)
    if kept and not os.path.isdir(t):
        # Finished on another machine (run directories do not outlive theirs): its records stand for it.
        done = _read_done(os.path.join(kept, "done.json")) if os.path.exists(os.path.join(kept, "done.json")) else None
        if done is not None and int(done.get("limit_data") or 0) == opts.limit_data:
            return SKIP, f"done before, records in {os.path.relpath(kept, study.root)}"
    cfg = _saved_config(t)
    want_limit = opts.limit_data or int(study.setting(run, "data.limit") or 0)
    same_data = cfg is not None and _limit_of(cfg) == want_limit
    if same_data and training_finished(t, want_epochs):
        return MEASURE, "trained"
    ckpts = os.path.join(t, "checkpoints")
    if same_data and os.path.isdir(ckpts) and os.listdir(ckpts):
        return RESUME, "stopped run"
    return TRAIN, ""


def _read_done(path):
    """A done.json as a dict, or None when it is unreadable (a run then counts as not done)."""
    try:
        with open(path) as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def execute(cmd, log, dry_run, cwd=None):
    """Runs a command from the repository root, its output streamed line by line into `log` (so that
    `tail -f` follows a long training); returns its stdout + stderr. A non-zero exit raises RunError with the
    output's tail."""
    print("  $ " + C.quote(cmd) + f"    (log: {os.path.relpath(log, paths.ROOT)})", flush=True)
    if dry_run:
        return ""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    t0 = time.time()
    lines = []
    with open(log, "a") as f:
        f.write("$ " + C.quote(cmd) + "\n")
        f.flush()
        p = subprocess.Popen(cmd, cwd=cwd or paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             bufsize=1)
        for line in p.stdout:
            f.write(line)
            f.flush()
            lines.append(line)
        rc = p.wait()
    out = "".join(lines)
    if rc != 0:
        tail = "\n".join(out.splitlines()[-15:])
        raise RunError(f"exit {rc} after {time.time() - t0:.0f} s (log: {log}):\n  {C.quote(cmd)}\n{tail}")
    return out


def _read(measure, text):
    what = f"{measure.cmd[measure.cmd.index('--checkpoint') - 1]} ({measure.log})"
    if measure.read == "last":
        return last_json(text, what)
    if measure.read == "reconstruct":
        m = RECONSTRUCTED.search(text)
        if not m:
            raise FormatError(f"{what}: no 'mean BCE … nats (KL …), wrote …' line in its output")
        return {"bce": float(m.group(1)), "kl": float(m.group(2)), "png": m.group(3)}
    records = json_lines(text)
    if measure.read == "samples":
        records = [r for r in records if "samples" in r]
    if not records:
        raise FormatError(f"{what}: no JSON line in its output")
    return records


def binary_commit(train_dir, binary=None):
    """The commit of the source the run's binary was built from: what run.jsonl records (the binary reads it
    from the checkout it lies in), else BIN.commit beside a binary copied out of .build
    (scripts/freeze-binary.sh writes it), else "unknown"."""
    try:
        rows = read_jsonl(os.path.join(train_dir, "run.jsonl"), missing_ok=True)
    except FormatError:
        rows = []
    for r in reversed(rows):
        if r.get("commit") and r["commit"] != "unknown":
            return r["commit"]
    try:
        with open((binary or paths.binary()) + ".commit") as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


def keep_records(study, run):
    """Copies a done run's records (done.json, config.yaml, metrics.jsonl, run.jsonl, and its reconstruction
    pictures where it drew them) into the study's `records:` directory, each file written atomically; nothing when
    the study keeps none."""
    dst = study.record_dir(run)
    if not dst:
        return None
    os.makedirs(dst, exist_ok=True)
    d = study.run_dir(run)
    srcs = [os.path.join(d, "done.json")] + [os.path.join(study.train_dir(run), f) for f in RECORD_FILES] + [
        os.path.join(d, C.reconstruct_png(s)) for s in C.RECONSTRUCT_SPLITS]
    for src in srcs:
        if os.path.exists(src):
            tmp = os.path.join(dst, "." + os.path.basename(src) + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, os.path.join(dst, os.path.basename(src)))
    return dst


def run_one(study, run, opts, log=print):
    """Brings one run to done.json by the resume policy; returns the action taken. Raises RunError or
    FormatError when a command fails or prints no record."""
    action, note = decide(study, run, opts)
    name = f"{study.name}/{run.group}/{run.id}" if not study.is_spec else f"{study.name}/{run.id}"
    log(f"{name}: {action}{' (' + note + ')' if note else ''}" + ("; --force reruns it" if action == SKIP else ""))
    if action == SKIP:
        if not opts.dry_run and os.path.exists(os.path.join(study.run_dir(run), "done.json")):
            keep_records(study, run)      # a run done before the study kept records
        return action
    d, t = study.run_dir(run), study.train_dir(run)
    t0 = time.time()
    cmds = []
    if action == TRAIN and not opts.dry_run:
        for f in STALE:
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
    if action in (TRAIN, RESUME):
        cmd = C.train_command(study, run, opts) if action == TRAIN else C.resume_command(study, run, opts)
        execute(cmd, os.path.join(d, "train.log"), opts.dry_run)
        cmds.append(cmd)
    t1 = time.time()
    last = last_metrics(t) or {}
    results = {}
    for m in C.measurements(study, run, opts, n_samples=last.get("samples")):
        out = execute(m.cmd, m.log, opts.dry_run)
        cmds.append(m.cmd)
        if opts.dry_run:
            continue
        results[m.key] = _read(m, out)
        if m.save:
            recs = results[m.key] if isinstance(results[m.key], list) else [results[m.key]]
            write_json_atomic(os.path.join(d, m.save), recs if m.save.endswith("l") else recs[0])
    if opts.dry_run:
        return action
    done = {"study": study.name, "group": run.group, "id": run.id, "label": run.label, "set": run.set,
            "config": run.config, "epochs": C.epochs(study, opts) or (last.get("epoch")),
            "iw_samples": C.iw_samples(study, run, opts), "ranks": opts.ranks, "limit_data": opts.limit_data,
            "launcher": opts.launcher, "data_dir": C.data_dir(study, opts), "action": action,
            # One sitting's training is its wall time; a resumed or only measured run's is the trainer's own clock,
            # which the checkpoints carry over every segment (the steps redone after a kill are not counted).
            "train_seconds": (t1 - t0) if action == TRAIN else last.get("elapsed", t1 - t0),
            "sitting_train_seconds": t1 - t0, "commit": binary_commit(t),
            "measure_seconds": time.time() - t1,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commands": [C.quote(c) for c in cmds], "last_epoch": last, **results}
    done["wall_seconds"] = done["train_seconds"] + done["measure_seconds"]
    write_json_atomic(os.path.join(d, "done.json"), done)
    kept = keep_records(study, run)
    log(f"{name}: done in {time.time() - t0:.0f} s" + (f"; records in {os.path.relpath(kept, study.root)}" if kept else ""))
    return action


def expected_seconds(study, run):
    """How long `run` should take, training and measuring: the longest wall time of the finished runs of its
    group (run directories or records), else of the whole study; None when none has finished."""
    for runs in (study.groups.get(run.group, []), study.all_runs()):
        walls = []
        for r in runs:
            p = study.done_path(r)
            done = _read_done(p) if p else None
            if done and done.get("wall_seconds"):
                walls.append(float(done["wall_seconds"]))
        if walls:
            return max(walls)
    return None


def run_study(study, runs, opts, log=print):
    """Runs each run in turn (a reconstruct study: its figures); the names of those that failed. With
    opts.deadline (seconds since the epoch), a run that is not done is started only if its expected time
    (expected_seconds) ends before the deadline; the others are listed as not started, not as failed."""
    if study.kind == "reconstruct":
        return run_reconstruct(study, opts, log)
    failed = []
    for run in runs:
        if opts.deadline and not opts.dry_run and decide(study, run, opts)[0] != SKIP:
            need, left = expected_seconds(study, run), opts.deadline - time.time()
            if need is not None and need > left:
                log(f"{study.name}/{run.group}/{run.id}: not started: about {need / 60:.0f} min by the longest "
                    f"finished run of its group, {max(left, 0) / 60:.0f} min left before --deadline")
                continue
        try:
            run_one(study, run, opts, log)
        except (RunError, FormatError, OSError, ValueError) as e:  # one failed run does not stop the rest
            failed.append(f"{study.name}/{run.id}")
            print(f"{study.name}/{run.group}/{run.id}: FAILED: {e}", file=sys.stderr, flush=True)
    return failed


def subcommand_help(sub):
    """`vaeas-dist SUB --help`'s text, or None when the binary has no SUB (an older build)."""
    b = paths.binary()
    if not os.access(b, os.X_OK):
        raise RunError(f"{b} is missing: build it with `swift build -c release` (or set VAEAS_BIN)")
    p = subprocess.run([b, "--help"], capture_output=True, text=True)
    if not any(line.strip().split(" ")[0] == sub for line in (p.stdout + p.stderr).splitlines()):
        return None
    p = subprocess.run([b, sub, "--help"], capture_output=True, text=True)
    return p.stdout + p.stderr if p.returncode == 0 else None


def reconstruct_png(study, fig_id, row_id, split):
    return os.path.join(study.out, study.name, fig_id, f"{row_id}-{split}.png")


def run_reconstruct(study, opts, log=print):
    """Figures 4/5: `reconstruct` of table rows' checkpoints (rows not done are run first with their own spec)."""
    from .spec import load
    help_text = subcommand_help("reconstruct")
    if help_text is None:
        log(f"{study.name}: SKIPPED: {paths.binary()} has no `reconstruct` subcommand (other studies are unaffected)")
        return []
    failed = []
    for fig in study.raw["figures"]:
        src = load(fig["experiment"], study.root)
        for run in src.select(only=fig["rows"]):
            try:
                if opts.force or not os.path.exists(os.path.join(src.run_dir(run), "done.json")):
                    run_one(src, run, opts, log)
                for split in study.raw.get("splits", ["test", "train"]):
                    png = reconstruct_png(study, fig["id"], run.id, split)
                    cmd = [paths.binary_for_commands(), "reconstruct", "--checkpoint",
                           C.rel(os.path.join(src.train_dir(run), "model.safetensors"), study.root),
                           "--split", split, "--out", C.rel(png, study.root)]
                    if "--data-dir" in help_text:
                        cmd += ["--data-dir", C.data_dir(src, opts)]
                    execute(cmd, png[:-4] + ".log", opts.dry_run)
            except (RunError, FormatError, OSError, ValueError) as e:
                failed.append(f"{fig['id']}/{run.id}")
                print(f"{study.name}/{fig['id']}/{run.id}: FAILED: {e}", file=sys.stderr, flush=True)
    return failed
