"""vaeas_tools.scaling.alphabeta: the α–β–γ fits recover the parameters that generated exact model times, the
collective costs match hand-computed values of the ring / recursive-doubling / Rabenseifner formulas, and the
step model puts each design's traffic where it belongs (moved from ScalingTests.testAlphaBetaModelArithmetic)."""

import pytest

from vaeas_tools.scaling import alphabeta as ab  # noqa: E402

A, B, G = 3e-6, 1 / 9e9, 1 / 20e9
SIZES = (8, 1024, 65536, 1 << 20, 1 << 24)


def test_joint_fit_recovers_alpha_beta_gamma_from_exact_ring_times():
    for p in (2, 4):
        samples = [(op, n, ab.ring_time(op, n, p, A, B, G)) for op in ab.OPS for n in SIZES]
        fa, fb, fg = ab.fit_alpha_beta_gamma(samples, p)
        assert fa == pytest.approx(A, rel=1e-6) and fb == pytest.approx(B, rel=1e-6) and fg == pytest.approx(G, rel=1e-6)


def test_joint_fit_without_reductions_sets_gamma_to_zero_not_negative():
    # Allgather only: γ has no column; the non-negative fit must not invent one from rounding.
    samples = [("allgather", n, ab.ring_time("allgather", n, 4, A, B, G)) for n in SIZES]
    fa, fb, fg = ab.fit_alpha_beta_gamma(samples, 4)
    assert fa == pytest.approx(A, rel=1e-6) and fb == pytest.approx(B, rel=1e-6) and fg == 0.0


def test_affine_fit_recovers_latency_and_rate():
    sizes = [8, 1024, 1 << 20]
    a, b = ab.fit_affine(sizes, [1e-6 + 2e-10 * n for n in sizes])
    assert a == pytest.approx(1e-6, abs=1e-12) and b == pytest.approx(2e-10, abs=1e-16)


def test_affine_fit_clamps_a_negative_latency_to_zero():
    # Times proportional to n minus a constant would need a < 0: the fit keeps a = 0 and refits b alone.
    sizes = [1000, 2000, 4000]
    a, b = ab.fit_affine(sizes, [1e-9 * n - 1e-7 for n in sizes])
    assert a == 0.0 and 0 < b < 1e-9


def test_fit_with_one_size_is_singular():
    with pytest.raises(ValueError, match="singular"):
        ab.fit_affine([64, 64], [1e-6, 1e-6])


def test_ring_time_hand_computed():
    # P = 4: allreduce 2·3·α + 2·(3/4)·n·β + (3/4)·n·γ; allgather 3α + (3/4)nβ; reduce-scatter 3α + (3/4)n(β+γ).
    n = 4000
    assert ab.ring_time("allreduce", n, 4, 1.0, 0.01, 0.001) == pytest.approx(6 + 60 + 3)
    assert ab.ring_time("allgather", n, 4, 1.0, 0.01, 0.001) == pytest.approx(3 + 30)
    assert ab.ring_time("reduce_scatter", n, 4, 1.0, 0.01, 0.001) == pytest.approx(3 + 30 + 3)
    with pytest.raises(ValueError):
        ab.ring_time("broadcast", n, 4, 1.0, 0.01, 0.001)


def test_collective_time_picks_the_cheapest_algorithm():
    p, al, be = 512, 2e-6, 0.08e-9
    # 8 bytes: recursive doubling, log2 512 = 9 rounds of α + nβ.
    assert ab.collective_time("allreduce", 8, p, al, be, 0) == pytest.approx(9 * (al + 8 * be), abs=1e-15)
    # 1 GiB: Rabenseifner, 2·9 α + 2(P−1)/P·nβ (the ring's 2·511 α is larger).
    n = 1 << 30
    assert ab.collective_time("allreduce", n, p, al, be, 0) == pytest.approx(18 * al + 2 * 511 / 512 * n * be, rel=1e-12)
    # P = 3: ⌈log2 3⌉ = 2 = P − 1 rounds of α for allgather; the ring term (2/3)nβ.
    assert ab.collective_time("allgather", 3000, 3, 1.0, 0.01, 0.0) == pytest.approx(2 + 20)
    assert ab.collective_time("reduce_scatter", 3000, 3, 1.0, 0.01, 0.005) == pytest.approx(2 + 30)
    assert ab.collective_time("allgather", 1 << 20, 1, al, be, 0) == 0
    assert ab.collective_time("allreduce", 0, 8, al, be, 0) == 0


def calibration():
    return ab.Calibration(vae=10, bwd=6, cls=20, adam_rep=1, adam_out=4, other=0, p_cal=2, b=128, h=500,
                          replicated_bytes=8e6, collectives=[("allgather", 512000, "allgather H", True),
                                                             ("allreduce", 40, "loss sums", False)],
                          labels=10000, layer_bytes_per_label=2004)


def comm(op, n, q):
    return ab.collective_time(op, n, q, 2e-6, 0.08e-9, 0)


def test_step_model_partitioned_design():
    cal = calibration()
    t1, _ = ab.step_ms(cal, "partitioned", 1, comm)
    assert t1 == pytest.approx(10 + 20 + 1 + 4 * 2)       # P = 1: the whole layer's Adam, no communication
    t8, parts = ab.step_ms(cal, "partitioned", 8, comm)
    assert parts["adam_out"] == pytest.approx(1.0)           # 4 ms at P_cal = 2, a quarter of the rows at 8
    # H grows with the global batch: 512000 B at P = 2 is 4 × that at P = 8; the loss sums stay 40 B.
    want = (comm("allgather", 512000 * 4, 8) + comm("allreduce", 40, 8)) * 1e3
    assert parts["other_comm"] == pytest.approx(want)
    assert parts["gradient_allreduce"] == pytest.approx(comm("allreduce", 8e6, 8) * 1e3)
    assert t8 == pytest.approx(31 + 1 + want + parts["gradient_allreduce"])


def test_step_model_replicated_design_and_overlap():
    cal = calibration()
    _, r = ab.step_ms(cal, "replicated", 8, comm)
    # The layer's gradient joins the allreduce; no allgather of H; Adam over the whole layer.
    assert r["gradient_allreduce"] == pytest.approx(comm("allreduce", 8e6 + 10000 * 2004, 8) * 1e3)
    assert r["other_comm"] == pytest.approx(comm("allreduce", 40, 8) * 1e3)
    assert r["adam_out"] == pytest.approx(8.0)
    _, o = ab.step_ms(cal, "replicated", 8, comm, overlap=True)
    assert o["gradient_exposed"] == pytest.approx(max(0.0, r["gradient_allreduce"] - 6))


def test_step_model_scales_compute_and_not_communication():
    cal = calibration()
    _, base = ab.step_ms(cal, "vae", 4, comm)
    _, slow = ab.step_ms(cal, "vae", 4, comm, batch_scale=0.5, oversubscription=2.0, speedup=4.0)
    # compute = (vae·s + cls·s + adam_rep + other) · oversubscription / speedup
    assert slow["compute"] == pytest.approx((10 * 0.5 + 20 * 0.5 + 1) * 2 / 4)
    assert base["compute"] == pytest.approx(31)
    assert slow["gradient_allreduce"] == pytest.approx(base["gradient_allreduce"])
    assert base["adam_out"] == 0.0
