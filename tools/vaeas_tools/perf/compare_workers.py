"""compare_torch's timed runs: vaeas-dist's `bench --json` under scripts/mpirun.sh, the PyTorch step (built
to compute what vaeas-dist computes, checked against torch_ref.model's objectives) in a worker subprocess,
and PyTorch's BLAS backend as built and as run."""
import json
import math
import os
import re
import subprocess
import sys
import time

from ..paths import ROOT
from .compare_configs import QUICK, knows_md_estimator, torch_meta

#: The script a worker subprocess runs (`--torch-worker SPEC`): the thin entry point, so that the worker
#: finds the package as the parent did.
ENTRY = os.path.join(ROOT, "scripts", "compare_torch.py")


def ours(bin_path, blas, config_path, ranks, threads, steps, warmup, data_dir):
    """One `vaeas-dist bench --json` run on the row's config (write_configs), under VAEAS_BLAS and
    environment blas = (value, {NAME: VALUE}) if given; its JSON record."""
    args = [os.path.join(ROOT, "scripts", "mpirun.sh"), "-n", str(ranks), "bench", "--config", config_path,
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
    from ..torch_ref import model as torch_model

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
    print("compare_torch: the timed PyTorch step's gradients equal torch_ref.model's (vae; vaeas at α = 0.5 and α = β)",
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
    """`compare_torch.py --torch-worker SPEC`: times the row's PyTorch step in this process and prints one
    JSON line (samples/s, ms per step, threads, torch version, peak resident set)."""
    import torch
    from ..torch_ref import model as torch_model

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
    """The row's PyTorch timing: the entry point rerun as a worker subprocess (its own threads and
    memory), its JSON record."""
    spec = dict(shape=shape, threads=threads, objective=objective, labels=labels, softmax=softmax, alpha=alpha,
                steps=steps, warmup=warmup, adam=adam)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, ENTRY, "--torch-worker", json.dumps(spec)],
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
