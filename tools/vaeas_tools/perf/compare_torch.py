"""vaeas-dist against PyTorch (CPU) on the same model, shapes and cores, side by side.

    bash scripts/torch-venv.sh                          # once: .venv-torch with torch==2.13.0+cpu
    .venv-torch/bin/python scripts/compare_torch.py     # full comparison, writes docs/PERFORMANCE.md
    .venv-torch/bin/python scripts/compare_torch.py --quick              # tiny shapes: checks it works
    .venv-torch/bin/python scripts/compare_torch.py --before-bin OLD/vaeas-dist   # + a "before" column
    .venv-torch/bin/python scripts/compare_torch.py --blas "Debian OpenBLAS 0.3.21=openblas"   # + another BLAS

Each configuration (row) is timed as `vaeas-dist bench --json` (under scripts/mpirun.sh, with
OPENBLAS_NUM_THREADS set) and as the same training step in PyTorch (a subprocess of this script
with torch.set_num_threads), over --reps rounds. Within a round every row runs each side once,
rotating which goes first, so that drift of a shared machine falls on all; the table gives
medians over rounds. The shapes are the paper's (encoder 2 × 500, decoder 5 × 500, latent 40,
tanh, batch 128, L = 1); the PyTorch model is vaeas_tools.torch_ref.model's modules with the step
written the efficient way (one classifier forward; ∂CE only into ω and ∂Î only into z via
torch.autograd.grad, as vaeas-dist computes them; MD̂ = KL − Î, which binaries that know
objective.md_estimator are told with --set objective.md_estimator=kl_minus_mi) and, with --check (default in --quick), its
gradients are first checked against torch_ref.model.VAEAS.objectives on a small float64 model.

Every vaeas-dist run (this build's and --before-bin's) reads one config per row that this script
writes into a temporary directory with the model, objective and batch keys spelt out, using only
keys that every vaeas-dist since 533af70 (main before #13's performance work) knows: both builds
time the same model, and an older binary does not stop at a key added since (configs/mnist-vaeas.yaml's
train.cls_lr, a learning rate that does not change the work). Before the first round each binary's
`show-config` must accept every row's config and resolve its keys to the same values.

Our BLAS (vaeas-dist dlopens one, chosen by VAEAS_BLAS) is read from each run's bench JSON
(blas_library, blas_version, blas_kernel, blas_selection; cpu_model and its nominal peak) and named in
the section's intro and the table's caption; a --before-bin too old to report them is named by the
OpenBLAS it links (ldd) or "–". PyTorch's backend is read from torch.__config__.show() (BLAS_INFO,
USE_MKL, the MKL and oneDNN versions; the whole text goes into the raw records),
torch.backends.cpu.get_cpu_capability() and MKL_VERBOSE's code path on one nn.Linear step.
`--blas LABEL=VALUE` (repeatable; blas_table.py's candidate syntax, `+NAME=VALUE` for more
environment) times this build again under VAEAS_BLAS=VALUE in the same rounds, as extra columns
(samples/s, ratio to PyTorch, sgemm / nominal peak): e.g. `--blas "Debian OpenBLAS 0.3.21=openblas"` shows before and after
the BLAS change with one binary in one sitting.

Columns: samples/s of each side (median), their ratio; each side's achieved matmul GFLOP/s
(vaeas-dist's FLOPs per sample × samples/s) over the sgemm GFLOP/s vaeas-dist measured in the same
run on exactly the step's shapes and threads (its `ratio_to_sgemm`: how much of its own BLAS's speed
the step keeps); that sgemm rate; and the rate over the cores' nominal peak (`sgemm_fraction_of_peak`,
"–" for binaries that do not report it): a BLAS running a generic kernel makes sgemm slow and the
ratios to it flattering, and shows here as a small fraction. Then peak memory (peak resident set,
VmHWM, medians): vaeas-dist's per rank (`bench`'s peak_rss_bytes_max_rank) and summed over its ranks
(peak_rss_bytes_all_ranks), PyTorch's one process (its worker reads its own VmHWM after the timed
steps), and --before-bin's per rank if its `bench --json` reports it (older binaries do not: "–").

The section goes into --out (default docs/PERFORMANCE.md) between `<!-- compare_torch.py: begin -->`
and `<!-- compare_torch.py: end -->`; every run's record (row, side, round) and PyTorch's configuration
go to --raw (default DIR/data/compare_torch-CPU.jsonl beside --out; --quick: none unless given).

Run it on a quiet machine: about 10 minutes at the defaults on 2 cores (--reps 5), half as much
again with --before-bin or each --blas. Timing under other load says little; the ratios to sgemm say more.
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile
import time

from ..paths import ROOT
from .compare_configs import PAPER, QUICK, check_configs, rows, write_configs
from .compare_report import raw_path_for, render, write_outputs
from .compare_workers import check_step_gradients, ours, theirs, torch_backend, torch_worker
from .describe import machine, parse_candidate, probe


def main():
    """compare_torch.py's command line (the module docstring); `--torch-worker SPEC` is the worker's."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 1 round, few steps; prints, writes nothing")
    ap.add_argument("--reps", type=int, help="rounds (default 5; --quick: 1)")
    ap.add_argument("--steps", type=int, help="timed steps per run (default 40; --quick: 3)")
    ap.add_argument("--warmup", type=int, help="untimed steps per run (default 5; --quick: 1)")
    ap.add_argument("--slow-steps", type=int, default=8, help="timed steps for V = 50000 full-softmax rows (default 8)")
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/release/vaeas-dist"), help="vaeas-dist binary")
    ap.add_argument("--before-bin", help="another vaeas-dist binary (e.g. main's) timed in the same rounds: a 'before' column")
    ap.add_argument("--before-label", help="what --before-bin is, for the notes (e.g. 'main at 533af70'; "
                    "default: its --version)")
    ap.add_argument("--blas", action="append", default=[], metavar="LABEL=VALUE[+NAME=VALUE…]",
                    help="also time --bin under VAEAS_BLAS=VALUE in the same rounds, as columns LABEL (repeatable), "
                    "e.g. 'Debian OpenBLAS 0.3.21=openblas'")
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(ROOT), "shared/data"),
                    help="directory with binarized-mnist (default ../shared/data)")
    ap.add_argument("--adam", choices=["fused", "foreach", "default"], default="fused",
                    help="PyTorch's Adam implementation (default fused: its fastest on CPU)")
    ap.add_argument("--only", help="run only the rows whose name contains this text")
    ap.add_argument("--check", action=argparse.BooleanOptionalAction, default=None,
                    help="check the PyTorch step's gradients against torch_ref.model first (default: on with --quick)")
    ap.add_argument("--out", help="write the table section into this Markdown file "
                    "(default docs/PERFORMANCE.md; --quick: none)")
    ap.add_argument("--raw", help="JSON lines file for every run's record and PyTorch's configuration "
                    "(default: data/compare_torch-CPU.jsonl beside --out; --quick: none)")
    ap.add_argument("--torch-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(json.loads(a.torch_worker))

    quick = a.quick
    reps = a.reps or (1 if quick else 5)
    steps = a.steps or (3 if quick else 40)
    warmup = a.warmup if a.warmup is not None else (1 if quick else 5)
    shape = QUICK if quick else PAPER
    out = a.out if a.out is not None else (None if quick else os.path.join(ROOT, "docs/PERFORMANCE.md"))
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"compare_torch: {a.bin} is not an executable: swift build -c release first (or pass --bin)")
    if a.before_bin and not os.access(a.before_bin, os.X_OK):
        sys.exit(f"compare_torch: --before-bin {a.before_bin} is not an executable")
    try:
        import torch
    except ImportError:
        sys.exit("compare_torch: this python has no torch: bash scripts/torch-venv.sh, then run this script with "
                 ".venv-torch/bin/python")
    if not torch.__version__.startswith("2.13.0"):
        print(f"compare_torch: note: torch {torch.__version__}, not the pinned 2.13.0+cpu", file=sys.stderr)
    if a.check if a.check is not None else quick:
        check_step_gradients()

    table = [r for r in rows(quick) if not a.only or a.only in r[0]]
    # Sides of vaeas-dist: (key, binary, (VAEAS_BLAS, {environment}) or None); PyTorch is "torch".
    sides = [("ours", a.bin, None)] + ([("before", a.before_bin, None)] if a.before_bin else [])
    for spec in a.blas:
        label, value, extra = parse_candidate(spec)
        p = probe(a.bin, value, extra)
        if not p["loadable"]:
            sys.exit(f"compare_torch: --blas {spec!r}: {a.bin} --version says blas: {p['blas'] or p['text']}")
        sides.append((label, a.bin, (value, extra)))
        if label in ("ours", "before", "torch") or label in [k for k, _b, _e in sides[:-1]]:
            sys.exit(f"compare_torch: --blas {spec!r}: each needs its own label (not ours, before or torch)")
    config_dir = tempfile.mkdtemp(prefix="compare_torch-")
    try:
        configs = write_configs(table, shape, config_dir)
        check_configs(sorted({b for _k, b, _e in sides}), configs, a.data_dir)
        run_and_report(a, quick, reps, steps, warmup, shape, out, table, sides, configs, torch_backend(torch))
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


def measure(a, reps, steps, warmup, shape, table, sides, configs):
    """{row: {side: [record per round]}} and every record with its row, side and round."""
    results = {r[0]: {k: [] for k in [s[0] for s in sides] + ["torch"]} for r in table}
    raw, start = [], time.time()
    for rep in range(reps):
        for k, (name, ranks, threads, objective, labels, softmax, alpha, with_torch) in enumerate(table):
            slow = objective == "vaeas" and softmax == "full" and labels >= 10000
            n = min(steps, a.slow_steps) if slow else steps
            runs = list(sides) + ([("torch", None, None)] if with_torch else [])
            runs = runs[(rep + k) % len(runs):] + runs[:(rep + k) % len(runs)]   # rotate who goes first
            for side, b, blas in runs:
                if side == "torch":
                    r = theirs(shape, ranks * threads, objective, labels, softmax, alpha, n, warmup, a.adam)
                else:
                    r = ours(b, blas, configs[name][0], ranks, threads, n, warmup, a.data_dir)
                results[name][side].append(r)
                raw.append(dict(r, row=name, side=side, round=rep + 1))
                print(f"[{time.time() - start:6.0f} s] round {rep + 1}/{reps} {name}: {side} "
                      f"{r['samples_per_s']:.0f} samples/s", file=sys.stderr)
    return results, raw


def run_and_report(a, quick, reps, steps, warmup, shape, out, table, sides, configs, backend):
    """Measures every row and side, prints the section and writes it and the raw records."""
    results, raw = measure(a, reps, steps, warmup, shape, table, sides, configs)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    exe = os.path.relpath(sys.executable, ROOT) if os.path.abspath(sys.executable).startswith(ROOT + os.sep) else "python3"
    command = shlex.join([exe, "scripts/compare_torch.py"] + sys.argv[1:])
    raw_path = raw_path_for(a, quick, out, results)
    section = render(a, results, table, sides, shape, backend, reps=reps, steps=steps, warmup=warmup, out=out,
                     raw_path=raw_path, command=command, now=now, machine_text=machine())
    print(section)
    write_outputs(section, raw, raw_path, out, now, command, backend)


if __name__ == "__main__":
    main()
