#!/usr/bin/env bash
# The quick demonstration: set up, then train the embedded default config
# (a VAE on Fashion-MNIST from /usr/share/datasets/fashion-mnist, dynamically
# binarized) on 2 MPI ranks for a few epochs.
#
#   bash scripts/run.sh [extra train arguments…]
#
# Environment: EPOCHS (default 3), OUT (default runs/fashion-mnist-quick,
# relative to the repository root), RANKS (default 2).
# Extra arguments go to `vaeas-dist train` after ours, so they win,
# e.g. bash scripts/run.sh --set model.latent=20
set -euo pipefail
cd "$(dirname "$0")/.."

epochs="${EPOCHS:-3}"
out="${OUT:-runs/fashion-mnist-quick}"
ranks="${RANKS:-2}"

bash scripts/setup.sh

printf 'run: training %s epoch(s) on %s rank(s) into %s\n' "$epochs" "$ranks" "$out"
start=$SECONDS
bash scripts/mpirun.sh -n "$ranks" train --set "train.epochs=$epochs" --out "$out" --overwrite "$@"

outdir="$(cd "$out" && pwd)"
printf '\nrun: finished in %ss; outputs in %s:\n' "$((SECONDS - start))" "$outdir"
ls -l "$outdir"
if [ -f "$outdir/metrics.jsonl" ]; then
    printf '\nrun: last line of metrics.jsonl:\n'
    tail -n 1 "$outdir/metrics.jsonl"
fi
