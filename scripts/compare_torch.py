#!/usr/bin/env python3
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
tanh, batch 128, L = 1); the PyTorch model is scripts/torch_model.py's modules with the step
written the efficient way (one classifier forward; ∂CE only into ω and ∂Î only into z via
torch.autograd.grad, as vaeas-dist computes them; MD̂ = KL − Î, which binaries that know
objective.md_estimator are told with --set objective.md_estimator=kl_minus_mi) and, with --check (default in --quick), its
gradients are first checked against torch_model.VAEAS.objectives on a small float64 model.

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
import math
import os
import platform
import re
import shlex
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)
import blas_table  # noqa: E402  (candidate syntax, BLAS and CPU descriptions)

BEGIN, END = "<!-- compare_torch.py: begin -->", "<!-- compare_torch.py: end -->"

# The paper's MNIST architecture (configs/mnist-vae.yaml, configs/mnist-vaeas.yaml).
PAPER = dict(input=784, latent=40, hidden=500, enc_layers=2, dec_layers=5, cls_layers=2, batch=128, samples=1)
# --quick: small enough to run in seconds, the same code paths.
QUICK = dict(input=784, latent=8, hidden=64, enc_layers=2, dec_layers=2, cls_layers=1, batch=50, samples=1)


def rows(quick):
    """(name, ranks, threads per rank, objective, V, softmax, alpha, with PyTorch)."""
    big, small = (500, 200) if quick else (50000, 1000)
    return [
        ("VAE, 1 rank × 1 thread vs 1 thread", 1, 1, "vae", 0, "full", 1.0, True),
        ("VAE, 2 ranks × 1 thread vs 2 threads", 2, 1, "vae", 0, "full", 1.0, True),
        ("VAE, 1 rank × 2 threads vs 2 threads", 1, 2, "vae", 0, "full", 1.0, True),
        (f"VAE-AS V = {small}, 2 ranks vs 2 threads", 2, 1, "vaeas", small, "full", 1.0, True),
        (f"VAE-AS V = {big} full, α = β, 1 rank vs 1 thread", 1, 1, "vaeas", big, "full", 1.0, True),
        (f"VAE-AS V = {big} full, α = β, 2 ranks vs 2 threads", 2, 1, "vaeas", big, "full", 1.0, True),
        (f"VAE-AS V = {big} full, α = 0.5, 1 rank vs 1 thread", 1, 1, "vaeas", big, "full", 0.5, True),
        (f"VAE-AS V = {big} full, α = 0.5, 2 ranks vs 2 threads", 2, 1, "vaeas", big, "full", 0.5, True),
        (f"VAE-AS V = {big} tree, 2 ranks (vaeas-dist only)", 2, 1, "vaeas", big, "tree", 1.0, False),
    ]


# ----------------------------------------------------------------------------------------------
# vaeas-dist side


def bench_config(shape, objective, labels, softmax, alpha):
    """The row's vaeas-dist config as {section: {key: value}}: configs/mnist-vae.yaml's and
    configs/mnist-vaeas.yaml's data, model and objective keys with the row's shapes, every key that
    changes the step written out, and only keys that main at 533af70 (before #13's performance
    work) already knew, so that a --before-bin of that age times the same model. Resolved, it
    differs from those configs with the same --set overrides in train.cls_lr only (mnist-vaeas's
    classifier rate, a key added since 533af70: a number in the same Adam pass, not more work).
    epochs and eval.every are written as the configs have them, though bench runs --steps and sets
    eval.every = 0."""
    cfg = {
        "data": {"name": "binarized-mnist", "binarize": "static"},
        "model": {"latent": shape["latent"], "hidden": shape["hidden"], "enc_layers": shape["enc_layers"],
                  "dec_layers": shape["dec_layers"], "activation": "tanh", "init": "glorot"},
        "objective": {"kind": objective, "beta": 1.0},
        "train": {"epochs": 300, "batch": shape["batch"], "samples": shape["samples"], "lr": 0.0003, "seed": 0},
        "eval": {"every": 10},
    }
    if objective == "vaeas":
        cfg["model"]["cls_layers"] = shape["cls_layers"]
        cfg["objective"].update({
            "alpha": float(alpha), "labels": labels, "label_assignment": "modulo",
            # The tree scores one leaf per row: its estimator is ce (entropy needs all V).
            "mi_estimator": "ce" if softmax == "tree" else "entropy",
            "softmax": softmax,
            # Index order: PCA leaf order only changes the tree's start-up, not its step.
            "leaf_order": "index"})
    return cfg


def yaml_text(cfg):
    return "".join(f"{section}:\n" + "".join(f"  {k}: {v}\n" for k, v in keys.items())
                   for section, keys in cfg.items())


def write_configs(table, shape, directory):
    """One config file per row, {row name: (path, config)}, written into directory."""
    files = {}
    for i, (name, _ranks, _threads, objective, labels, softmax, alpha, _t) in enumerate(table):
        cfg = bench_config(shape, objective, labels, softmax, alpha)
        path = os.path.join(directory, f"row{i}-{objective}.yaml")
        with open(path, "w") as f:
            f.write(f"# compare_torch.py: {name}\n" + yaml_text(cfg))
        files[name] = (path, cfg)
    return files


def check_configs(binaries, files, data_dir):
    """Each binary's `show-config` accepts every row's config and resolves each key written in it
    to the same value: the binaries time the same model (a rejected key fails here, in seconds)."""
    def resolved(bin_path, path):
        r = subprocess.run([bin_path, "show-config", "--config", path, "--data-dir", data_dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            sys.exit(f"compare_torch: {bin_path} rejects the config compare_torch.py wrote ({path}):\n"
                     f"{(r.stderr or r.stdout)[-2000:]}")
        values, section = {}, None
        for line in r.stdout.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" ") and line.rstrip().endswith(":"):
                section = line.strip()[:-1]
            elif section and ":" in line:
                k, v = line.strip().split(":", 1)
                values[f"{section}.{k}"] = v.strip().strip('"')
        return values

    def same(a, b):
        try:
            return float(a) == float(b)
        except ValueError:
            return a == b

    for name, (path, cfg) in files.items():
        seen = {b: resolved(b, path) for b in binaries}
        for section, keys in cfg.items():
            for k, v in keys.items():
                key = f"{section}.{k}"
                for b, values in seen.items():
                    if key not in values or not same(values[key], str(v)):
                        sys.exit(f"compare_torch: {b} resolves {key} of {path} ({name}) to "
                                 f"{values.get(key, 'nothing')!r}, not {v!r}")


_KNOWS_MD = {}


def knows_md_estimator(bin_path):
    """Whether this vaeas-dist has objective.md_estimator (its show-config lists it)."""
    if bin_path not in _KNOWS_MD:
        r = subprocess.run([bin_path, "show-config"], capture_output=True, text=True)
        _KNOWS_MD[bin_path] = "md_estimator:" in r.stdout
    return _KNOWS_MD[bin_path]


def ours(bin_path, blas, config_path, ranks, threads, steps, warmup, data_dir):
    """One `vaeas-dist bench --json` run on the row's config (write_configs), under VAEAS_BLAS and
    environment blas = (value, {NAME: VALUE}) if given; its JSON record."""
    args = [os.path.join(SCRIPTS, "mpirun.sh"), "-n", str(ranks), "bench", "--config", config_path,
            "--data-dir", data_dir, "--steps", str(steps), "--warmup", str(warmup), "--json"]
    # The PyTorch step computes MD̂ = KL − Î (at α = β no Î backward); a binary that knows
    # objective.md_estimator (issue #20, default eq14) is told the same, older ones compute it anyway.
    if knows_md_estimator(bin_path):
        args += ["--set", "objective.md_estimator=kl_minus_mi"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), VAEAS_BIN=bin_path)
    if blas:
        env.update(blas[1], VAEAS_BLAS=blas[0])
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        sys.exit(f"compare_torch: vaeas-dist bench failed ({' '.join(args)}):\n{r.stderr[-3000:]}")
    line = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not line:
        sys.exit(f"compare_torch: no JSON from vaeas-dist bench:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return json.loads(line[-1])


# ----------------------------------------------------------------------------------------------
# PyTorch side (run in a subprocess: `compare_torch.py --torch-worker SPEC`)


def torch_meta(shape, objective, labels, softmax, alpha):
    meta = dict(objective=objective, activation="tanh", input_dim=shape["input"], latent_dim=shape["latent"],
                hidden=shape["hidden"], enc_layers=shape["enc_layers"], dec_layers=shape["dec_layers"])
    if objective == "vaeas":
        meta.update(labels=labels, mi_estimator="entropy", alpha=alpha, beta=1.0, cls_layers=shape["cls_layers"],
                    softmax=softmax)
    return meta


def make_step(model, optimizer):
    """One training step of torch_model.VAEAS, computing what vaeas-dist computes, no more:
    the classifier's forward once; ∂(mean CE) into ω only (z held fixed), ∂((α − β) Î) into z
    only (ω held fixed), and no Î backward at all when its weight is 0 (α = β), as the trainer."""
    import torch
    import torch.nn.functional as F

    cls = model.classifier
    cls_params = list(cls.parameters()) if cls is not None else []

    def step(x, eps, labels):
        b, L = x.shape[0], eps.shape[0] // x.shape[0]
        mu, logvar = model.encoder(x)
        std = torch.exp(0.5 * logvar)
        z = mu.repeat_interleave(L, 0) + std.repeat_interleave(L, 0) * eps
        logits = model.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x.repeat_interleave(L, 0), reduction="none").sum(1)
        recon = recon.view(b, L).mean(1)
        kl = 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1)
        objective = (recon + model.beta * kl).mean()
        optimizer.zero_grad(set_to_none=False)
        if cls is None:
            objective.backward()
        else:
            mi_active = bool(model.mi_term_active(eps.shape[0]))
            zc = z.detach().requires_grad_(mi_active)
            ce, entropy = cls(zc, labels)
            ce_mean = ce.mean()
            if mi_active:
                mi = math.log(model.labels) - model.h_hat(ce, entropy).mean()
                g_omega = torch.autograd.grad(ce_mean, cls_params, retain_graph=True)
                (g_z,) = torch.autograd.grad((model.alpha - model.beta) * mi, zc)
                torch.autograd.backward([objective, z], [None, g_z])
                for p, g in zip(cls_params, g_omega):
                    p.grad = g
            else:
                (objective + ce_mean).backward()
        optimizer.step()
        return objective.detach()

    return step


def check_step_gradients():
    """The timed step's gradients equal torch_model's reference objectives' (float64, small model,
    α ≠ β and α = β, and the plain VAE), so the PyTorch side times the right computation."""
    import torch
    sys.path.insert(0, SCRIPTS)
    import torch_model

    torch.manual_seed(0)
    shape = dict(QUICK, hidden=7, latent=3, input=11)
    for objective, alpha in [("vae", 1.0), ("vaeas", 0.5), ("vaeas", 1.0)]:
        meta = torch_meta(shape, objective, 13, "full", alpha)
        model = torch_model.VAEAS(meta).double()
        b, L = 5, 2
        x = (torch.rand(b, shape["input"]) < 0.5).double()
        eps = torch.randn(b * L, shape["latent"], dtype=torch.float64)
        labels = torch.randint(13, (b * L,))
        ref = torch_model.VAEAS(meta).double()
        ref.load_state_dict(model.state_dict())
        t = ref.terms(x, eps, labels if objective == "vaeas" else None)
        obj, ce = ref.objectives(t)
        ((obj + ce) if ce is not None else obj).backward()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)   # lr 0: gradients only
        make_step(model, opt)(x, eps, labels)
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            err = (p.grad - q.grad).abs().max().item()
            if not err <= 1e-10 * max(1.0, q.grad.abs().max().item()):
                sys.exit(f"compare_torch: the timed PyTorch step's ∂/∂{name} differs from torch_model's "
                         f"({objective}, α = {alpha}): max |Δ| {err:.3e}")
    print("compare_torch: the timed PyTorch step's gradients equal torch_model.py's (vae; vaeas at α = 0.5 and α = β)",
          file=sys.stderr)


def peak_rss_bytes():
    """This process's peak resident set: VmHWM of /proc/self/status, as vaeas-dist's bench reads
    its own (getrusage's ru_maxrss where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def torch_worker(spec):
    import torch
    sys.path.insert(0, SCRIPTS)
    import torch_model

    torch.set_num_threads(spec["threads"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    shape = spec["shape"]
    model = torch_model.VAEAS(torch_meta(shape, spec["objective"], spec["labels"], spec["softmax"], spec["alpha"]))
    kwargs = {"fused": True} if spec["adam"] == "fused" else ({"foreach": True} if spec["adam"] == "foreach" else {})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **kwargs)
    step = make_step(model, optimizer)
    b, L, d = shape["batch"], shape["samples"], shape["latent"]
    # A pool of binary images (the data's content does not change the work), fresh noise per step.
    pool = (torch.rand(16, b, shape["input"]) < 0.5).float()
    label_count = max(spec["labels"], 1)
    for i in range(spec["warmup"]):
        step(pool[i % 16], torch.randn(b * L, d), torch.randint(label_count, (b * L,)))
    t0 = time.perf_counter()
    for i in range(spec["steps"]):
        step(pool[i % 16], torch.randn(b * L, d), torch.randint(label_count, (b * L,)))
    seconds = time.perf_counter() - t0
    # Peak resident set of this whole process (interpreter, torch, model, Adam state, the timed steps).
    print(json.dumps(dict(samples_per_s=spec["steps"] * b / seconds, step_ms=seconds / spec["steps"] * 1e3,
                          threads=torch.get_num_threads(), torch=torch.__version__,
                          peak_rss_bytes=peak_rss_bytes())))


def theirs(shape, threads, objective, labels, softmax, alpha, steps, warmup, adam):
    spec = dict(shape=shape, threads=threads, objective=objective, labels=labels, softmax=softmax, alpha=alpha,
                steps=steps, warmup=warmup, adam=adam)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", json.dumps(spec)],
                       env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        sys.exit(f"compare_torch: the PyTorch worker failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


MKL_PROBE = ("import torch; torch.set_num_threads(1); l = torch.nn.Linear(500, 500); "
             "l(torch.ones(128, 500, requires_grad=True)).sum().backward()")


def torch_backend(torch):
    """PyTorch's BLAS as built and as run: {"config": torch.__config__.show(), "text": one line}. The
    MKL code path is what MKL_VERBOSE prints on one nn.Linear step in a fresh process (MKL names
    'Intel(R) Architecture processors' on CPUs it has no dedicated path for, e.g. AMD's)."""
    config = torch.__config__.show()
    def grab(pattern):
        m = re.search(pattern, config)
        return m.group(1) if m else None
    blas, use_mkl = grab(r"BLAS_INFO=([^,\s]+)"), grab(r"USE_MKL=(\w+)")
    mkl, onednn = grab(r"Math Kernel Library Version ([\w.]+)"), grab(r"MKL-DNN v([\w.]+)")
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = "–"
    path, sgemm = None, 0
    if use_mkl == "ON":
        try:
            r = subprocess.run([sys.executable, "-c", MKL_PROBE], env=dict(os.environ, MKL_VERBOSE="1"),
                               capture_output=True, text=True, timeout=300)
            m = re.search(r"architecture (.*?), Lnx", r.stdout)
            path, sgemm = (m.group(1) if m else None), r.stdout.count("MKL_VERBOSE SGEMM")
        except (OSError, subprocess.SubprocessError):
            pass
    text = f"PyTorch {torch.__version__}: BLAS {blas or '–'} (USE_MKL={use_mkl or '–'}"
    text += f"; MKL {mkl}" if mkl else ""
    text += (f", code path '{path}' per MKL_VERBOSE; nn.Linear {'runs' if sgemm else 'does not run'} MKL sgemm"
             if path else "") + ")"
    text += f", oneDNN {onednn}" if onednn else ""
    return dict(version=torch.__version__, config=config, blas=blas, use_mkl=use_mkl, mkl=mkl, onednn=onednn,
                capability=capability, mkl_code_path=path, text=text + f", CPU capability {capability}")


def linked_blas(bin_path):
    """The BLAS a binary links (binaries from before the BLAS was dlopened), from ldd: 'OpenBLAS
    0.3.21 (linked: libopenblasp-r0.3.21.so)', or None."""
    try:
        r = subprocess.run(["ldd", bin_path], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(lib(openblas|blis|mkl_rt|blas)\S*) => (\S+)", r.stdout)
    if not m:
        return None
    real = os.path.basename(os.path.realpath(m.group(3)))
    v = re.search(r"r?(\d+\.\d+\.\d+)", real)
    name = {"openblas": "OpenBLAS", "blis": "BLIS", "mkl_rt": "MKL"}.get(m.group(2), "BLAS")
    return f"{name}{' ' + v.group(1) if v else ''} (linked: {real})"


# ----------------------------------------------------------------------------------------------
# the table


def machine():
    """'host: CPU (flags), cores, memory, kernel' as /proc says, and OPENBLAS_CORETYPE if set."""
    def read(path):
        try:
            return open(path).read()
        except OSError:
            return ""
    cpuinfo, meminfo = read("/proc/cpuinfo"), read("/proc/meminfo")
    model, mem = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M), re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    flags = ", ".join(f for f in ("avx512f", "avx2", "fma") if re.search(rf"\b{f}\b", cpuinfo))
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return (f"{platform.node()}: {model.group(1).strip() if model else 'unknown CPU'} ({flags}), {os.cpu_count()} cores"
            + (f", {int(mem.group(1)) / 1048576:.0f} GiB" if mem else "") + f", Linux {platform.release()}"
            + (f", OPENBLAS_CORETYPE={coretype}" if coretype else ""))


def version(bin_path):
    """`vaeas-dist --version` of a binary (newer builds name their commit)."""
    try:
        r = subprocess.run([bin_path, "--version"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or "version unknown"
    except (OSError, subprocess.SubprocessError):
        return "version unknown"


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def main():
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
                    help="check the PyTorch step's gradients against torch_model.py first (default: on with --quick)")
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
        label, value, extra = blas_table.parse_candidate(spec)
        p = blas_table.probe(a.bin, value, extra)
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


def med(runs, key):
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return statistics.median(values) if values else None


def mib(runs, key):
    v = med(runs, key)
    return v / 1048576 if v is not None else None


def run_and_report(a, quick, reps, steps, warmup, shape, out, table, sides, configs, backend):
    results, raw = measure(a, reps, steps, warmup, shape, table, sides, configs)
    extras = sides[2 if a.before_bin else 1:]
    every = {k: [r for rs in results.values() for r in rs[k]] for k in results[table[0][0]]}

    def blas_of(key, b):
        """What BLAS a side ran: its bench JSON's, else what the binary links (old binaries), else '–'."""
        rec = next((r for r in every[key] if r.get("blas_library")), None)
        return blas_table.blas_text(rec, selection=key == "ours") or linked_blas(b) or "–"

    first = next((r for r in every["ours"] if r.get("cpu_model")), {})
    cpu = blas_table.cpu_text(first) or "–"
    ours_blas = blas_of("ours", a.bin)
    caption = (f"*CPU: {cpu}; vaeas-dist BLAS: {ours_blas}"
               + (f"; before: {blas_of('before', a.before_bin)}" if a.before_bin else "")
               + "".join(f"; {k}: {blas_of(k, b)}" for k, b, _e in extras)
               + f"; PyTorch: BLAS_INFO={backend['blas'] or '–'}"
               + (f", MKL {backend['mkl']}" if backend["mkl"] else "")
               + (f" ('{backend['mkl_code_path']}')" if backend["mkl_code_path"] else "")
               + (f", oneDNN {backend['onednn']}" if backend["onednn"] else "")
               + f", CPU capability {backend['capability']}.*")
    torch_threads = sorted({r["threads"] for r in every["torch"] if "threads" in r})

    lines = []
    head = "| config | vaeas-dist samples/s |" + (" before samples/s | after / before |" if a.before_bin else "")
    head += "".join(f" {k} samples/s | {k} / PyTorch | {k} sgemm / nominal peak |" for k, _b, _e in extras)
    head += (" PyTorch samples/s | vaeas-dist / PyTorch | vaeas-dist / its sgemm rate | PyTorch / the same sgemm rate |"
             " sgemm GFLOP/s per rank | sgemm / nominal peak |")
    head += " vaeas-dist peak MiB/rank | vaeas-dist total MiB | PyTorch peak MiB |" + (" before peak MiB/rank |" if a.before_bin else "")
    lines.append(head)
    lines.append("|---|" + "---:|" * (head.count("|") - 2))
    for (name, ranks, threads, *_rest) in table:
        o, t, bf = results[name]["ours"], results[name]["torch"], results[name]["before"] if a.before_bin else []
        sps, tsps, bsps = med(o, "samples_per_s"), med(t, "samples_per_s"), med(bf, "samples_per_s")
        ratio = med(o, "ratio_to_sgemm")
        sgemm = med(o, "sgemm_gflops_per_rank")
        flops = med(o, "flops_per_sample")
        # PyTorch's matmul GFLOP/s over the sgemm rate vaeas-dist measured on the same shapes and cores.
        tratio = (tsps * flops / 1e9 / (sgemm * ranks)) if (tsps and flops and sgemm) else None
        row = f"| {name} | {fmt(sps, ',.0f')} |"
        if a.before_bin:
            row += f" {fmt(bsps, ',.0f')} | {fmt(sps / bsps if bsps else None, '.2f')}× |"
        for k, _b, _e in extras:
            x = results[name][k]
            xsps = med(x, "samples_per_s")
            row += (f" {fmt(xsps, ',.0f')} | {fmt(xsps / tsps if xsps and tsps else None, '.2f')}{'×' if xsps and tsps else ''}"
                    f" | {fmt(med(x, 'sgemm_fraction_of_peak'), '.2f')} |")
        row += (f" {fmt(tsps, ',.0f')} | {fmt(sps / tsps if tsps else None, '.2f')}{'×' if tsps else ''} |"
                f" {fmt(ratio, '.2f')} | {fmt(tratio, '.2f')} | {fmt(sgemm, '.1f')} |"
                f" {fmt(med(o, 'sgemm_fraction_of_peak'), '.2f')} |")
        # Peak resident sets: vaeas-dist's largest rank and all its ranks summed (bench reports every
        # rank's), PyTorch's one process, the before binary's largest rank if its bench reports it.
        row += (f" {fmt(mib(o, 'peak_rss_bytes_max_rank'), ',.0f')} | {fmt(mib(o, 'peak_rss_bytes_all_ranks'), ',.0f')} |"
                f" {fmt(mib(t, 'peak_rss_bytes'), ',.0f')} |")
        if a.before_bin:
            row += f" {fmt(mib(bf, 'peak_rss_bytes_max_rank'), ',.0f')} |"
        lines.append(row)
    split = []
    for (name, *_r) in table:
        o = results[name]["ours"]
        if not o:
            continue
        keys = [k for k in o[0] if k.startswith("ms_") and med(o, k) is not None and med(o, k) > 0.005]
        split.append(f"- {name}: step {med(o, 'step_ms'):.2f} ms = " +
                     ", ".join(f"{k[3:]} {med(o, k):.2f}" for k in keys))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shape_text = (f"encoder {shape['enc_layers']} × {shape['hidden']}, decoder {shape['dec_layers']} × {shape['hidden']}, "
                  f"latent {shape['latent']}, tanh, batch {shape['batch']}, L = {shape['samples']}; "
                  f"VAE-AS: classifier {shape['cls_layers']} × {shape['hidden']}, entropy estimator (tree: ce), β = 1")
    exe = os.path.relpath(sys.executable, ROOT) if os.path.abspath(sys.executable).startswith(ROOT + os.sep) else "python3"
    command = shlex.join([exe, "scripts/compare_torch.py"] + sys.argv[1:])
    raw_path = a.raw or (os.path.join(os.path.dirname(os.path.abspath(out)), "data",
                                      f"compare_torch-{blas_table.cpu_slug(first)}.jsonl") if out and not quick else None)
    section = "\n".join([
        BEGIN,
        "## vaeas-dist against PyTorch (`scripts/compare_torch.py`)",
        "",
        f"Measured {now} on {machine()}; CPU as vaeas-dist reports it: {cpu}. "
        f"PyTorch {backend['version']} "
        f"(`torch.optim.Adam`{'' if a.adam == 'default' else f'({a.adam}=True)'}), "
        f"{reps} interleaved rounds, medians; {steps} timed steps per run "
        f"({min(steps, a.slow_steps)} for the V = 50000 full-softmax rows) after {warmup} warm-up.",
        f"Model: {shape_text}.",
        "",
        f"- vaeas-dist ({version(a.bin).splitlines()[0]}): BLAS {ours_blas}.",
        f"- {backend['text']}, threads {' / '.join(map(str, torch_threads)) or '–'} (`torch.set_num_threads(ranks × threads)` "
        "of the row, OMP_NUM_THREADS = MKL_NUM_THREADS the same, 1 interop thread).",
        "",
        "```",
        command.strip(),
        "```",
        "",
        caption,
        "",
        *lines,
        "",
        "- *vaeas-dist / its sgemm rate*: the step's matmul GFLOP/s over its BLAS's sgemm on exactly the step's shapes "
        "and threads, measured in the same run (`bench`'s `ratio_to_sgemm`): the share of its own BLAS's speed the step "
        "keeps, not how fast that BLAS is. *PyTorch / the same sgemm rate*: PyTorch's samples/s × the same FLOPs per "
        "sample, over that same sgemm rate × ranks. *sgemm / nominal peak*: that sgemm rate over the nominal peak of "
        "the rank's cores (threads × the CPU's per-core peak, `sgemm_fraction_of_peak`; above 1 when the cores run above "
        "the clock the peak assumes): a BLAS on a generic kernel shows there as a small fraction, and flatters the "
        "ratios to its sgemm.",
        "- PyTorch runs `torch.set_num_threads(ranks × threads)` in one process; vaeas-dist runs `scripts/mpirun.sh -n ranks` "
        "with `OPENBLAS_NUM_THREADS=threads` (which vaeas-dist gives to whichever BLAS it loaded), on a config per row "
        "that compare_torch.py writes with the model, objective and batch keys above (only keys 533af70's binary also "
        "knows: no `train.cls_lr`, which changes no work).",
        "- Peak memory is the peak resident set (VmHWM), medians over rounds. *vaeas-dist peak MiB/rank*: its largest rank "
        "(`bench`'s `peak_rss_bytes_max_rank`: set-up, the data set, the timed steps); *vaeas-dist total MiB*: "
        "all its ranks summed (`peak_rss_bytes_all_ranks`), the number to set against *PyTorch peak MiB* on 2-rank rows, "
        "where PyTorch is one process with 2 threads (its interpreter and libtorch included, 16 batches of data). "
        "On 1-rank rows the two vaeas-dist columns are the same process.",
        *([f"- *before*: `--before-bin` {a.before_bin} ({a.before_label or version(a.before_bin).splitlines()[0]}; BLAS "
           f"{blas_of('before', a.before_bin)}), timed in the same rounds on the same configs; its peak memory is \"–\" "
           "where its `bench --json` has no `peak_rss_bytes_max_rank` (binaries before #13's performance work)."]
          if a.before_bin else []),
        *[f"- *{k}*: this build (`--bin`) under `VAEAS_BLAS={v}`{''.join(f' `{n}={x}`' for n, x in e.items())} "
          f"(BLAS {blas_of(k, b)}), timed in the same rounds on the same configs." for k, b, (v, e) in extras],
        *([f"- Raw records (every run's `bench`/worker JSON with row, side and round; PyTorch's `torch.__config__.show()` "
           f"first): `{os.path.relpath(raw_path, os.path.dirname(os.path.abspath(out)))}`."] if raw_path and out else []),
        "- Where vaeas-dist's step goes, ms per step on rank 0 (medians):",
        *["  " + s for s in split],
        END,
    ])
    print(section)
    if raw_path:
        os.makedirs(os.path.dirname(os.path.abspath(raw_path)), exist_ok=True)
        with open(raw_path, "w") as f:
            head = dict(measured=now, command=command, torch_config=backend["config"],
                        torch_backend={k: v for k, v in backend.items() if k != "config"})
            f.writelines(json.dumps(r) + "\n" for r in [head] + raw)
        print(f"compare_torch: wrote {len(raw)} records into {raw_path}", file=sys.stderr)
    if out:
        text = open(out).read() if os.path.exists(out) else ""
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        with open(out, "w") as f:
            f.write(text)
        print(f"compare_torch: wrote the table into {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
