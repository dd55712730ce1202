"""Which BLAS to load: every candidate library timed on the training step's matrix products.

    python3 scripts/blas_table.py                      # defaults: writes a section of docs/PERFORMANCE.md
    python3 scripts/blas_table.py --quick              # 1 round, 2 steps: checks it works, prints, writes nothing
    python3 scripts/blas_table.py --candidate defaults \\
        --candidate "mkl=/work/blas-cand/mklp/lib/libmkl_rt.so.3" \\
        --candidate "openblas (OPENBLAS_CORETYPE=Prescott)=openblas+OPENBLAS_CORETYPE=Prescott"

vaeas-dist dlopens its BLAS at start-up, chosen by VAEAS_BLAS (scipy-openblas, the default;
openblas, Debian's; blis; mkl; or a path to a .so). For each candidate this script runs
`vaeas-dist bench gemm --config CONFIG --json --threads 1 2` with VAEAS_BLAS set: the BLAS alone
on the products of the paper's VAE step at batch 128 and 64 (vae-b128, vae-b64) and of the
classifier's output layer at V = 1000 and 50000 (output-v1000, output-v50000), at each thread count,
as GFLOP/s and as a fraction of the core's nominal peak (`vaeas-dist --version`'s cpu line).

Candidates: by default scipy-openblas, openblas, blis and mkl, each only if it loads (`vaeas-dist
--version` under it does not say `blas: none could be loaded`). `--candidate LABEL=VALUE`
(repeatable) replaces them: VAEAS_BLAS=VALUE under the name LABEL; `+NAME=VALUE` after it sets more
environment for that candidate only (e.g. `openblas+OPENBLAS_CORETYPE=Prescott`: OpenBLAS's
generic kernel, to show what a CPU it does not know costs); `--candidate defaults` adds the
default four. The rest of the environment passes through unchanged, except OPENBLAS_NUM_THREADS,
which is removed (bench gemm sets each thread count itself).

--rounds R interleaved rounds (default 5): each round runs every candidate once, the order
rotated by one each round, so drift of a shared machine falls on all; per (candidate, products,
threads) the table gives the median GFLOP/s, the median fraction of peak and the min–max. Every
JSON line, with its candidate and round added, goes to DIR/data/blas-CPU.jsonl beside --out
(docs/data/ for docs/PERFORMANCE.md), CPU a slug of the cpu model and family/model, e.g.
amd-epyc-25-1: the doc's provenance. The section goes into --out between
`<!-- blas_table.py: begin CPU -->` and `<!-- blas_table.py: end CPU -->`, replacing that CPU's
earlier section and keeping other CPUs'; without those markers it is added under the heading
`## Which BLAS: candidates × the step's products × threads` (created at the end if absent).

About 10 s per candidate and round at the defaults on 2 cores: run it on a quiet machine.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys

from ..paths import ROOT, binary
from .describe import blas_text, child_env, cpu_slug, cpu_text, parse_candidate, probe, replace_between

HEADING = "## Which BLAS: candidates × the step's products × threads"
DEFAULTS = ["scipy-openblas", "openblas", "blis", "mkl"]


# ----------------------------------------------------------------------------------------------
# measuring


def gemm_bench(a, value, extra):
    """One `vaeas-dist bench gemm --json` run under the candidate: its JSON records."""
    args = [a.bin, "bench", "gemm", "--config", a.config_path, "--json", "--threads", *a.threads.split(","),
            "--steps", str(a.steps), "--warmup", str(a.warmup)]
    r = subprocess.run(args, env=child_env(value, extra), capture_output=True, text=True, timeout=3600)
    records = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not records:
        raise RuntimeError(f"{shlex.join(args)} (VAEAS_BLAS={value}) exited {r.returncode}:\n"
                           f"{(r.stderr or r.stdout)[-2000:]}")
    return records


def choose_candidates(a):
    """[(label, value, extra, probe)] that load, and [(label, value, reason)] that do not."""
    specs = []
    for text in a.candidate or ["defaults"]:
        new = [(v, v, {}) for v in DEFAULTS] if text == "defaults" else [parse_candidate(text)]
        for c in new:
            specs = [s for s in specs if s[0] != c[0]] + [c]   # a later LABEL replaces an earlier one
    chosen, skipped = [], []
    for label, value, extra in specs:
        p = probe(a.bin, value, extra)
        if p["loadable"]:
            chosen.append((label, value, extra, p))
        else:
            why = re.sub(r"^none could be loaded:\s*", "", p["blas"]).split("; ")[0]
            skipped.append((label, value, why or "no blas line"))
            print(f"blas_table: skipping {label} (VAEAS_BLAS={value}): {p['blas'] or p['text'][-300:]}", file=sys.stderr)
    if not chosen:
        sys.exit("blas_table: no candidate BLAS loads")
    return chosen, skipped


def measure(a, chosen):
    """Every round's records, each with candidate, candidate_value and round added."""
    records, errors = [], []
    for rnd in range(a.rounds):
        k = rnd % len(chosen)
        for label, value, extra, _p in chosen[k:] + chosen[:k]:
            try:
                got = gemm_bench(a, value, extra)
            except (RuntimeError, subprocess.SubprocessError) as e:
                errors.append(f"{label}, round {rnd + 1}: {str(e).splitlines()[0]}")
                print(f"blas_table: {e}", file=sys.stderr)
                continue
            for r in got:
                records.append(dict(r, candidate=label, candidate_value=value, round=rnd + 1,
                                    **({"candidate_env": extra} if extra else {})))
            best = max(got, key=lambda r: r.get("gflops", 0))
            print(f"blas_table: round {rnd + 1}/{a.rounds} {label}: {len(got)} records, best "
                  f"{best.get('gflops', 0):.1f} GFLOP/s ({best.get('products')} × {best.get('threads')})", file=sys.stderr)
    return records, errors


# ----------------------------------------------------------------------------------------------
# the section


def cpu_heading(cpu_line, record):
    """'### AMD EPYC (family 25 model 1), AVX2, FMA: nominal peak 78.3 GFLOP/s per core (…)' from
    `--version`'s cpu line, else from the JSON's cpu fields."""
    m = re.match(r"(?P<cpu>.*?);\s*nominal peak (?P<how>.*?)\s*=\s*(?P<peak>[\d.]+ GFLOP/s per core)", cpu_line or "")
    if m:
        return f"### {m['cpu']}: nominal peak {m['peak']} = {m['how']}"
    return f"### {cpu_text(record) or 'unknown CPU'}"


def extra_env(record):
    """NAME=VALUE of the BLAS variables the run saw (bench's env_*), but the ones this script sets."""
    return ", ".join(f"{k[4:]}={v}" for k, v in record.items()
                     if k.startswith("env_") and k not in ("env_VAEAS_BLAS", "env_OPENBLAS_NUM_THREADS"))


def render(a, chosen, skipped, records, errors, raw_path, out):
    """(cpu slug, the Markdown section between this CPU's markers) of the measured records."""
    first = records[0]
    slug = cpu_slug(first)
    products = list(dict.fromkeys(r["products"] for r in records))
    cols = sorted({(r["products"], r["threads"]) for r in records}, key=lambda c: (products.index(c[0]), c[1]))
    stats = {}
    for label, *_ in chosen:
        for col in cols:
            rs = [r for r in records if r["candidate"] == label and (r["products"], r["threads"]) == col]
            if rs:
                g = [r["gflops"] for r in rs]
                f = [r["fraction_of_peak"] for r in rs if isinstance(r.get("fraction_of_peak"), (int, float))]
                stats[label, col] = (statistics.median(g), statistics.median(f) if f else None, min(g), max(g))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["python3", "scripts/blas_table.py"] + sys.argv[1:])
    head = "| candidate: library, version, kernel |" + "".join(
        f" {p} × {t} thread{'s' if t != 1 else ''} |" for p, t in cols)
    lines = [head, "|---|" + "---:|" * len(cols)]
    for label, value, _extra, p in chosen:
        rs = [r for r in records if r["candidate"] == label]
        if not rs:
            continue
        env = ", ".join(e for e in extra_env(rs[0]).split(", ") if e and e not in label)
        row = f"| {label}: {blas_text(rs[0], selection=False)}{f' ({env})' if env else ''} |"
        for col in cols:
            s = stats.get((label, col))
            rng = f", {s[2]:.1f}–{s[3]:.1f}" if s and a.rounds > 1 else ""
            row += (f" {s[0]:.1f} ({s[1]:.2f}){rng} |" if s and s[1] is not None else
                    (f" {s[0]:.1f}{rng} |" if s else " – |"))
        lines.append(row)
    fastest = []
    for col in cols:
        ranked = sorted(((stats[l, col][0], l) for l, *_ in chosen if (l, col) in stats), reverse=True)
        if ranked:
            g, l = ranked[0]
            nxt = f", {g / ranked[1][0]:.2f}× {ranked[1][1]}" if len(ranked) > 1 and ranked[1][0] > 0 else ""
            fastest.append(f"{col[0]} × {col[1]}: **{l}** ({g:.1f} GFLOP/s{nxt})")
    paths = [f"  - {label}: VAEAS_BLAS={value}{''.join(f' {k}={v}' for k, v in extra.items())} → `{p['blas']}`"
             + (f"; `--version` warns: {p['warning'].split('. ')[0]}." if p["warning"] else "")
             for label, value, extra, p in chosen]
    raw_rel = os.path.relpath(raw_path, os.path.dirname(os.path.abspath(out))) if out and raw_path else None
    section = "\n".join([
        f"<!-- blas_table.py: begin {slug} -->",
        cpu_heading(chosen[0][3]["cpu"], first),
        "",
        f"Measured {now}: `vaeas-dist bench gemm` (the BLAS alone on the step's products, {a.config}) under each "
        f"candidate, {a.rounds} interleaved round{'s' if a.rounds != 1 else ''} (order rotated each round), "
        f"{a.steps} timed repetitions after {a.warmup} warm-up per run; medians"
        + (" and min–max over rounds." if a.rounds > 1 else "."),
        "",
        "```",
        command,
        "```",
        "",
        "Cells: GFLOP/s (fraction of the nominal peak of the cores used, threads × the per-core peak above)"
        + (", min–max GFLOP/s" if a.rounds > 1 else "")
        + ". vae-b128 / vae-b64: every product of the VAE step (forward, dW, dinput of each layer) at batch 128 / 64; "
        "output-vV: the classifier's 500 × V output layer on 128 rows (logits, dW, dH).",
        "",
        *lines,
        "",
        "Fastest per column: " + "; ".join(fastest) + ".",
        "",
        "- A fraction above 1 means the cores ran above the clock the nominal peak assumes (its source is in the heading).",
        "- Candidates (what `vaeas-dist --version` said under each):",
        *paths,
        *(["- Not loadable here: " + "; ".join(f"{l} (VAEAS_BLAS={v}: {why})" for l, v, why in skipped)] if skipped else []),
        *(["- Failed runs: " + "; ".join(errors)] if errors else []),
        *([f"- Raw records (one JSON line per run, products and threads, with candidate and round): `{raw_rel}`."]
          if raw_rel else []),
        f"<!-- blas_table.py: end {slug} -->",
    ])
    return slug, section


def insert(text, slug, section):
    """text with section replacing this CPU's earlier one, else added at the end of HEADING's part."""
    replaced = replace_between(text, f"<!-- blas_table.py: begin {slug} -->", f"<!-- blas_table.py: end {slug} -->",
                               section)
    if replaced is not None:
        return replaced
    if HEADING not in text:
        return text.rstrip("\n") + ("\n\n" if text.strip() else "") + HEADING + "\n\n" + section + "\n"
    start = text.index(HEADING) + len(HEADING)
    # The heading's part ends at the next '## ' heading or another script's begin marker.
    ends = [m.start() for m in re.finditer(r"^(## |<!-- [^\n]*: begin)", text[start:], re.M)
            if not m.group(0).startswith("<!-- blas_table.py:")]
    at = start + ends[0] if ends else len(text)
    head, tail = text[:at].rstrip("\n"), text[at:]
    return head + "\n\n" + section + "\n" + ("\n" + tail if tail else "")


def main():
    """blas_table.py's command line (the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=binary(),
                    help="vaeas-dist binary (default $VAEAS_BIN, else .build/release/vaeas-dist)")
    ap.add_argument("--config", default="configs/mnist-vaeas.yaml", help="config whose shapes to time "
                    "(default configs/mnist-vaeas.yaml, relative to the repository)")
    ap.add_argument("--candidate", action="append", metavar="LABEL=VALUE[+NAME=VALUE…]",
                    help="a BLAS to time under VAEAS_BLAS=VALUE (repeatable; replaces the defaults; "
                    "'defaults' adds scipy-openblas, openblas, blis, mkl)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5; --quick: 1)")
    ap.add_argument("--steps", type=int, help="timed repetitions per run (default 10; --quick: 2)")
    ap.add_argument("--warmup", type=int, help="untimed repetitions per run (default 2; --quick: 0)")
    ap.add_argument("--threads", default="1,2", help="BLAS thread counts (default 1,2)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/PERFORMANCE.md"),
                    help="Markdown file to put the section into (default docs/PERFORMANCE.md)")
    ap.add_argument("--raw", help="JSON lines file for the raw records (default OUT's directory/data/blas-CPU.jsonl)")
    ap.add_argument("--quick", "--dry-run", action="store_true",
                    help="1 round, --steps 2, --warmup 0; prints the section, writes nothing")
    a = ap.parse_args()
    a.rounds = a.rounds or (1 if a.quick else 5)
    a.steps = a.steps or (2 if a.quick else 10)
    a.warmup = a.warmup if a.warmup is not None else (0 if a.quick else 2)
    a.config_path = a.config if os.path.exists(a.config) else os.path.join(ROOT, a.config)
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"blas_table: {a.bin} is not an executable: swift build -c release first (or pass --bin)")

    chosen, skipped = choose_candidates(a)
    print("blas_table: candidates: " + ", ".join(f"{l} ({p['blas'].split(' (')[0]})" for l, _v, _e, p in chosen),
          file=sys.stderr)
    records, errors = measure(a, chosen)
    if not records:
        sys.exit("blas_table: no run gave records:\n" + "\n".join(errors))
    out = None if a.quick else a.out
    slug = cpu_slug(records[0])
    raw = None if a.quick else (a.raw or os.path.join(os.path.dirname(os.path.abspath(a.out)), "data", f"blas-{slug}.jsonl"))
    slug, section = render(a, chosen, skipped, records, errors, raw, out)
    print(section)
    if a.quick:
        return
    os.makedirs(os.path.dirname(os.path.abspath(raw)), exist_ok=True)
    with open(raw, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    text = open(out).read() if os.path.exists(out) else ""
    with open(out, "w") as f:
        f.write(insert(text, slug, section))
    print(f"blas_table: wrote {len(records)} records into {raw} and the section into {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
