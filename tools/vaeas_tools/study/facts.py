"""The "Differences from the paper" bullets of docs/RESULTS-full-N.md: facts computed from our runs and the
paper's numbers (the specs' `paper:` values), recomputed on every report; the interpretation is written by hand
in experiments/ANALYSIS.md."""
import math

from .spec import PAPER_K
from .tables import fmt

PAPER_EPOCHS = 300
#: log N of the paper's training sets, for the MI bound log V (V = N).
PAPER_LOG_N = {"table2": math.log(55000), "table3": math.log(24345)}


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


def table_facts(spec, results):
    """Factual bullets for one table, computed from our runs and the paper's numbers."""
    facts = []
    cols = spec.raw.get("columns", [])
    done = [(row, ours, d) for row, ours, d in results if ours is not None]
    if not done:
        return facts
    epochs = sorted({d["epochs"] for _, _, d in done})
    ks = sorted({d["iw_samples"] for _, _, d in done})
    limits = sorted({d.get("limit_data", 0) for _, _, d in done})
    fb = spec.raw.get("full_budget", {})
    facts.append(f"Budget: {', '.join(map(str, epochs))} epoch(s) (paper {fb.get('epochs', PAPER_EPOCHS)}), "
                 f"NLL_test with K = {', '.join(map(str, ks))} importance samples (paper {PAPER_K}).")
    if any(limits):
        facts.append(f"Training data cut to the first {', '.join(map(str, limits))} examples (--limit-data); "
                     "test and train evaluations on that many examples spread over each split (eval --limit). "
                     "These are validation numbers, not results.")
    if spec.raw.get("dataset_note"):
        facts.append(f"Data: {spec.raw['dataset_note']}.")

    def paper(row, col):
        if row.paper is None or col not in cols:
            return None
        return row.paper[cols.index(col)]

    if spec.name == "table1" or cols == ["AU"]:
        rows = [(row, ours) for row, ours, _ in done]
        ours_au = au_seq([o["AU"] for _, o in rows])
        paper_au = [paper(r, "AU") for r, _ in rows]
        depth = "/".join(r.label for r, _ in rows)
        facts.append(f"AU by decoder depth {depth}: ours {describe_seq(ours_au)} ({trend(ours_au)}), "
                     f"paper {describe_seq(paper_au)} ({trend(paper_au)}).")
        nll = [o["NLL_test"] for _, o in rows]
        facts.append(f"NLL_test by decoder depth {depth} (not in the paper's table): ours {describe_seq(nll)}.")
        missing = [r.id for r, o, _ in results if o is None]
        if missing:
            facts.append(f"Not run: decoder depth {', '.join(missing)}.")
        return facts

    by_id = {row.id: (row, ours) for row, ours, _ in done}
    # VAE against VAE-AS alpha = beta = 1.
    vae = next(((r, o) for r, o in by_id.values() if spec.alpha_beta(r) == (None, None)), None)
    ab11 = next(((r, o) for r, o in by_id.values() if spec.alpha_beta(r) == (1.0, 1.0)), None)
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
    vaeas = [(r, o) for r, o in by_id.values() if spec.alpha_beta(r)[0] is not None]
    beta_sweep = sorted([(r, o) for r, o in vaeas if spec.alpha_beta(r)[0] == 1.0],
                        key=lambda ro: spec.alpha_beta(ro[0])[1])
    alpha_sweep = sorted([(r, o) for r, o in vaeas if spec.alpha_beta(r)[1] == 1.0],
                         key=lambda ro: spec.alpha_beta(ro[0])[0])
    for label, sweep, idx in (("β (α = 1)", beta_sweep, 1), ("α (β = 1)", alpha_sweep, 0)):
        if len(sweep) < 2:
            continue
        xs = "/".join(f"{spec.alpha_beta(r)[idx]:g}" for r, _ in sweep)
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
    mis = [(r, o) for r, o in vaeas if o.get("MI") is not None and o.get("labels")]
    if mis:
        def vv(o):  # the bound of the true MI: log min(V, N)
            return min(o["labels"], o["samples"] or o["labels"])
        worst = max(mis, key=lambda ro: ro[1]["MI"] - math.log(vv(ro[1])))
        v = vv(worst[1])
        labels, n = worst[1]["labels"], worst[1]["samples"] or worst[1]["labels"]
        excess = worst[1]["MI"] - math.log(v)
        ok = "stays ≤" if excess <= 1e-6 else "EXCEEDS"
        sizes = f"V = N = {v}" if labels == n else f"V = {labels} labels, N = {n} training samples"
        facts.append(f"Classifier MI {ok} log min(V, N) in every VAE-AS row: largest MI {max(o['MI'] for _, o in mis):.2f} "
                     f"against {'log V' if labels <= n else 'log N'} = {math.log(v):.2f} ({sizes}); the paper's bound is log N = "
                     f"{PAPER_LOG_N.get(spec.name, float('nan')):.2f}, its largest MI "
                     f"{max((paper(r, 'MI') or 0) for r, _ in vaeas):.2f}.")
    # Best NLL_test.
    best_o = min(by_id.values(), key=lambda ro: ro[1]["NLL_test"])
    run_rows = [r for r, _ in by_id.values() if paper(r, "NLL_test") is not None]
    if run_rows:
        best_p = min(run_rows, key=lambda r: paper(r, "NLL_test"))
        facts.append(f"Best NLL_test among the rows run: ours {best_o[1]['NLL_test']:.2f} ({row_name(spec, best_o[0])}), "
                     f"paper {paper(best_p, 'NLL_test'):.2f} ({row_name(spec, best_p)}).")
    missing = [r.id for r, o, _ in results if o is None]
    if missing:
        facts.append(f"Not run: {', '.join(missing)}.")
    return facts


def row_name(spec, row):
    a, b = spec.alpha_beta(row)
    if a is None:
        return row.method or row.label
    return f"α = {a:g}, β = {b:g}"


def estimate_facts(spec, runs):
    """Bullets for a Figures 2/3 study from its [(run, normalized done.json)]."""
    facts = []
    for row, d in runs:
        c, est = d["classifier"], d["estimate"]
        big, small = est[-1], est[0]
        if c.get("mi") is not None:
            facts.append(f"{row.label}: classifier Î {c['mi']:.2f} vs Monte Carlo MI {big['mi']:.2f} at S = {big['samples']} "
                         f"(and {small['mi']:.2f} at S = {small['samples']}); classifier MD̂ {c['md']:.2f} vs MC MD "
                         f"{big['md']:.2f} at S = {big['samples']} ({small['md']:.2f} at S = {small['samples']}).")
            if c.get("labels"):
                v, n = c["labels"], c.get("samples") or c["labels"]
                facts.append(f"{row.label}: Î {c['mi']:.2f} against log V = {math.log(v):.2f} (the estimate's bound, "
                             f"V = {v}) and log N = {math.log(n):.2f} (the true MI's bound, N = {n}): "
                             f"{'≤ both' if c['mi'] <= math.log(min(v, n)) + 1e-6 else ('≤ log V only' if c['mi'] <= math.log(v) + 1e-6 else 'ABOVE log V')}"
                             "; MC MI ≤ log S at every S: "
                             f"{'yes' if all(e['mi'] <= math.log(e['samples']) + 1e-6 for e in est) else 'NO'}.")
        facts.append(f"{row.label}: MC MI + MD {big['mi_plus_md']:.2f} vs mean KL {big['mean_kl']:.2f} at S = {big['samples']}.")
        if d.get("epochs") != spec.raw.get("full_budget", {}).get("epochs"):
            facts.append(f"{row.label}: trained {d['epochs']} epoch(s), the paper 120.")
    if len(runs) >= 2:
        a, b = runs[0][1]["estimate"], runs[1][1]["estimate"]
        if [(e["mi"], e["md"]) for e in a] == [(e["mi"], e["md"]) for e in b]:
            facts.append(f"The Monte Carlo estimates of '{runs[0][0].label}' and '{runs[1][0].label}' are identical: "
                         "at α = β the classifier does not act on the encoder, so both runs train the same VAE and only "
                         "the classifier (V) differs.")
    return facts
