"""docs/results.csv: one row per finished run of every study file (experiments/*/study.yaml), read from the run's
directory or, where that machine is gone, from the records the study keeps in the repository (`records:`). It is
the source of the eq. 14 and paper-length tables in docs/RESULTS.md.

The convergence criterion (`converged`), stated once here and in docs/RESULTS.md:
    (1) the test ELBO moved by at most ELBO_TOL nats between the last evaluation at or before 90 % of the
        epochs and the last epoch (training's metrics.jsonl, `test_elbo`), and
    (2) for VAE-AS with V = N, the classifier's Î (eval on the training set) is within MI_GAP_PCT % of the Monte
        Carlo MI at S = N (`estimate`); with V < N, where Î estimates I(z; label) ≤ log V and not I(z; x), the
        epoch-mean Î moved by at most MI_GAP_PCT % over the last 10 % of the epochs (the classifier has settled).
A run that fails either is reported "after E epochs", never "converged"; `not_converged` says which part failed."""
import csv
import glob
import io
import json
import os

from .. import paths
from ..io import FormatError, read_jsonl, read_yaml, write_text_atomic
from . import spec as S
from .tables import mc_estimates, normalize

#: Criterion (1): the test ELBO's largest change over the last 10 % of the epochs, in nats.
ELBO_TOL = 0.5
#: Criterion (2): the classifier's Î below or above the S = N Monte Carlo MI by at most this many per cent.
MI_GAP_PCT = 5.0

COLUMNS = ["study", "group", "id", "method", "alpha", "beta", "n", "v", "epochs", "steps", "seed",
           "nll_test", "k", "test_examples", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc",
           "mi_md_minus_kl", "mc_mi", "mc_s", "mi_gap_pct", "test_elbo", "best_test_elbo", "best_test_elbo_epoch",
           "test_elbo_change", "recon_bce_train", "recon_bce_test", "converged", "not_converged",
           "wall_s", "train_s", "cpu", "blas", "commit"]


def study_files(root=None):
    """Every study file of the repository (experiments/*/study.yaml), sorted."""
    return sorted(glob.glob(os.path.join(root or paths.ROOT, S.SPEC_DIR, "*", "study.yaml")))


def _last_with(rows, key):
    for r in reversed(rows):
        if r.get(key) not in (None, "", "unknown"):
            return r[key]
    return None


def elbo_change(metrics, epochs):
    """(the test ELBO at the last epoch minus the test ELBO at the last evaluation at or before 90 % of the
    epochs, that evaluation's epoch) for criterion 1, or (None, None) when metrics.jsonl has not both."""
    evals = [(r["epoch"], r["test_elbo"]) for r in metrics if r.get("test_elbo") is not None]
    if not evals or not epochs:
        return None, None
    end = [v for e, v in evals if e == epochs]
    before = [(e, v) for e, v in evals if e <= 0.9 * epochs]
    if not end or not before:
        return None, None
    return end[-1] - before[-1][1], before[-1][0]


def best_elbo(metrics):
    """(the best test ELBO of training's evaluations, its epoch), or (None, None) when none was evaluated."""
    evals = [(r["test_elbo"], r["epoch"]) for r in metrics if r.get("test_elbo") is not None]
    return max(evals) if evals else (None, None)


def mi_drift(metrics, epochs):
    """The epoch-mean Î's change in per cent from the last epoch at or before 90 % of the epochs to the last one
    (criterion 2 with V < N), or None."""
    mis = {r["epoch"]: r["mi"] for r in metrics if r.get("mi") is not None and "epoch" in r}
    before = [e for e in mis if e <= 0.9 * (epochs or 0)]
    if not epochs or epochs not in mis or not before or not mis[max(before)]:
        return None
    return 100 * (mis[epochs] - mis[max(before)]) / mis[max(before)]


def row_of(study, run, done_path):
    """One CSV row (dict over COLUMNS) of a finished run, from its done.json and the files beside it (run
    directory: train/config.yaml …; records: config.yaml … at the top)."""
    with open(done_path) as f:
        raw = json.load(f)
    here = os.path.dirname(done_path)
    files = here if os.path.exists(os.path.join(here, "config.yaml")) else study.train_dir(run)
    d = normalize(raw, files)
    cfg = read_yaml(os.path.join(files, "config.yaml")) or {}
    try:
        metrics = read_jsonl(os.path.join(files, "metrics.jsonl"), missing_ok=True)
    except FormatError:
        metrics = []
    try:
        runlog = read_jsonl(os.path.join(files, "run.jsonl"), missing_ok=True)
    except FormatError:
        runlog = []
    last, tr, te = d["last_epoch"], d["eval_train"], d["eval_test"]
    vaeas = S.dotted(cfg, "objective.kind") == "vaeas"
    n = last.get("samples")
    labels = S.dotted(cfg, "objective.labels", 0)
    epochs = S.dotted(cfg, "train.epochs") or d.get("epochs")
    est = mc_estimates(d)
    mc = est[-1] if est else {}
    v = (labels or n) if vaeas else None
    gap = None
    if vaeas and v == n and tr.get("mi") is not None and mc.get("mi"):
        gap = 100 * (mc["mi"] - tr["mi"]) / mc["mi"]
    change, since = elbo_change(metrics, epochs)
    best, best_epoch = best_elbo(metrics)
    final = [r["test_elbo"] for r in metrics if r.get("test_elbo") is not None and r.get("epoch") == epochs]
    why = []
    if change is None:
        why.append("no test ELBO at the end and at 90 % of the epochs")
    elif abs(change) > ELBO_TOL:
        why.append(f"test ELBO moved {change:+.2f} nats from epoch {since} to {epochs}")
    if vaeas and v != n:
        drift = mi_drift(metrics, epochs)
        if drift is None:
            why.append("no epoch-mean Î at the end and at 90 % of the epochs")
        elif abs(drift) > MI_GAP_PCT:
            why.append(f"Î (V < N) moved {drift:+.1f} % over the last 10 % of the epochs")
    elif vaeas:
        if gap is None:
            why.append("no classifier Î or no Monte Carlo MI")
        elif mc.get("samples") != n:
            why.append(f"Monte Carlo MI at S = {mc.get('samples')}, not S = N")
        elif abs(gap) > MI_GAP_PCT:
            why.append(f"Î {gap:.1f} % from the Monte Carlo MI")
    mi_md = tr.get("mi_md_minus_kl") if vaeas else None
    rnd = lambda x, nd=3: None if x is None else round(float(x), nd)  # noqa: E731
    return {
        "study": study.name, "group": run.group, "id": run.id,
        "method": "vae" if not vaeas else f"vaeas-{S.dotted(cfg, 'objective.softmax', 'full')}",
        "alpha": S.dotted(cfg, "objective.alpha") if vaeas else None,
        "beta": S.dotted(cfg, "objective.beta") if vaeas else None,
        "n": n, "v": v, "epochs": last.get("epoch"), "steps": last.get("step"),
        "seed": S.dotted(cfg, "train.seed", 0),
        "nll_test": rnd(te.get("nll")), "k": te.get("iw_samples"), "test_examples": te.get("examples"),
        "kl_test": rnd(te.get("kl")), "au": te.get("active_units"),
        "nll_train": rnd(tr.get("recon")), "kl_train": rnd(tr.get("kl")),
        "mi": rnd(tr.get("mi")) if vaeas else None, "md": rnd(tr.get("md")) if vaeas else None,
        "sc": rnd(tr.get("sc")) if vaeas else None, "mi_md_minus_kl": rnd(mi_md),
        "mc_mi": rnd(mc.get("mi")), "mc_s": mc.get("samples"), "mi_gap_pct": rnd(gap, 2),
        "test_elbo": rnd(final[-1]) if final else None, "best_test_elbo": rnd(best),
        "best_test_elbo_epoch": best_epoch, "test_elbo_change": rnd(change),
        "recon_bce_train": rnd((raw.get("reconstruct_train") or {}).get("bce")),
        "recon_bce_test": rnd((raw.get("reconstruct_test") or {}).get("bce")), "converged": "yes" if not why else "no", "not_converged": "; ".join(why),
        "wall_s": rnd(d.get("train_seconds", 0) + d.get("measure_seconds", 0), 0),
        "train_s": rnd(d.get("train_seconds"), 0),
        "cpu": " ".join(x for x in (_last_with(runlog, "cpu_model"), _last_with(runlog, "cpu_family_model")) if x),
        "blas": _last_with(runlog, "blas") or "",
        "commit": raw.get("commit") if raw.get("commit") not in (None, "unknown") else
        (_last_with(runlog, "commit") or "unknown"),
    }


def rows(root=None):
    """The rows of every finished run of every study file, in file and group order; (rows, [(study, run) not
    done])."""
    out, missing = [], []
    for path in study_files(root):
        st = S.load(path, root or paths.ROOT)
        for run in st.all_runs():
            p = st.done_path(run)
            if p is None:
                missing.append((st.name, f"{run.group}/{run.id}"))
                continue
            out.append(row_of(st, run, p))
    return out, missing


def render(table):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS})
    return buf.getvalue()


def write(out=None, root=None):
    """Writes docs/results.csv (or `out`, relative to the repository root) atomically; returns (path, rows,
    runs not done)."""
    table, missing = rows(root)
    path = os.path.join(root or paths.ROOT, out or os.path.join("docs", "results.csv"))
    write_text_atomic(path, render(table))
    return path, table, missing
