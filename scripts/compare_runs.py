#!/usr/bin/env python3
"""Compare two run directories of `vaeas-dist train` number by number.

    python3 scripts/compare_runs.py OLD_RUN NEW_RUN [OLD_RUN2 NEW_RUN2 ...]

For each pair: every tensor of model.safetensors (max |Δ| and max |Δ|/|old|
over elements with |old| > 1e-3, and the tensor's scale), and every numeric
field of every line of steps.jsonl and metrics.jsonl (max |Δ| and relative
|Δ|; wall-clock fields skipped). Used to show that a change of kernels
(vectorized exp/log/tanh, another summation order) moves the results by
rounding only before reference hashes are re-recorded. Needs numpy only.
"""
import json, struct, sys
import numpy as np

TIMES = {"seconds", "samples_per_s", "elapsed", "eval_seconds", "time"}


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}[info["dtype"]]
        out[name] = np.frombuffer(body[a:b], dtype=dtype).astype(np.float64)
    return out


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def compare(old, new):
    print(f"== {old}  vs  {new}")
    a, b = tensors(old + "/model.safetensors"), tensors(new + "/model.safetensors")
    assert a.keys() == b.keys(), "different tensor names"
    worst_abs = worst_rel = 0.0
    for k in a:
        d = np.abs(a[k] - b[k])
        big = np.abs(a[k]) > 1e-3
        rel = float((d[big] / np.abs(a[k][big])).max()) if big.any() else 0.0
        worst_abs, worst_rel = max(worst_abs, float(d.max())), max(worst_rel, rel)
        print(f"  {k:32s} max|Δ| {d.max():.3e}  max rel {rel:.3e}  (max|w| {np.abs(a[k]).max():.3e}, "
              f"{int((d > 0).sum())}/{d.size} differ)")
    print(f"  weights: max|Δ| {worst_abs:.3e}, max rel {worst_rel:.3e}")
    for name in ("steps.jsonl", "metrics.jsonl"):
        la, lb = lines(f"{old}/{name}"), lines(f"{new}/{name}")
        assert len(la) == len(lb), f"{name}: {len(la)} vs {len(lb)} lines"
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


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2 or len(args) % 2:
        sys.exit(__doc__)
    for i in range(0, len(args), 2):
        compare(args[i], args[i + 1])
