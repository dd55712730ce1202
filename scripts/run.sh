#!/usr/bin/env bash
# The quick demonstration: set up, then train VAE-AS on Fashion-MNIST
# (configs/fashion-mnist-vaeas.yaml: the paper's architecture, the partitioned
# hierarchical softmax over V = N = 60000 labels, one per training sample) on
# 2 MPI ranks for a few epochs; then draw the run's pictures (curves.png,
# samples.png, reconstructions.png) and TensorBoard logs with scripts/report_run.py.
#
#   bash scripts/run.sh [extra train arguments…]
#
# Environment: EPOCHS (default 3), OUT (default runs/fashion-mnist-vaeas-quick,
# relative to the repository root), RANKS (default 2).
# Extra arguments go to `vaeas-dist train` after ours, so they win,
# e.g. bash scripts/run.sh --set objective.kind=vae     (the plain VAE)
set -euo pipefail
cd "$(dirname "$0")/.."

epochs="${EPOCHS:-3}"
out="${OUT:-runs/fashion-mnist-vaeas-quick}"
ranks="${RANKS:-2}"

bash scripts/setup.sh

printf 'run: training %s epoch(s) on %s rank(s) into %s\n' "$epochs" "$ranks" "$out"
start=$SECONDS
bash scripts/mpirun.sh -n "$ranks" train --config configs/fashion-mnist-vaeas.yaml --set "train.epochs=$epochs" \
    --out "$out" --overwrite "$@"

outdir="$(cd "$out" && pwd)"
printf '\nrun: training took %ss; drawing the pictures (matplotlib) and TensorBoard logs\n' "$((SECONDS - start))"
python3 scripts/report_run.py "$outdir"
printf '\nrun: outputs in %s:\n' "$outdir"
ls -l "$outdir"
printf '\nlook at: %s/curves.png %s/samples.png %s/reconstructions.png\n' "$outdir" "$outdir" "$outdir"
printf 'TensorBoard: tensorboard --logdir %s/tensorboard\n' "$outdir"
