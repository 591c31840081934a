"""Derive genai_hw/data/grace_hopper_64.npz from the photograph that matplotlib ships.

    python scripts/derive_picture.py [path/to/grace_hopper.jpg]

Reads ``mpl-data/sample_data/grace_hopper.jpg`` of the installed matplotlib (or the given file; 512 x 600
RGB; the official US Navy portrait of Rear Admiral Grace M. Hopper, 1984, public domain as a work of the
US government), checks its sha256, crops the face to a square, turns it grey and shrinks it to 64 x 64,
and writes ``image`` (uint8, 64 x 64) into ``solutions/genai_hw/data/grace_hopper_64.npz``; run
``genai-hw stubs`` afterwards to copy it into ``genai_hw/``. Pillow (a dependency of matplotlib) is needed
only here.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

SHA256 = "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"
OUT = Path(__file__).resolve().parents[1] / "solutions" / "genai_hw" / "data" / "grace_hopper_64.npz"
CROP = (56, 40, 456, 440)  # left, top, right, bottom: the face and shoulders, a 400 x 400 square


def main(path: str | None = None) -> None:
    from PIL import Image

    if path is None:
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {SHA256}")
    with Image.open(path) as image:
        grey = image.convert("L").crop(CROP).resize((64, 64), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.uint8)
    np.savez_compressed(OUT, image=pixels)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {pixels.shape}, mean {pixels.mean():.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
