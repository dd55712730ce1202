"""vaeas_tools.scaling.timeline on small synthetic Chrome traces shaped like vaeas-dist's --timeline files
(pid = rank, tid 0 = compute with nested phases, tid 1 = communication in flight)."""
import json

import pytest

from vaeas_tools.io import FormatError  # noqa: E402
from vaeas_tools.scaling import timeline  # noqa: E402


def ev(name, cat, ts, dur, pid=0, tid=0, **args):
    e = {"name": name, "cat": cat, "ph": "X", "ts": float(ts), "dur": float(dur), "pid": pid, "tid": tid}
    if args:
        e["args"] = args
    return e


def one_step(pid=0, t0=0.0, comm=200.0):
    """One 1000 µs step: data, forward holding a layer and the output layer, a collective, Adam; and a
    bucket in flight on tid 1 (not compute: must not count)."""
    return [ev("step 1", "step", t0, 1000, pid),
            ev("data", "data", t0, 100, pid),                       # starts with the step: a child of it
            ev("forward", "forward", t0 + 100, 300, pid),           # starts where data ends: data's sibling
            ev("encoder.layers.0 forward", "forward", t0 + 150, 100, pid),
            ev("classifier output layer forward", "classifier", t0 + 300, 80, pid),
            ev("allgather H", "communication", t0 + 500, comm, pid, bytes=4096),
            ev("optimizer (Adam, 10 parameters)", "optimizer", t0 + 800, 100, pid),
            ev("gradient bucket 0", "communication", t0 + 500, 400, pid, tid=1)]


def write(tmp_path, events, name="t.json"):
    path = tmp_path / name
    meta = [{"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "rank 0"}}]
    path.write_text(json.dumps({"displayTimeUnit": "ms", "traceEvents": meta + events}))
    return str(path)


def test_self_times_count_nested_phases_once():
    st = timeline.self_times(one_step())
    # forward: the parent's 300 − its children's 100 + 80, plus the nested layer's 100.
    assert st[0]["forward"] == pytest.approx(220)
    assert st[0]["classifier"] == pytest.approx(80)
    assert st[0]["data"] == pytest.approx(100)
    assert st[0]["communication"] == pytest.approx(200)     # tid 1's 400 µs in flight not counted
    assert st[0]["optimizer"] == pytest.approx(100)
    # The step's own time is "other": 1000 − (100 + 300 + 200 + 100).
    assert st[0]["other"] == pytest.approx(300)
    assert sum(st[0].values()) == pytest.approx(1000)      # the step's length, nothing counted twice


def test_self_times_per_rank_in_any_event_order():
    events = one_step(0) + one_step(1, t0=5.0, comm=50.0)
    st = timeline.self_times(list(reversed(events)))
    assert set(st) == {0, 1}
    assert st[1]["communication"] == pytest.approx(50) and st[1]["other"] == pytest.approx(450)


def test_phase_ms_is_the_mean_over_ranks_per_step(tmp_path):
    events = one_step(0) + one_step(1, comm=50.0) + one_step(0, t0=2000) + one_step(1, t0=2000, comm=50.0)
    ms = timeline.phase_ms(write(tmp_path, events), steps=2)
    assert list(ms) == timeline.PHASES
    assert ms["communication"] == pytest.approx((200 + 50) / 2 / 1e3)
    assert ms["forward"] == pytest.approx(0.220)
    assert ms["other"] == pytest.approx((300 + 450) / 2 / 1e3)
    assert ms["checkpoint"] == 0


def test_breakdown_splits_collectives_and_waiting(tmp_path):
    # Rank 0 waits 200 µs in the allgather, rank 1 (arriving last) 50: the transfer is the minimum.
    events = one_step(0) + one_step(1, comm=50.0)
    b = timeline.breakdown(write(tmp_path, events, "b.json"))
    assert b["collectives"] == [("allgather", 4096, "allgather H", 1.0, 200.0, 50.0)]
    assert b["vae"] == pytest.approx((100 + 220) / 1e3)
    assert b["cls"] == pytest.approx(0.080)
    assert b["adam_rep"] == pytest.approx(0.100) and b["adam_out"] == 0
    assert b["other"] == pytest.approx((300 + 450) / 2 / 1e3)     # optimizer's self time minus Adam's: 0
    # Busy (non-communication) time: 800 µs on rank 0, 950 on rank 1; the slowest over the mean.
    assert b["imbalance"] == pytest.approx(950 / 875)


def test_op_of_names():
    assert timeline.op_of("reduce-scatter dH") == "reduce_scatter"
    assert timeline.op_of("gradient allreduce: allreduce_sum") == "allreduce"
    assert timeline.op_of("allreduce max") == "allreduce"
    assert timeline.op_of("gradient reduction") is None


def test_load_events_rejects_a_file_without_trace_events(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"events": []}')
    with pytest.raises(FormatError, match="traceEvents"):
        timeline.load_events(str(p))


def test_timeline_png_writes_a_png(tmp_path):
    out = tmp_path / "t.png"
    timeline.timeline_png(write(tmp_path, one_step(0) + one_step(1, comm=50.0)), str(out), title="test")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "t.png.tmp.png").exists()
