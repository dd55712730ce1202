"""Ours vs the PyTorch reference (scripts/torch_train.py) for one configuration, over seeds.

    python3 scripts/overlay_torch.py --ours runs/converged/lr/lr3e-4-s0,runs/converged/lr/lr3e-4-s1,... \\
        --torch runs/torch/s0,runs/torch/s1,runs/torch/s2 --title "mnist-vaeas-small, lr 3e-4" --out overlay.png

A run directory is one holding metrics.jsonl, or one whose train/ does (scripts/converged.py's layout).
Draws loss, KL, MI (I_hat), SC and active units against epoch in one PNG: each side's mean over its
seeds, with a band from the minimum to the maximum (epochs that every seed of a side reached).

Active units: torch_train.py records `au` on the training images each epoch. Our metrics.jsonl has
`au` only if the trainer writes it; otherwise the panel shows our `test_au` (on the test images, at the
eval.every epochs), dashed and labelled so, and the table takes our final training-set AU from
done.json's eval_train (converged.py) when there is one.

Then prints a Markdown table of the final-epoch values, mean +- std over seeds (sample std, n - 1), with
n per cell; and the Monte Carlo MI at S = N (torch: final.json mi_mc; ours: done.json's estimate line
with the most samples) when the runs have it.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

from ..io import FormatError, read_jsonl
from ..plots import pyplot, save


def die(msg):
    """Exits as the overlay_torch.py command line does on a bad run directory."""
    sys.exit(f"overlay_torch.py: error: {msg}")


def metrics_path(d):
    """d/metrics.jsonl, else d/train/metrics.jsonl (scripts/converged.py's layout); exits if neither."""
    for p in (os.path.join(d, "metrics.jsonl"), os.path.join(d, "train", "metrics.jsonl")):
        if os.path.isfile(p):
            return p
    die(f"{d}: no metrics.jsonl nor train/metrics.jsonl")


def load_json(path):
    """A JSON file's content, or None when it is missing or not JSON (final.json, done.json are optional)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_run(d, side):
    """{"dir", "metrics": epoch records, "final": final-state numbers} of one run of `side` (ours or torch)."""
    p = metrics_path(d)
    try:
        rows = read_jsonl(p)
    except FormatError as e:
        die(str(e))
    if not rows:
        die(f"{p}: no epochs")
    run = {"dir": d, "metrics": rows, "final": {}}
    root = os.path.dirname(p)
    if side == "torch":
        f = load_json(os.path.join(root, "final.json"))
        if f:
            run["final"] = {"mi_mc": f.get("mi_mc"), "mean_kl_final": f.get("mean_kl"), "au_train": f.get("au"),
                            "mc_samples": f.get("mc_samples")}
    else:
        done = load_json(os.path.join(d, "done.json")) or load_json(os.path.join(os.path.dirname(root), "done.json"))
        if done:
            ev = done.get("eval_train") or {}
            if "active_units" in ev:
                run["final"]["au_train"] = ev["active_units"]
            est = [e for e in done.get("estimate", []) if isinstance(e, dict) and "mi" in e]
            if est:
                best = max(est, key=lambda e: e.get("samples", 0))
                run["final"].update(mi_mc=best["mi"], mean_kl_final=best.get("mean_kl"), mc_samples=best.get("samples"))
    return run


def series(runs, key):
    """(epochs, values [seeds x epochs]) over the epochs every run has `key` at; None if none."""
    per = []
    for r in runs:
        per.append({m["epoch"]: m[key] for m in r["metrics"]
                    if key in m and isinstance(m[key], (int, float)) and math.isfinite(m[key])})
    if not all(per):
        return None
    common = sorted(set.intersection(*(set(p) for p in per)))
    if not common:
        return None
    return np.array(common), np.array([[p[e] for e in common] for p in per], dtype=float)


def final_value(r, key):
    """A run's final value of key: the last epoch's, or final.json / done.json's for MC MI and training AU."""
    if key in ("mi_mc", "au_train", "mc_samples"):
        return r["final"].get(key)
    if key == "au" and "au" not in r["metrics"][-1]:
        return r["final"].get("au_train")
    v = r["metrics"][-1].get(key)
    return v if isinstance(v, (int, float)) else None


def stat(values):
    """'mean ± sample std (n=…)' of the values that are not None, digits by magnitude; '—' if none."""
    v = [x for x in values if x is not None]
    if not v:
        return "—"
    m = float(np.mean(v))
    s = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    digits = 1 if abs(m) >= 100 else 2 if abs(m) >= 1 else 3
    sd = "" if math.isnan(s) else f" ± {s:.{digits}f}"
    return f"{m:.{digits}f}{sd} (n={len(v)})"


def main():
    """overlay_torch.py's command line (the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="comma-separated run directories of vaeas-dist")
    ap.add_argument("--torch", required=True, help="comma-separated run directories of torch_train.py")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", required=True, help="PNG")
    a = ap.parse_args()
    ours = [load_run(d, "ours") for d in a.ours.split(",") if d]
    torch_runs = [load_run(d, "torch") for d in a.torch.split(",") if d]
    if len(ours) < 3 or len(torch_runs) < 3:
        print(f"overlay_torch.py: warning: {len(ours)} run(s) of ours, {len(torch_runs)} of torch (3+ each "
              "for a band worth reading)", file=sys.stderr)

    plt = pyplot(required=True, who="overlay_torch.py")
    panels = [("loss", "loss (L_φθ)"), ("kl", "KL"), ("mi", "MI (Î = log V − mean Ĥ)"), ("sc", "SC (mean CE)"),
              ("au", "active units")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    sides = [("ours (vaeas-dist)", ours, "C0"), ("PyTorch reference", torch_runs, "C3")]
    for ax, (key, label) in zip(axes, panels):
        for name, runs, color in sides:
            s, style, lab = series(runs, key), "-", f"{name}, n={len(runs)}"
            if s is None and key == "au":
                s, style, lab = series(runs, "test_au"), "--", f"{name}: test_au, n={len(runs)}"
            if s is None:
                continue
            ep, v = s
            marker = "o" if len(ep) < 20 else None
            ax.plot(ep, v.mean(0), style, color=color, label=lab, marker=marker, ms=3)
            ax.fill_between(ep, v.min(0), v.max(0), color=color, alpha=0.2, lw=0)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key == "loss":
            lo = [series(r, "loss") for _, r, _ in sides]
            vals = np.concatenate([s[1][:, len(s[0]) // 10:].ravel() for s in lo if s is not None and len(s[0]) > 10] or
                                  [np.array([])])
            if vals.size:   # the first epochs' loss would flatten the rest
                ax.set_ylim(vals.min() - 5, np.percentile(vals, 99) + 5)
        ax.legend(fontsize=7)
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    save(fig, a.out, dpi=110)
    print(f"wrote {a.out}")

    last = lambda runs: sorted({r["metrics"][-1]["epoch"] for r in runs})
    print()
    print(f"Final epoch (ours: {', '.join(map(str, last(ours)))}; PyTorch: {', '.join(map(str, last(torch_runs)))}), "
          "mean ± std over seeds:")
    print()
    print("| | ours (vaeas-dist) | PyTorch reference |")
    print("| --- | --- | --- |")
    rows = [("loss", "loss"), ("recon", "recon"), ("kl", "KL"), ("mi", "MI (Î)"), ("md", "MD (KL − Î)"),
            ("sc", "SC"), ("au", "AU (train)"), ("mi_mc", "MI (MC, S = N)")]
    for key, label in rows:
        a_ = stat([final_value(r, key) for r in ours])
        b_ = stat([final_value(r, key) for r in torch_runs])
        if a_ == "—" and b_ == "—":
            continue
        print(f"| {label} | {a_} | {b_} |")
    if any("au" not in r["metrics"][-1] for r in ours):
        print()
        print("(ours: AU (train) from done.json's eval_train where there is one; the curve shows test_au.)")


if __name__ == "__main__":
    main()
