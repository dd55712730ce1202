"""A PyTorch reference of vaeas-dist's VAE and VAE-AS, built from our checkpoints.

    from vaeas_tools.torch_ref.model import from_checkpoint
    model = from_checkpoint("runs/x/model.safetensors")            # float64 by default
    terms = model.terms(x, eps, labels)                            # per-sample / per-row terms
    objective, classifier_ce = model.objectives(terms)             # the two losses the trainer minimises

It is written from ../shared/design/vae-as.md and the Swift code it mirrors
(Sources/VAEASCore/Model/VAE.swift and Estimators.swift, Sources/VAEASTraining/Objective.swift and
VAEASModel.swift, Sources/VAEASDistributed/PartitionedSoftmax.swift and PartitionedTreeSoftmax.swift;
docs/ARCHITECTURE.md maps each equation to its function), with nothing of the trainer's
numerics: plain nn.Linear layers and autograd. Conventions:
  - parameters are named exactly as the checkpoint's tensors (nn.Linear [out, in] layout),
    and `from_checkpoint` loads them with load_state_dict(strict=True);
  - the encoder's second head is log sigma^2 (not log sigma), and z = mu + exp(logvar / 2) * eps,
    with eps row i*L + l for data point i and reparameterisation sample l;
  - the decoder emits Bernoulli logits (no activation after decoder.out), and the inputs
    x are binary, in {0, 1} (the trainer binarizes before feeding);
  - the classifier is `cls_layers` Linear+activation layers, then either the full softmax
    `classifier.out` [V, h] or the hierarchical one `classifier.tree` (weight [V-1, h],
    bias [V-1], nodes in preorder; see TreeSoftmax).
"""
import json
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..io import read_safetensors

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def mlp(widths):
    """Linear layers between consecutive widths (no activations: the modules apply theirs)."""
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))


class Encoder(nn.Module):
    """encoder.layers.{i} (Linear + activation), then the heads encoder.mu and encoder.logvar (log sigma^2)."""

    def __init__(self, input_dim, hidden, layers, latent, act):
        super().__init__()
        self.act = act
        self.layers = mlp([input_dim] + [hidden] * layers)
        width = hidden if layers > 0 else input_dim
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)

    def forward(self, x):
        h = x
        for layer in self.layers:
            h = self.act(layer(h))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """decoder.layers.{i} (Linear + activation), then decoder.out: Bernoulli logits, no activation."""

    def __init__(self, latent, hidden, layers, output_dim, act):
        super().__init__()
        self.act = act
        self.layers = mlp([latent] + [hidden] * layers)
        self.out = nn.Linear(hidden if layers > 0 else latent, output_dim)

    def forward(self, z):
        h = z
        for layer in self.layers:
            h = self.act(layer(h))
        return self.out(h)


def tree_paths(labels):
    """For each leaf e of the V-leaf tree: its path as (preorder node id, sign), sign +1 = left.

    The node over leaves [lo, hi) splits at mid = lo + ceil((hi - lo) / 2); the root is
    node 0 over [0, V); a node's left child is id + 1, its right child id + (mid - lo)."""
    paths = []
    for e in range(labels):
        lo, hi, node, path = 0, labels, 0, []
        while hi - lo >= 2:
            mid = lo + (hi - lo + 1) // 2
            if e < mid:
                path.append((node, 1.0))
                hi, node = mid, node + 1
            else:
                path.append((node, -1.0))
                node, lo = node + (mid - lo), mid
        paths.append(path)
    return paths


class TreeSoftmax(nn.Module):
    """The hierarchical softmax: classifier.tree.weight [V-1, h], classifier.tree.bias [V-1],
    one row per internal node in preorder. At a node the path goes left with probability
    sigmoid(w . h + b), so -log s(e | z) = sum over e's path of softplus(-sign * (w . h + b))."""

    def __init__(self, width, labels):
        super().__init__()
        self.labels = labels
        self.weight = nn.Parameter(torch.zeros(labels - 1, width))
        self.bias = nn.Parameter(torch.zeros(labels - 1))
        paths = tree_paths(labels)
        depth = max(len(p) for p in paths)
        node = torch.zeros(labels, depth, dtype=torch.long)
        sign = torch.zeros(labels, depth)          # 0 pads short paths
        for e, p in enumerate(paths):
            for k, (v, s) in enumerate(p):
                node[e, k], sign[e, k] = v, s
        self.register_buffer("path_node", node, persistent=False)
        self.register_buffer("path_sign", sign, persistent=False)

    def neg_log_prob(self, h, targets):
        """-log s(e_r | z_r) for each row r."""
        node, sign = self.path_node[targets], self.path_sign[targets].to(h.dtype)   # R x depth
        t = torch.einsum("rkh,rh->rk", self.weight[node], h) + self.bias[node]
        return (F.softplus(-sign * t) * (sign != 0)).sum(1)

    def log_probs(self, h):
        """log s(e | z) for every leaf (R x V): for checking that leaves sum to one."""
        all_leaves = torch.arange(self.labels, device=h.device)
        return torch.stack([-self.neg_log_prob(h, all_leaves.new_full((h.shape[0],), e)) for e in all_leaves], 1)


class Classifier(nn.Module):
    """classifier.layers.{i} (Linear + activation after each), then classifier.out (full softmax
    over V labels) or classifier.tree (hierarchical softmax)."""

    def __init__(self, latent, hidden, layers, labels, softmax, act):
        super().__init__()
        self.act = act
        self.labels = labels
        self.softmax = softmax
        self.layers = mlp([latent] + [hidden] * layers)
        width = hidden if layers > 0 else latent
        if softmax == "full":
            self.out = nn.Linear(width, labels)
        elif softmax == "tree":
            self.tree = TreeSoftmax(width, labels)
        else:
            raise ValueError(f"unknown softmax {softmax!r}")

    def forward(self, z, targets):
        """Per row: (cross-entropy -log s(e|z), entropy of s(.|z) or None for the tree)."""
        h = z
        for layer in self.layers:
            h = self.act(layer(h))
        if self.softmax == "tree":
            return self.tree.neg_log_prob(h, targets), None
        logp = F.log_softmax(self.out(h), dim=1)
        ce = -logp.gather(1, targets[:, None])[:, 0]
        entropy = -(logp.exp() * logp).sum(1)
        return ce, entropy


def fano_entropy(ce, labels):
    """Fano's bound h(P_e) + P_e log(V - 1), with P_e = 1 - s(e|z) = 1 - exp(-CE) clamped into
    [1e-12, 1 - 1e-12] (so that h stays finite).

    The gradient is the Swift one (LabelOutputLayer.hHatSlope): dP_e/dCE = 1 - P_e of the
    clamped P_e, which is exp(-CE) inside the range and, unlike torch.clamp's, not zero
    outside it."""
    pe_value = (-torch.expm1(-ce)).clamp(1e-12, 1 - 1e-12).detach()
    pe = pe_value + (1 - pe_value) * (ce - ce.detach())     # value pe_value, slope 1 - pe_value
    h = -pe * torch.log(pe) - (1 - pe) * torch.log1p(-pe)
    return h + pe * math.log(max(labels - 1, 1))


class VAEAS(nn.Module):
    """The VAE (objective 'vae') or VAE-AS (objective 'vaeas') of one checkpoint."""

    def __init__(self, meta):
        super().__init__()
        self.meta = dict(meta)
        act = meta["activation"]
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}")
        act = ACTIVATIONS[act]
        i, d, h = int(meta["input_dim"]), int(meta["latent_dim"]), int(meta["hidden"])
        self.objective = meta["objective"]
        self.encoder = Encoder(i, h, int(meta["enc_layers"]), d, act)
        self.decoder = Decoder(d, h, int(meta["dec_layers"]), i, act)
        if self.objective == "vaeas":
            self.labels = int(meta["labels"])
            self.estimator = meta["mi_estimator"]
            # Checkpoints from before objective.md_estimator (issue #20) were trained with KL − Î.
            self.md_estimator = meta.get("md_estimator", "kl_minus_mi")
            if self.md_estimator not in ("eq14", "kl_minus_mi"):
                raise ValueError(f"unknown md_estimator {self.md_estimator!r}")
            self.alpha, self.beta = float(meta["alpha"]), float(meta["beta"])
            self.classifier = Classifier(d, h, int(meta["cls_layers"]), self.labels, meta.get("softmax", "full"), act)
            if self.classifier.softmax == "tree" and self.estimator == "entropy":
                raise ValueError("the tree softmax has no entropy estimator")
        elif self.objective == "vae":
            self.alpha = self.beta = 1.0     # the negative ELBO
            self.classifier = None
        else:
            raise ValueError(f"unknown objective {self.objective!r}")

    def encoder_decoder_parameters(self):
        """{name: parameter} of the encoder and decoder (what L_φθ is differentiated against)."""
        return {k: v for k, v in self.named_parameters() if not k.startswith("classifier.")}

    def classifier_parameters(self):
        """{name: parameter} of the classifier (what L_ω is differentiated against)."""
        return {k: v for k, v in self.named_parameters() if k.startswith("classifier.")}

    def terms(self, x, eps, labels=None):
        """Per-sample and per-row terms of one step on data points x (B x input_dim, in {0, 1}),
        noise eps (B*L x D, row i*L + l) and labels (B*L, VAE-AS only)."""
        b, rows = x.shape[0], eps.shape[0]
        L = rows // b
        assert b * L == rows, f"eps has {rows} rows for {b} data points"
        mu, logvar = self.encoder(x)
        std = torch.exp(0.5 * logvar)
        z = mu.repeat_interleave(L, 0) + std.repeat_interleave(L, 0) * eps
        logits = self.decoder(z)
        bce = F.binary_cross_entropy_with_logits(logits, x.repeat_interleave(L, 0), reduction="none").sum(1)
        out = {
            "z": z,
            "recon": bce.view(b, L).mean(1),                                  # (1/L) sum_l sum_pixels BCE
            "kl": 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1),         # KL(N(mu, sigma^2) || N(0, I))
        }
        if self.classifier is not None:
            targets = labels.long()
            # The classifier's own loss sees z held fixed ...
            out["ce"], _ = self.classifier(z.detach(), targets)
            # ... and the encoder sees Î through the classifier with ω held fixed.
            fixed = {k: v.detach() for k, v in self.classifier.named_parameters()}
            ce, entropy = torch.func.functional_call(self.classifier, fixed, (z, targets))
            out["hhat"] = self.h_hat(ce, entropy)
            out["ce_z"] = ce        # eq. 14's CE term: into z, ω held fixed
        return out

    def h_hat(self, ce, entropy):
        """Ĥ per row by the checkpoint's mi_estimator: the entropy, the CE, or Fano's bound on the CE."""
        if self.estimator == "entropy":
            return entropy
        if self.estimator == "ce":
            return ce
        if self.estimator == "fano":
            return fano_entropy(ce, self.labels)
        raise ValueError(f"unknown estimator {self.estimator!r}")

    def mi_term_active(self, rows):
        """Whether (α − β)·Î enters the encoder's objective. The trainer passes the weight
        as Float(−(α − β)) / Float(rows) and skips the Î backward when that is 0 (α = β,
        the plain ELBO): the term is then absent, not multiplied by zero."""
        return np.float32(-(self.alpha - self.beta)) / np.float32(rows) != 0

    def label_term(self, t):
        """What the classifier adds to the encoder's objective beyond mean(recon + β·KL), or None:
        - md_estimator eq14 (the paper's eq. 14, MD̂ = mean KL − (log V − mean CE)) with Ĥ ≠ CE:
          α·Î + β·(mean CE − log V), CE through the fixed classifier;
        - kl_minus_mi (MD̂ = mean KL − Î), or eq14 with the ce estimator (Ĥ = CE, the same objective):
          (α − β)·Î, absent at α = β (the plain ELBO; see mi_term_active)."""
        if self.classifier is None:
            return None
        if self.md_estimator == "eq14" and self.estimator != "ce":
            return self.alpha * self.mi(t) + self.beta * (t["ce_z"].mean() - math.log(self.labels))
        if self.mi_term_active(t["hhat"].shape[0]):
            return (self.alpha - self.beta) * self.mi(t)
        return None

    def objectives(self, t):
        """(L_φθ, L_ω): L_φθ = mean recon + α·Î + β·MD̂ = mean_i(recon_i + β·KL_i) + label_term, with
        Î = log V − mean Ĥ; L_ω the classifier's mean CE (None for a plain VAE)."""
        objective = (t["recon"] + self.beta * t["kl"]).mean()
        if self.classifier is None:
            return objective, None
        term = self.label_term(t)
        if term is not None:
            objective = objective + term
        return objective, t["ce"].mean()

    def mi(self, t):
        """Î = log V − mean Ĥ of a step's terms."""
        return math.log(self.labels) - t["hhat"].mean()


def read_checkpoint(path):
    """(metadata, {name: tensor}) of a safetensors file, read by io.read_safetensors (the one reader of the
    package); each tensor keeps the file's dtype (float32 for vaeas-dist's checkpoints and step dumps)."""
    meta, arrays = read_safetensors(path)
    # np.array copies: the reader's arrays are read-only views of the file's bytes, which torch would share.
    return meta, {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}


#: Metadata every checkpoint must have (VAE-AS ones have more: labels, mi_estimator, alpha, beta, cls_layers).
REQUIRED_KEYS = ("objective", "activation", "input_dim", "latent_dim", "hidden", "enc_layers", "dec_layers")


def from_checkpoint(path, dtype=torch.float64):
    """The model a vaeas-dist checkpoint describes (its __metadata__), with its tensors. Raises ValueError
    naming the file when the metadata lacks a key of REQUIRED_KEYS, RuntimeError (load_state_dict's) when
    the tensors are not exactly the model's parameters."""
    meta, tensors = read_checkpoint(path)
    for key in REQUIRED_KEYS:
        if key not in meta:
            raise ValueError(f"{path}: __metadata__ has no {key!r}: {json.dumps(meta)}")
    model = VAEAS(meta).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=True)
    return model
