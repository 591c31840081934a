"""Offline data that ships inside the package (nothing is ever downloaded).

- ``moby_dick.txt``: Project Gutenberg eBook #2701, "Moby Dick; Or, The
  Whale" by Herman Melville, public domain in the US. The file is kept exactly
  as Project Gutenberg distributes it; :func:`load_moby_dick` strips the
  Gutenberg header and licence with code.
- ``word2vec_bolukbasi_f16.npz``: the word2vec GoogleNews vectors (the
  lecture's model) for the 26,423 words of Bolukbasi et al. 2016, 300
  dimensions, unit-normalised, stored as float16 by
  ``scripts/derive_word2vec.py``. :func:`load_word_vectors` returns them as a
  gensim ``KeyedVectors``, so ``word_vectors["cow"]`` works as in the lecture.

- ``digits_8x8.npz``: 1797 handwritten digits, 8 x 8 pixels with values
  0..16 (the UCI "Optical Recognition of Handwritten Digits" test set, as
  scikit-learn bundles it). :func:`load_digits` returns them scaled to [0, 1].

- ``moby_dick_27.txt``: the same book over homework 1's 27 symbols (what ``ngrams.normalize`` makes of
  it), one line; :func:`load_moby_dick_27` reads it (homework 5's character model).
- ``tiny_gpt_moby.npz``: homework 5's character-level TinyGPT trained on that text
  (``attention.load_tiny_gpt``).

- ``grace_hopper_64.npz``: a 64 x 64 grey photograph of Grace Hopper (the
  official US Navy portrait, public domain, from matplotlib's sample data).
  :func:`load_picture` returns it scaled to [0, 1].

Provenance of all of them: ``data/README.md``. Each homework carries only the
files it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
MOBY_DICK_PATH = DATA_DIR / "moby_dick.txt"
MOBY_DICK_27_PATH = DATA_DIR / "moby_dick_27.txt"
WORD_VECTORS_PATH = DATA_DIR / "word2vec_bolukbasi_f16.npz"
DIGITS_PATH = DATA_DIR / "digits_8x8.npz"
PICTURE_PATH = DATA_DIR / "grace_hopper_64.npz"

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


def _data_file(path: Path | str) -> Path:
    """``path`` if it exists; else a FileNotFoundError that says where the file comes from."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. Each homework's genai_hw/ carries only the data files that homework uses "
            "(see genai_hw/data/README.md); this one comes with the homework whose notebook loads it."
        )
    return path


def load_moby_dick() -> str:
    """The full text of Moby-Dick (book only, original case and punctuation)."""
    return strip_gutenberg(_data_file(MOBY_DICK_PATH).read_text(encoding="utf-8-sig"))


def load_moby_dick_27() -> str:
    """Moby-Dick over the 27 symbols of homework 1 (A-Z and space): the book after ``normalize``.

    ``load_moby_dick_27()[:22]`` is ``"MOBY DICK OR THE WHALE"``; 1,174,206 characters. Split it with
    :func:`split_text` (``0.9``) for homework 1's training text and held-out text.
    """
    return _data_file(MOBY_DICK_27_PATH).read_text(encoding="ascii")


def split_text(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Split a text into a training head and a held-out tail.

    ``split_text("ABCDEFGHIJ", 0.8) -> ("ABCDEFGH", "IJ")``. The held-out
    tail is text the model never saw, for measuring generalisation.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction!r}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


def load_word_vectors(path: Path | str = WORD_VECTORS_PATH) -> Any:
    """The word2vec vectors as a ``gensim.models.KeyedVectors`` (float32, unit length).

    ``word_vectors = load_word_vectors(); word_vectors["cow"][:3]`` gives the
    first three of the 300 numbers for "cow". Loads in well under a second;
    load once and pass the object around.
    """
    import numpy as np
    from gensim.models import KeyedVectors

    with np.load(_data_file(path)) as data:
        words = data["words"].tobytes().decode("utf-8").split("\n")
        vectors = data["vectors"].astype(np.float32)
    # What word_vectors.add_vectors(words, vectors) makes, without copying the 31 MB matrix once more.
    word_vectors = KeyedVectors(vector_size=vectors.shape[1])
    word_vectors.index_to_key = words
    word_vectors.key_to_index = {word: i for i, word in enumerate(words)}
    word_vectors.vectors = vectors
    return word_vectors


def load_digits() -> tuple[Any, Any]:
    """The 8 x 8 handwritten digits: ``(images, labels)``.

    ``images`` is a float32 NumPy array of shape (1797, 8, 8) with values in [0, 1] (the pixel counts
    0..16 divided by 16); ``labels`` an int64 array of shape (1797,) with the digit each image shows.
    ``images, labels = load_digits(); images[0]`` is a zero.
    """
    import numpy as np

    with np.load(_data_file(DIGITS_PATH)) as data:
        return data["images"].astype(np.float32) / 16.0, data["labels"].astype(np.int64)


def load_picture() -> Any:
    """A real photograph to add noise to: Grace Hopper, 64 x 64 grey pixels.

    Returns a float32 NumPy array of shape (64, 64) with values in [0, 1] (0 black, 1 white).
    ``load_picture().shape`` is ``(64, 64)``.
    """
    import numpy as np

    with np.load(_data_file(PICTURE_PATH)) as data:
        return data["image"].astype(np.float32) / 255.0
