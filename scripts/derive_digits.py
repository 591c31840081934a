"""Derive genai_hw/data/digits_8x8.npz from the copy of the UCI handwritten digits that scikit-learn bundles.

    pip download --no-deps scikit-learn==1.9.1 -d /tmp/sk
    python scripts/derive_digits.py /tmp/sk/scikit_learn-1.9.1-*.whl

Reads ``sklearn/datasets/data/digits.csv.gz`` from the wheel (1797 rows: 64 pixel counts 0..16, then the
label), checks its sha256 and writes ``images`` (uint8, 1797 x 8 x 8) and ``labels`` (uint8) into
``solutions/genai_hw/data/digits_8x8.npz``; run ``genai-hw stubs`` afterwards to copy it into ``genai_hw/``.
scikit-learn is needed only here, never by the homework or the grader.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "sklearn/datasets/data/digits.csv.gz"
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
OUT = Path(__file__).resolve().parents[1] / "solutions" / "genai_hw" / "data" / "digits_8x8.npz"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{MEMBER}: sha256 {digest}, expected {SHA256}")
    rows = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.int64)
    if rows.shape != (1797, 65) or rows[:, :64].min() < 0 or rows[:, :64].max() > 16:
        raise SystemExit(f"unexpected digits table of shape {rows.shape}")
    images = rows[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    labels = rows[:, 64].astype(np.uint8)
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {images.shape[0]} images, labels {np.bincount(labels)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
