"""Byte-level byte-pair encoding (BPE), the kind of tokenizer ChatGPT uses.

Text becomes UTF-8 bytes, and the 256 possible byte values are the first 256
tokens, so any string encodes: "后", "後", emoji and misspellings included.
Training repeatedly finds the most frequent adjacent pair of tokens and
replaces it by a new token (256, 257, ...); the ordered list of these merges
*is* the tokenizer. Encoding replays the merges on new text; decoding turns
each token back into its bytes.

Simplifications on purpose: no pre-splitting of text into words (real
tokenizers split on spaces and punctuation first, which is why their tokens
look like "<space>use"), and no special tokens. As in karpathy/minbpe's
``BasicTokenizer``.

A merges table is a dict ``{(left_id, right_id): new_id}`` in training order:
``{(101, 32): 256, (256, 116): 257}`` means "e " became 256, then "e t" 257.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _check_ids(ids: Sequence[int]) -> None:
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a list of ints, not a str or bytes: use list(text.encode('utf-8'))")


def pair_counts(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """Count every pair of adjacent token ids.

    Args:
        ids: a sequence of token ids (ints).

    Returns:
        A dict mapping each adjacent pair ``(ids[i], ids[i + 1])`` to how often
        it occurs, in the order the pairs first appear.

    Example: ``pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}``;
    ``pair_counts([7])`` and ``pair_counts([])`` are ``{}``.
    """
    _check_ids(ids)
    # BEGIN SOLUTION hw02 q1
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    # END SOLUTION


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``.

    Args:
        ids: a sequence of token ids.
        pair: the two adjacent ids to replace, ``(left, right)``.
        new_id: the id that replaces them.

    Returns:
        A new list (``ids`` is not changed). Occurrences are replaced left to
        right without overlapping: ``merge([1, 1, 1], (1, 1), 9) == [9, 1]``.

    Example: ``merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]``.
    """
    _check_ids(ids)
    # BEGIN SOLUTION hw02 q2
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    # END SOLUTION


# BEGIN SOLUTION hw02 q3
def _merge_array(ids: np.ndarray, pair: tuple[int, int], new_id: int) -> np.ndarray:
    """:func:`merge` on a numpy array, vectorised (same left-to-right semantics)."""
    hits = np.flatnonzero((ids[:-1] == pair[0]) & (ids[1:] == pair[1]))
    if hits.size == 0:
        return ids
    if pair[0] == pair[1] and hits.size > 1:
        # In a run of overlapping matches (x x x ...) only every other one merges.
        starts = np.ones(hits.size, dtype=bool)
        starts[1:] = np.diff(hits) != 1
        run_start = np.maximum.accumulate(np.where(starts, np.arange(hits.size), 0))
        hits = hits[(np.arange(hits.size) - run_start) % 2 == 0]
    out = ids.copy()
    out[hits] = new_id
    return np.delete(out, hits + 1)


def _most_frequent_pair(ids: np.ndarray) -> tuple[tuple[int, int], int] | None:
    """The most frequent adjacent pair (ties: the one that first occurs earliest) and its count."""
    if ids.size < 2:
        return None
    keys = ids[:-1].astype(np.int64) * (1 << 32) + ids[1:]
    unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
    best = np.lexsort((first, -counts))[0]
    key = int(unique[best])
    return (key >> 32, key & 0xFFFFFFFF), int(counts[best])
# END SOLUTION


def train_bpe(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn BPE merges from ``text`` until the vocabulary has ``vocab_size`` tokens.

    Args:
        text: the training text (any string).
        vocab_size: the final vocabulary size, at least 256 (the 256 byte values
            are the first tokens, so ``vocab_size - 256`` merges are learned).

    Returns:
        The merges, ``{(left_id, right_id): new_id}``, in the order they were
        learned, with new ids 256, 257, ... Training stops early when fewer
        than two tokens are left.

    Start from ``ids = list(text.encode("utf-8"))``. At each step count the
    pairs (:func:`pair_counts`), take the most frequent pair, breaking ties
    in favour of the pair that occurs *first* in the current ids (this is what
    ``max(counts, key=counts.get)`` does, since :func:`pair_counts` keeps
    first-occurrence order), give it the next id and :func:`merge` it.

    Example: ``train_bpe("aaabdaaabac", 259)`` merges ``(97, 97)`` ("aa") into
    256, then ``(256, 97)`` into 257, then ``(257, 98)`` into 258.

    Raises:
        TypeError: if ``text`` is not a str.
        ValueError: if ``vocab_size`` is below 256.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (the byte values), got {vocab_size}")
    # BEGIN SOLUTION hw02 q3
    # Same result as the loop in the docstring, vectorised with numpy so that
    # training on a whole book takes seconds rather than minutes.
    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        found = _most_frequent_pair(ids)
        if found is None:
            break
        pair = found[0]
        merges[pair] = new_id
        ids = _merge_array(ids, pair, new_id)
    return merges
    # END SOLUTION


def encode(text: str, merges: Mapping[tuple[int, int], int]) -> list[int]:
    """Turn ``text`` into token ids with a trained merges table.

    Args:
        text: any string (empty, emoji and CJK included).
        merges: the output of :func:`train_bpe`.

    Returns:
        The token ids: the UTF-8 bytes of ``text`` with every merge applied,
        in the order the merges were learned.

    Example: with ``merges = {(104, 105): 256}`` ("hi"),
    ``encode("hi!", merges) == [256, 33]``; ``encode("", merges) == []``.

    Raises:
        TypeError: if ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    # BEGIN SOLUTION hw02 q4
    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    for pair, new_id in merges.items():
        ids = _merge_array(ids, pair, new_id)
    return [int(i) for i in ids]
    # END SOLUTION


def token_bytes(merges: Mapping[tuple[int, int], int]) -> dict[int, bytes]:
    """The bytes every token id stands for: ``{104: b"h", ..., 256: b"hi"}``."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (left, right), new_id in merges.items():
        vocab[new_id] = vocab[left] + vocab[right]
    return vocab


def decode(ids: Sequence[int], merges: Mapping[tuple[int, int], int]) -> str:
    """Turn token ids back into text.

    Args:
        ids: token ids made by :func:`encode` with the same ``merges``.
        merges: the output of :func:`train_bpe`.

    Returns:
        The text: the bytes of every token (see :func:`token_bytes`), joined
        and decoded as UTF-8 with ``errors="replace"`` (a sequence cut inside
        a character shows "\\ufffd"). ``decode(encode(s, m), m) == s`` for
        every string ``s``.

    Example: ``decode([256, 33], {(104, 105): 256}) == "hi!"``.

    Raises:
        ValueError: if an id is not a byte value or a token of ``merges``.
    """
    _check_ids(ids)
    # BEGIN SOLUTION hw02 q5
    vocab = token_bytes(merges)
    unknown = [i for i in ids if i not in vocab]
    if unknown:
        raise ValueError(f"unknown token id {unknown[0]!r}")
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    # END SOLUTION
