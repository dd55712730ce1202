"""The configuration of the PyTorch reference trainer: vaeas-dist's keys and defaults for everything it reads,
and the checks that refuse what it does not implement."""
import copy

import yaml

from ..io import read_yaml
from .data import DATA_FILES, die
from .model import ACTIVATIONS

# The trainer's defaults (Sources/VAEASConfig/ConfigKeys.swift) for every key read or checked here.
DEFAULTS = {
    "data": {"name": "fashion-mnist", "dir": "", "binarize": "dynamic", "limit": 0, "subset": "random",
             "subset_seed": 0, "test_split": "test"},
    "model": {"latent": 40, "hidden": 500, "enc_layers": 2, "dec_layers": 5, "cls_layers": 2,
              "activation": "tanh", "init": "glorot"},
    "objective": {"kind": "vae", "alpha": 1.0, "beta": 1.0, "labels": 0, "label_assignment": "modulo",
                  "mi_estimator": "entropy", "softmax": "full", "kl_anneal_steps": 0, "leaf_order": "pca"},
    "train": {"epochs": 5, "batch": 128, "lr": 0.001, "cls_lr": 0.0, "cls_steps": 1, "warmup_steps": 0,
              "lr_schedule": "constant", "clip_grad_norm": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
              "seed": 0, "samples": 1, "max_steps": 0, "log_every": 0, "checkpoint_every": 1,
              "checkpoint_steps": 0, "checkpoint_minutes": 0.0, "keep_checkpoints": 3},
    "eval": {"every": 1, "batch": 500, "iw_samples": 0, "au_threshold": 0.01},
}
# Keys whose non-default values this script does not implement.
MUST_BE_DEFAULT = ["train.cls_lr", "train.cls_steps", "train.warmup_steps", "train.lr_schedule",
                   "train.clip_grad_norm", "train.max_steps", "objective.kl_anneal_steps", "objective.softmax"]
# Keys without effect on the training here (checkpoints, logs, the test evaluation, the tree's leaf order).
IGNORED = {"data.dir", "data.test_split", "objective.leaf_order", "train.log_every", "train.checkpoint_every",
           "train.checkpoint_steps", "train.checkpoint_minutes", "train.keep_checkpoints",
           "eval.every", "eval.batch", "eval.iw_samples"}


def set_key(cfg, dotted, value, source):
    """Sets cfg[section][key] from `section.key` = value, converted to the default's type; exits naming the
    source on an unknown key or a value of the wrong type."""
    section, _, key = dotted.partition(".")
    if section not in DEFAULTS or key not in DEFAULTS[section]:
        die(f"{source}: unknown key '{dotted}' (known: "
            + ", ".join(f"{s}.{k}" for s in DEFAULTS for k in DEFAULTS[s]) + ")")
    default = DEFAULTS[section][key]
    try:
        if isinstance(default, bool):
            value = bool(value)
        elif isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
        else:
            value = str(value)
    except (TypeError, ValueError):
        die(f"{source}: '{dotted}' expects a {type(default).__name__}, got {value!r}")
    cfg[section][key] = value


def load_config(path, sets):
    """DEFAULTS overridden by the YAML file at path, then by `--set key=value` strings; exits on an unknown
    key, a wrong type, a value this reference does not implement or a dataset it cannot subset."""
    cfg = copy.deepcopy(DEFAULTS)
    raw = read_yaml(path) or {}
    for section, body in raw.items():
        if not isinstance(body, dict):
            die(f"{path}: '{section}' is not a mapping")
        for key, value in body.items():
            set_key(cfg, f"{section}.{key}", value, path)
    for s in sets:
        if "=" not in s:
            die(f"--set expects key=value, got {s!r}")
        k, v = s.split("=", 1)
        set_key(cfg, k.strip(), yaml.safe_load(v), "--set")
    for dotted in MUST_BE_DEFAULT:
        section, key = dotted.split(".")
        if cfg[section][key] != DEFAULTS[section][key]:
            die(f"{dotted} = {cfg[section][key]!r} is not implemented by this reference (only the default "
                f"{DEFAULTS[section][key]!r})")
    c = cfg
    if c["data"]["binarize"] != "static":
        die(f"data.binarize = {c['data']['binarize']!r}: only static binarization is implemented")
    if c["data"]["name"] not in DATA_FILES:
        die(f"data.name = {c['data']['name']!r}: not implemented (only {', '.join(DATA_FILES)})")
    if c["data"]["name"] != "binarized-mnist":
        die(f"data.name = {c['data']['name']!r}: its split has labels, and the stratified subset of "
            "Dataset.randomSample is not reimplemented here; use binarized-mnist")
    if c["objective"]["label_assignment"] != "modulo" and c["objective"]["kind"] == "vaeas":
        die("objective.label_assignment: only modulo is implemented")
    if c["model"]["activation"] not in ACTIVATIONS:
        die(f"model.activation = {c['model']['activation']!r}: one of {', '.join(ACTIVATIONS)}")
    if c["model"]["init"] not in ("glorot", "pytorch"):
        die(f"model.init = {c['model']['init']!r}: glorot or pytorch")
    if c["objective"]["kind"] not in ("vae", "vaeas"):
        die(f"objective.kind = {c['objective']['kind']!r}: vae or vaeas")
    if c["objective"]["mi_estimator"] not in ("entropy", "ce", "fano"):
        die(f"objective.mi_estimator = {c['objective']['mi_estimator']!r}: entropy, ce or fano")
    return cfg
