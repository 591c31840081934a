"""Shannon's n-gram language model, as in the lecture on Moby-Dick.

An n-gram model counts how often every run of ``n`` symbols appears in a
corpus, then generates text one symbol at a time: the last ``n - 1`` symbols
are the context, and the counts of the n-grams that start with that context
give the probabilities of the next symbol (the lecture's " Q" -> "U" table).

Symbols are characters of a 27-symbol alphabet (A-Z and space) or whole
words. Counts are ``collections.Counter`` objects keyed by ``str`` (characters:
``"QUE"``) or by ``tuple`` of words (words: ``("THE", "WHITE", "WHALE")``).

Simplifications on purpose: no start/end-of-text markers, and generation
stops early at a context that never appeared in the corpus (a "hard" lookup).
Add-k smoothing appears only in :func:`perplexity`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ "
"""The lecture's 27 symbols: the uppercase letters and the space."""


def possible_ngrams(n: int, alphabet_size: int = len(ALPHABET)) -> int:
    """Number of different n-grams an alphabet allows: ``27 ** 5 = 14_348_907``."""
    return alphabet_size**n


def fraction_seen(counts: Mapping[str, int], n: int, alphabet_size: int = len(ALPHABET)) -> float:
    """Fraction of all possible character n-grams that appear at least once in ``counts``."""
    return len(counts) / possible_ngrams(n, alphabet_size)


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")


def normalize(text: str) -> str:
    """Map a text onto the lecture's 27-symbol alphabet.

    Args:
        text: any Python string.

    Returns:
        The text in uppercase, where every character that is not a letter A-Z
        after uppercasing has become a space, and every run of spaces has
        become a single space. Leading and trailing spaces are kept (at most one).

    Example: ``normalize("Call me Ishmael.\\nSome years ago")`` returns
    ``"CALL ME ISHMAEL SOME YEARS AGO"``; ``normalize("  Hi!! ")`` returns ``" HI "``;
    ``normalize("café")`` returns ``"CAF "`` ("É" is not in A-Z).

    Raises:
        TypeError: if ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize expects a str, got {type(text).__name__}")
    raise NotImplementedError(
        'normalize() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q2)'
    )


def char_ngram_counts(text: str, n: int) -> Counter[str]:
    """Count every length-``n`` substring of ``text`` (overlapping).

    Args:
        text: the corpus, usually already normalized.
        n: the n-gram length, a positive integer.

    Returns:
        A ``Counter`` mapping each substring of length ``n`` to its number of
        occurrences. A text shorter than ``n`` gives an empty ``Counter``.

    Example: ``char_ngram_counts("ABABA", 2) == Counter({"AB": 2, "BA": 2})``
    and ``char_ngram_counts("AAAA", 3) == Counter({"AAA": 2})``.

    Raises:
        ValueError: if ``n`` is not a positive integer.
    """
    _check_n(n)
    raise NotImplementedError(
        'char_ngram_counts() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q3)'
    )


def word_ngram_counts(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """Count every run of ``n`` consecutive words.

    Args:
        words: a list of words, for example ``normalize(text).split()``.
        n: the n-gram length, a positive integer.

    Returns:
        A ``Counter`` mapping tuples of ``n`` words to their counts.

    Example: ``word_ngram_counts(["THE", "WHITE", "WHALE", "THE", "WHITE"], 2)``
    is ``Counter({("THE", "WHITE"): 2, ("WHITE", "WHALE"): 1, ("WHALE", "THE"): 1})``.

    Raises:
        TypeError: if ``words`` is a single string (split it into words first).
        ValueError: if ``n`` is not a positive integer.
    """
    if isinstance(words, str):
        raise TypeError("word_ngram_counts expects a list of words, not a str: pass text.split()")
    _check_n(n)
    raise NotImplementedError(
        'word_ngram_counts() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q4)'
    )


def next_symbol_distribution(
    counts: Mapping[Hashable, int], context: str | Sequence[str]
) -> dict[str, float]:
    """Probabilities of the next symbol after ``context``, from n-gram counts.

    Args:
        counts: character n-gram counts (``str`` keys of length n) or word
            n-gram counts (``tuple`` keys of n words), as made by
            :func:`char_ngram_counts` or :func:`word_ngram_counts`.
        context: the last ``n - 1`` symbols: a ``str`` of n - 1 characters for
            character counts, a tuple (or list) of n - 1 words for word counts.

    Returns:
        A dict mapping each symbol that followed ``context`` in the corpus (a
        one-character ``str``, or a word) to ``count(context + symbol) /
        count of all n-grams starting with context``. The values sum to 1. An
        unseen context, or empty ``counts``, gives ``{}``.

    Example: with ``counts = char_ngram_counts("ABABAC", 3)``, that is
    ``{"ABA": 2, "BAB": 1, "BAC": 1}``, the context ``"BA"`` gives
    ``{"B": 0.5, "C": 0.5}``. In Moby-Dick the lecture's context ``" Q"``
    gives almost all of its probability to ``"U"``.

    Raises:
        ValueError: if the context does not have ``n - 1`` symbols.
    """
    if not counts:
        return {}
    first = next(iter(counts))
    n = len(first)
    if isinstance(first, tuple):
        if isinstance(context, str):
            raise ValueError("word counts need a tuple or list of words as context, not a str")
        context = tuple(context)
    if len(context) != n - 1:
        raise ValueError(
            f"these counts hold {n}-grams, so the context must have {n - 1} symbols, got {len(context)}"
        )
    raise NotImplementedError(
        'next_symbol_distribution() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q5)'
    )


def sample_next(distribution: Mapping[str, float], rng: np.random.Generator) -> str:
    """Draw one symbol from ``distribution`` with a fixed, reproducible procedure.

    Args:
        distribution: symbol -> probability (or any non-negative weights with a
            positive sum), as returned by :func:`next_symbol_distribution`.
        rng: a ``numpy.random.Generator``; exactly one ``rng.random()`` call is made.

    Returns:
        The chosen symbol.

    The procedure (follow it exactly, so a grader can reproduce your draws):
    sort the symbols (``sorted(distribution)``), draw ``u = rng.random() * total``
    where ``total`` is the sum of the weights, walk the sorted symbols adding up
    their weights, and return the first symbol whose running sum is greater
    than ``u``. If rounding leaves no such symbol, return the last symbol with
    a positive weight.

    Example: for ``{"U": 470, " ": 1}`` the sorted order is ``[" ", "U"]``;
    ``u = 0.3 * 471 = 141.3`` is not below 1 but is below 471, so ``"U"``.

    Raises:
        ValueError: if the distribution is empty, has a negative weight, or
            its weights sum to zero.
    """
    if not distribution:
        raise ValueError("cannot sample from an empty distribution (unseen context?)")
    if any(weight < 0 for weight in distribution.values()):
        raise ValueError("probabilities must be non-negative")
    total = sum(distribution.values())
    if not total > 0:
        raise ValueError("probabilities must have a positive sum")
    raise NotImplementedError(
        'sample_next() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q6)'
    )


def generate(
    counts: Mapping[Hashable, int], prompt: str, length: int, rng: np.random.Generator
) -> str:
    """Generate text by repeatedly sampling the next symbol, as in the lecture.

    Args:
        counts: character n-gram counts (``str`` keys) or word n-gram counts
            (``tuple`` keys).
        prompt: the starting text. Character level: it is used as it is.
            Word level: it is split on whitespace into words.
        length: how many new symbols (characters or words) to add, ``>= 0``.
        rng: the ``numpy.random.Generator`` passed to :func:`sample_next`.

    Returns:
        The prompt followed by the generated symbols. Character level: the
        prompt string plus the new characters. Word level: the prompt's words
        and the new words joined by single spaces.

    Each step takes the last ``n - 1`` symbols as context, calls
    :func:`next_symbol_distribution` and then :func:`sample_next` (one
    ``rng.random()`` per new symbol). If the context was never seen, generation
    stops early and returns what it has.

    Example: ``generate(char_ngram_counts("ABABAB", 2), "A", 3, rng)`` returns
    ``"ABAB"`` whatever ``rng`` draws (every context has one follower).

    Raises:
        ValueError: if ``counts`` is empty, ``length`` is negative, or the
            prompt has fewer than ``n - 1`` symbols.
    """
    if not counts:
        raise ValueError("counts is empty: count n-grams on a corpus first")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    word_level = isinstance(next(iter(counts)), tuple)
    n = len(next(iter(counts)))
    symbols: list[str] = prompt.split() if word_level else list(prompt)
    if len(symbols) < n - 1:
        raise ValueError(f"the prompt needs at least {n - 1} symbols for {n}-gram counts")
    raise NotImplementedError(
        'generate() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q7)'
    )
    return " ".join(symbols) if word_level else "".join(symbols)


def perplexity(counts: Mapping[str, int], text: str, n: int, k: float = 1.0) -> float:
    """Perplexity of a character n-gram model with add-k smoothing on ``text``.

    Args:
        counts: character n-gram counts of the training text (keys of length ``n``).
        text: held-out text over the 27-symbol alphabet (already normalized),
            at least ``n`` characters long.
        n: the n-gram length of ``counts``.
        k: the pseudo-count added to every possible n-gram, ``k >= 0``.

    Returns:
        ``exp(-mean(log p_i))`` over every position ``i >= n - 1`` of ``text``,
        where ``p_i = (count(ngram_i) + k) / (count(context_i) + k * 27)``,
        ``ngram_i = text[i - n + 1 : i + 1]``, ``context_i`` is its first
        ``n - 1`` characters, and ``count(context)`` is the sum of the counts
        of all n-grams in ``counts`` that start with that context. With
        ``k = 0`` an unseen n-gram gives ``float("inf")``.

    A perplexity of P means the model is as unsure as if it chose uniformly
    among P symbols at each step: 27 is no better than guessing; lower is better.

    Example: ``perplexity(Counter({"AB": 1}), "AB", 2, k=1)``: p = (1 + 1) / (1 + 27)
    = 1/14, so the perplexity is 14.0.

    Raises:
        ValueError: if ``text`` is shorter than ``n``, holds a symbol outside the
            alphabet, ``k`` is negative, or the keys of ``counts`` are not of length ``n``.
    """
    _check_n(n)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if len(text) < n:
        raise ValueError(f"text must have at least n = {n} characters, got {len(text)}")
    outside = set(text) - set(ALPHABET)
    if outside:
        raise ValueError(f"text has symbols outside the 27-symbol alphabet: {sorted(outside)[:5]}; normalize it first")
    if counts and len(next(iter(counts))) != n:
        raise ValueError(f"counts hold {len(next(iter(counts)))}-grams but n = {n}")
    raise NotImplementedError(
        'perplexity() is not written yet: implement it in genai_hw/ngrams.py '
        '(homework 1, question q8)'
    )
