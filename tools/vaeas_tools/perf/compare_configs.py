"""compare_torch's rows: the shapes, the table's configurations, the vaeas-dist config written for each row
(and the check that every binary resolves it alike), and the PyTorch model's metadata of each."""
import os
import subprocess
import sys


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
    """{section: {key: value}} as the two-level YAML vaeas-dist reads."""
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


def torch_meta(shape, objective, labels, softmax, alpha):
    """The checkpoint metadata (torch_ref.model.VAEAS's argument) of a row's model on the PyTorch side."""
    meta = dict(objective=objective, activation="tanh", input_dim=shape["input"], latent_dim=shape["latent"],
                hidden=shape["hidden"], enc_layers=shape["enc_layers"], dec_layers=shape["dec_layers"])
    if objective == "vaeas":
        meta.update(labels=labels, mi_estimator="entropy", alpha=alpha, beta=1.0, cls_layers=shape["cls_layers"],
                    softmax=softmax)
    return meta
