"""`scaling.py project`: fit the α–β model (alphabeta.py: Hockney's α–β with a reduction γ, ring,
recursive-doubling and Rabenseifner collectives) to the collectives measured here, check it against the
measured sweep, and project step time and parallel efficiency to cluster scale.

Inputs (from `scaling.py collectives` and `scaling.py run`): OUT/collectives.jsonl and OUT/points.jsonl with
each point's timeline. Output: OUT/PROJECTION.md and the PNGs of projection_plots.py beside it."""
import collections
import math
import os

from .. import io
from . import alphabeta as ab
from . import timeline
from .harness import cores
from .projection_plots import plot


def load_collectives(out):
    """OUT/collectives.jsonl as (rows, {(op, P): [(bytes, median seconds)] sorted by size})."""
    rows = io.read_jsonl(os.path.join(out, "collectives.jsonl"))
    by = collections.defaultdict(list)
    for r in rows:
        by[(r["collective"], r["ranks"])].append((r["bytes"], r["median_us"] * 1e-6))
    return rows, {k: sorted(v) for k, v in by.items()}


class Fits:
    """The collectives' fitted times on this machine. Per (op, P) two affine fits T = a + b·n
    (alphabeta.fit_affine), one for sizes ≤ split bytes and one above (messages that stay in the last-level
    cache and those that stream through DRAM move at different rates per byte); per P one ring model
    (α, β, γ) for all three ops (alphabeta.fit_alpha_beta_gamma)."""

    def __init__(self, coll, split):
        self.coll, self.split = coll, split
        self.ranks = sorted({p for _, p in coll})
        self.affine = {k: (self._regime_fit(v, False), self._regime_fit(v, True)) for k, v in coll.items()}
        self.structured = {p: ab.fit_alpha_beta_gamma([(op, n, t) for (op, q), v in coll.items() if q == p for n, t in v], p)
                           for p in self.ranks}

    def _regime_fit(self, v, large):
        pts = [(n, t) for n, t in v if (n >= self.split if large else n <= self.split)]
        return ab.fit_affine([n for n, _ in pts], [t for _, t in pts]) if len(pts) >= 2 else None

    def affine_time(self, op, n, p):
        """Seconds by the affine fit of n's regime (the other regime's when that one has < 2 sizes)."""
        small, large = self.affine[(op, p)]
        a, b = (large or small) if n > self.split else (small or large)
        return a + b * n

    def here(self, op, n, p):
        """Seconds on this machine: 0 at P = 1, the affine fit at a measured P, else the ring model of the nearest P."""
        if p <= 1:
            return 0.0
        if (op, p) in self.affine:
            return self.affine_time(op, n, p)
        q = min(self.ranks, key=lambda r: abs(r - p))
        return ab.ring_time(op, n, p, *self.structured[q])


def fmt_bw(b):
    """Seconds per byte as GB/s ("∞" for 0)."""
    return f"{1 / b / 1e9:.2f}" if b > 0 else "∞"


def median(v):
    """The upper median (what the tables have always shown)."""
    return sorted(v)[len(v) // 2]


def fits_section(fits, split_mib, ncores):
    """Section 1: the fits and their errors against the measured sizes."""
    lines = ["## 1. The collectives measured here, and the fitted model", "",
             "`bench collectives` (nccl-tests' sizes: allreduce the buffer, allgather the gathered result, reduce-scatter "
             "the input; median of the slowest rank's time per call). Per collective and P an affine fit T = a + n·b "
             f"(relative-error least squares) for sizes up to {split_mib:g} MiB and one above (messages that fit this "
             "CPU's 32 MiB last-level cache with their buffers, and those that stream through DRAM, move at different rates), "
             "and per P one ring model for all three over all sizes, "
             "T = c_α·α + c_β·n·β + c_γ·n·γ (alphabeta.py: allreduce 2(P−1)α + 2(P−1)/P·nβ + (P−1)/P·nγ; allgather "
             "(P−1)α + (P−1)/P·nβ; reduce-scatter (P−1)α + (P−1)/P·n(β+γ)). Error columns: median and worst |relative "
             "error| over the sizes.", "",
             "| P | collective | a (µs) | 1/b (GB/s) ≤ split | a (µs) | 1/b (GB/s) > split | affine err med / max | ring-model err med / max | oversubscribed |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for (op, p) in sorted(fits.coll, key=lambda k: (k[1], ab.OPS.index(k[0]))):
        (a, b), (a2, b2) = [f or (float("nan"), float("nan")) for f in fits.affine[(op, p)]]
        ea = [abs(fits.affine_time(op, n, p) - t) / t for n, t in fits.coll[(op, p)]]
        es = [abs(ab.ring_time(op, n, p, *fits.structured[p]) - t) / t for n, t in fits.coll[(op, p)]]
        lines.append(f"| {p} | {op} | {a * 1e6:.1f} | {fmt_bw(b)} | {a2 * 1e6:.1f} | {fmt_bw(b2)} | {100 * median(ea):.0f} % / {100 * max(ea):.0f} % | "
                     f"{100 * median(es):.0f} % / {100 * max(es):.0f} % | {'yes' if p > ncores else ''} |")
    lines += ["", "| P | α (µs) | 1/β (GB/s) | 1/γ (GB/s) |", "|---:|---:|---:|---:|"]
    for p in fits.ranks:
        al, be, ga = fits.structured[p]
        lines.append(f"| {p} | {al * 1e6:.2f} | {fmt_bw(be)} | {fmt_bw(ga)} |")
    return lines


def calibration(out, row, hidden=500):
    """(alphabeta.Calibration, timeline.breakdown) of a measured point (one core per rank, batch / P rows per
    rank). Every compute term is scaled by the timeline's imbalance: the collectives make every rank run at
    the slowest one's pace. The gradient allreduce is the replicated bytes; the other collectives keep their
    calls per step and are marked as growing with the batch when their size is a multiple of 4·batch bytes."""
    t = timeline.breakdown(os.path.join(out, row["timeline"]))
    p, batch = row["P"], row["batch"]
    grad = next((b for op, b, n, *_ in t["collectives"] if n.startswith("gradient allreduce")), row.get("gradient_bytes_per_step", 0))
    colls = []
    for op, b, n, count, *_ in t["collectives"]:
        if n.startswith("gradient allreduce"):
            continue
        grows = b % (4 * batch) == 0     # B-sized messages (H, dH, row maxima and sums); the rest is fixed
        colls += [(op, b, n, grows)] * int(round(count))
    k = t["imbalance"]
    return ab.Calibration(vae=k * t["vae"], bwd=k * t["bwd"], cls=k * t["cls"], adam_rep=k * t["adam_rep"], adam_out=k * t["adam_out"],
                          other=k * t["other"], p_cal=p, b=batch // p, h=hidden, replicated_bytes=grad, collectives=colls,
                          labels=row.get("V", 0) or 0, layer_bytes_per_label=4 * (hidden + 1)), t


def validation_section(out, pts, cals, fits, ncores):
    """Section 2: every point with P ≥ 2 predicted from its model's calibration (compute scaled by the rows per
    rank and by P / cores when oversubscribed, collectives by fits.here), and each collective inside the P = 2
    steps against its fit. Returns (lines, [(row, predicted ms)])."""
    lines = ["", "## 2. The model against the measured sweep", "",
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
        over = max(1.0, r["P"] / ncores)
        total, parts = ab.step_ms(cal, design, r["P"], fits.here, batch_scale=(r["batch"] / r["P"]) / cal.b, oversubscription=over)
        err = (total - r["step_ms"]) / r["step_ms"]
        calib = r["mode"] == "weak" and r["P"] == 2
        errors["calibration (P = 2 weak)" if calib else ("oversubscribed" if over > 1 else "predicted, P ≤ cores")].append(abs(err))
        here.append((r, total))
        lines.append(f"| {r['point']}{' (calibration)' if calib else ''}{' (oversubscribed)' if over > 1 else ''} | "
                     f"{r['step_ms']:.2f} | {total:.2f} | {100 * err:+.0f} % | {r['phases_ms'].get('communication', 0):.2f} | "
                     f"{parts['other_comm'] + parts['gradient_exposed']:.2f} |")
    lines += [""] + [f"- {k}: {len(v)} points, median |error| {100 * median(v):.0f} %, worst {100 * max(v):.0f} %."
                     for k, v in errors.items()]
    lines += ["", "Each collective inside the P = 2 steps, against the affine fit for its size. Rank 0's time includes "
              "waiting for the other rank to arrive; the rank that arrives last waits least, so the minimum over ranks "
              "of one call's duration is its transfer time, the number the model (timed after a barrier) predicts:", "",
              "| point | collective | bytes | rank 0 µs | last-arriving rank µs | model µs |", "|---|---|---:|---:|---:|---:|"]
    ratios = collections.defaultdict(list)
    for r in sorted(pts, key=lambda r: (r["model"], r["V"], r["mode"])):
        if r["P"] != 2:
            continue
        for op, b, n, c, us, last in timeline.breakdown(os.path.join(out, r["timeline"]))["collectives"]:
            model = fits.here(op, b, 2) * 1e6
            lines.append(f"| {r['point']} | {n} | {b} | {us:.0f} | {last:.0f} | {model:.0f} |")
            if b >= 65536:   # small messages are latency, dominated by arrival skew: not a check of the rate
                ratios["gradient allreduce" if n.startswith("gradient") else n].append(last / model)
    lines += [""] + [f"- {n}: last-arriving rank's time / model, median {median(v):.2f} (range {min(v):.2f}–{max(v):.2f}) "
                     f"over {len(v)} points." for n, v in sorted(ratios.items())]
    return lines, here


def extrapolate(table, v):
    """The calibration at V, from the two largest other measured V when V was not measured: the output layer's
    compute and Adam linear in V, the rest as at the largest V (None with fewer than two)."""
    known = sorted(k for k, c in table.items() if c is not None and k != v)
    if table.get(v) is not None or len(known) < 2:
        return table.get(v)
    v1, v2 = known[-2], known[-1]
    c1, c2 = table[v1], table[v2]

    def f(x1, x2):
        return x1 + (x2 - x1) * (v - v1) / (v2 - v1)

    c = ab.Calibration(vae=c2.vae, bwd=c2.bwd, cls=f(c1.cls, c2.cls), adam_rep=c2.adam_rep, adam_out=f(c1.adam_out, c2.adam_out),
                       other=c2.other, p_cal=c2.p_cal, b=c2.b, h=c2.h, replicated_bytes=c2.replicated_bytes,
                       collectives=c2.collectives, labels=v, layer_bytes_per_label=c2.layer_bytes_per_label)
    c.extrapolated = True
    return c


def cluster_curves(cals, labels, comm, speedups, plist):
    """{speedup: {(V, design, overlap): [(P, step ms, parts, step ms at P = 1)]}} for the replicated,
    partitioned full and partitioned tree layers at each V (V = 0: the plain VAE), and the V extrapolated."""
    full = {v: cals.get(("full", v)) for v in labels}
    tree = {v: cals.get(("tree", v)) for v in labels}
    extrapolated = []
    for v in labels:
        for table in (full, tree):
            if table.get(v) is None:
                table[v] = extrapolate(table, v)
                if table[v] is not None:
                    extrapolated.append(v)
    designs = [(v, design, cal) for v in labels
               for design, cal in (("replicated", full.get(v)), ("partitioned full", full.get(v)), ("partitioned tree", tree.get(v)))
               if cal is not None]
    if cals.get(("vae", 0)):
        designs.append((0, "VAE", cals[("vae", 0)]))
    curves_by = {}
    for sp in speedups:
        curves = curves_by[sp] = {}
        for v, design, cal in designs:
            kind = design if design == "replicated" else ("vae" if design == "VAE" else "partitioned")
            for overlap in (False, True):
                t1, _ = ab.step_ms(cal, kind, 1, comm, overlap=overlap, speedup=sp)
                curves[(v, design, overlap)] = [(p, *ab.step_ms(cal, kind, p, comm, overlap=overlap, speedup=sp), t1) for p in plist]
    return curves_by, extrapolated


def curve_lines(curves, labels, plist):
    """One compute speed's table of step times and efficiencies, and where the partitioned layer wins."""
    lines = ["| V | design | overlap | step ms P=1 | P=8 | P=64 | P=512 | efficiency P=8 | P=64 | P=512 | output layer MiB/rank at P=512 |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (v, design, overlap), c in sorted(curves.items(), key=lambda kv: kv[0]):
        at = {p: (t, parts, t1) for p, t, parts, t1 in c}
        # The output layer's weights, gradient and two Adam moments: 16 bytes per weight of V × (h + 1).
        mem = "" if v == 0 else f"{16 * v * 501 / (1 if design == 'replicated' else 512) / 2 ** 20:,.0f}"
        cells = [f"{at[p][0]:.1f}" for p in (8, 64, 512) if p in at]
        effs = [f"{at[p][2] / at[p][0]:.2f}" for p in (8, 64, 512) if p in at]
        lines.append(f"| {v or '-'} | {design} | {'yes' if overlap else 'no'} | {at[1][0]:.1f} | " + " | ".join(cells) + " | "
                     + " | ".join(effs) + f" | {mem} |")
    lines += ["", "Partitioned full softmax against the replicated layer (step time ratio replicated / partitioned, "
              "no overlap \\| with overlap):", "", "| V | " + " | ".join(f"P={p}" for p in plist[1:]) + " |",
              "|---:|" + "---:|" * (len(plist) - 1)]
    wins = []
    for v in labels:
        if (v, "replicated", False) not in curves:
            continue
        cells, won = [], {False: [], True: []}
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
    return lines


def project(args):
    """Writes OUT/PROJECTION.md and its figures (args: out, alpha_us, gbit, max_ranks, cache_split_mib,
    compute_speedup as on the command line)."""
    out = args.out
    _, coll = load_collectives(out)
    ncores = cores()
    fits = Fits(coll, args.cache_split_mib * 2 ** 20)
    lines = ["# Projection to cluster scale (α–β model)", ""] + fits_section(fits, args.cache_split_mib, ncores)

    pts = io.read_jsonl(os.path.join(out, "points.jsonl"))
    cals = {}
    for r in pts:
        if r["mode"] == "weak" and r["P"] == 2:
            cals[(r["model"], r["V"])], _ = calibration(out, r)
    section, here = validation_section(out, pts, cals, fits, ncores)
    lines += section

    alpha = args.alpha_us * 1e-6
    beta = 1.0 / (args.gbit / 8 * 1e9)
    gamma = fits.structured[min(fits.ranks)][2]   # the reduction runs on a CPU like this one's

    def comm_cluster(op, n, p):
        return ab.collective_time(op, n, p, alpha, beta, gamma)

    plist = [2 ** k for k in range(0, int(math.log2(args.max_ranks)) + 1)]
    labels = sorted({v for (m, v) in cals if m != "vae"} | {1_000_000})
    speedups = [float(x) for x in args.compute_speedup.split(",")]
    curves_by, extrapolated = cluster_curves(cals, labels, comm_cluster, speedups, plist)
    lines += ["", "## 3. Projection to a cluster", "",
              f"Assumed network: every rank on its own node, links of {args.gbit:g} Gb/s (β = {beta * 1e9:.3f} ns/byte, "
              f"{args.gbit / 8:g} GB/s) and α = {args.alpha_us:g} µs per message (InfiniBand HDR100/EDR class); γ = "
              f"{gamma * 1e9:.3f} ns/byte, this CPU's reduction rate from the P = {min(fits.ranks)} fit. Each collective costs "
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
        lines += ["", f"### Compute {'as measured here (one core per rank)' if sp == 1 else f'÷ {sp:g} (a rank of {sp:g} such cores)'}", ""]
        lines += curve_lines(curves_by[sp], labels, plist)

    figures = plot(out, fits, here, curves_by, labels, ncores)
    lines += [""] + [f"![{os.path.splitext(f)[0]}]({f})" for f in figures]
    path = os.path.join(out, "PROJECTION.md")
    io.write_text_atomic(path, "\n".join(lines) + "\n")
    print("scaling: wrote", path, "and", len(figures), "figure(s)")
