"""Compare two run directories of `vaeas-dist train` number by number.

    python3 scripts/compare_runs.py OLD_RUN NEW_RUN [OLD_RUN2 NEW_RUN2 ...]

For each pair: every tensor of model.safetensors (max |Δ| and max |Δ|/|old|
over elements with |old| > 1e-3, and the tensor's scale), and every numeric
field of every line of steps.jsonl and metrics.jsonl (max |Δ| and relative
|Δ|; wall-clock fields skipped). Used to show that a change of kernels
(vectorized exp/log/tanh, another summation order) moves the results by
rounding only before reference hashes are re-recorded. Needs numpy only.
"""
import sys

import numpy as np

from .io import read_jsonl, read_safetensors

#: Wall-clock fields: they differ between any two runs, so they are not compared.
TIMES = {"seconds", "samples_per_s", "elapsed", "eval_seconds", "time"}


def tensors(path):
    """{name: float64 array} of a safetensors file (io.read_safetensors; metadata dropped)."""
    return {k: v.astype(np.float64) for k, v in read_safetensors(path)[1].items()}


def compare(old, new):
    """Prints the comparison of run directories old and new; returns {"weights": (max|Δ|, max rel),
    "steps.jsonl" / "metrics.jsonl": {field: (max|Δ|, max rel)}}. Raises ValueError when the runs differ
    in tensor names or shapes or in the number of lines of a JSONL file (nothing to compare number by
    number)."""
    print(f"== {old}  vs  {new}")
    a, b = tensors(old + "/model.safetensors"), tensors(new + "/model.safetensors")
    if a.keys() != b.keys():
        raise ValueError(f"different tensor names: {sorted(set(a) ^ set(b))}")
    worst_abs = worst_rel = 0.0
    for k in a:
        if a[k].shape != b[k].shape:
            raise ValueError(f"{k}: shape {a[k].shape} vs {b[k].shape}")
        d = np.abs(a[k] - b[k])
        big = np.abs(a[k]) > 1e-3
        rel = float((d[big] / np.abs(a[k][big])).max()) if big.any() else 0.0
        worst_abs, worst_rel = max(worst_abs, float(d.max())), max(worst_rel, rel)
        print(f"  {k:32s} max|Δ| {d.max():.3e}  max rel {rel:.3e}  (max|w| {np.abs(a[k]).max():.3e}, "
              f"{int((d > 0).sum())}/{d.size} differ)")
    print(f"  weights: max|Δ| {worst_abs:.3e}, max rel {worst_rel:.3e}")
    summary = {"weights": (worst_abs, worst_rel)}
    for name in ("steps.jsonl", "metrics.jsonl"):
        la, lb = read_jsonl(f"{old}/{name}", missing_ok=True), read_jsonl(f"{new}/{name}", missing_ok=True)
        if len(la) != len(lb):
            raise ValueError(f"{name}: {len(la)} vs {len(lb)} lines")
        fields = {}
        for x, y in zip(la, lb):
            for k, v in x.items():
                if k in TIMES or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                w = y[k]
                d = abs(v - w)
                r = d / abs(v) if v != 0 else (0.0 if d == 0 else float("inf"))
                fa, fr = fields.get(k, (0.0, 0.0))
                fields[k] = (max(fa, d), max(fr, r))
        if fields:
            print(f"  {name} ({len(la)} lines): " + ", ".join(f"{k} |Δ| {d:.2e} rel {r:.2e}" for k, (d, r) in fields.items()))
        summary[name] = fields
    return summary


def main(argv=None):
    """compare_runs.py's command line: pairs of run directories; exits with the usage text on an odd count."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or len(args) % 2:
        sys.exit(__doc__)
    for i in range(0, len(args), 2):
        try:
            compare(args[i], args[i + 1])
        except ValueError as e:
            sys.exit(f"compare_runs: {args[i]} vs {args[i + 1]}: {e}")
