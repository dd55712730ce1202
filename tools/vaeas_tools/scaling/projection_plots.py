"""The figures of `scaling.py project` (PROJECTION.md): the collectives against their α–β fits, the model
against the measured sweep, projected weak-scaling efficiency, and replicated over partitioned step time."""
import os

from .. import plots
from . import alphabeta as ab


def plot(out, fits, here, curves_by, labels, ncores):
    """Writes the four PNGs into `out`; returns their file names ([] without matplotlib).
    fits: projection.Fits; here: [(point row, predicted ms)]; curves_by: projection.cluster_curves' first value."""
    plt = plots.pyplot(required=False, who="scaling")
    if plt is None:
        return []
    made = []

    def save(fig, name):
        fig.tight_layout()
        plots.save(fig, os.path.join(out, name), dpi=110)
        made.append(name)

    ranks = fits.ranks
    fig, axes = plt.subplots(1, len(ranks), figsize=(4.5 * len(ranks), 3.8), squeeze=False)
    for ax, p in zip(axes[0], ranks):
        for op, color in zip(ab.OPS, ("C0", "C1", "C2")):
            pts = fits.coll.get((op, p), [])
            if not pts:
                continue
            ns = [n for n, _ in pts]
            ax.loglog(ns, [t * 1e6 for _, t in pts], "o", color=color, ms=4, label=f"{op} measured")
            ax.loglog(ns, [fits.affine_time(op, n, p) * 1e6 for n in ns], "-", color=color, lw=1, label=f"{op} affine fits")
            ax.loglog(ns, [ab.ring_time(op, n, p, *fits.structured[p]) * 1e6 for n in ns], ":", color=color, lw=1.2)
        ax.set_xlabel("bytes"); ax.set_ylabel("µs per call")
        ax.set_title(f"P = {p}" + (" (oversubscribed)" if p > ncores else "") + "; dotted: one ring model")
        ax.legend(fontsize=6)
    save(fig, "collectives_fit.png")

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
        save(fig, "projection_here.png")

    speedups = sorted(curves_by)
    vs = [v for v in labels if any(k[0] == v for k in curves_by[speedups[0]])]
    fig, axes = plt.subplots(len(speedups), len(vs), figsize=(4.6 * len(vs), 3.8 * len(speedups)), squeeze=False)
    colors = {"replicated": "C3", "partitioned full": "C0", "partitioned tree": "C2", "VAE": "0.5"}
    for row, sp in zip(axes, speedups):
        for ax, v in zip(row, vs):
            for (cv, design, overlap), c in sorted(curves_by[sp].items()):
                if cv not in (v, 0):   # V = 0: the plain VAE, drawn in every panel for reference
                    continue
                ax.semilogx([p for p, *_ in c], [t1 / t for p, t, _, t1 in c], "--" if overlap else "-", color=colors[design],
                            base=2, label=f"{design}{' + overlap' if overlap else ''}")
            ax.set_ylim(0, 1.25); ax.axhline(1, color="0.8", lw=0.5)
            ax.set_xlabel("ranks P (one per node)"); ax.set_ylabel("weak-scaling efficiency T(1)/T(P)")
            ax.set_title(f"V = {v:,}, compute " + ("as measured (1 core/rank)" if sp == 1 else f"÷ {sp:g}"), fontsize=9)
            ax.legend(fontsize=6)
    save(fig, "projection_cluster.png")

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
    save(fig, "projection_ratio.png")
    return made
