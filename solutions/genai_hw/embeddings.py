"""Word embeddings: words as vectors whose geometry carries meaning.

The lecture loads word2vec's GoogleNews vectors with gensim and asks for
``word_vectors["cow"]``: 300 numbers. What matters is how vectors relate:
cosine similarity says how alike two words are, and directions carry
relations (man - woman + mother lands near father). A transformer starts by
looking up such vectors: the D x V *embedding matrix* holds one column per
token of the vocabulary, and the D x N *embedded text matrix* of a text is
that matrix times the V x N one-hot matrix of its token ids.

``word_vectors`` below is a gensim ``KeyedVectors`` (see
``genai_hw.data.load_word_vectors``): use ``word_vectors[word]``,
``word_vectors.vectors`` (a V x D array, one *row* per word),
``word_vectors.index_to_key`` (the words, in row order),
``word_vectors.key_to_index`` and ``word in word_vectors``. Do not call the
gensim methods that answer the exercises (``most_similar``,
``similar_by_vector``, ``similarity``, ...): the grader hands your functions
vectors on which those methods raise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


# BEGIN SOLUTION hw02 q7
def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError("cannot normalise a zero vector")
    return vector / norm


def _lookup(word_vectors: Any, word: str) -> np.ndarray:
    if word not in word_vectors:
        raise KeyError(f"{word!r} is not in the vocabulary")
    return np.asarray(word_vectors[word], dtype=np.float64)
# END SOLUTION


def cosine_similarity(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine of the angle between two vectors: ``u . v / (|u| |v|)``.

    Args:
        u, v: 1-D arrays of the same length D.

    Returns:
        A Python float in [-1, 1]: 1 for the same direction, 0 for orthogonal.

    Example: ``cosine_similarity([1, 0], [1, 1])`` is ``1 / sqrt(2) = 0.7071...``.
    For the unit-length word2vec vectors the cosine equals the dot product:
    horse . cow is about 0.49 and horse . ocean about 0.07.

    Raises:
        ValueError: if the shapes differ, are not 1-D, or a vector is zero.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.ndim != 1 or u.shape != v.shape:
        raise ValueError(f"u and v must be 1-D and of the same length, got {u.shape} and {v.shape}")
    # BEGIN SOLUTION hw02 q7
    return float(np.dot(_unit(u), _unit(v)))
    # END SOLUTION


def nearest_words(
    word_vectors: Any, vector: np.ndarray, k: int = 5, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the highest cosine similarity with ``vector``.

    Args:
        word_vectors: a gensim ``KeyedVectors``.
        vector: a 1-D array of length D (the query).
        k: how many words to return (fewer if the vocabulary runs out), ``k >= 0``.
        exclude: words that must not appear in the answer.

    Returns:
        A list of ``(word, cosine)`` pairs, highest cosine first; ties keep the
        vocabulary's order. Compute all V cosines at once with matrix
        operations (normalise the rows of ``word_vectors.vectors``, one matrix
        product), not with a Python loop over words.

    Example: ``nearest_words(wv, wv["cow"], k=2)`` starts with ``("cow", 1.0)``;
    with ``exclude=["cow"]`` it starts with ``("cows", ...)``.

    Raises:
        ValueError: if ``k`` is negative or ``vector`` has the wrong shape or is zero.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (word_vectors.vector_size,):
        raise ValueError(f"vector must have shape ({word_vectors.vector_size},), got {vector.shape}")
    # BEGIN SOLUTION hw02 q8
    matrix = word_vectors.vectors  # V x D, float32: one product, no copy of the matrix
    # Row lengths without a V x D temporary (np.linalg.norm(matrix, axis=1) squares into one: 7x slower).
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix)).astype(np.float64)
    norms[norms == 0] = 1.0
    cosines = (matrix @ _unit(vector).astype(matrix.dtype)).astype(np.float64) / norms
    excluded = {word_vectors.key_to_index[w] for w in exclude if w in word_vectors.key_to_index}
    order = np.argsort(-cosines, kind="stable")
    result = []
    for index in order:
        if len(result) == k:
            break
        if int(index) not in excluded:
            result.append((word_vectors.index_to_key[index], float(cosines[index])))
    return result
    # END SOLUTION


def analogy(word_vectors: Any, a: str, b: str, c: str, k: int = 1) -> list[str]:
    """Answer "``a`` is to ``b`` as ``c`` is to ?" with vector arithmetic.

    Args:
        word_vectors: a gensim ``KeyedVectors``.
        a, b, c: words of the vocabulary.
        k: how many answers.

    Returns:
        The ``k`` words nearest (by cosine, :func:`nearest_words`) to
        ``unit(b) - unit(a) + unit(c)``, where ``unit`` scales a vector to
        length 1, leaving out ``a``, ``b`` and ``c`` themselves. This equals
        gensim's ``most_similar(positive=[b, c], negative=[a], topn=k)``.

    Example: the lecture's mother + (man - woman) -> father is
    ``analogy(wv, "woman", "man", "mother") == ["father"]``;
    ``analogy(wv, "he", "his", "you") == ["your"]``.

    Raises:
        KeyError: if a word is not in the vocabulary (the message names it).
    """
    # BEGIN SOLUTION hw02 q9
    target = _unit(_lookup(word_vectors, b)) - _unit(_lookup(word_vectors, a)) + _unit(_lookup(word_vectors, c))
    return [word for word, _ in nearest_words(word_vectors, target, k=k, exclude=(a, b, c))]
    # END SOLUTION


def one_hot(token_ids: Sequence[int], vocab_size: int) -> np.ndarray:
    """The V x N one-hot matrix of a sequence of N token ids.

    Args:
        token_ids: N ints in ``[0, vocab_size)``.
        vocab_size: V.

    Returns:
        A float64 array of shape ``(vocab_size, N)`` whose column ``j`` is all
        zeros except a 1 in row ``token_ids[j]``.

    Example: ``one_hot([2, 0], 3)`` is ``[[0, 1], [0, 0], [1, 0]]``.

    Raises:
        ValueError: if an id is outside ``[0, vocab_size)``.
    """
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must be in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
    # BEGIN SOLUTION hw02 q10
    matrix = np.zeros((vocab_size, ids.size))
    matrix[ids, np.arange(ids.size)] = 1.0
    return matrix
    # END SOLUTION


def embed(E: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
    """The lecture's D x N embedded text matrix, made with a matrix product.

    Args:
        E: the D x V embedding matrix (column ``t`` is the vector of token ``t``).
        token_ids: N token ids.

    Returns:
        ``E @ one_hot(token_ids, V)``, shape ``(D, N)``: column ``j`` is the
        embedding of token ``token_ids[j]``, the same as ``E[:, token_ids]``.

    Example: ``embed([[1, 2, 3], [4, 5, 6]], [2, 0])`` is ``[[3, 1], [6, 4]]``.

    Raises:
        ValueError: if ``E`` is not 2-D or an id is out of range.
    """
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"E must be a D x V matrix, got shape {E.shape}")
    # BEGIN SOLUTION hw02 q11
    return E @ one_hot(token_ids, E.shape[1])
    # END SOLUTION


def bias_projection(
    word_vectors: Any, words: Sequence[str], pair: tuple[str, str] = ("he", "she")
) -> dict[str, float]:
    """Project words on a direction such as he - she, to see what a model inherited.

    Args:
        word_vectors: a gensim ``KeyedVectors``.
        words: the words to project (each in the vocabulary).
        pair: two words whose difference defines the direction.

    Returns:
        ``{word: unit(word_vectors[word]) . unit(word_vectors[pair[0]] - word_vectors[pair[1]])}``:
        positive leans towards ``pair[0]``, negative towards ``pair[1]``.

    Example: with the GoogleNews vectors "nurse" comes out negative and
    "carpenter" positive: the news text the vectors learned from used them so.

    Raises:
        KeyError: if a word is not in the vocabulary.
    """
    # BEGIN SOLUTION hw02 q12
    direction = _unit(_lookup(word_vectors, pair[0]) - _lookup(word_vectors, pair[1]))
    return {word: float(_unit(_lookup(word_vectors, word)) @ direction) for word in words}
    # END SOLUTION


def document_embedding(word_vectors: Any, text: str) -> np.ndarray:
    """A document as one vector: the mean of the vectors of its known words.

    Args:
        word_vectors: a gensim ``KeyedVectors``.
        text: any text; its words are the runs of letters, digits, ``_`` and
            ``'`` (``re.findall(r"[\\w']+", text)``), looked up as they are
            (word2vec is case-sensitive); unknown words are skipped.

    Returns:
        A float64 array of shape ``(D,)``: the mean of the known words' vectors.

    Example: two short texts about dinosaurs have a higher cosine with each
    other than with a text about the stock market.

    Raises:
        ValueError: if no word of the text is in the vocabulary.
    """
    # BEGIN SOLUTION hw02 q13
    vectors = [word_vectors[w] for w in re.findall(r"[\w']+", text) if w in word_vectors]
    if not vectors:
        raise ValueError("none of the text's words is in the vocabulary")
    return np.mean(np.asarray(vectors, dtype=np.float64), axis=0)
    # END SOLUTION
