"""The commands a run is made of: the launcher, `train` (fresh or --resume) and the measurements each kind of
study takes of a trained model (eval on test and train, estimate), as argument lists run from the repository
root."""
import os
import shlex

from .. import paths
from .spec import PAPER_K


class Options:
    """What `run` was asked: ranks, epochs/K/data overrides, launcher, data directory, force, dry run."""

    def __init__(self, ranks=2, epochs=None, iw_samples=None, limit_data=None, launcher="mpirun",
                 data_dir=None, force=False, dry_run=False, deadline=None):
        self.ranks, self.epochs, self.iw_samples, self.limit_data = ranks, epochs, iw_samples, limit_data or 0
        self.launcher, self.data_dir, self.force, self.dry_run = launcher, data_dir, force, dry_run
        #: Start no run expected to end after this time (seconds since the epoch), or None.
        self.deadline = deadline


#: The splits a run with `reconstruct: true` draws (the paper's Figures 4/5: training and test images).
RECONSTRUCT_SPLITS = ("train", "test")
#: Images per picture, spread over the split (the paper's figures show a grid of digits).
RECONSTRUCT_COUNT = 32


def reconstruct_png(split):
    """The picture of a run's reconstructions of `split`, beside its done.json (and kept in its records)."""
    return f"reconstruct-{split}.png"


class Measure:
    """One measurement: the done.json key its output goes to, the command, its log, how its output is read
    ('last': the last JSON line; 'all': every JSON line; 'samples': the lines with a sample count;
    'reconstruct': the mean BCE and KL `reconstruct` prints) and the file beside the run its result is also
    saved to (or None)."""

    def __init__(self, key, cmd, log, read="last", save=None):
        self.key, self.cmd, self.log, self.read, self.save = key, cmd, log, read, save


def quote(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def rel(path, root=None):
    """A path as a command names it: relative to the repository root when inside it (commands run there)."""
    root = root or paths.ROOT
    r = os.path.relpath(path, root)
    return path if r.startswith("..") else r


def yaml_scalar(v):
    """A --set value as YAML reads it back (booleans lower case)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def launcher(opts, environ=None):
    """The launcher words before the vaeas-dist subcommand. scripts/mpirun.sh names the binary itself; srun needs
    it named, and since Slurm 22.05 srun does not inherit the allocation's --cpus-per-task, so it is passed on."""
    environ = os.environ if environ is None else environ
    if opts.launcher == "srun":
        cmd = ["srun", "--mpi=pmix", "-n", str(opts.ranks)]
        if environ.get("SLURM_CPUS_PER_TASK"):
            cmd.append(f"--cpus-per-task={environ['SLURM_CPUS_PER_TASK']}")
        return cmd + [paths.binary_for_commands()]
    return ["scripts/mpirun.sh", "-n", str(opts.ranks)]


def data_dir(study, opts):
    """--data-dir, else the spec's data_dir_env variable, else its data_dir_default (paths.data_dir's chain)."""
    if opts.data_dir:
        return opts.data_dir
    env = study.raw.get("data_dir_env", "VAEAS_DATA_DIR")
    return os.environ.get(env) or study.raw.get("data_dir_default") or paths.data_dir()


def epochs(study, opts):
    """The epochs asked: --epochs, else a spec's budget (required there); None for a study file (its config's)."""
    if opts.epochs is not None:
        return int(opts.epochs)
    if not study.is_spec:
        return None
    e = (study.raw.get("budget") or {}).get("epochs")
    if e is None:
        raise ValueError(f"{study.name}: no epochs in budget and no --epochs")
    return int(e)


def iw_samples(study, run, opts):
    """K for NLL_test: --iw-samples, else the run's, its group's or the study's (a spec: budget, else 4096)."""
    if opts.iw_samples is not None:
        return int(opts.iw_samples)
    if study.is_spec:
        return int((study.raw.get("budget") or {}).get("iw_samples", PAPER_K))
    if run.iw_samples is not None:
        return int(run.iw_samples)
    return int((study.raw.get("groups_iw_samples") or {}).get(run.group, study.raw["iw_samples"]))


def train_command(study, run, opts):
    """A fresh `train … --out DIR --overwrite` for a run, with its settings as --set, the asked epochs and, with
    --limit-data N, data.limit=N and V capped at N (more labels than samples is refused)."""
    sets = dict(run.set)
    if opts.limit_data:
        labels = sets.get("objective.labels")
        if labels is not None and int(labels) > opts.limit_data:
            sets["objective.labels"] = opts.limit_data
    cmd = launcher(opts) + ["train", "--config", run.config, "--data-dir", data_dir(study, opts)]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={yaml_scalar(v)}"]
    e = epochs(study, opts)
    if e is not None:
        cmd += ["--set", f"train.epochs={e}"]
    if opts.limit_data:
        cmd += ["--set", f"data.limit={opts.limit_data}"]
    return cmd + ["--out", rel(study.train_dir(run), study.root), "--overwrite"]


def resume_command(study, run, opts):
    """`train --resume DIR`; the asked epochs passed on (--resume accepts a new train.epochs)."""
    e = epochs(study, opts)
    return launcher(opts) + ["train", "--resume", rel(study.train_dir(run), study.root)] + (
        ["--set", f"train.epochs={e}"] if e is not None else [])


def _checkpoint(study, run, opts, sub):
    ckpt = rel(os.path.join(study.train_dir(run), "model.safetensors"), study.root)
    return launcher(opts) + [sub, "--checkpoint", ckpt, "--data-dir", data_dir(study, opts)]


def measurements(study, run, opts, n_samples=None):
    """The measurements a trained run takes, by kind of study:
    table     eval on the test split (K, --no-classifier: MI/MD/SC come from metrics.jsonl) and on ≤ 10000
              training examples spread over the split (K = 1);
    estimate  estimate at the spec's sample counts clipped to N (n_samples, the run's training-set size);
    study     eval on test_examples test images spread over the split (K), eval on the training images trained
              on (with the classifier: Î, MD̂, SC), estimate (at S = N, or the run's estimate_samples), and for a
              run with `reconstruct: true` the pictures of 32 training and 32 test images (Figures 4/5)."""
    d = study.run_dir(run)
    log = lambda name: os.path.join(d, name)  # noqa: E731
    k = iw_samples(study, run, opts)
    lim = opts.limit_data
    if study.kind == "table":
        split = study.setting(run, "data.test_split") or "test"
        test = _checkpoint(study, run, opts, "eval") + ["--no-classifier", "--split", split, "--iw-samples", str(k),
                                                        "--json"] + (["--limit", str(lim)] if lim else [])
        train = _checkpoint(study, run, opts, "eval") + [
            "--no-classifier", "--split", "train", "--limit", str(min(10000, lim) if lim else 10000),
            "--iw-samples", "1", "--json"]
        return [Measure("eval_test", test, log("eval-test.log"), save="eval-test.json"),
                Measure("eval_train", train, log("eval-train.log"), save="eval-train.json")]
    if study.kind == "estimate":
        est = study.raw.get("estimate") or {}
        n = n_samples or lim or 50000
        # Clipped to N: the largest count is then N itself (the paper's 55000 = its N).
        counts = sorted({min(int(s), n) for s in est.get("samples", [100, 500, 1000, 5000, 10000, 50000])})
        cmd = _checkpoint(study, run, opts, "estimate") + [
            "--split", est.get("split", "train"), "--samples", ",".join(map(str, counts)), "--json"]
        return [Measure("estimate", cmd + (["--limit", str(lim)] if lim else []), log("estimate.log"),
                        read="samples", save="estimate.jsonl")]
    if study.kind == "study":
        test_n = min(int(study.raw["test_examples"]), lim) if lim else int(study.raw["test_examples"])
        test = _checkpoint(study, run, opts, "eval") + ["--split", "test", "--limit", str(test_n),
                                                        "--iw-samples", str(k), "--no-classifier", "--json"]
        train = _checkpoint(study, run, opts, "eval") + ["--split", "train", "--iw-samples", "1", "--json"]
        est = _checkpoint(study, run, opts, "estimate") + ["--json"] + (
            ["--samples", str(run.estimate_samples)] if run.estimate_samples else [])
        out = [Measure("eval_test", test, log("eval-test.log")), Measure("eval_train", train, log("eval-train.log")),
               Measure("estimate", est, log("estimate.log"), read="all")]
        if run.reconstruct:
            for split in RECONSTRUCT_SPLITS:
                png = rel(log(reconstruct_png(split)), study.root)
                cmd = _checkpoint(study, run, opts, "reconstruct") + [
                    "--split", split, "--count", str(RECONSTRUCT_COUNT), "--out", png]
                out.append(Measure(f"reconstruct_{split}", cmd, log(f"reconstruct-{split}.log"), read="reconstruct"))
        return out
    raise ValueError(f"{study.name}: a {study.kind} study has no measurements")
