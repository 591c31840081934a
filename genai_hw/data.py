"""Offline data that ships inside the package (nothing is ever downloaded).

- ``moby_dick.txt``: Project Gutenberg eBook #2701, "Moby Dick; Or, The
  Whale" by Herman Melville, public domain in the US. The file is kept exactly
  as Project Gutenberg distributes it; :func:`load_moby_dick` strips the
  Gutenberg header and licence with code. Provenance: ``data/README.md``.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
MOBY_DICK_PATH = DATA_DIR / "moby_dick.txt"

_START_MARK = "*** START OF THE PROJECT GUTENBERG EBOOK"
_END_MARK = "*** END OF THE PROJECT GUTENBERG EBOOK"


def strip_gutenberg(raw: str) -> str:
    """Return the book between Project Gutenberg's START and END marker lines.

    The marker lines themselves, the header above and the licence below are
    dropped. Raises ValueError when either marker is missing, so a wrong file
    is never silently treated as the book.
    """
    start = raw.find(_START_MARK)
    end = raw.find(_END_MARK)
    if start < 0 or end < 0 or end < start:
        raise ValueError(
            "not a Project Gutenberg text: the '*** START OF' / '*** END OF' marker lines are missing"
        )
    body_start = raw.find("\n", start)
    return raw[body_start + 1 : end].strip("\n") + "\n"


def load_moby_dick() -> str:
    """The full text of Moby-Dick (book only, original case and punctuation)."""
    return strip_gutenberg(MOBY_DICK_PATH.read_text(encoding="utf-8-sig"))


def split_text(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Split a text into a training head and a held-out tail.

    ``split_text("ABCDEFGHIJ", 0.8) -> ("ABCDEFGH", "IJ")``. The held-out
    tail is text the model never saw, for measuring generalisation.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction!r}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]
