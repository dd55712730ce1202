"""One training step of vaeas-dist against PyTorch autograd (llm.c's test_gpt2, for VAE-AS).

    .build/release/vaeas-mpi-check step-dump --data-dir ../shared/data --out /tmp/step \\
        --set data.name=binarized-mnist --set data.limit=200 --set objective.kind=vaeas ...
    python3 scripts/torch_crosscheck.py /tmp/step/model.safetensors /tmp/step/step.safetensors

The model is rebuilt from the checkpoint by vaeas_tools.torch_ref.model in float64; it is fed
the dump's inputs (input.x, input.eps, input.labels) and its two objectives are
differentiated with two autograd.grad calls: L_φθ (recon + β·KL + (α − β)·Î, ω fixed)
wrt the encoder and decoder, L_ω (mean CE, z fixed) wrt the classifier. Every loss term
and every grad.* tensor of the dump is compared with them; the names must be exactly the
model's parameter names, with the same shapes.

Prints one JSON line: per loss term and per gradient tensor the max relative error
max|ours − torch| / max(max|torch|, 1e-12), and `ok`. Exit status: 0 when every error is
within TOLERANCE and names and shapes agree, 1 when not, 2 on a usage or set-up error
(PyTorch missing: run scripts/setup.sh).

--perturb NAME adds 1e-2·max|g| to the first element of the dumped tensor NAME before
comparing: the comparison must then fail (a test that the check can fail).
"""
import argparse
import json
import sys

# Tolerance. Our side computes in float32 (OpenBLAS sgemm, Float kernels, tanh by a
# rational approximation with < 1e-6 absolute error), the reference in float64, so the
# difference is float32 rounding: a gradient element is a sum over the batch's B·L rows
# of products that went through up to ~8 layers, each a float32 dot product of up to 784
# terms, i.e. a few ulps (6e-8) times sqrt(terms) of the tensor's largest element. Measured
# on the test's cases: 3e-7 to 8e-7 at initialisation, up to ~4e-6 after 30 training steps
# (relu, tree). 1e-4 leaves 25× headroom over the worst of them, and stays 100× below the
# 1e-2 of --perturb and far below what a real mistake gives: a wrong sign, scale, layout
# ([in, out] for [out, in]) or row order is an O(1) error, and a dropped or wrong Î
# gradient moves the encoder gradients by Î's share of them (`mi_share`, which the test
# requires to exceed 10 × TOLERANCE; 1e-2 and more in its cases).
TOLERANCE = 1e-4


def main():
    """torch_crosscheck.py's command line: the exit status (0 match, 1 mismatch, 2 usage or set-up error)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="model.safetensors written by step-dump (the parameters before the step)")
    p.add_argument("step", help="step.safetensors written by step-dump (inputs, losses, gradients)")
    p.add_argument("--perturb", metavar="NAME", help="add 1e-2·max|g| to one element of gradient NAME first")
    a = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"torch_crosscheck: PyTorch is not installed for {sys.executable} ({e}): "
              "run scripts/setup.sh (it installs torch==2.13.0+cpu)", file=sys.stderr)
        return 2
    # Imported only now: the model module needs torch, whose absence is reported above (exit 2).
    from .model import from_checkpoint, read_checkpoint

    torch.set_num_threads(1)
    f64 = torch.float64
    model = from_checkpoint(a.model, dtype=f64)
    meta, dump = read_checkpoint(a.step)
    problems = []

    x = dump["input.x"].to(f64)
    eps = dump["input.eps"].to(f64)
    if not bool(((x == 0) | (x == 1)).all()):
        problems.append("input.x is not binary")
    labels = None
    if model.classifier is not None:
        labels = dump["input.labels"]
        if not bool((labels == labels.round()).all() & (labels >= 0).all() & (labels < model.labels).all()):
            problems.append(f"input.labels are not integers in [0, {model.labels})")
        labels = labels.long()

    t = model.terms(x, eps, labels)
    objective, classifier_ce = model.objectives(t)
    enc_dec = model.encoder_decoder_parameters()
    cls = model.classifier_parameters()
    # The two objectives, each differentiated wrt its own parameters.
    torch_grads = dict(zip(enc_dec, torch.autograd.grad(objective, list(enc_dec.values()), retain_graph=True)))
    if classifier_ce is not None:
        torch_grads.update(zip(cls, torch.autograd.grad(classifier_ce, list(cls.values()), retain_graph=True)))
    # Diagnostic: the share of the classifier's terms (α·Î + β·MD̂ beyond β·KL: model.label_term) in the
    # encoder's gradients (max|∂term| / max|∂L_φθ|), i.e. how large their gradient is against the tolerance
    # that would hide an error in it.
    mi_share = {}
    term = model.label_term(t) if model.classifier is not None else None
    if term is not None:
        enc = [k for k in enc_dec if k.startswith("encoder.")]
        g_mi = torch.autograd.grad(term, [enc_dec[k] for k in enc], retain_graph=True)
        for k, g in zip(enc, g_mi):
            mi_share["grad." + k] = float(g.abs().max() / torch_grads[k].abs().max().clamp_min(1e-12))

    def rel(ours, ref):
        return float((ours - ref).abs().max() / max(float(ref.abs().max()), 1e-12))

    # Loss terms: the dump's batch means against the reference's.
    with torch.no_grad():
        ref_losses = {"recon": t["recon"].mean(), "kl": t["kl"].mean(), "objective": objective}
        if model.classifier is not None:
            ref_losses["ce"] = classifier_ce
            ref_losses["hhat"] = t["hhat"].mean()
    ours_losses = {k[len("loss."):]: v.to(f64) for k, v in dump.items() if k.startswith("loss.")}
    if set(ours_losses) != set(ref_losses):
        problems.append(f"loss terms: dump has {sorted(ours_losses)}, expected {sorted(ref_losses)}")
    losses = {k: rel(ours_losses[k].reshape(()), ref_losses[k].detach())
              for k in sorted(ref_losses) if k in ours_losses}

    # Gradients: the same names (the checkpoint's), shapes and values.
    ours_grads = {k: v.to(f64) for k, v in dump.items() if k.startswith("grad.")}
    expected = {"grad." + k for k, _ in model.named_parameters()}
    missing, extra = sorted(expected - set(ours_grads)), sorted(set(ours_grads) - expected)
    if missing:
        problems.append(f"gradients missing from the dump: {missing}")
    if extra:
        problems.append(f"gradients in the dump that the model does not have: {extra}")
    if a.perturb:
        name = a.perturb if a.perturb.startswith("grad.") else "grad." + a.perturb
        if name not in ours_grads:
            print(f"torch_crosscheck: --perturb {a.perturb}: no such gradient in {a.step}", file=sys.stderr)
            return 2
        g = ours_grads[name].clone()
        g.view(-1)[0] += 1e-2 * g.abs().max()
        ours_grads[name] = g
    grads = {}
    for name in sorted(expected & set(ours_grads)):
        ref = torch_grads[name[len("grad."):]]
        if tuple(ours_grads[name].shape) != tuple(ref.shape):
            problems.append(f"{name}: shape {list(ours_grads[name].shape)}, torch {list(ref.shape)}")
            continue
        grads[name] = rel(ours_grads[name], ref)

    # The reference's own tree: every row's leaf probabilities sum to one.
    leaf_sum_error = None
    if model.classifier is not None and model.classifier.softmax == "tree":
        with torch.no_grad():
            h = t["z"].detach()
            for layer in model.classifier.layers:
                h = model.classifier.act(layer(h))
            leaf_sum_error = float((model.classifier.tree.log_probs(h).exp().sum(1) - 1).abs().max())
        if leaf_sum_error > 1e-9:
            problems.append(f"torch tree: leaf probabilities sum to 1 ± {leaf_sum_error}")

    errors = {**{"loss." + k: v for k, v in losses.items()}, **grads}
    worst = max(errors, key=errors.get) if errors else None
    for k, v in errors.items():
        if not (v <= TOLERANCE):
            problems.append(f"{k}: max relative error {v:.3g} > {TOLERANCE:g}")
    ok = not problems
    out = {
        "ok": ok, "tolerance": TOLERANCE,
        "objective": model.objective, "softmax": getattr(model.classifier, "softmax", None),
        "estimator": getattr(model, "estimator", None), "md_estimator": getattr(model, "md_estimator", None),
        "labels": getattr(model, "labels", None),
        "alpha": model.alpha, "beta": model.beta, "batch": x.shape[0], "samples": eps.shape[0] // x.shape[0],
        "max_rel_error": errors[worst] if worst else None, "worst": worst,
        "losses": losses, "grads": grads, "mi_share": mi_share,
        "tree_leaf_sum_error": leaf_sum_error, "perturbed": a.perturb, "problems": problems,
    }
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
