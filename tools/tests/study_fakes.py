"""Fixtures of the study tests: a study file in a temporary directory, run directories in each state, done.json
files of both historical formats, and a fake vaeas-dist + srun that write a run's records without training."""
import json
import os
import sys
import textwrap

from vaeas_tools import paths  # noqa: E402
from vaeas_tools.study import spec as S  # noqa: E402

STUDY = """\
config: configs/mnist-vaeas-small.yaml
out: {out}
set: {{train.cls_lr: 0}}
iw_samples: 1000
groups_iw_samples: {{lr: 100}}
test_examples: 1000
groups:
  lr:
    - {{id: lr3e-4-s0, set: {{train.seed: 0}}}}
    - {{id: lr3e-4-s1, set: {{train.seed: 1}}}}
  table2:
    - {{id: vae, set: {{objective.kind: vae}}}}
    - {{id: a0.2-b1, set: {{objective.alpha: 0.2}}, estimate_samples: "100,2000"}}
"""


def study_file(tmp_path, text=STUDY):
    """A study file in tmp_path whose runs go to tmp_path/runs (configs are the repository's)."""
    p = tmp_path / "study.yaml"
    p.write_text(text.format(out=tmp_path / "runs"))
    return S.load(str(p), paths.ROOT)


def make_train_dir(t, epochs=3, last_epoch=3, model=True, checkpoints=0, limit=2000, partial_line=False):
    """A train output directory: config.yaml (train.epochs, data.limit), metrics.jsonl up to last_epoch, and
    optionally model.safetensors and checkpoint files."""
    os.makedirs(os.path.join(t, "checkpoints"), exist_ok=True)
    with open(os.path.join(t, "config.yaml"), "w") as f:
        f.write(f"train: {{epochs: {epochs}}}\ndata: {{limit: {limit}}}\n")
    with open(os.path.join(t, "metrics.jsonl"), "w") as f:
        for e in range(1, last_epoch + 1):
            f.write(json.dumps({"epoch": e, "samples": limit, "mi": 6.5, "md": 6.0, "sc": 0.4, "kl": 12.5,
                                "labels": limit, "elapsed": 10.0 * e}) + "\n")
        if partial_line:
            f.write('{"epoch": 99, "sampl')
    if model:
        open(os.path.join(t, "model.safetensors"), "wb").close()
    for i in range(checkpoints):
        open(os.path.join(t, "checkpoints", f"step-{i}.safetensors"), "wb").close()


def converged_done(group, rid, mi=6.25, nll=127.71, k=100, seconds=234.0, sets=None):
    """A done.json as scripts/converged.py wrote it (see runs/converged/eq14/*/done.json)."""
    return {"group": group, "id": rid, "set": sets or {"train.seed": 0}, "config": "configs/mnist-vaeas-small.yaml",
            "ranks": 2, "train_seconds": seconds, "measure_seconds": 20.0,
            "last_epoch": {"epoch": 300, "samples": 2000, "labels": 2000, "mi": 6.0},
            "eval_test": {"nll": nll, "iw_samples": k, "kl": 12.9, "active_units": 14, "recon": 110.0},
            "eval_train": {"recon": 89.68, "kl": 12.88, "mi": mi, "md": 6.63, "sc": 0.52, "iw_samples": 1},
            "estimate": [{"classifier_mi": 6.2}, {"samples": 100, "mi": 4.5, "md": 8.0, "mean_kl": 12.9},
                         {"samples": 2000, "mi": 7.52, "md": 5.4, "mean_kl": 12.9}]}


def experiments_done(spec, row, limit=0, epochs=8, k=100):
    """A done.json as scripts/experiments.py wrote it for a table row (eval results under test/train)."""
    return {"experiment": spec, "row": row, "label": row, "epochs": epochs, "iw_samples": k, "ranks": 2,
            "limit_data": limit, "launcher": "mpirun", "data_dir": "../shared/data", "train_seconds": 100.0,
            "eval_test_seconds": 20.0, "eval_train_seconds": 3.0, "wall_seconds": 123.0, "finished": "x",
            "commands": [], "test": {"nll": 101.5, "kl": 20.25, "active_units": 9, "iw_samples": k},
            "train": {"recon": 75.0, "kl": 20.5, "iw_samples": 1}}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


FAKE_BIN = textwrap.dedent('''\
    #!{python}
    """A stand-in for vaeas-dist: train writes a run's records (config.yaml, metrics.jsonl, checkpoints/,
    model.safetensors), eval/estimate print prose and --json lines, reconstruct writes its --out and prints its
    BCE line. $FAKE_FAIL names a run id whose fresh train
    dies after its first epoch (a checkpoint left); every call is appended to $FAKE_CALLS."""
    import json, os, sys
    import yaml
    a = sys.argv[1:]
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write(" ".join(a) + "\\n")
    def opt(name, default=None):
        return a[a.index(name) + 1] if name in a else default
    sets = dict(a[i + 1].split("=", 1) for i, w in enumerate(a) if w == "--set")
    if a[0] == "train":
        out = opt("--resume") or opt("--out")
        if "--resume" in a:
            cfg = yaml.safe_load(open(os.path.join(out, "config.yaml")))
            start = len(open(os.path.join(out, "metrics.jsonl")).read().splitlines()) + 1
        else:
            cfg = yaml.safe_load(open(opt("--config")))
            for k, v in sets.items():
                node = cfg
                *head, last = k.split(".")
                for h in head:
                    node = node.setdefault(h, {{}})
                node[last] = yaml.safe_load(v)
            os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
            yaml.safe_dump(cfg, open(os.path.join(out, "config.yaml"), "w"))
            open(os.path.join(out, "metrics.jsonl"), "w").close()
            start = 1
        epochs = int(sets.get("train.epochs", cfg["train"]["epochs"]))
        for e in range(start, epochs + 1):
            with open(os.path.join(out, "metrics.jsonl"), "a") as f:
                f.write(json.dumps({{"epoch": e, "samples": 300, "mi": 5.0, "md": 4.0, "sc": 0.5, "kl": 9.0,
                                    "labels": 300, "elapsed": float(e)}}) + "\\n")
            open(os.path.join(out, "checkpoints", f"epoch-{{e}}"), "w").close()
            if os.environ.get("FAKE_FAIL") and out.endswith("/" + os.environ["FAKE_FAIL"] + "/train") \\
                    and "--resume" not in a:
                print("rank 0: killed", file=sys.stderr)
                sys.exit(3)
        open(os.path.join(out, "model.safetensors"), "w").close()
        print("epoch done: the loss looks fine")
    elif a[0] == "eval":
        print("eval: NLL 1.0 (prose, not to be read)")
        print(json.dumps({{"split": opt("--split"), "nll": 88.5, "kl": 9.5, "recon": 80.0, "active_units": 5,
                          "iw_samples": int(opt("--iw-samples"))}}))
    elif a[0] == "estimate":
        print(json.dumps({{"classifier_mi": 5.0}}))
        for s in (opt("--samples") or "300").split(","):
            print(json.dumps({{"samples": int(s), "mi": 4.0, "md": 3.0, "mean_kl": 9.0, "mi_plus_md": 7.0,
                              "seconds": 0.1}}))
    elif a[0] == "reconstruct":
        open(opt("--out"), "wb").write(b"\\x89PNG fake")
        bce = 80.5 if opt("--split") == "train" else 120.25
        print(f"reconstruct: {{opt('--count')}} binarized-mnist {{opt('--split')}} images, z = μ, mean BCE {{bce:.2f}} "
              f"nats (KL 15.00), wrote {{opt('--out')}} (232×232)")
    else:
        sys.exit(2)
''')

FAKE_SRUN = """#!/bin/sh
# A stand-in for srun: drops srun's own options (and -n's value), runs the rest.
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-N) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"""


def install_fakes(tmp_path, monkeypatch):
    """Puts the fake vaeas-dist ($VAEAS_BIN) and srun (on $PATH) in tmp_path/bin; returns the calls log path."""
    b = tmp_path / "bin"
    b.mkdir()
    (b / "vaeas-dist").write_text(FAKE_BIN.format(python=sys.executable))
    (b / "srun").write_text(FAKE_SRUN)
    for f in ("vaeas-dist", "srun"):
        os.chmod(b / f, 0o755)
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("VAEAS_BIN", str(b / "vaeas-dist"))
    monkeypatch.setenv("PATH", f"{b}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    return calls
