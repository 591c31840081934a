"""Derive the package's word vectors from the shared word2vec GoogleNews subset.

Reads ``GoogleNews-vectors-negative300-bolukbasi.bin.gz`` (26,423 words, 300
dimensions, unit-normalised; provenance in ``solutions/genai_hw/data/README.md``)
with gensim, stores the vectors as float16 (half the size; cosines change by
less than 1e-4) in ``solutions/genai_hw/data/word2vec_bolukbasi_f16.npz``, and
checks that the lecture's analogies still come out as with the original.

The npz is not compressed: zlib saves 1.4 MB of 16 MB but costs 0.07-0.15 s of
CPU at every load, and a grading loads the vectors four times (the grader, the
reference, the student's package, the notebook); the release zips compress
it anyway.

    python scripts/derive_word2vec.py [path/to/GoogleNews-vectors-negative300-bolukbasi.bin.gz]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "word2vec" / "GoogleNews-vectors-negative300-bolukbasi.bin.gz"
TARGET = ROOT / "solutions" / "genai_hw" / "data" / "word2vec_bolukbasi_f16.npz"
CHECKS = [  # (negative, positive, positive) -> expected top answer
    ("woman", "man", "mother", "father"),
    ("woman", "man", "girl", "boy"),
    ("he", "his", "you", "your"),
    ("man", "king", "woman", "queen"),
]


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    original = KeyedVectors.load_word2vec_format(str(source), binary=True)
    words = original.index_to_key
    vectors = original.vectors.astype(np.float16)
    # Words as one UTF-8 text, one per line (a numpy string array would pad every word).
    text = np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8)
    np.savez(TARGET, words=text, vectors=vectors)

    derived = KeyedVectors(vector_size=vectors.shape[1])
    derived.add_vectors(words, vectors.astype(np.float32))
    for negative, positive, other, expected in CHECKS:
        for name, kv in (("original", original), ("derived", derived)):
            top = kv.most_similar(positive=[positive, other], negative=[negative], topn=1)[0][0]
            assert top == expected, f"{name}: {other} + ({positive} - {negative}) -> {top}, not {expected}"
    assert derived.similarity("horse", "cow") > derived.similarity("horse", "ocean")
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes, sha256 {digest}); analogy checks pass")


if __name__ == "__main__":
    main()
