"""Derive genai_hw/data/moby_dick_27.txt: Moby-Dick over homework 1's 27 symbols (A-Z and space).

    python scripts/derive_moby_dick_27.py

Reads ``solutions/genai_hw/data/moby_dick.txt`` (Project Gutenberg #2701, checked by its sha256), strips
the Gutenberg header and licence (``data.load_moby_dick``) and applies homework 1's ``ngrams.normalize``
(uppercase; every run of other characters becomes one space), and writes the result as one line of ASCII.
Homework 5 reads it with ``genai_hw.data.load_moby_dick_27()``, so that its character model sees exactly
the text of homework 1 without shipping homework 1's solution. Run ``genai-hw stubs`` afterwards to copy
it into ``genai_hw/``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "solutions" / "genai_hw" / "data"
SHA256 = "b11689bbe96164b7d27be0fe696a70c2e67f329ed93da14573c2daa1f98d7ef9"


def main() -> None:
    sys.path.insert(0, str(ROOT / "solutions"))
    from genai_hw.data import load_moby_dick
    from genai_hw.ngrams import normalize

    digest = hashlib.sha256((DATA / "moby_dick.txt").read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"moby_dick.txt: sha256 {digest}, expected {SHA256}")
    text = normalize(load_moby_dick())
    out = DATA / "moby_dick_27.txt"
    out.write_text(text, encoding="ascii")
    print(f"wrote {out}: {len(text):,} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()}")


if __name__ == "__main__":
    main()
