#!/usr/bin/env python3
"""Two runs' outputs side by side, for deciding whether a changed reference
hash is rounding: max |Δ| (and |Δ| / max |x|) of every tensor of
model.safetensors, and max |Δ| and relative |Δ| of every numeric field of
steps.jsonl and metrics.jsonl (timings included; ignore those).

    python3 scripts/compare_runs.py OLD_RUN_DIR NEW_RUN_DIR
"""
import json, struct, sys
import numpy as np

def tensors(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v['shape'])
    return out

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

a, b = sys.argv[1], sys.argv[2]
ta, tb = tensors(a + '/model.safetensors'), tensors(b + '/model.safetensors')
worst = (0, 0, '')
for k in ta:
    x, y = ta[k].astype(np.float64), tb[k].astype(np.float64)
    d = np.abs(x - y).max()
    rel = d / max(np.abs(x).max(), 1e-30)
    print(f'{k:40s} max|Δ| {d:.3e}  max|Δ|/max|x| {rel:.3e}  equal {np.array_equal(ta[k], tb[k])}')
for name in ['steps.jsonl', 'metrics.jsonl']:
    la, lb = lines(a + '/' + name), lines(b + '/' + name)
    assert len(la) == len(lb), name
    res = {}
    for x, y in zip(la, lb):
        for k, v in x.items():
            if k in ('time', 'seconds', 'elapsed') or not isinstance(v, (int, float)) or isinstance(v, bool): continue
            w = y[k]
            d = abs(v - w); r = d / max(abs(v), 1e-30)
            ad, rd = res.get(k, (0, 0))
            res[k] = (max(ad, d), max(rd, r))
    for k, (d, r) in res.items():
        print(f'{name}:{k:24s} max|Δ| {d:.3e}  rel {r:.3e}')
