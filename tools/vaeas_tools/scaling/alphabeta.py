"""The α–β(–γ) communication model and the step-time model behind `scripts/scaling.py project`.

Pure functions, no I/O: harness.py and projection.py measure, report and plot; this module does the arithmetic.

Communication (Hockney's α–β model with Thakur, Rabenseifner & Gropp's γ for reductions,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 2005): a message of n bytes
between two ranks costs α + n·β; a reduction costs γ per byte it combines. With nccl-tests' size
convention (allreduce: the buffer; allgather: the gathered result; reduce-scatter: the input) and P
ranks, the algorithms MPI libraries choose between cost

    allreduce   ring / Rabenseifner: 2(P−1)α or 2⌈log2 P⌉α  +  2(P−1)/P·n·β + (P−1)/P·n·γ
                recursive doubling:   ⌈log2 P⌉·(α + n·β + n·γ)
    allgather   ring: (P−1)α, recursive doubling / Bruck: ⌈log2 P⌉α  +  (P−1)/P·n·β
    reduce-scat ring: (P−1)α, recursive halving: ⌈log2 P⌉α  +  (P−1)/P·n·(β + γ)

and a library that picks well pays about the minimum over them (Open MPI's `tuned` component and
MPICH switch by size); `collective_time` returns that minimum.

Step time (one rank, weak scaling: b rows per rank, global batch B = b·P): measured compute plus the
collectives of docs/design/distributed.md,

    T(P) = C_vae + C_cls + Adam_rep + Adam_out(P) + Σ classifier collectives(P) + exposed gradient allreduce(P)

for three designs of the N-way (V-way) output layer:
  * replicated ("naive"): every rank holds the whole V × h layer, scores its b rows against all V
    labels (the same FLOPs as the partitioned layer's B rows × V/P), runs Adam over all of it, and
    the layer's gradient joins the gradient allreduce; no classifier collectives.
  * partitioned full softmax: V/P labels per rank; allgather H (B·h floats), allreduce of the row
    maxima and sums (a few B-vectors), reduce-scatter dH (B·h floats, 2·B·h with the Î term);
    Adam over V/P rows.
  * partitioned tree: the same collectives with the tree's (smaller) compute.
With overlap (DDP-style buckets reduced during backward, with a progress engine), the gradient
allreduce hides behind backward: exposed = max(0, T_allreduce − C_backward); without, all of it.
"""

import math

OPS = ("allreduce", "allgather", "reduce_scatter")


# ------------------------------------------------------------------ fitting (least squares)

def _solve(rows, targets, weights):
    """Weighted least squares for a handful of unknowns (normal equations, no numpy needed)."""
    k = len(rows[0])
    a = [[0.0] * k for _ in range(k)]
    y = [0.0] * k
    for r, t, w in zip(rows, targets, weights):
        for i in range(k):
            y[i] += w * r[i] * t
            for j in range(k):
                a[i][j] += w * r[i] * r[j]
    # Gaussian elimination with partial pivoting.
    m = [a[i] + [y[i]] for i in range(k)]
    for c in range(k):
        p = max(range(c, k), key=lambda i: abs(m[i][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-300:
            raise ValueError("singular least-squares system: too few distinct sizes")
        for i in range(k):
            if i != c:
                f = m[i][c] / m[c][c]
                m[i] = [x - f * z for x, z in zip(m[i], m[c])]
    return [m[i][k] / m[i][i] for i in range(k)]


def nonnegative_fit(rows, targets, weights):
    """Least squares with every coefficient ≥ 0 (drop a negative one, refit: enough for 2–3 unknowns).
    A coefficient whose column is all zero (γ when only allgathers were measured) is 0, not a singular system."""
    free = [i for i in range(len(rows[0])) if any(r[i] for r in rows)] or [0]
    while True:
        x = _solve([[r[i] for i in free] for r in rows], targets, weights)
        if all(v >= 0 for v in x) or len(free) == 1:
            out = [0.0] * len(rows[0])
            for i, v in zip(free, x):
                out[i] = max(v, 0.0)
            return out
        free.pop(min(range(len(x)), key=lambda i: x[i]))


def fit_affine(sizes, times):
    """T(n) = a + b·n minimising the relative error (weights 1/T²), so that 8-byte latencies and
    64 MiB transfers both count. Returns (a seconds, b seconds per byte)."""
    a, b = nonnegative_fit([[1.0, float(n)] for n in sizes], list(times), [1.0 / t ** 2 for t in times])
    return a, b


def structured_terms(op, n, p):
    """Coefficients of (α, β, γ) in the ring algorithms' cost (what Open MPI runs for mid and large
    messages): the rows of the joint fit."""
    q = (p - 1) / p
    if op == "allreduce":
        return [2 * (p - 1), 2 * q * n, q * n]
    if op == "allgather":
        return [p - 1, q * n, 0.0]
    if op == "reduce_scatter":
        return [p - 1, q * n, q * n]
    raise ValueError(op)


def fit_alpha_beta_gamma(samples, p):
    """One (α, β, γ) for all three collectives at P = p from (op, bytes, seconds) samples, relative
    error weighted: how well one ring model explains the three measured curves."""
    rows, targets, weights = [], [], []
    for op, n, t in samples:
        rows.append(structured_terms(op, n, p))
        targets.append(t)
        weights.append(1.0 / t ** 2)
    return nonnegative_fit(rows, targets, weights)


def ring_time(op, n, p, alpha, beta, gamma):
    """Seconds for one collective of n bytes on P ranks under the ring algorithms alone (the joint fit's
    model): structured_terms · (α, β, γ)."""
    return sum(c * v for c, v in zip(structured_terms(op, n, p), (alpha, beta, gamma)))


# ------------------------------------------------------------------ cluster network

def collective_time(op, n, p, alpha, beta, gamma):
    """Seconds for one collective of n bytes (nccl-tests convention) on P ranks, the best of the
    algorithms in the module docstring."""
    if p <= 1 or n <= 0:
        return 0.0
    q = (p - 1) / p
    lg = math.ceil(math.log2(p))
    if op == "allreduce":
        ring = 2 * (p - 1) * alpha + 2 * q * n * beta + q * n * gamma
        rabenseifner = 2 * lg * alpha + 2 * q * n * beta + q * n * gamma
        doubling = lg * (alpha + n * beta + n * gamma)
        return min(ring, rabenseifner, doubling)
    if op == "allgather":
        return min(p - 1, lg) * alpha + q * n * beta
    if op == "reduce_scatter":
        return min(p - 1, lg) * alpha + q * n * (beta + gamma)
    raise ValueError(op)


# ------------------------------------------------------------------ step model

class Calibration:
    """Per-rank compute of one model at b rows per rank, one core per rank, from a measured point
    (milliseconds per step): C_vae (data + forward + backward of encoder, decoder and the
    classifier's hidden layers), C_bwd (the backward part of it, what overlap can hide behind),
    C_cls (the output layer's forward and backward), Adam_rep (Adam over the replicated
    parameters), Adam_out at P_cal ranks (the output layer's share), the rest of the step
    (`other`), and the byte counts of the step's collectives at P_cal."""

    def __init__(self, vae, bwd, cls, adam_rep, adam_out, other, p_cal, b, h, replicated_bytes,
                 collectives, labels, layer_bytes_per_label):
        self.vae, self.bwd, self.cls, self.adam_rep, self.adam_out, self.other = vae, bwd, cls, adam_rep, adam_out, other
        self.p_cal, self.b, self.h = p_cal, b, h
        self.replicated_bytes = replicated_bytes      # the gradient allreduce (replicated parameters)
        self.collectives = collectives                # [(op, bytes at P_cal, name, grows with B)] besides the gradient's
        self.labels = labels
        self.layer_bytes_per_label = layer_bytes_per_label   # 4·(h + 1): one label's weights and bias


def step_ms(cal, design, p, comm, overlap=False, batch_scale=1.0, oversubscription=1.0, speedup=1.0):
    """Predicted ms per step on each of P ranks, and its parts.

    design: "vae" (no classifier), "partitioned" (full or tree, as calibrated) or "replicated".
    comm(op, bytes, P) -> seconds. Weak scaling: the classifier's collectives carry B = b·P rows
    (bytes ∝ P at fixed b); batch_scale scales the rows per rank (strong scaling at global batch B: B/P ÷ b).
    oversubscription multiplies compute (P ranks sharing fewer cores); speedup divides it (a rank
    with more or faster cores than the one calibrated on; communication is unchanged)."""
    s = batch_scale
    oversubscription = oversubscription / speedup
    compute = (cal.vae * s + cal.cls * s + cal.adam_rep + cal.other) * oversubscription
    parts = {"compute": compute}
    grad_bytes = cal.replicated_bytes
    cls_comm = 0.0
    for op, n, name, grows in cal.collectives:
        if grows and design != "partitioned":
            continue    # the classifier's collectives: only the partitioned layer has them
        # B-sized messages grow with the global batch b·s·P; the loss sums do not.
        cls_comm += comm(op, n * (p / cal.p_cal) * s if grows else n, p) * 1e3
    if design == "partitioned":
        parts["adam_out"] = cal.adam_out * cal.p_cal / p * oversubscription
    elif design == "replicated":
        parts["adam_out"] = cal.adam_out * cal.p_cal * oversubscription   # the whole layer on every rank
        grad_bytes += cal.labels * cal.layer_bytes_per_label
    else:
        parts["adam_out"] = 0.0
    grad = comm("allreduce", grad_bytes, p) * 1e3
    parts["other_comm"] = cls_comm
    parts["gradient_allreduce"] = grad
    parts["gradient_exposed"] = max(0.0, grad - cal.bwd * s * oversubscription) if overlap else grad
    total = parts["compute"] + parts["adam_out"] + cls_comm + parts["gradient_exposed"]
    return total, parts
