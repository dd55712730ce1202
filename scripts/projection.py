"""`scripts/scaling.py project`: fit the α–β model to the collectives measured here, check it
against the measured sweep, and project step time and parallel efficiency to cluster scale.

Inputs (from `scaling.py collectives` and `scaling.py run`): OUT/collectives.jsonl and
OUT/points.jsonl with each point's timeline. Output: OUT/PROJECTION.md and PNGs beside it.
The arithmetic is in alphabeta.py; this file reads the measurements and writes the report.
"""

import collections
import functools
import json
import math
import os

import alphabeta as ab
from scaling import cores, load_events, pyplot, self_times

OP_OF = {"allgather H": "allgather", "reduce-scatter dH": "reduce_scatter"}


def op_of(name):
    if name in OP_OF:
        return OP_OF[name]
    if "reduce_scatter" in name or "reduce-scatter" in name:
        return "reduce_scatter"
    if "allgather" in name:
        return "allgather"
    if "allreduce" in name:
        return "allreduce"
    return None


# ------------------------------------------------------------------ measurements

def load_collectives(out):
    rows = [json.loads(l) for l in open(os.path.join(out, "collectives.jsonl"))]
    by = collections.defaultdict(list)
    for r in rows:
        by[(r["collective"], r["ranks"])].append((r["bytes"], r["median_us"] * 1e-6))
    return rows, {k: sorted(v) for k, v in by.items()}


def timeline_breakdown(out, row):
    """See _breakdown; read once per timeline (calibration and the per-collective table both use it)."""
    return _breakdown(os.path.join(out, row["timeline"]))


@functools.lru_cache(maxsize=None)
def _breakdown(path):
    """Per-step ms (mean over ranks) of the phases the step model needs, and the step's collectives
    as (op, bytes, name, count per step, rank 0's mean µs, the last-arriving rank's mean µs)."""
    events = load_events(path)
    ranks = sorted({e["pid"] for e in events})
    steps = max(1, sum(1 for e in events if e.get("cat") == "step") // len(ranks))
    st = self_times(events)
    mean = lambda cat: sum(st[r][cat] for r in ranks) / len(ranks) / steps / 1e3
    named = collections.Counter()
    for e in events:
        if e.get("tid", 0) == 0:
            named[e["name"]] += e["dur"]
    adam_rep = sum(v for k, v in named.items() if k.startswith("optimizer (Adam")) / len(ranks) / steps / 1e3
    adam_out = named.get("classifier output layer optimizer", 0.0) / len(ranks) / steps / 1e3
    # Each collective call on every rank, in order: the rank that arrives last waits least, so the
    # minimum over ranks of one call's duration is its transfer time; the rest is waiting for it.
    per_rank = {r: sorted((e for e in events if e["pid"] == r and e.get("tid", 0) == 0 and e.get("cat") == "communication"
                           and e.get("args", {}).get("bytes") is not None), key=lambda e: e["ts"]) for r in ranks}
    colls = collections.defaultdict(lambda: ([], []))
    for calls in zip(*per_rank.values()):
        e = calls[0]
        key = (e["name"], int(e["args"]["bytes"]))
        colls[key][0].append(e["dur"])
        colls[key][1].append(min(c["dur"] for c in calls))
    collectives = [(op_of(n), b, n, len(d) / steps, sum(d) / len(d), sum(m) / len(m))
                   for (n, b), (d, m) in sorted(colls.items()) if op_of(n)]
    # Compute imbalance: the slowest rank's non-communication time over the mean (collectives make
    # every rank wait for the slowest).
    busy = [sum(v for c, v in st[r].items() if c != "communication") for r in ranks]
    imbalance = max(busy) / (sum(busy) / len(busy)) if sum(busy) > 0 else 1.0
    return dict(vae=mean("data") + mean("forward") + mean("backward"), bwd=mean("backward"), cls=mean("classifier"),
                imbalance=imbalance,
                adam_rep=adam_rep, adam_out=adam_out,
                other=mean("other") + mean("optimizer") - adam_rep - adam_out, comm=mean("communication"),
                collectives=collectives)


def calibration(out, row, hidden=500):
    """An ab.Calibration from a measured point (one core per rank, b rows per rank)."""
    t = timeline_breakdown(out, row)
    p, batch = row["P"], row["batch"]
    grad = next((b for op, b, n, *_ in t["collectives"] if n.startswith("gradient allreduce")), row.get("gradient_bytes_per_step", 0))
    colls = []
    for op, b, n, count, *_ in t["collectives"]:
        if n.startswith("gradient allreduce"):
            continue
        grows = b % (4 * batch) == 0     # B-sized messages (H, dH, row maxima and sums); the rest is fixed
        colls += [(op, b, n, grows)] * int(round(count))
    k = t["imbalance"]   # every rank runs at the slowest one's pace
    return ab.Calibration(vae=k * t["vae"], bwd=k * t["bwd"], cls=k * t["cls"], adam_rep=k * t["adam_rep"], adam_out=k * t["adam_out"],
                          other=k * t["other"], p_cal=p, b=batch // p, h=hidden, replicated_bytes=grad, collectives=colls,
                          labels=row.get("V", 0) or 0, layer_bytes_per_label=4 * (hidden + 1)), t


# ------------------------------------------------------------------ report

def fmt_bw(b):
    return f"{1 / b / 1e9:.2f}" if b > 0 else "∞"


def project(args):
    out = args.out
    rows, coll = load_collectives(out)
    ncores = cores()
    ranks = sorted({p for _, p in coll})
    lines = ["# Projection to cluster scale (α–β model)", ""]

    # 1. Fits: one affine α–β fit per collective, P and memory regime (messages that stay in this CPU's
    # last-level cache and those that stream through DRAM move at different rates per byte).
    split = args.cache_split_mib * 2 ** 20
    def regime_fit(v, large):
        pts = [(n, t) for n, t in v if (n >= split if large else n <= split)]
        return ab.fit_affine([n for n, _ in pts], [t for _, t in pts]) if len(pts) >= 2 else None
    affine = {k: (regime_fit(v, False), regime_fit(v, True)) for k, v in coll.items()}
    def affine_time(op, n, p):
        small, large = affine[(op, p)]
        a, b = (large or small) if n > split else (small or large)
        return a + b * n
    structured = {}
    for p in ranks:
        samples = [(op, n, t) for (op, q), v in coll.items() if q == p for n, t in v]
        structured[p] = ab.fit_alpha_beta_gamma(samples, p)
    lines += ["## 1. The collectives measured here, and the fitted model", "",
              "`bench --collectives` (nccl-tests' sizes: allreduce the buffer, allgather the gathered result, reduce-scatter "
              "the input; median of the slowest rank's time per call). Per collective and P an affine fit T = a + n·b "
              f"(relative-error least squares) for sizes up to {args.cache_split_mib:g} MiB and one above (messages that fit this "
              "CPU's 32 MiB last-level cache with their buffers, and those that stream through DRAM, move at different rates), "
              "and per P one ring model for all three over all sizes, "
              "T = c_α·α + c_β·n·β + c_γ·n·γ (alphabeta.py: allreduce 2(P−1)α + 2(P−1)/P·nβ + (P−1)/P·nγ; allgather "
              "(P−1)α + (P−1)/P·nβ; reduce-scatter (P−1)α + (P−1)/P·n(β+γ)). Error columns: median and worst |relative "
              "error| over the sizes.", "",
              "| P | collective | a (µs) | 1/b (GB/s) ≤ split | a (µs) | 1/b (GB/s) > split | affine err med / max | ring-model err med / max | oversubscribed |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for (op, p) in sorted(coll, key=lambda k: (k[1], ab.OPS.index(k[0]))):
        (a, b), (a2, b2) = [f or (float("nan"), float("nan")) for f in affine[(op, p)]]
        ea = [abs(affine_time(op, n, p) - t) / t for n, t in coll[(op, p)]]
        al, be, ga = structured[p]
        es = [abs(ab.ring_time(op, n, p, al, be, ga) - t) / t for n, t in coll[(op, p)]]
        lines.append(f"| {p} | {op} | {a * 1e6:.1f} | {fmt_bw(b)} | {a2 * 1e6:.1f} | {fmt_bw(b2)} | {100 * sorted(ea)[len(ea) // 2]:.0f} % / {100 * max(ea):.0f} % | "
                     f"{100 * sorted(es)[len(es) // 2]:.0f} % / {100 * max(es):.0f} % | {'yes' if p > ncores else ''} |")
    lines += ["", "| P | α (µs) | 1/β (GB/s) | 1/γ (GB/s) |", "|---:|---:|---:|---:|"]
    for p in ranks:
        al, be, ga = structured[p]
        lines.append(f"| {p} | {al * 1e6:.2f} | {fmt_bw(be)} | {fmt_bw(ga)} |")

    def comm_here(op, n, p):
        if p <= 1:
            return 0.0
        if (op, p) in affine:
            return affine_time(op, n, p)
        q = min(ranks, key=lambda r: abs(r - p))
        return ab.ring_time(op, n, p, *structured[q])

    # 2. Validation against the sweep.
    pts = [json.loads(l) for l in open(os.path.join(out, "points.jsonl"))]
    cals, breakdowns = {}, {}
    for r in pts:
        if r["mode"] == "weak" and r["P"] == 2:
            cals[(r["model"], r["V"])], breakdowns[(r["model"], r["V"])] = calibration(out, r)
    lines += ["", "## 2. The model against the measured sweep", "",
              "Compute per rank is calibrated on each model's weak-scaling point at P = 2 (one core and b = 128 rows per "
              "rank): data + forward + backward, the output layer, Adam over the replicated parameters and over the "
              "output layer's share, from its timeline, each times the slowest rank's busy time over the mean (the "
              "collectives make every rank wait for the slowest). Every other point is predicted from it: compute scaled by the "
              "rows per rank (strong scaling halves them) and by P / cores when oversubscribed, plus the step's "
              "collectives (their byte counts from the timeline, B-sized ones scaled with the global batch) timed by the "
              "affine fits above. At the calibration points only the communication is predicted. P = 1 points ran "
              "with two BLAS threads and are not predicted.", "",
              "| point | measured step ms | predicted | error | measured comm ms (exposed) | predicted comm ms |",
              "|---|---:|---:|---:|---:|---:|"]
    errors = collections.defaultdict(list)
    here = []
    for r in sorted(pts, key=lambda r: (r["model"], r["V"], r["mode"], r["P"])):
        cal = cals.get((r["model"], r["V"]))
        if cal is None or r["P"] < 2:
            continue
        design = "vae" if r["model"] == "vae" else "partitioned"
        s = (r["batch"] / r["P"]) / cal.b
        over = max(1.0, r["P"] / ncores)
        total, parts = ab.step_ms(cal, design, r["P"], comm_here, batch_scale=s, oversubscription=over)
        err = (total - r["step_ms"]) / r["step_ms"]
        calib = r["mode"] == "weak" and r["P"] == 2
        key = "calibration (P = 2 weak)" if calib else ("oversubscribed" if over > 1 else "predicted, P ≤ cores")
        errors[key].append(abs(err))
        here.append((r, total))
        lines.append(f"| {r['point']}{' (calibration)' if calib else ''}{' (oversubscribed)' if over > 1 else ''} | "
                     f"{r['step_ms']:.2f} | {total:.2f} | {100 * err:+.0f} % | {r['phases_ms'].get('communication', 0):.2f} | "
                     f"{parts['other_comm'] + parts['gradient_exposed']:.2f} |")
    lines += [""]
    for k, v in errors.items():
        v = sorted(v)
        lines.append(f"- {k}: {len(v)} points, median |error| {100 * v[len(v) // 2]:.0f} %, worst {100 * v[-1]:.0f} %.")

    # Per-collective check inside the steps (P = 2, not oversubscribed).
    lines += ["", "Each collective inside the P = 2 steps, against the affine fit for its size. Rank 0's time includes "
              "waiting for the other rank to arrive; the rank that arrives last waits least, so the minimum over ranks "
              "of one call's duration is its transfer time, the number the model (timed after a barrier) predicts:", "",
              "| point | collective | bytes | rank 0 µs | last-arriving rank µs | model µs |", "|---|---|---:|---:|---:|---:|"]
    ratios = collections.defaultdict(list)
    for r in sorted(pts, key=lambda r: (r["model"], r["V"], r["mode"])):
        if r["P"] != 2:
            continue
        for op, b, n, c, us, last in timeline_breakdown(out, r)["collectives"]:
            model = comm_here(op, b, 2) * 1e6
            lines.append(f"| {r['point']} | {n} | {b} | {us:.0f} | {last:.0f} | {model:.0f} |")
            if b >= 65536:
                ratios["gradient allreduce" if n.startswith("gradient") else n].append(last / model)
    lines += [""] + [f"- {n}: last-arriving rank's time / model, median {sorted(v)[len(v) // 2]:.2f} (range {min(v):.2f}–{max(v):.2f}) "
                     f"over {len(v)} points." for n, v in sorted(ratios.items())]

    # 3. Projection.
    alpha = args.alpha_us * 1e-6
    beta = 1.0 / (args.gbit / 8 * 1e9)
    gamma = structured[min(ranks)][2]
    comm_cluster = lambda op, n, p: ab.collective_time(op, n, p, alpha, beta, gamma)
    plist = [2 ** k for k in range(0, int(math.log2(args.max_ranks)) + 1)]
    labels = sorted({v for (m, v) in cals if m != "vae"} | {1_000_000})
    full = {v: cals.get(("full", v)) for v in labels}
    tree = {v: cals.get(("tree", v)) for v in labels}

    def extrapolate(table, v):
        """The output layer's compute and Adam at V from the two largest measured V (linear in V)."""
        known = sorted(k for k, c in table.items() if c is not None and k != v)
        if table.get(v) is not None or len(known) < 2:
            return table.get(v)
        v1, v2 = known[-2], known[-1]
        c1, c2 = table[v1], table[v2]
        f = lambda x1, x2: x1 + (x2 - x1) * (v - v1) / (v2 - v1)
        c = ab.Calibration(vae=c2.vae, bwd=c2.bwd, cls=f(c1.cls, c2.cls), adam_rep=c2.adam_rep, adam_out=f(c1.adam_out, c2.adam_out),
                           other=c2.other, p_cal=c2.p_cal, b=c2.b, h=c2.h, replicated_bytes=c2.replicated_bytes,
                           collectives=c2.collectives, labels=v, layer_bytes_per_label=c2.layer_bytes_per_label)
        c.extrapolated = True
        return c

    extrapolated = []
    for v in labels:
        for table in (full, tree):
            if table.get(v) is None:
                table[v] = extrapolate(table, v)
                if table[v] is not None:
                    extrapolated.append(v)
    vae = cals.get(("vae", 0))
    speedups = [float(x) for x in args.compute_speedup.split(",")]
    curves_by = {}
    for sp in speedups:
        curves = curves_by[sp] = {}
        for v in labels:
            for design, cal in (("replicated", full.get(v)), ("partitioned full", full.get(v)), ("partitioned tree", tree.get(v))):
                if cal is None:
                    continue
                kind = "replicated" if design == "replicated" else "partitioned"
                for overlap in (False, True):
                    t1, _ = ab.step_ms(cal, kind, 1, comm_cluster, overlap=overlap, speedup=sp)
                    curves[(v, design, overlap)] = [(p, *ab.step_ms(cal, kind, p, comm_cluster, overlap=overlap, speedup=sp), t1)
                                                    for p in plist]
        if vae:
            for overlap in (False, True):
                t1, _ = ab.step_ms(vae, "vae", 1, comm_cluster, overlap=overlap, speedup=sp)
                curves[(0, "VAE", overlap)] = [(p, *ab.step_ms(vae, "vae", p, comm_cluster, overlap=overlap, speedup=sp), t1)
                                               for p in plist]

    lines += ["", "## 3. Projection to a cluster", "",
              f"Assumed network: every rank on its own node, links of {args.gbit:g} Gb/s (β = {beta * 1e9:.3f} ns/byte, "
              f"{args.gbit / 8:g} GB/s) and α = {args.alpha_us:g} µs per message (InfiniBand HDR100/EDR class); γ = "
              f"{gamma * 1e9:.3f} ns/byte, this CPU's reduction rate from the P = {min(ranks)} fit. Each collective costs "
              "the cheapest of ring, recursive doubling/halving and (allreduce) Rabenseifner's algorithm (alphabeta.py). "
              "Compute per rank as calibrated in section 2 (one core of this machine per rank), and that compute divided by "
              f"{', '.join(f'{x:g}' for x in speedups if x != 1)} (a rank with that many such cores, perfectly used: communication weighs "
              "more). Weak scaling: 128 rows "
              "per rank, global batch 128·P; efficiency = T(1) / T(P). With overlap, the gradient allreduce hides behind "
              "backward (DDP's buckets with a progress engine: the ideal, which section 'Overlapped reduction' measured "
              "not to happen on this 2-core machine)."
              + (f" The output layer's compute and Adam at V = {', '.join(f'{v:,}' for v in sorted(set(extrapolated)))} are extrapolated "
                 "linearly in V from the two largest measured V." if extrapolated else ""), "",
              ]
    for sp in speedups:
        curves = curves_by[sp]
        lines += ["", f"### Compute {'as measured here (one core per rank)' if sp == 1 else f'÷ {sp:g} (a rank of {sp:g} such cores)'}", "",
                  "| V | design | overlap | step ms P=1 | P=8 | P=64 | P=512 | efficiency P=8 | P=64 | P=512 | output layer MiB/rank at P=512 |",
                  "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for (v, design, overlap), c in sorted(curves.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
            at = {p: (t, parts, t1) for p, t, parts, t1 in c}
            mem = "" if v == 0 else f"{16 * v * 501 / (1 if design == 'replicated' else 512) / 2 ** 20:,.0f}"
            cells = [f"{at[p][0]:.1f}" for p in (8, 64, 512) if p in at]
            effs = [f"{at[p][2] / at[p][0]:.2f}" for p in (8, 64, 512) if p in at]
            lines.append(f"| {v or '-'} | {design} | {'yes' if overlap else 'no'} | {at[1][0]:.1f} | " + " | ".join(cells) + " | "
                         + " | ".join(effs) + f" | {mem} |")
        # Where the partitioned layer wins.
        lines += ["", "Partitioned full softmax against the replicated layer (step time ratio replicated / partitioned, "
                  "no overlap \\| with overlap):", "", "| V | " + " | ".join(f"P={p}" for p in plist[1:]) + " |",
                  "|---:|" + "---:|" * (len(plist) - 1)]
        wins = []
        for v in labels:
            if (v, "replicated", False) not in curves:
                continue
            cells = []
            won = {False: [], True: []}
            for p in plist[1:]:
                ratio = []
                for overlap in (False, True):
                    tr = next(t for q, t, _, _ in curves[(v, "replicated", overlap)] if q == p)
                    tp = next(t for q, t, _, _ in curves[(v, "partitioned full", overlap)] if q == p)
                    ratio.append(tr / tp)
                    if tr > tp:
                        won[overlap].append(p)
                cells.append(f"{ratio[0]:.2f} \\| {ratio[1]:.2f}")
            lines.append(f"| {v:,} | " + " | ".join(cells) + " |")
            wins.append((v, won))
        lines += [""]
        for v, won in wins:
            lines.append(f"- V = {v:,}: " + "; ".join(
                f"{'with' if ov else 'without'} overlap partitioned faster at P ∈ {{{', '.join(str(p) for p in won[ov]) or 'none'}}}"
                for ov in (False, True)) + ".")

    figures = plot(out, coll, affine_time, structured, here, curves_by, labels)
    lines += [""] + [f"![{os.path.splitext(f)[0]}]({f})" for f in figures]
    path = os.path.join(out, "PROJECTION.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("scaling: wrote", path, "and", len(figures), "figure(s)")


def plot(out, coll, affine_time, structured, here, curves_by, labels):
    plt = pyplot()
    if plt is None:
        return []
    made = []
    ranks = sorted({p for _, p in coll})
    fig, axes = plt.subplots(1, len(ranks), figsize=(4.5 * len(ranks), 3.8), squeeze=False)
    for ax, p in zip(axes[0], ranks):
        for op, color in zip(ab.OPS, ("C0", "C1", "C2")):
            pts = coll.get((op, p), [])
            if not pts:
                continue
            ns = [n for n, _ in pts]
            ax.loglog(ns, [t * 1e6 for _, t in pts], "o", color=color, ms=4, label=f"{op} measured")
            ax.loglog(ns, [affine_time(op, n, p) * 1e6 for n in ns], "-", color=color, lw=1, label=f"{op} affine fits")
            ax.loglog(ns, [ab.ring_time(op, n, p, *structured[p]) * 1e6 for n in ns], ":", color=color, lw=1.2)
        ax.set_xlabel("bytes"); ax.set_ylabel("µs per call")
        ax.set_title(f"P = {p}" + (" (oversubscribed)" if p > cores() else "") + "; dotted: one ring model")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "collectives_fit.png"), dpi=110); plt.close(fig); made.append("collectives_fit.png")

    if here:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        marks = {"vae": "s", "full": "o", "tree": "^"}
        for r, pred in here:
            ax.loglog(r["step_ms"], pred, marks.get(r["model"], "x"), color=f"C{r['P'] - 2}", ms=6,
                      mfc="none" if r["mode"] == "strong" else None)
        lo = min(min(r["step_ms"], p) for r, p in here) * 0.7
        hi = max(max(r["step_ms"], p) for r, p in here) * 1.4
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_xlabel("measured step ms"); ax.set_ylabel("predicted step ms")
        ax.set_title("α–β model vs the sweep on this machine\ncolour P (2, 3, 4); ■ vae ● full ▲ tree; hollow: strong", fontsize=9)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "projection_here.png"), dpi=110); plt.close(fig); made.append("projection_here.png")

    speedups = sorted(curves_by)
    vs = [v for v in labels if any(k[0] == v for k in curves_by[speedups[0]])]
    fig, axes = plt.subplots(len(speedups), len(vs), figsize=(4.6 * len(vs), 3.8 * len(speedups)), squeeze=False)
    colors = {"replicated": "C3", "partitioned full": "C0", "partitioned tree": "C2", "VAE": "0.5"}
    for row, sp in zip(axes, speedups):
        for ax, v in zip(row, vs):
            for (cv, design, overlap), c in sorted(curves_by[sp].items()):
                if cv not in (v, 0):
                    continue
                ax.semilogx([p for p, *_ in c], [t1 / t for p, t, _, t1 in c], "--" if overlap else "-", color=colors[design],
                            base=2, label=f"{design}{' + overlap' if overlap else ''}")
            ax.set_ylim(0, 1.25); ax.axhline(1, color="0.8", lw=0.5)
            ax.set_xlabel("ranks P (one per node)"); ax.set_ylabel("weak-scaling efficiency T(1)/T(P)")
            ax.set_title(f"V = {v:,}, compute " + ("as measured (1 core/rank)" if sp == 1 else f"÷ {sp:g}"), fontsize=9)
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "projection_cluster.png"), dpi=110); plt.close(fig); made.append("projection_cluster.png")

    # Which design is faster: step time of the replicated layer over the partitioned one.
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, v in enumerate(vs):
        for sp, style in zip(speedups, ("-", "--", ":", "-.")):
            c = curves_by[sp]
            if (v, "replicated", False) not in c:
                continue
            rep = {p: t for p, t, _, _ in c[(v, "replicated", False)]}
            for design, marker in (("partitioned full", "o"), ("partitioned tree", "^")):
                if (v, design, False) not in c:
                    continue
                part = {p: t for p, t, _, _ in c[(v, design, False)]}
                ps = sorted(p for p in part if p > 1)
                ax.loglog(ps, [rep[p] / part[p] for p in ps], style, marker=marker, ms=3, color=f"C{k}", base=2,
                          label=f"V = {v:,}, {design.split()[1]}, compute " + ("as measured" if sp == 1 else f"÷ {sp:g}"))
    ax.axhline(1, color="k", lw=0.6)
    ax.set_xlabel("ranks P (one per node)"); ax.set_ylabel("step time: replicated / partitioned (> 1: partitioned faster)")
    ax.set_title("partitioned against replicated output layer, no overlap", fontsize=9)
    ax.legend(fontsize=5.5, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "projection_ratio.png"), dpi=110); plt.close(fig); made.append("projection_ratio.png")
    return made
