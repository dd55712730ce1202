"""`scaling.py report` and `scaling.py project` (vaeas_tools.scaling.harness, .projection) on a small synthetic
sweep: points.jsonl, timelines shaped like vaeas-dist's and collectives.jsonl from exact ring-model times."""
import json
import os

import pytest

from vaeas_tools.scaling import alphabeta as ab, cli, harness, projection, timeline  # noqa: E402

H = 64          # hidden width of the synthetic classifier: H's bytes are 4·H·batch
GRAD = 400000   # bytes of the replicated gradient allreduce
RING = (2e-6, 1 / 5e9, 1 / 10e9)   # α, β, γ the synthetic collectives are timed with


def ev(name, cat, ts, dur, pid, **args):
    e = {"name": name, "cat": cat, "ph": "X", "ts": float(ts), "dur": float(dur), "pid": pid, "tid": 0}
    if args:
        e["args"] = args
    return e


def step_events(pid, t0, batch, vaeas, slow=0.0):
    """One 1000 µs step; with `slow`, backward and so the step take that many µs longer (rank imbalance) and
    everything after backward starts that much later."""
    d = t0 + slow     # the start of what follows backward
    es = [ev("step", "step", t0, 1000 + slow, pid), ev("data", "data", t0, 50, pid), ev("forward", "forward", t0 + 50, 200, pid),
          ev("backward", "backward", t0 + 320, 300 + slow, pid),
          ev("gradient reduction", "communication", d + 680, 100, pid),
          ev("gradient allreduce: allreduce_sum", "communication", d + 690, 80, pid, bytes=GRAD),
          ev("loss sums and stop/checkpoint flags: allreduce_sum", "communication", d + 780, 5, pid, bytes=40),
          ev("optimizer (Adam, 100 parameters)", "optimizer", d + 800, 80, pid)]
    if vaeas:
        es += [ev("classifier output layer forward", "classifier", t0 + 150, 100, pid),
               ev("allgather H", "communication", t0 + 260, 40, pid, bytes=4 * H * batch),
               ev("allreduce max", "communication", t0 + 300, 10, pid, bytes=4 * batch),
               ev("reduce-scatter dH", "communication", d + 630, 40, pid, bytes=4 * H * batch),
               ev("classifier output layer optimizer", "optimizer", d + 880, 40, pid)]
    return es


def make_sweep(out):
    """Strong and weak points of the plain VAE and the full softmax (V = 10⁴) at P = 1, 2, and collectives at P = 2."""
    os.makedirs(os.path.join(out, "timelines"))
    rows = []
    sps = {("strong", 1): 1000.0, ("strong", 2): 1600.0, ("weak", 1): 1000.0, ("weak", 2): 1500.0}
    for mode in ("strong", "weak"):
        for model, v in (("vae", None), ("full", 10000)):
            for p in (1, 2):
                name = harness.point_name(mode, model, v, p)
                batch = 128 * (p if mode == "weak" else 1)
                events = [e for s in range(2) for r in range(p)
                          for e in step_events(r, 2000 * s, batch, model != "vae", slow=100.0 * r)]
                tl = os.path.join("timelines", name + ".json")
                with open(os.path.join(out, tl), "w") as f:
                    json.dump({"traceEvents": events}, f)
                rows.append(dict(point=name, mode=mode, model=model, V=v or 0, P=p, batch=batch, oversubscribed=p > 2,
                                 samples_per_s=sps[(mode, p)] * (2 if model == "vae" else 1), step_ms=1.0 + 0.1 * p,
                                 timeline=tl, phases_ms=timeline.phase_ms(os.path.join(out, tl), 2),
                                 ms_gradient_reduction_in_flight=0.0, output_layer_bytes_sent_per_step=1000 * p,
                                 replicated_layer_allreduce_bytes_per_step=80000, output_layer_memory_bytes_per_rank=160000 // p))
    with open(os.path.join(out, "points.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    with open(os.path.join(out, "collectives.jsonl"), "w") as f:
        for op in ab.OPS:
            for n in (8, 1024, 65536, 1 << 20, 8 << 20, 64 << 20):
                f.write(json.dumps({"collective": op, "ranks": 2, "bytes": n, "median_us": 1e6 * ab.ring_time(op, n, 2, *RING),
                                    "oversubscribed": False}) + "\n")
    return rows


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sweep"))
    return out, make_sweep(out)


def row(mode, model, p, sps, v=0, oversubscribed=False, **phases):
    return dict(point=f"{mode}-{model}-P{p}", mode=mode, model=model, V=v, P=p, batch=64, samples_per_s=sps, step_ms=2.5,
                oversubscribed=oversubscribed, phases_ms=phases, output_layer_bytes_sent_per_step=10 * p,
                replicated_layer_allreduce_bytes_per_step=99, output_layer_memory_bytes_per_rank=1000 // p)


def test_report_table_efficiency_and_cells():
    rows = [row("strong", "full", 2, 1600.0, v=10000, forward=1.234, communication=0.5),
            row("strong", "full", 1, 1000.0, v=10000),
            row("weak", "vae", 4, 3000.0, oversubscribed=True),
            row("weak", "vae", 1, 1000.0),
            row("weak", "tree", 2, 500.0, v=100)]           # no P = 1 point: efficiency unknown
    lines = harness.report_lines(rows, harness.group(rows), ncores=2)
    assert "| strong | full | 10000 | 2 | 64 | 1600 | 0.80 | 2.50 | 0.00 | 1.23 | 0.00 | 0.00 | 0.50 | 0.00 | 0.00 |  |" in lines
    assert "| weak | vae | - | 4 | 64 | 3000 | 0.75 | 2.50 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | yes |" in lines
    assert "| weak | tree | 100 | 2 | 64 | 500 | nan |" in "\n".join(lines)
    table = [l for l in lines if l.startswith("| strong") or l.startswith("| weak")]
    assert [l.split(" | ")[:4] for l in table] == [["| strong", "full", "10000", "1"], ["| strong", "full", "10000", "2"],
                                                   ["| weak", "tree", "100", "2"], ["| weak", "vae", "-", "1"],
                                                   ["| weak", "vae", "-", "4"]]
    # The output layer's traffic: strong VAE-AS points only, by (softmax, V, P).
    assert lines[-2:] == ["| full | 10000 | 1 | 10 | 99 | 1000 |", "| full | 10000 | 2 | 20 | 99 | 500 |"]
    assert "machine cores: 2." in lines[2] and "(run)" in lines[2]


def test_report_writes_markdown_and_pngs(sweep):
    out, _ = sweep
    cli.main(["report", "--out", out])
    md = open(os.path.join(out, "SCALING.md")).read()
    assert "| strong | full | 10000 | 2 | 128 | 1600 | 0.80 |" in md
    assert "| weak | vae | - | 2 | 256 | 3000 | 0.75 |" in md
    for png in ("strong.png", "weak.png", "bytes_vs_V.png", "timeline_2ranks.png"):
        assert f"]({png})" in md
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(4) == b"\x89PNG", png


def test_calibration_from_a_timeline(sweep):
    out, rows = sweep
    r = next(r for r in rows if r["point"] == "weak-full-V10000-P2")
    cal, t = projection.calibration(out, r, hidden=H)
    assert cal.p_cal == 2 and cal.b == 128 and cal.labels == 10000 and cal.layer_bytes_per_label == 4 * (H + 1)
    assert cal.replicated_bytes == GRAD
    # H and dH (4·H·256 bytes) and the row maxima (4·256) grow with the batch; the 40-byte loss sums do not.
    assert sorted((op, n, grows) for op, n, _, grows in cal.collectives) == [
        ("allgather", 4 * H * 256, True), ("allreduce", 40, False), ("allreduce", 4 * 256, True),
        ("reduce_scatter", 4 * H * 256, True)]
    # Rank 1's backward is 100 µs longer: busy (non-communication self time) 805 and 905 µs a step.
    assert t["imbalance"] == pytest.approx(905 / 855)
    assert cal.bwd == pytest.approx(t["imbalance"] * 0.350)       # the mean backward, 300 and 400 µs
    assert cal.cls == pytest.approx(t["imbalance"] * 0.100) and cal.adam_out == pytest.approx(t["imbalance"] * 0.040)


def test_fits_recover_the_ring_model_and_fall_back_by_p(sweep):
    out, _ = sweep
    _, coll = projection.load_collectives(out)
    fits = projection.Fits(coll, 4 * 2 ** 20)
    assert fits.structured[2] == pytest.approx(list(RING), rel=1e-6)
    for op in ab.OPS:
        for n in (8, 65536, 64 << 20):
            assert fits.here(op, n, 2) == pytest.approx(ab.ring_time(op, n, 2, *RING), rel=0.05)
    assert fits.here("allreduce", 1 << 20, 1) == 0.0
    # P = 4 was not measured: the ring model fitted at the nearest P.
    assert fits.here("allgather", 1 << 20, 4) == pytest.approx(ab.ring_time("allgather", 1 << 20, 4, *RING), rel=1e-6)


def test_cluster_curves_step_time_arithmetic():
    cal = ab.Calibration(vae=10, bwd=6, cls=20, adam_rep=1, adam_out=4, other=2, p_cal=2, b=128, h=500,
                         replicated_bytes=1e6, collectives=[("allgather", 1000, "allgather H", True)],
                         labels=10000, layer_bytes_per_label=2004)
    big = ab.Calibration(vae=10, bwd=6, cls=110, adam_rep=1, adam_out=13, other=2, p_cal=2, b=128, h=500,
                         replicated_bytes=1e6, collectives=cal.collectives, labels=100000, layer_bytes_per_label=2004)

    def comm(op, n, p):   # 1 ns per byte, no latency: easy to follow by hand
        return n * 1e-9 if p > 1 else 0.0

    curves, extrapolated = projection.cluster_curves({("full", 10000): cal, ("full", 100000): big},
                                                     [10000, 100000, 1000000], comm, [1.0, 4.0], [1, 8])
    assert extrapolated == [1000000]
    at8 = lambda key, sp=1.0: next(t for p, t, _, _ in curves[sp][key] if p == 8)
    # Partitioned at P = 8: compute 33 + Adam 4·2/8 + allgather of 1000·8/2 B + the 1 MB gradient allreduce.
    assert at8((10000, "partitioned full", False)) == pytest.approx(33 + 1 + 4000e-6 + 1e6 * 1e-6)
    # Replicated: the whole layer's Adam (8) and its 10⁴ · 2004 B in the allreduce, no allgather.
    assert at8((10000, "replicated", False)) == pytest.approx(33 + 8 + (1e6 + 2.004e7) * 1e-6)
    # Overlap hides the allreduce behind backward (6 ms): 21.04 ms of it exposed − 6.
    assert at8((10000, "replicated", True)) == pytest.approx(33 + 8 + 21.04 - 6)
    # Compute ÷ 4, communication unchanged.
    assert at8((10000, "partitioned full", False), 4.0) == pytest.approx(34 / 4 + 1.004)
    # V = 10⁶ extrapolated linearly from 10⁴ and 10⁵: cls 20 → 110 gives 1010, adam_out 4 → 13 gives 103.
    p1 = next(t for p, t, _, _ in curves[1.0][(1000000, "partitioned full", False)] if p == 1)
    assert p1 == pytest.approx(10 + 1010 + 1 + 2 + 103 * 2)
    assert (0, "VAE", False) not in curves[1.0]


def test_project_writes_projection_and_pngs(sweep):
    out, _ = sweep
    cli.main(["project", "--out", out, "--compute-speedup", "1,8", "--max-ranks", "64"])
    md = open(os.path.join(out, "PROJECTION.md")).read()
    for needle in ["## 1. The collectives measured here", "| 2 | allreduce |", "| weak-full-V10000-P2 (calibration) |",
                   "| strong-full-V10000-P2 |", "## 3. Projection to a cluster", "| 10000 | replicated | no |",
                   "| 10000 | partitioned full | yes |", "| - | VAE | no |", "### Compute ÷ 8 (a rank of 8 such cores)",
                   "- gradient allreduce: last-arriving rank's time / model"]:
        assert needle in md, needle
    # The exact ring-model collectives are fitted within rounding: 0 % error in both fits.
    assert "| 2 | allgather | 2.0 | 10.00 | 2.0 | 10.00 | 0 % / 0 % | 0 % / 0 % |  |" in md
    assert "| 2 | 2.00 | 5.00 | 10.00 |" in md
    for png in ("collectives_fit.png", "projection_here.png", "projection_cluster.png", "projection_ratio.png"):
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(4) == b"\x89PNG", png
