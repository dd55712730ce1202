"""The data of the PyTorch reference trainer: the training images of a dataset and the subset
Dataset.randomSample picks (SplitMix64 and a partial Fisher–Yates shuffle, as Sources/VAEASData/Dataset.swift)."""
import os
import sys

from ..io import FormatError, read_idx_images

#: Datasets the reference trains on -> their training-image file below data_dir/name.
DATA_FILES = {"binarized-mnist": "train-images-idx3-ubyte", "mnist": "train-images-idx3-ubyte",
              "omniglot-small": "train-images-idx3-ubyte"}

MASK64 = (1 << 64) - 1


def die(msg):
    """Exits as the torch_train.py command line does on a usage or data error."""
    sys.exit(f"torch_train.py: error: {msg}")


def find_data(data_dir, name):
    """The training-image file of dataset `name` under data_dir (the .gz first, as before); exits if neither."""
    base = os.path.join(data_dir, name, DATA_FILES[name])
    for p in (base + ".gz", base):
        if os.path.isfile(p):
            return p
    die(f"no {base}.gz or {base} (--data-dir / data.dir)")


def load_images(path):
    """The IDX images at path as (n, rows·cols) uint8; a malformed file exits with io's message."""
    try:
        return read_idx_images(path)
    except FormatError as e:
        die(str(e))


class SplitMix64:
    """Sources/VAEASData/Dataset.swift's SplitMix64, in wrapping 64-bit arithmetic."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        """The next 64-bit output (and the state advanced by the golden-ratio increment)."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def random_sample_indices(n, k, seed):
    """Dataset.randomSample(k, seed:) of an unlabelled split of n samples: the indices, sorted.
    k <= 0 or k >= n: all of them."""
    if k <= 0 or k >= n:
        return list(range(n))
    rng = SplitMix64(seed)
    a = list(range(n))
    for i in range(min(k, n)):                      # partialShuffle(take: k)
        j = i + rng.next() % (n - i)
        a[i], a[j] = a[j], a[i]
    return sorted(a[:k])
