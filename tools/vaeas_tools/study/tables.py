"""The numbers of the reports: a run's done.json read in any of its formats, the measures every table uses,
number formatting and mean ± sd. The paper's values come from the specs (experiments/table*.yaml), not from here.

done.json formats read:
    study runner (issue #22) and scripts/converged.py: eval_test, eval_train, estimate (JSON lines), last_epoch;
    scripts/experiments.py, tables: test, train (eval results), MI/MD/SC in the run's metrics.jsonl;
    scripts/experiments.py, estimates: classifier (the last epoch's mi, md, …), estimate (lines with samples)."""
import json
import math
import os

from .runner import last_metrics


def normalize(d, train_dir=None):
    """A done.json in the current format: eval_test/eval_train/last_epoch/estimate/classifier always present
    (empty when the run did not measure them), measure_seconds the time of all measurements."""
    d = dict(d)
    if "test" in d and "eval_test" not in d:
        d["eval_test"], d["eval_train"] = d.pop("test"), d.pop("train")
    if not d.get("last_epoch") and train_dir:
        d["last_epoch"] = last_metrics(train_dir) or {}
    d.setdefault("last_epoch", {})
    d.setdefault("eval_test", {})
    d.setdefault("eval_train", {})
    d.setdefault("estimate", [])
    if "measure_seconds" not in d:
        d["measure_seconds"] = sum(d.get(k, 0) for k in ("estimate_seconds", "eval_test_seconds",
                                                         "eval_train_seconds"))
    d.setdefault("estimate_seconds", d["measure_seconds"])
    d.setdefault("wall_seconds", d.get("train_seconds", 0) + d["measure_seconds"])
    if "classifier" not in d:
        d["classifier"] = {k: d["last_epoch"].get(k) for k in ("mi", "md", "sc", "kl", "labels", "samples")}
    return d


def load_done(study, run):
    """A run's done.json, normalized; None when the run is not done."""
    p = os.path.join(study.run_dir(run), "done.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return normalize(json.load(f), study.train_dir(run))


def mc_estimates(d):
    """The Monte Carlo estimates of a run (the estimate lines with a sample count), by S."""
    return sorted((e for e in d["estimate"] if "samples" in e), key=lambda e: e["samples"])


def measures(d, classifier="eval"):
    """The numbers every table uses, from one normalized done.json: NLL_test (with its K), KL_test and AU from
    eval on test; NLL_train (single-sample recon) and KL_train from eval on train; Î, MD̂, SC from eval on
    train when it ran the classifier (classifier="eval"; the converged study), else, or with
    classifier="epoch" (the full-N report), the last training epoch's means; MC MI/MD at the largest S; gap %."""
    tr, te, last = d["eval_train"], d["eval_test"], d["last_epoch"]

    def cls(key):
        return tr[key] if classifier == "eval" and tr.get(key) is not None else last.get(key)

    m = {"NLL_test": te.get("nll"), "K": te.get("iw_samples"), "KL_test": te.get("kl"),
         "AU": te.get("active_units"), "NLL_train": tr.get("recon"), "KL_train": tr.get("kl"),
         "MI": cls("mi"), "MD": cls("md"), "SC": cls("sc"), "labels": last.get("labels"),
         "samples": last.get("samples"), "minutes": d.get("train_seconds", 0) / 60}
    est = mc_estimates(d)
    if est:
        e = est[-1]
        m["S"], m["MI_mc"], m["MD_mc"], m["mean_kl"] = e["samples"], e["mi"], e["md"], e["mean_kl"]
        if m["MI"] is not None and m["MI_mc"] > 0:
            m["gap"] = 100 * (m["MI_mc"] - m["MI"]) / m["MI_mc"]
    return m


def f(x, nd=2):
    """A number as the converged tables print it: ints as they are, floats to nd decimals, None as –."""
    if x is None:
        return "–"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{nd}f}"


def fmt(v, column=None):
    """A number as the full-N tables print it: as f(), nan spelt out, AU always an integer."""
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


def mean_sd(xs):
    """'mean ± sd' (sample sd) of the values that exist, – if none."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    mu = sum(xs) / len(xs)
    sd = (sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return f"{mu:.2f} ± {sd:.2f}"


#: The converged tables' columns (keys of measures()) and their headings.
COLS = ["KL_train", "AU", "MI", "MI_mc", "gap", "MD", "SC", "NLL_train", "NLL_test"]
HEAD = ["KL", "AU", "Î", "MC MI (S = N)", "gap %", "MD̂", "SC", "NLL_train (recon)", "NLL_test (K)"]
#: The paper's Table 2/3 columns, the order of a spec row's `paper:` list.
PAPER_COLS = ["NLL_test", "KL_test", "AU", "NLL_train", "KL_train", "MI", "MD", "SC"]


def row_cells(m):
    """The cells of a converged-table row (COLS) from measures()."""
    out = []
    for c in COLS:
        v = m.get(c)
        if c == "NLL_test" and v is not None:
            out.append(f"{v:.2f} ({m['K']})")
        elif c == "gap":
            out.append(f(v, 1))
        else:
            out.append(f(v))
    return out


def paper_values(spec, columns=PAPER_COLS):
    """{row id: tuple of the paper's values for `columns`} from a spec's rows (None where the paper has none)."""
    cols = spec.raw.get("columns", [])
    out = {}
    for r in spec.all_runs():
        if r.paper is not None:
            out[r.id] = tuple(r.paper[cols.index(c)] if c in cols else None for c in columns)
    return out
