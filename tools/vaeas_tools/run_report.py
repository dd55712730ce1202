"""Pictures and TensorBoard logs of one vaeas-dist run directory.

    python3 scripts/report_run.py RUN_DIR [--data-dir DIR] [--no-tensorboard]

Writes into RUN_DIR:
  curves.png           loss, recon, KL (and MI, MD, SC for VAE-AS) per epoch, test ELBO on evaluation epochs
  samples.png          decoder means sigma(logits) for 64 draws z ~ N(0, I)
  reconstructions.png  test images, two per class (spread over the classes, not the first N of a
                       class-ordered file), each above its reconstruction from z = mu, labelled; the
                       model's input is the binarized image (one Bernoulli draw for dynamic binarization)
  tensorboard/         TensorBoard event files of metrics.jsonl (per epoch) and steps.jsonl (per step),
                       written with tensorboardX: `tensorboard --logdir RUN_DIR/tensorboard`

The model comes from RUN_DIR/model.safetensors through vaeas_tools.torch_ref.model (PyTorch); the data
directory from --data-dir, else RUN_DIR/config.yaml's data.dir, else $VAEAS_DATA_DIR, else the
dataset's standard location. Plots are drawn with matplotlib (Agg backend: no display needed).
"""
import argparse
import os

import numpy as np

from .io import read_idx, read_jsonl
from .plots import pyplot, save

CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "mnist": [str(i) for i in range(10)],
}
# Where each dataset's test images (and labels, when it has them) are found below its directory.
TEST_FILES = {
    "fashion-mnist": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "mnist": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "binarized-mnist": ("test-images-idx3-ubyte", None),
    "omniglot-small": ("test-images-idx3-ubyte", None),
}


def config_value(run, key):
    """A 'section.key' of RUN_DIR/config.yaml (written by vaeas-dist, one key per line)."""
    section, name = key.split(".")
    current = None
    try:
        with open(os.path.join(run, "config.yaml")) as f:
            for line in f:
                if line and not line.startswith(" ") and line.rstrip().endswith(":"):
                    current = line.strip()[:-1]
                elif current == section and line.strip().startswith(name + ":"):
                    return line.split(":", 1)[1].strip().strip('"')
    except FileNotFoundError:
        pass
    return None


def dataset_dir(run, name, given):
    """The directory holding dataset name's test images: --data-dir, config.yaml's data.dir, $VAEAS_DATA_DIR
    or the standard location, each tried as DIR/name and DIR; exits naming them if none has them."""
    candidates = [given, config_value(run, "data.dir"), os.environ.get("VAEAS_DATA_DIR"),
                  "/usr/share/datasets/fashion-mnist" if name == "fashion-mnist" else None]
    for c in candidates:
        if not c:
            continue
        for d in (os.path.join(c, name), c):
            image_file = TEST_FILES.get(name, ("test-images-idx3-ubyte", None))[0]
            if os.path.isfile(os.path.join(d, image_file)) or os.path.isfile(os.path.join(d, image_file + ".gz")):
                return d
    raise SystemExit(f"report_run: no test images of {name} in any of {[c for c in candidates if c]}; pass --data-dir")


def curves(run, metrics, out):
    """curves.png: loss and recon, KL (MI and MD, SC for VAE-AS) per epoch, −test ELBO where evaluated."""
    plt = pyplot(required=True, who="report_run")
    epochs = [m["epoch"] for m in metrics]
    panels = [("loss and recon (nats)", ["loss", "recon"]), ("KL (nats)", ["kl"])]
    if "mi" in metrics[-1]:
        panels += [("MI and MD (nats)", ["mi", "md"]), ("classifier CE, SC (nats)", ["sc"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, keys) in zip(np.atleast_1d(axes), panels):
        for k in keys:
            ax.plot(epochs, [m[k] for m in metrics], marker="o", ms=3, label=k)
        if keys[0] == "loss":
            ev = [(m["epoch"], -m["test_elbo"]) for m in metrics if "test_elbo" in m]
            if ev:
                ax.plot(*zip(*ev), marker="s", ms=3, ls="--", label="−test ELBO")
        if "mi" in keys and "labels" in metrics[-1]:
            ax.axhline(np.log(metrics[-1]["labels"]), color="grey", lw=0.8, ls=":", label="log V")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(os.path.basename(os.path.abspath(run)))
    fig.tight_layout()
    save(fig, out, dpi=110)


def pictures(run, name, data_dir, out_samples, out_recon):
    """samples.png (decoder means of 64 prior draws) and reconstructions.png (labelled test images above
    their reconstructions from z = mu) of the run's model.safetensors."""
    plt = pyplot(required=True, who="report_run")
    # torch only here: curves and TensorBoard logs need no PyTorch.
    import torch
    from .torch_ref.model import from_checkpoint
    model = from_checkpoint(os.path.join(run, "model.safetensors"), dtype=torch.float32)
    model.eval()
    side = int(round(np.sqrt(int(model.meta["input_dim"]))))
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        z = torch.randn(64, int(model.meta["latent_dim"]), generator=g)
        means = torch.sigmoid(model.decoder(z)).numpy().reshape(-1, side, side)
    fig, axes = plt.subplots(8, 8, figsize=(8, 8))
    for ax, img in zip(axes.flat, means):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    fig.suptitle("decoder means σ(logits) for z ~ N(0, I)")
    fig.tight_layout()
    save(fig, out_samples, dpi=100)

    image_file, label_file = TEST_FILES.get(name, ("test-images-idx3-ubyte", None))
    images = read_idx(os.path.join(data_dir, image_file)).reshape(-1, side * side)
    if label_file:
        labels = read_idx(os.path.join(data_dir, label_file))
        chosen = [i for c in range(10) for i in np.flatnonzero(labels == c)[:2]]   # two per class
        titles = [CLASS_NAMES.get(name, [str(i) for i in range(10)])[labels[i]] for i in chosen]
    else:
        # No labels: a stride over the whole (partly class-ordered) file, not its first images.
        chosen = list(range(0, len(images), len(images) // 20))[:20]
        titles = [f"#{i}" for i in chosen]
    grey = images[chosen].astype(np.float32) / 255
    if config_value(run, "data.binarize") == "dynamic":
        x = (np.random.default_rng(0).random(grey.shape) < grey).astype(np.float32)   # one Bernoulli draw, as in training
    else:
        x = (images[chosen] >= 128).astype(np.float32)                               # the static threshold
    with torch.no_grad():
        mu, _ = model.encoder(torch.from_numpy(x))
        recon = torch.sigmoid(model.decoder(mu)).numpy()
    cols = 10
    rows = 2 * ((len(chosen) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows))
    for k in range(len(chosen)):
        r, c = 2 * (k // cols), k % cols
        axes[r, c].imshow(grey[k].reshape(side, side), cmap="gray", vmin=0, vmax=1)
        axes[r, c].set_title(titles[k], fontsize=7)
        axes[r + 1, c].imshow(recon[k].reshape(side, side), cmap="gray", vmin=0, vmax=1)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{name} test images, two per class (rows 1, 3), and their reconstructions σ(logits) from z = μ (rows 2, 4)")
    fig.tight_layout()
    save(fig, out_recon, dpi=100)


def tensorboard(run, metrics, steps):
    """RUN_DIR/tensorboard/: every numeric field of metrics.jsonl (epoch/…) and steps.jsonl (step/…) by step."""
    from tensorboardX import SummaryWriter
    logdir = os.path.join(run, "tensorboard")
    w = SummaryWriter(logdir)
    for m in metrics:
        for k, v in m.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step"):
                w.add_scalar(f"epoch/{k}", v, m["step"])
    for s in steps:
        for k, v in s.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step"):
                w.add_scalar(f"step/{k}", v, s["step"])
    w.close()
    return logdir


def main():
    """report_run.py's command line (the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--data-dir")
    ap.add_argument("--no-tensorboard", action="store_true")
    a = ap.parse_args()
    metrics = read_jsonl(os.path.join(a.run, "metrics.jsonl"), missing_ok=True)
    steps = read_jsonl(os.path.join(a.run, "steps.jsonl"), missing_ok=True)
    if not metrics:
        raise SystemExit(f"report_run: {a.run}/metrics.jsonl has no epoch yet")
    name = config_value(a.run, "data.name") or "binarized-mnist"
    curves(a.run, metrics, os.path.join(a.run, "curves.png"))
    pictures(a.run, name, dataset_dir(a.run, name, a.data_dir), os.path.join(a.run, "samples.png"),
             os.path.join(a.run, "reconstructions.png"))
    written = ["curves.png", "samples.png", "reconstructions.png"]
    if not a.no_tensorboard:
        tensorboard(a.run, metrics, steps)
        written.append("tensorboard/  (tensorboard --logdir " + os.path.join(a.run, "tensorboard") + ")")
    print("report_run: wrote " + ", ".join(os.path.join(a.run, w) for w in written))


if __name__ == "__main__":
    main()
