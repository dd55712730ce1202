"""The generated section of docs/RESULTS.md (between `<!-- converged:begin` and `<!-- converged:end -->`) from
the converged study's runs (experiments/converged/study.yaml), with its figures in docs/figures/. The paper's
values are the specs' (experiments/table1.yaml, table2.yaml, table3.yaml)."""
import os
import time

from .. import plots
from ..io import read_jsonl, write_text_atomic
from . import spec as S
from .tables import COLS, HEAD, f, load_done, mean_sd, measures, mc_estimates, paper_values, row_cells

BEGIN, END = "<!-- converged:begin", "<!-- converged:end -->"
#: The order of Table 2's rows in the paper.
ORDER = ["vae", "a1-b0.2", "a1-b0.5", "a1-b1", "a1-b2", "a1-b5", "a0.2-b1", "a0.5-b1", "a2-b1", "a5-b1"]


class _Runs:
    """The study's done runs by group and id (a group the study lacks has none)."""

    def __init__(self, study):
        self.study = study

    def runs(self, *groups):
        return [r for g in groups for r in self.study.groups.get(g, [])]

    def done(self, group, rid):
        for r in self.study.groups.get(group, []):
            if r.id == rid:
                return load_done(self.study, r)
        return None

    def done_of(self, *groups):
        """[(run, done)] of the groups' runs that are done, in order."""
        out = [(r, load_done(self.study, r)) for r in self.runs(*groups)]
        return [(r, d) for r, d in out if d]


def _curves_png(study, runs, path, title):
    plt = plots.pyplot(required=True, who="study report")
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    # One colour per run (tab20: the default cycle repeats after 10), baseline seeds dashed.
    colors = plt.get_cmap("tab20").colors
    for k, (label, run) in enumerate(runs):
        rows = read_jsonl(os.path.join(study.train_dir(run), "metrics.jsonl"))
        ep = [r["epoch"] for r in rows]
        for ax, key in zip(axes, ["mi", "kl", "sc", "recon"]):
            ax.plot(ep, [r.get(key) for r in rows], label=label, lw=1, color=colors[k % len(colors)],
                    ls="--" if label.startswith("base") else "-")
    for ax, t in zip(axes, ["Î (classifier, epoch mean)", "mean KL", "SC (classifier CE)", "recon (NLL_train)"]):
        ax.set_title(t); ax.set_xlabel("epoch"); ax.grid(alpha=.3)  # noqa: E702
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.join(study.root, "docs", "figures"), exist_ok=True)
    plots.save(fig, os.path.join(study.root, path))


def _paper_table(add, rows, paper):
    add("| row | α | β | NLL_test | KL_test | AU | NLL_train | KL_train | Î | MD̂ | SC | MC MI (S = N) | gap % |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, d in sorted(rows, key=lambda x: ORDER.index(x[0]) if x[0] in ORDER else 99):
        m = measures(d)
        st = d["set"]
        a, b = st.get("objective.alpha", 1.0), st.get("objective.beta", 1.0)
        p = paper.get(i, (None,) * 8)
        vals = [m["NLL_test"], m["KL_test"], m["AU"], m["NLL_train"], m["KL_train"], m["MI"], m["MD"], m["SC"]]
        cells = [f"{f(v)} / {f(q)}" for v, q in zip(vals, p)]
        cells[0] = f"{f(vals[0])} (K {m['K']}) / {f(p[0])}"
        vae = st.get("objective.kind") == "vae"
        add(f"| {i} | {'–' if vae else a} | {'–' if vae else b} | " + " | ".join(cells)
            + f" | {f(m.get('MI_mc'))} | {f(m.get('gap'), 1)} |")
    add("")


def _figure23(study, add, fg, fc):
    plt = plots.pyplot(required=True, who="study report")
    est = mc_estimates(fg)
    S_ = [e["samples"] for e in est]
    m = measures(fg)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(S_, [e["mi"] for e in est], "o-", label="Monte Carlo MI")
    ax[0].plot(S_, [e["md"] for e in est], "s-", label="Monte Carlo MD")
    mc = measures(fc) if fc else None
    ax[0].axhline(m["MI"], color="C0", ls="--", label="classifier Î (cls_lr = lr)")
    ax[0].axhline(m["MD"], color="C1", ls="--", label="classifier MD̂ (cls_lr = lr)")
    if mc:
        ax[0].axhline(mc["MI"], color="C0", ls=":", label="classifier Î (cls_lr 3e-3)")
        ax[0].axhline(mc["MD"], color="C1", ls=":", label="classifier MD̂ (cls_lr 3e-3)")
    ax[0].set_xscale("log"); ax[0].set_xlabel("S"); ax[0].legend(); ax[0].set_title("Figure 2 (N = V = 2000)")  # noqa
    ax[1].plot(S_, [e["mi"] + e["md"] for e in est], "o-", label="MC MI + MD")
    ax[1].plot(S_, [e["mean_kl"] for e in est], "k--", label="mean KL")
    ax[1].axhline(m["MI"] + m["MD"], color="C2", ls=":", label="Î + MD̂")
    ax[1].set_xscale("log"); ax[1].set_xlabel("S"); ax[1].legend(); ax[1].set_title("Figure 3")  # noqa: E702
    fig.tight_layout()
    os.makedirs(os.path.join(study.root, "docs", "figures"), exist_ok=True)
    plots.save(fig, os.path.join(study.root, "docs/figures/figure23-small.png"))
    add("### Figures 2 and 3 at N = V = 2000 (decoder 3 × 500, batch 100, 120 epochs)")
    add("")
    add("| S | MC MI | MC MD | MC MI + MD | mean KL |")
    add("|---:|---:|---:|---:|---:|")
    for e in est:
        add(f"| {e['samples']} | {f(e['mi'])} | {f(e['md'])} | {f(e['mi'] + e['md'])} | {f(e['mean_kl'])} |")
    add(f"| classifier (`cls_lr` = lr) | Î {f(m['MI'])} | MD̂ {f(m['MD'])} | {f(m['MI'] + m['MD'])} | {f(m['KL_train'])} |")
    if mc:
        add(f"| classifier (`cls_lr` 3·10⁻³) | Î {f(mc['MI'])} | MD̂ {f(mc['MD'])} | {f(mc['MI'] + mc['MD'])} | "
            f"{f(mc['KL_train'])} |")
    add("")
    add("![Figures 2 and 3](figures/figure23-small.png)")
    add("")
    add("Dashed: the classifier trained at the VAE's rate, which lags the encoder"
        + ("; dotted: the classifier at its own rate 3·10⁻³." if mc else "."))
    add("")


def section(study, now=None):
    """The generated section's text, markers included, from the study's runs that are done."""
    R = _Runs(study)
    L = []
    add = L.append
    stamp = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(now))
    add(f"{BEGIN} (generated by `python3 scripts/study.py report converged`; edit the text outside the markers) -->")
    add("")
    add(f"Generated {stamp} from `runs/converged/*/*/done.json`. "
        "Every run: `configs/mnist-vaeas-small.yaml` + the row's settings, 2 ranks; Î, MD̂, SC, KL_train and "
        "NLL_train (single-sample reconstruction NLL) measured after training by `eval --split train` on the "
        "N training images trained on; MC MI/MD: `estimate` at S = N on them; AU, KL_test and NLL_test by "
        "`eval --split test --limit 1000` (1000 test images spread over the test set, K importance samples). "
        "gap % = (MC MI − Î) / MC MI. log N = log 2000 = 7.60 bounds both MI estimates.")
    add("")
    lr = [(r.id, d) for r, d in R.done_of("lr", "lr-more")]
    add("### The learning rate, seeds")
    add("")
    add("| run | " + " | ".join(HEAD) + " | train min |")
    add("|---|" + "---:|" * (len(HEAD) + 1))
    for i, d in lr:
        m = measures(d)
        add(f"| {i} | " + " | ".join(row_cells(m)) + f" | {m['minutes']:.1f} |")
    for rate in ["3e-4", "1e-3"]:
        ms = [measures(d) for i, d in lr if i.startswith("lr" + rate)]
        if len(ms) > 1:
            add(f"| **lr {rate}, mean ± sd of {len(ms)} seeds** | " + " | ".join(
                mean_sd([m.get(c) for m in ms]) for c in COLS) + " | |")
    add("")
    base = R.done("lr", "lr3e-4-s0")
    levers = R.done_of("levers", "levers-more")
    if base and levers:
        add("### One lever at a time (from lr3e-4-s0; seed 0)")
        add("")
        add("| lever | setting | " + " | ".join(HEAD) + " |")
        add("|---|---|" + "---:|" * len(HEAD))
        add("| none (lr3e-4-s0) | | " + " | ".join(row_cells(measures(base))) + " |")
        for r, d in levers:
            add(f"| {r.id} | `" + ", ".join(f"{k}={v}" for k, v in r.own_set.items()) + "` | "
                + " | ".join(row_cells(measures(d))) + " |")
        add("")
        seeds = [("base s%d" % k, r) for k in range(3) for r in R.runs("lr")
                 if r.id == f"lr3e-4-s{k}" and R.done("lr", r.id)]
        _curves_png(study, seeds + [(r.id, r) for r, _ in levers], "docs/figures/levers.png",
                    "Lever study, N = V = 2000, 300 epochs (per-epoch training means)")
        add("![lever curves](figures/levers.png)")
        add("")
    t2 = [(i, d) for i, d in [("a1-b1", base)] + [(r.id, d) for r, d in R.done_of("table2", "table2-more")] if d]
    if t2:
        add("### Table 2 at N = V = 2000 (binarized MNIST), ours / paper (N = 55000)")
        add("")
        _paper_table(add, t2, paper_values(S.load("table2", study.root)))
    t1 = [(r.set["model.dec_layers"], d) for r, d in R.done_of("table1", "table1-more")]
    vae5 = R.done("table2", "vae")
    t1 = sorted(t1 + ([(5, vae5)] if vae5 else []), key=lambda x: x[0])
    if t1:
        paper_au = {int(k): v[0] for k, v in paper_values(S.load("table1", study.root), ["AU"]).items()}
        add("### Table 1 at N = 2000: active units against decoder depth (plain VAE), ours / paper")
        add("")
        add("| decoder layers | AU (test) | KL | MC MI (S = N) | NLL_test (K) |")
        add("|---:|---:|---:|---:|---:|")
        for k, d in t1:
            m = measures(d)
            add(f"| {k} | {m['AU']} / {paper_au[k]} | {f(m['KL_train'])} | {f(m.get('MI_mc'))} | "
                f"{f(m['NLL_test'])} ({m['K']}) |")
        add("")
    fg = R.done("figure23", "vN")
    if fg:
        _figure23(study, add, fg, R.done("figure23", "vN-cls-lr-3e-3"))
    t3 = [(r.id, d) for r, d in R.done_of("table3", "table3-more")]
    if t3:
        add("### Table 3 on omniglot-small (N = V = 3630, its whole training split; test: 1000 of its 1210 images, "
            "spread), ours / paper (Omniglot, N = 24345)")
        add("")
        _paper_table(add, t3, paper_values(S.load("table3", study.root)))
    add(END)
    return "\n".join(L) + "\n"


def splice(doc, text):
    """doc with its generated section replaced by text (appended when the markers are missing)."""
    if BEGIN in doc and END in doc:
        return doc[:doc.index(BEGIN)] + text + doc[doc.index(END) + len(END) + 1:]
    return doc + "\n" + text


def write(study, path=None, now=None):
    """Writes the section into docs/RESULTS.md (or path); returns the path."""
    path = path or os.path.join(study.root, "docs", "RESULTS.md")
    cur = open(path).read() if os.path.exists(path) else ""
    write_text_atomic(path, splice(cur, section(study, now)))
    return path
