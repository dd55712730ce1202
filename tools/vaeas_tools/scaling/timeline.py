"""The Chrome-trace timelines vaeas-dist writes with `--timeline` (Sources/VAEASDistributed/TimelineWriter.swift):
complete ("X") events with pid = rank, tid 0 = the compute track (nested phases: a step holds forward, which
holds layers) and tid 1 = communication in flight. Self times per phase, the per-step breakdown the projection
calibrates on, and a PNG of the tracks."""
import collections
import functools
import json
import os

from ..io import FormatError
from .. import plots

#: The phases (event categories) a step is split into; "step" events count as "other" (their self time is
#: what no phase inside them accounts for).
PHASES = ["data", "forward", "backward", "classifier", "communication", "optimizer", "checkpoint", "evaluation", "other"]

COLORS = {"data": "#8c564b", "forward": "#1f77b4", "backward": "#ff7f0e", "classifier": "#9467bd",
          "communication": "#d62728", "optimizer": "#2ca02c", "checkpoint": "#7f7f7f", "evaluation": "#17becf"}

#: Collective event names that do not say their operation in a form op_of's substring rules catch.
OP_OF = {"allgather H": "allgather", "reduce-scatter dH": "reduce_scatter"}


def load_events(path):
    """The complete ("X") events of a timeline file; FormatError if it has no traceEvents."""
    with open(path) as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise FormatError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or "traceEvents" not in data:
        raise FormatError(f"{path}: no 'traceEvents' (not a vaeas-dist --timeline file)")
    return [e for e in data["traceEvents"] if e.get("ph") == "X"]


def self_times(events):
    """{rank: Counter(category -> exclusive µs)} on the compute track (tid 0): each event's duration minus
    its direct children's, so a nested phase is counted once, in its own category, not again in its parent's.
    Children are found by containment after sorting by (start, longest first)."""
    out = collections.defaultdict(collections.Counter)
    by_rank = collections.defaultdict(list)
    for e in events:
        if e.get("tid", 0) == 0:
            by_rank[e["pid"]].append(e)
    for rank, evs in by_rank.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, category, children's µs, duration] of the open events, innermost last

        def close(item):
            _, cat, child, dur = item
            out[rank][cat] += max(0.0, dur - child)

        for e in evs:
            # 1e-6 µs: an event starting exactly where the previous one ends is its sibling, not its child,
            # despite the rounding of the written timestamps.
            while stack and e["ts"] >= stack[-1][0] - 1e-6:
                close(stack.pop())
            if stack:
                stack[-1][2] += e["dur"]
            cat = e.get("cat", "other")
            stack.append([e["ts"] + e["dur"], "other" if cat == "step" else cat, 0.0, e["dur"]])
        while stack:
            close(stack.pop())
    return out


def phase_ms(path, steps):
    """{phase: ms}: the mean over ranks of each phase's self time per recorded step ({} for an empty timeline)."""
    times = self_times(load_events(path))
    if not times:
        return {}
    return {phase: sum(t[phase] for t in times.values()) / len(times) / steps / 1e3 for phase in PHASES}


def op_of(name):
    """The collective ("allreduce", "allgather", "reduce_scatter") a communication event's name denotes, or None."""
    if name in OP_OF:
        return OP_OF[name]
    if "reduce_scatter" in name or "reduce-scatter" in name:
        return "reduce_scatter"
    if "allgather" in name:
        return "allgather"
    if "allreduce" in name:
        return "allreduce"
    return None


@functools.lru_cache(maxsize=None)
def breakdown(path):
    """What the step model (alphabeta.step_ms) needs from one timeline, per step, mean over ranks, in ms:
    vae (data + forward + backward), bwd, cls (the output layer), adam_rep (Adam over the replicated
    parameters), adam_out (the output layer's optimizer), other (the rest, optimizer included), comm
    (exposed communication), imbalance (the slowest rank's busy time over the mean) and collectives:
    [(op, bytes, name, calls per step, rank 0's mean µs, the last-arriving rank's mean µs)].
    Cached: the calibration and the per-collective table both read it."""
    events = load_events(path)
    ranks = sorted({e["pid"] for e in events})
    steps = max(1, sum(1 for e in events if e.get("cat") == "step") // len(ranks))
    st = self_times(events)

    def mean(cat):
        return sum(st[r][cat] for r in ranks) / len(ranks) / steps / 1e3

    named = collections.Counter()
    for e in events:
        if e.get("tid", 0) == 0:
            named[e["name"]] += e["dur"]
    adam_rep = sum(v for k, v in named.items() if k.startswith("optimizer (Adam")) / len(ranks) / steps / 1e3
    adam_out = named.get("classifier output layer optimizer", 0.0) / len(ranks) / steps / 1e3
    # Each collective call on every rank, in order: the rank that arrives last waits least, so the
    # minimum over ranks of one call's duration is its transfer time; the rest is waiting for it.
    per_rank = {r: sorted((e for e in events if e["pid"] == r and e.get("tid", 0) == 0 and e.get("cat") == "communication"
                           and e.get("args", {}).get("bytes") is not None), key=lambda e: e["ts"]) for r in ranks}
    colls = collections.defaultdict(lambda: ([], []))
    for calls in zip(*per_rank.values()):
        e = calls[0]
        key = (e["name"], int(e["args"]["bytes"]))
        colls[key][0].append(e["dur"])
        colls[key][1].append(min(c["dur"] for c in calls))
    collectives = [(op_of(n), b, n, len(d) / steps, sum(d) / len(d), sum(m) / len(m))
                   for (n, b), (d, m) in sorted(colls.items()) if op_of(n)]
    # Compute imbalance: the slowest rank's non-communication time over the mean (collectives make
    # every rank wait for the slowest).
    busy = [sum(v for c, v in st[r].items() if c != "communication") for r in ranks]
    imbalance = max(busy) / (sum(busy) / len(busy)) if sum(busy) > 0 else 1.0
    return dict(vae=mean("data") + mean("forward") + mean("backward"), bwd=mean("backward"), cls=mean("classifier"),
                imbalance=imbalance, adam_rep=adam_rep, adam_out=adam_out,
                other=mean("other") + mean("optimizer") - adam_rep - adam_out, comm=mean("communication"),
                collectives=collectives)


def timeline_png(path, out, title=None):
    """Draws a timeline as one lane per rank and track (compute; communication in flight, when there is any)
    into the PNG `out`."""
    plt = plots.pyplot(required=True, who="scaling.py timeline-png")
    events = load_events(path)
    ranks = sorted({e["pid"] for e in events})
    t0 = min(e["ts"] for e in events)
    fig, ax = plt.subplots(figsize=(13, 1.2 + 1.1 * len(ranks)))
    lanes = []
    for r in ranks:
        for tid in (0, 1):
            evs = [e for e in events if e["pid"] == r and e.get("tid", 0) == tid and e.get("cat") != "step"]
            if tid == 1 and not evs:
                continue
            y = len(lanes)
            lanes.append(f"rank {r}" + (" in flight" if tid == 1 else ""))
            # Longest first, so that nested (inner) events are drawn over their parents and stay visible.
            for e in sorted(evs, key=lambda e: -e["dur"]):
                ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)], (y - 0.4, 0.8),
                               facecolors=COLORS.get(e.get("cat"), "#bcbd22"), edgecolor="none")
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(lanes)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the first recorded event (rank clocks aligned at a barrier)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, list(COLORS), ncol=len(COLORS), loc="upper center",
              bbox_to_anchor=(0.5, -0.35 if len(lanes) < 4 else -0.2), fontsize=8, frameon=False)
    ax.set_title(title or os.path.basename(path))
    fig.tight_layout()
    plots.save(fig, out, dpi=120)
