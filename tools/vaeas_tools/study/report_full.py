"""docs/RESULTS-full-N.md: the paper's specs (experiments/table*.yaml, figure23.yaml, figure45.yaml) at full N
and reduced epochs, from their runs under runs/experiments/. When the runs are partial (a row not run, or run
with --limit-data) the report goes to runs/experiments/REPORT-partial.md, figures beside it, so the tracked
results are never replaced by validation numbers; `--out` names the file anyway."""
import datetime
import os
import shutil

from .. import paths, plots
from ..io import write_text_atomic
from . import commands as C
from . import facts as F
from . import spec as S
from .runner import RunError, reconstruct_png, subcommand_help
from .tables import fmt, fmt_seconds, load_done, measures

RESULTS = os.path.join("docs", "RESULTS-full-N.md")
PARTIAL = os.path.join(S.SPEC_RUNS, "REPORT-partial.md")
KIND_ORDER = {"table": 0, "estimate": 1, "reconstruct": 2}


def ordered_specs(root=None):
    """The specs (not the study files), tables first, then estimates, then reconstructions."""
    specs = [S.load(n, root) for n in S.spec_names(root)]
    return sorted((s for s in specs if s.is_spec), key=lambda s: (KIND_ORDER[s.kind], s.name))


def completeness(root=None):
    """(missing, cut): the runs not done and those done on cut data (--limit-data)."""
    missing, cut = [], []
    for spec in ordered_specs(root):
        if spec.kind == "reconstruct":
            for fig in spec.raw["figures"]:
                for rid in fig["rows"]:
                    for split in spec.raw.get("splits", ["test", "train"]):
                        if not os.path.exists(reconstruct_png(spec, fig["id"], rid, split)):
                            missing.append(f"{spec.name}/{fig['id']}/{rid}-{split}")
            continue
        for run in spec.all_runs():
            d = load_done(spec, run)
            if d is None:
                missing.append(f"{spec.name}/{run.id}")
            elif d.get("limit_data"):
                cut.append(f"{spec.name}/{run.id}")
    return missing, cut


def full_budget_commands(spec):
    """The commands that run a spec at the paper's budget (8 ranks, mpirun and srun), as the report lists them."""
    fb = spec.raw.get("full_budget", {})
    epochs = fb.get("epochs", F.PAPER_EPOCHS)
    kk = f" --iw-samples {fb['iw_samples']}" if fb.get("iw_samples") else ""
    run = spec.all_runs()[0]
    opts = C.Options(ranks=8, epochs=epochs, data_dir="$VAEAS_DATA_DIR")
    cmd = C.train_command(spec, run, opts)
    dq = lambda c: C.quote(c).replace("'$VAEAS_DATA_DIR'", '"$VAEAS_DATA_DIR"')  # noqa: E731
    # The same row as `--launcher srun` runs it inside the sbatch job below (SLURM_CPUS_PER_TASK=8 there).
    srun = ["srun", "--mpi=pmix", "-n", "8", "--cpus-per-task=8", "./.build/release/vaeas-dist"] + cmd[3:]
    return [f"python3 scripts/study.py run {spec.name} --ranks 8 --epochs {epochs}{kk}",
            f"# which runs, per row, e.g. row '{run.id}':", dq(cmd),
            "# on SLURM (srun launches the ranks inside the allocation; set --time for your site):",
            "sbatch --nodes=2 --ntasks-per-node=4 --cpus-per-task=8 --export=ALL,OPENBLAS_NUM_THREADS=8 "
            f"--wrap \"python3 scripts/study.py run {spec.name} --launcher srun --ranks 8 --epochs {epochs}{kk}\"",
            "# which runs, per row, e.g.:", dq(srun)]


def _fence(lines, cmds):
    lines += ["```"] + cmds + ["```", ""]


def report_table(spec, lines, all_facts):
    cols = spec.raw.get("columns", [])
    results = []
    for run in spec.all_runs():
        d = load_done(spec, run)
        results.append((run, measures(d, classifier="epoch") if d else None, d))
    sets = spec.raw.get("set") or {}
    lines += [f"## {spec.raw['title']}", "",
              f"Spec: `experiments/{spec.name}.yaml`; base config `{spec.raw['config']}`"
              + (f" with {', '.join(f'`{k}={C.yaml_scalar(v)}`' for k, v in sets.items())}" if sets else "")
              + f". Data: {spec.raw.get('dataset_note', '')}."]
    ran = [d for _, o, d in results if o is not None]
    if ran:
        def values(key):
            return ", ".join(str(v) for v in sorted({d.get(key, 0) for d in ran}))
        lines += ["", f"Our runs: {len(ran)} of {len(results)} rows; epochs {values('epochs')}, "
                  f"ranks {values('ranks')}, NLL_test on the test split with K = {values('iw_samples')}"
                  + (f", training data cut to the first {values('limit_data')} examples (validation only)"
                     if any(d.get('limit_data') for d in ran) else "")
                  + f"; total wall time {fmt_seconds(sum(d['wall_seconds'] for d in ran))} (training + both "
                  "evaluations). NLL_train and KL_train are `eval --split train --limit 10000 --iw-samples 1`'s "
                  "`recon` and `kl` (single-sample reconstruction NLL and KL over 10000 training examples spread "
                  "over the split, every ⌊N/10000⌋-th); MI, MD and SC are the last epoch's `mi`, `md`, `sc` in "
                  "metrics.jsonl (classifier estimates averaged over that training epoch)."]
    else:
        lines += ["", "Not run yet."]
    lines += ["", "Cells are **ours / paper**.", ""]
    if cols == ["AU"]:
        head = [spec.raw.get("row_header", "row"), "AU ours / paper", "NLL_test (ours)", "epochs", "wall"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
        for run, ours, done in results:
            p = (run.paper or [None])[0]
            if ours is None:
                lines.append(f"| {run.label} | not run / {fmt(p, 'AU')} | not run | | |")
            else:
                lines.append(f"| {run.label} | {fmt(ours['AU'], 'AU')} / {fmt(p, 'AU')} | {fmt(ours['NLL_test'])} | "
                             f"{done['epochs']} | {fmt_seconds(done['wall_seconds'])} |")
    else:
        lines.append("| " + " | ".join(["Method", "α", "β"] + cols + ["epochs", "wall"]) + " |")
        lines.append("|---|---:|---:|" + "|".join("---:" for _ in cols + ["e", "w"]) + "|")
        for run, ours, done in results:
            a, b = spec.alpha_beta(run)
            cells = [run.method or ("VAE-AS" if a is not None else "VAE"),
                     "–" if a is None else f"{a:g}", "–" if b is None else f"{b:g}"]
            for i, col in enumerate(cols):
                p = (run.paper or [None] * len(cols))[i]
                if ours is None:
                    cells.append(f"not run / {fmt(p, col)}")
                else:
                    o = ours.get(col) if a is not None or col not in ("MI", "MD", "SC") else None
                    cells.append(f"{fmt(o, col)} / {fmt(p, col)}")
            cells += [str(done["epochs"]) if done else "", fmt_seconds(done["wall_seconds"]) if done else ""]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Full budget (the paper's epochs and K = 4096), on a cluster:", ""]
    _fence(lines, full_budget_commands(spec))
    fs = F.table_facts(spec, results)
    if fs:
        all_facts.append((spec.raw["title"], fs))


def _estimate_plots(runs, figures, plt):
    os.makedirs(figures, exist_ok=True)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "mi", "I(z, x)"), (axes[1], "md", "KL(q(z) || p(z))")):
        for i, (run, d) in enumerate(runs):
            ax.plot([e["samples"] for e in d["estimate"]], [e[key] for e in d["estimate"]], "o-",
                    color=colors[i % 4], label=f"Monte Carlo, {run.label}")
            if d["classifier"].get(key) is not None:
                ax.axhline(d["classifier"][key], color=colors[i % 4], ls="--", label=f"classifier, {run.label}")
        ax.set_xscale("log"); ax.set_xlabel("Monte Carlo samples S"); ax.set_title(title); ax.legend(fontsize=7)  # noqa
    fig.tight_layout()
    plots.save(fig, os.path.join(figures, "figure2.png"), dpi=110)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (run, d) in enumerate(runs):
        s = [e["samples"] for e in d["estimate"]]
        ax.plot(s, [e["mi_plus_md"] for e in d["estimate"]], "o-", color=colors[i % 4], label=f"MI + MD (MC), {run.label}")
        ax.plot(s, [e["mean_kl"] for e in d["estimate"]], "s:", color=colors[i % 4], label=f"mean KL, {run.label}")
        c = d["classifier"]
        if c.get("mi") is not None:
            ax.axhline(c["mi"] + c["md"], color=colors[i % 4], ls="--", label=f"Î + MD̂ (classifier), {run.label}")
    ax.set_xscale("log"); ax.set_xlabel("Monte Carlo samples S"); ax.set_title("MI + MD against the mean KL")  # noqa
    ax.legend(fontsize=7)
    fig.tight_layout()
    plots.save(fig, os.path.join(figures, "figure3.png"), dpi=110)


def report_estimate(spec, lines, all_facts, plt, figures):
    lines += [f"## {spec.raw['title']}", "",
              f"Spec: `experiments/{spec.name}.yaml`; base config `{spec.raw['config']}` with "
              + ", ".join(f"`{k}={C.yaml_scalar(v)}`" for k, v in (spec.raw.get("set") or {}).items())
              + f". Data: {spec.raw.get('dataset_note', '')}. Monte Carlo: `vaeas-dist estimate --split train` "
              "(Hoffman & Johnson, one z per example, S examples). Classifier: the last epoch's `mi`, `md` in "
              "metrics.jsonl.", ""]
    runs = []
    for run in spec.all_runs():
        d = load_done(spec, run)
        if d is None:
            lines.append(f"- {run.label}: not run")
            continue
        # `estimate` also prints a line for the classifier; the Monte Carlo curve is the lines with a count.
        d["estimate"] = [e for e in d["estimate"] if "samples" in e]
        runs.append((run, d))
    if not runs:
        lines += ["", "Not run yet.", ""]
        return
    lines.append("")
    for run, d in runs:
        c = d["classifier"]
        lines += [f"**{run.label}** — {d['epochs']} epoch(s), {d['ranks']} rank(s), N = {c.get('samples')}, "
                  f"V = {c.get('labels')}" + (f", data cut to {d['limit_data']}" if d.get("limit_data") else "")
                  + f"; wall {fmt_seconds(d['wall_seconds'])} (estimate {fmt_seconds(d['estimate_seconds'])}). "
                  f"Classifier: Î = {fmt(c.get('mi'))}, MD̂ = {fmt(c.get('md'))}, Î + MD̂ = "
                  f"{fmt((c.get('mi') or 0) + (c.get('md') or 0))}, SC = {fmt(c.get('sc'))}, training KL = "
                  f"{fmt(c.get('kl'))}.", "",
                  "| S | MI (MC) | MD (MC) | MI + MD (MC) | mean KL | seconds |", "|---:|---:|---:|---:|---:|---:|"]
        for e in d["estimate"]:
            lines.append(f"| {e['samples']} | {fmt(e['mi'])} | {fmt(e['md'])} | {fmt(e['mi_plus_md'])} | "
                         f"{fmt(e['mean_kl'])} | {e['seconds']:.1f} |")
        lines.append("")
    if plt is None:
        lines += ["Plots skipped: matplotlib is not installed (`python3 -m pip install matplotlib`, then rerun "
                  "`python3 scripts/study.py report full`).", ""]
    else:
        _estimate_plots(runs, figures, plt)
        lines += ["![Figure 2: MI and MD, classifier vs Monte Carlo](figures/figure2.png)", "",
                  "![Figure 3: MI + MD against the mean KL](figures/figure3.png)", ""]
    lines += ["Full budget (the paper's section-5.2 run: 120 epochs):", ""]
    _fence(lines, full_budget_commands(spec))
    all_facts.append((spec.raw["title"], F.estimate_facts(spec, runs)))


def report_reconstruct(spec, lines, report_dir):
    lines += [f"## {spec.raw['title']}", ""]
    try:
        has = subcommand_help("reconstruct") is not None
    except RunError:
        has = False
    any_png = False
    splits = spec.raw.get("splits", ["test", "train"])
    for fig in spec.raw["figures"]:
        lines += [f"### {fig['title']}", ""]
        src = S.load(fig["experiment"], spec.root)
        runs = src.select(only=fig["rows"])
        heads = [f"α = {a:g}, β = {b:g} (`{src.name}/{r.id}`)" for r in runs for a, b in [src.alpha_beta(r)]]
        lines.append("| split | " + " | ".join(heads) + " |")
        lines.append("|---|" + "|".join(":---:" for _ in runs) + "|")
        for split in splits:
            cells = []
            for r in runs:
                png = reconstruct_png(spec, fig["id"], r.id, split)
                if os.path.exists(png):
                    dst = os.path.join(report_dir, "figures", f"{fig['id']}-{r.id}-{split}.png")
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(png, dst)
                    cells.append(f"![{fig['id']} {r.id} {split}]({os.path.relpath(dst, report_dir)})")
                    any_png = True
                else:
                    cells.append("not run")
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
        lines.append("")
    if not has:
        lines += [f"The `vaeas-dist` binary here ({C.rel(paths.binary(), spec.root)}) has no `reconstruct` subcommand, "
                  "so these figures were skipped.", ""]
    elif not any_png:
        lines += ["Run `python3 scripts/study.py run figure45` to draw them.", ""]


def target(out=None, root=None, log=print):
    """(report path, partial?, why): --out if given, else RESULTS-full-N.md for complete runs, REPORT-partial.md
    otherwise (with a message saying so)."""
    root = root or paths.ROOT
    missing, cut = completeness(root)
    why = "; ".join(filter(None, [
        f"{len(missing)} row(s) not run ({', '.join(missing[:4])}{', …' if len(missing) > 4 else ''})" if missing else "",
        f"{len(cut)} row(s) run with --limit-data ({', '.join(cut[:4])}{', …' if len(cut) > 4 else ''})" if cut else ""]))
    partial = bool(missing or cut)
    if out is None:
        out = PARTIAL if partial else RESULTS
        if partial:
            log(f"the runs are partial: {why}; writing {out}, not {RESULTS} (`report full --out {RESULTS}` "
                "writes it there anyway)")
    return os.path.join(root, out), partial, why


def write(out=None, root=None, now=None, log=print):
    """Writes the report (see target()); returns its path."""
    root = root or paths.ROOT
    path, partial, why = target(out, root, log)
    report_dir = os.path.dirname(path)
    plt = plots.pyplot(required=False, who="study report")
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime('%Y-%m-%d %H:%M UTC')
    lines = ["# Appendix: the paper's experiments at full N and reduced epochs", "",
             "> **Caveat:** at the reduced budgets (fewer epochs than the paper's 300, at full N) the classifier does "
             "not converge (each label is seen once per epoch), so these tables confirm or refute nothing about the "
             "paper's claims. The converged reduced-N experiments are in [RESULTS.md](RESULTS.md).", "",
             "Each section's \"Our runs\" line gives the epochs and K its runs were made with, which need not be "
             "the spec's `budget:` of today; the settings are in each run's config.yaml.", ""]
    if partial:
        lines += [f"**Partial report**: {why}. These are not the paper's full set of results.", ""]
    lines += [f"Generated by `python3 scripts/study.py report full` on {stamp} from the runs under `{S.SPEC_RUNS}/`. "
              "Specs and budgets: `experiments/README.md`. The paper's numbers are copied from its Tables 1–3; ours "
              "come from `done.json`, `eval-*.json` and `metrics.jsonl` of each run.", ""]
    facts = []
    for spec in ordered_specs(root):
        if spec.kind == "table":
            report_table(spec, lines, facts)
        elif spec.kind == "estimate":
            report_estimate(spec, lines, facts, plt, os.path.join(report_dir, "figures"))
        else:
            report_reconstruct(spec, lines, report_dir)
    lines += ["## Differences from the paper", "", "Computed from the runs above by `tools/vaeas_tools/study/`.", ""]
    if not facts:
        lines.append("- No runs yet, so nothing to compare.")
    for title, fs in facts:
        lines += [f"**{title}**", ""] + [f"- {x}" for x in fs] + [""]
    # The interpretation (why our trends differ) is written by hand beside the specs.
    analysis = os.path.join(root, "experiments", "ANALYSIS.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            lines += ["## Discussion", ""] + f.read().rstrip().splitlines() + [""]
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    log(f"wrote {os.path.relpath(path, root)}")
    return path
