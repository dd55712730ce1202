"""An independent PyTorch training of a vaeas-dist configuration (issue #12, item 4).

    python3 scripts/torch_train.py --config configs/mnist-vaeas-small.yaml --data-dir ../shared/data \\
        --seed 0 --out runs/torch/s0 [--set key=value ...] [--epochs E] [--threads T] [--au-every K]

The same model, objective and data as `vaeas-dist train` with that configuration, written with
plain nn.Linear layers and autograd (the modules of vaeas_tools.torch_ref.model) and torch.optim.Adam,
sharing none of the trainer's numerics or random streams:

  - data: the IDX training split of data.name (binarized-mnist), statically binarized (pixel >= 128),
    restricted to data.limit samples chosen exactly as Dataset.randomSample does for an unlabelled
    split (a partial Fisher-Yates shuffle of 0..<n driven by SplitMix64(data.subset_seed), the first
    k kept, sorted), so both trainers see the same images; label of subset sample i = i mod V
    (objective.labels 0: V = N, each sample its own label);
  - model: encoder enc_layers x hidden -> (mu, log sigma^2), decoder dec_layers x hidden -> Bernoulli
    logits, classifier cls_layers x hidden -> full softmax over V; model.init glorot (U(+-sqrt(6/(in+out))),
    zero bias) or pytorch (nn.Linear's U(+-1/sqrt(in)) for weight and bias);
  - objective (Sources/VAEASTraining/Objective.swift): encoder and decoder minimise
    mean recon + beta * mean KL + (alpha - beta) * I_hat, I_hat = log V - mean H_hat, with the classifier's
    weights held fixed inside I_hat (the term is absent, not multiplied by 0, when alpha = beta); the
    classifier minimises its mean CE with z detached. One Adam (train.lr, beta1, beta2, eps) over all
    parameters; the two losses touch disjoint parameters, so one backward of their sum gives each its own
    gradient;
  - schedule: train.epochs passes, each a fresh permutation (torch.Generator seeded with train.seed),
    batches of train.batch (the last one short), train.samples reparameterisation draws per image.

Output, in --out:
  metrics.jsonl  one line per epoch with our field names: epoch, step, loss, recon, kl, mi (I_hat), md
                 (kl - mi), sc (mean CE), labels, au (active units of the N training images at the end of
                 the epoch: Var_x mu_d(x) >= 0.01, population variance; every --au-every epochs and the
                 last, otherwise absent), samples, seconds (this epoch's training), au_seconds, elapsed and
                 time (seconds since the start). Epoch means are per sample (recon, kl) and per row
                 (mi, sc) over the whole epoch, as ours (Objective.summary of the summed StepStats).
  final.json     the final model on the N training images: mean analytic KL, Monte Carlo MI and marginal
                 KL at S = N (Hoffman & Johnson: one z_j ~ q(z|x_j) per image,
                 log q_hat(z_j) = logsumexp_k log q(z_j|x_k) - log S), active units; the last epoch's
                 line; the subset (count, first indices, sha1 of the index list), seed, threads, versions.
  config.yaml    the resolved configuration.

Deterministic given the seed and --threads (torch.set_num_threads; CPU kernels may reduce in another
order with another thread count). Keys that change the trainer's behaviour but are not implemented here
(cls_lr, cls_steps, warm-up, schedules, clipping, KL annealing, the tree softmax, random label
assignment, dynamic binarization, max_steps) are refused unless at their defaults.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from .config import load_config
from .data import die, find_data, load_images, random_sample_indices
from .model import ACTIVATIONS, Classifier, Decoder, Encoder, fano_entropy


class Model(torch.nn.Module):
    """The model of a resolved configuration (encoder, decoder, and for VAE-AS the full-softmax classifier
    over `labels`), built from torch_ref.model's modules and initialised here, not from a checkpoint."""

    def __init__(self, c, input_dim, labels):
        super().__init__()
        m, o = c["model"], c["objective"]
        act = ACTIVATIONS[m["activation"]]
        self.encoder = Encoder(input_dim, m["hidden"], m["enc_layers"], m["latent"], act)
        self.decoder = Decoder(m["latent"], m["hidden"], m["dec_layers"], input_dim, act)
        self.vaeas = o["kind"] == "vaeas"
        self.alpha, self.beta = (float(o["alpha"]), float(o["beta"])) if self.vaeas else (1.0, 1.0)
        self.labels = labels
        self.estimator = o["mi_estimator"]
        self.classifier = Classifier(m["latent"], m["hidden"], m["cls_layers"], labels, "full", act) \
            if self.vaeas else None

    def initialize(self, scheme, gen):
        """Draws every Linear layer's weights (and pytorch's biases) from gen: glorot or pytorch (model.init)."""
        for layer in self.modules():
            if isinstance(layer, torch.nn.Linear):
                fan_out, fan_in = layer.weight.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out)) if scheme == "glorot" else 1.0 / math.sqrt(fan_in)
                with torch.no_grad():
                    layer.weight.copy_((2 * torch.rand(layer.weight.shape, generator=gen) - 1) * bound)
                    if scheme == "glorot":
                        layer.bias.zero_()
                    else:
                        layer.bias.copy_((2 * torch.rand(layer.bias.shape, generator=gen) - 1) * bound)

    def h_hat(self, ce, entropy):
        """Ĥ per row by objective.mi_estimator (entropy, ce or fano)."""
        if self.estimator == "entropy":
            return entropy
        if self.estimator == "ce":
            return ce
        return fano_entropy(ce, self.labels)

    def step_losses(self, x, targets, L, gen):
        """(L_phi_theta, classifier mean CE, sums for the epoch's report) of one batch."""
        b = x.shape[0]
        mu, logvar = self.encoder(x)
        eps = torch.randn((b * L, mu.shape[1]), generator=gen, dtype=mu.dtype)
        z = mu.repeat_interleave(L, 0) + torch.exp(0.5 * logvar).repeat_interleave(L, 0) * eps
        logits = self.decoder(z)
        xr = x.repeat_interleave(L, 0)
        recon = F.binary_cross_entropy_with_logits(logits, xr, reduction="none").sum(1).view(b, L).mean(1)
        kl = 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1)
        objective = (recon + self.beta * kl).mean()
        sums = {"count": b, "recon": recon.detach().sum().item(), "kl": kl.detach().sum().item()}
        if not self.vaeas:
            return objective, None, sums
        ce, entropy = self.classifier(z.detach(), targets)          # omega's loss: z held fixed
        # The term (alpha - beta) * I_hat through the classifier with omega held fixed, as the trainer
        # (absent when its weight, -(alpha - beta) / rows in Float, is 0: alpha = beta).
        rows = z.shape[0]
        if np.float32(-(self.alpha - self.beta)) / np.float32(rows) != 0:
            fixed = {k: v.detach() for k, v in self.classifier.named_parameters()}
            ce_z, ent_z = torch.func.functional_call(self.classifier, fixed, (z, targets))
            h = self.h_hat(ce_z, ent_z)
            objective = objective + (self.alpha - self.beta) * (math.log(self.labels) - h.mean())
        else:
            h = self.h_hat(ce, entropy)
        sums.update(rows=rows, hhat=h.detach().double().sum().item(), ce=ce.detach().double().sum().item())
        return objective, ce.mean(), sums


def summary(model, s):
    """An epoch's means (loss, recon, kl; mi, md, sc for VAE-AS) from the summed step statistics."""
    recon, kl = s["recon"] / s["count"], s["kl"] / s["count"]
    if not model.vaeas:
        return {"loss": recon + kl, "recon": recon, "kl": kl}
    mi = math.log(model.labels) - s["hhat"] / s["rows"]
    md = kl - mi
    return {"loss": recon + model.alpha * mi + model.beta * md, "recon": recon, "kl": kl,
            "mi": mi, "md": md, "sc": s["ce"] / s["rows"]}


@torch.no_grad()
def encode_all(model, x, chunk=500):
    """(mu, log sigma^2) of every row of x, in chunks."""
    mus, lvs = [], []
    for i in range(0, x.shape[0], chunk):
        mu, lv = model.encoder(x[i:i + chunk])
        mus.append(mu)
        lvs.append(lv)
    return torch.cat(mus), torch.cat(lvs)


@torch.no_grad()
def active_units(model, x, threshold):
    """(count of latent dimensions with Var_x mu_d(x) >= threshold, the variances)."""
    mu, _ = encode_all(model, x)
    mu = mu.double()
    var = (mu * mu).mean(0) - mu.mean(0) ** 2                    # population variance, as Evaluator
    return int((var >= threshold).sum().item()), var


@torch.no_grad()
def monte_carlo_mi(model, x, gen, block=100):
    """MI, marginal KL and mean analytic KL at S = N, in float64."""
    mu, lv = encode_all(model, x)
    mu, lv = mu.double(), lv.double()
    S, d = mu.shape
    z = mu + torch.exp(0.5 * lv) * torch.randn((S, d), generator=gen, dtype=torch.float64)
    inv_var = torch.exp(-lv)                                      # S x d
    log_norm = -0.5 * (d * math.log(2 * math.pi) + lv.sum(1))     # S
    log_qjj = log_norm - 0.5 * (((z - mu) ** 2) * inv_var).sum(1)
    log_qhat = torch.empty(S, dtype=torch.float64)
    for j0 in range(0, S, block):
        zj = z[j0:j0 + block]                                     # b x d
        # log q(z_j | x_k) for the block's j and every k: b x S
        quad = ((zj[:, None, :] - mu[None, :, :]) ** 2 * inv_var[None, :, :]).sum(2)
        log_qhat[j0:j0 + block] = torch.logsumexp(log_norm[None, :] - 0.5 * quad, dim=1) - math.log(S)
    log_p = -0.5 * (d * math.log(2 * math.pi) + (z * z).sum(1))
    kl = 0.5 * (mu * mu + lv.exp() - lv - 1).sum(1)
    return {"samples": S, "mi_mc": (log_qjj - log_qhat).mean().item(), "md_mc": (log_qhat - log_p).mean().item(),
            "log_ratio": (log_qjj - log_p).mean().item(), "kl": kl.mean().item()}


def main():
    """torch_train.py's command line (the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data-dir", help="folder of the datasets (default: data.dir of the config)")
    ap.add_argument("--seed", type=int, help="train.seed")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, help="train.epochs")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--au-every", type=int, default=1,
                    help="active units of the training images every K epochs and at the last (default 1; 0: last only)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing metrics.jsonl in --out")
    a = ap.parse_args()

    sets = list(a.set)
    if a.seed is not None:
        sets.append(f"train.seed={a.seed}")
    if a.epochs is not None:
        sets.append(f"train.epochs={a.epochs}")
    cfg = load_config(a.config, sets)
    d, m, o, t = cfg["data"], cfg["model"], cfg["objective"], cfg["train"]
    data_dir = a.data_dir or d["dir"]
    if not data_dir:
        die("no --data-dir and no data.dir in the configuration")

    os.makedirs(a.out, exist_ok=True)
    metrics_path = os.path.join(a.out, "metrics.jsonl")
    if os.path.exists(metrics_path) and not a.overwrite:
        die(f"{metrics_path} exists (--overwrite to replace it)")

    torch.set_num_threads(max(1, a.threads))
    torch.use_deterministic_algorithms(True)
    seed = t["seed"]

    path = find_data(data_dir, d["name"])
    full = load_images(path)
    if d["subset"] == "random":
        indices = random_sample_indices(full.shape[0], d["limit"], d["subset_seed"])
    else:
        indices = list(range(full.shape[0] if d["limit"] <= 0 else min(d["limit"], full.shape[0])))
    x_all = torch.from_numpy((full[indices] >= 128).astype(np.float32))
    n = x_all.shape[0]
    labels = (o["labels"] if o["labels"] > 0 else n) if o["kind"] == "vaeas" else 0
    targets_all = torch.arange(n) % labels if labels else None

    init_gen = torch.Generator().manual_seed(seed)
    perm_gen = torch.Generator().manual_seed(seed + 1_000_003)
    noise_gen = torch.Generator().manual_seed(seed + 2_000_006)
    mc_gen = torch.Generator().manual_seed(seed + 3_000_009)
    model = Model(cfg, x_all.shape[1], labels)
    model.initialize(m["init"], init_gen)
    opt = torch.optim.Adam(model.parameters(), lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"])

    with open(os.path.join(a.out, "config.yaml"), "w") as f:
        f.write("# torch_train.py resolved configuration\n")
        yaml.safe_dump(cfg, f, sort_keys=False)
    subset_sha1 = hashlib.sha1(",".join(map(str, indices)).encode()).hexdigest()
    print(f"torch_train.py: {n} of {full.shape[0]} images of {path} (subset {d['subset']}, seed {d['subset_seed']}, "
          f"first {indices[:5]}, sha1 {subset_sha1[:12]}); V = {labels}; {sum(p.numel() for p in model.parameters())} "
          f"parameters; seed {seed}; {torch.get_num_threads()} thread(s); torch {torch.__version__}", flush=True)

    epochs, batch, L = t["epochs"], t["batch"], t["samples"]
    threshold = cfg["eval"]["au_threshold"]
    run_start = time.time()
    step = 0
    record = {}
    with open(metrics_path, "w") as out:
        for epoch in range(1, epochs + 1):
            e0 = time.time()
            perm = torch.randperm(n, generator=perm_gen)
            tot = {"count": 0, "recon": 0.0, "kl": 0.0, "rows": 0, "hhat": 0.0, "ce": 0.0}
            model.train()
            for s0 in range(0, n, batch):
                idx = perm[s0:s0 + batch]
                tg = targets_all[idx].repeat_interleave(L, 0) if labels else None
                objective, ce_mean, sums = model.step_losses(x_all[idx], tg, L, noise_gen)
                opt.zero_grad(set_to_none=True)
                (objective if ce_mean is None else objective + ce_mean).backward()
                opt.step()
                step += 1
                for k, v in sums.items():
                    tot[k] += v
            seconds = time.time() - e0
            record = {"epoch": epoch, "step": step, **summary(model, tot)}
            if labels:
                record["labels"] = labels
            au_seconds = 0.0
            if epoch == epochs or (a.au_every > 0 and epoch % a.au_every == 0):
                a0 = time.time()
                record["au"], _ = active_units(model, x_all, threshold)
                au_seconds = time.time() - a0
            elapsed = time.time() - run_start
            record.update(samples=tot["count"], seconds=seconds, au_seconds=au_seconds, elapsed=elapsed, time=elapsed)
            if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
                print(json.dumps(record), file=sys.stderr)
                die(f"non-finite loss terms at epoch {epoch}")
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(json.dumps(record), flush=True)

    m0 = time.time()
    mc = monte_carlo_mi(model, x_all, mc_gen)
    au, var = active_units(model, x_all, threshold)
    final = {"epochs": epochs, "seed": seed, "samples": n, "labels": labels,
             "mean_kl": mc["kl"], "mi_mc": mc["mi_mc"], "md_mc": mc["md_mc"], "log_ratio": mc["log_ratio"],
             "mc_samples": mc["samples"], "au": au, "au_threshold": threshold,
             "mu_variance": [round(v, 6) for v in var.tolist()],
             "last_epoch": record, "mc_seconds": time.time() - m0, "elapsed": time.time() - run_start,
             "subset": {"kind": d["subset"], "seed": d["subset_seed"], "count": n, "first": indices[:10],
                        "sha1": subset_sha1, "file": path},
             "threads": torch.get_num_threads(), "torch": torch.__version__, "config": a.config, "set": sets}
    with open(os.path.join(a.out, "final.json"), "w") as f:
        json.dump(final, f, indent=1)
        f.write("\n")
    print(json.dumps({k: final[k] for k in ("mean_kl", "mi_mc", "md_mc", "au", "mc_samples", "mc_seconds")}), flush=True)


if __name__ == "__main__":
    main()
