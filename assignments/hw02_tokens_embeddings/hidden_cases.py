"""Hidden test cases for homework 2 (shipped only inside the autograder zip).

Tokenizer cases draw random texts (ASCII, accents, CJK, emoji) and compare
with the reference; the inputs that need a merges table get one from a
simple independent trainer below. Embedding cases run on the real word2vec
vectors (``WordVectorsSpec``): in the student process gensim's answering
methods (``most_similar`` and friends) raise, which is how the rule "do not
call them" is checked. Queries whose top answers are closer than ``GAP`` are
skipped, so float32-vs-float64 rounding can never reorder an answer.
"""

from __future__ import annotations

import os

import numpy as np

from autograder.grading.cases import Case, approx, call, exact, random_text
from autograder.grading.wire import WordVectorsSpec, load_word_vectors

DATA_FILES = ["word2vec_bolukbasi_f16.npz"]
WV = WordVectorsSpec(DATA_FILES[0])
GAP = 1e-4
CLOSE = approx(rtol=1e-5, atol=1e-6)
"""The word vectors are float32 (D = 300): cosines from float32 products (rows normalised, then one product, as
nearest_words' docstring suggests) differ from float64 ones by about sqrt(D) roundings of 6e-8, 1e-6 relative
at most; means of a few float32 vectors by less. Measured (tests/test_tolerances.py: float64 and float32
answers): 3.3e-6 relative on a projection of 0.0035, at most 1.3 % of this."""
TEXT_ALPHABETS = ["ab ", "abc d", "the cat sat on a mat", "aé後后😀 ", "xyz\n\t"]
WHO = 'Who\'d use "后" vs. "後"?'


def _merge_ids(ids: list, pair: tuple, new_id: int) -> list:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _naive_train(text: str, vocab_size: int) -> dict:
    """The docstring's training loop, written independently of the reference."""
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts: dict = {}
        for pair in zip(ids, ids[1:]):
            counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(counts, key=counts.get)
        merges[pair] = new_id
        ids = _merge_ids(ids, pair, new_id)
    return merges


def _text(rng, low=0, high=80):
    alphabet = TEXT_ALPHABETS[int(rng.integers(0, len(TEXT_ALPHABETS)))]
    return random_text(rng, int(rng.integers(low, high)), alphabet)


def ordered(expected, got):
    """Dicts equal entry by entry *in order* (merges are learned in order)."""
    problem = exact(expected, got)
    if problem:
        return problem
    if list(expected) != list(got):
        return f"the merges are right but in the wrong order: expected {list(expected)[:6]}..., got {list(got)[:6]}..."
    return None


def pair_fixed(rng):
    return [call([1, 2, 3, 1, 2]), call([]), call([7]), call([5, 5, 5, 5]), call(list(b"banana")), call("abc")]


def pair_random(rng):
    return [call([int(x) for x in rng.integers(0, int(rng.integers(1, 12)), size=int(rng.integers(0, 200)))])
            for _ in range(15)]


def merge_fixed(rng):
    return [call([1, 2, 3, 1, 2], (1, 2), 4), call([1, 1, 1], (1, 1), 9), call([1, 1, 1, 1], (1, 1), 9),
            call([1, 2, 3], (3, 1), 7), call([], (1, 2), 3), call([3, 1, 2], (1, 2), 300)]


def merge_random(rng):
    calls = []
    for _ in range(15):
        ids = [int(x) for x in rng.integers(0, 4, size=int(rng.integers(0, 120)))]
        pair = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        calls.append(call(ids, pair, 256 + int(rng.integers(0, 50))))
    return calls


def train_fixed(rng):
    return [call("aaabdaaabac", 259), call("", 300), call("a", 300), call("aaaa", 258), call(WHO, 270),
            call("abc", 255), call(b"abc", 260)]


def train_random(rng):
    return [call(_text(rng, 0, 150), 256 + int(rng.integers(0, 40))) for _ in range(12)]


def encode_fixed(rng):
    merges = _naive_train("hello hello world, hello there", 270)
    return [call("hi!", {(104, 105): 256}), call("", merges), call("hello world", merges), call(WHO, merges),
            call("😀😀", _naive_train("😀😀😀", 262)), call(b"hi", merges)]


def encode_random(rng):
    calls = []
    for _ in range(10):
        merges = _naive_train(_text(rng, 20, 150), 256 + int(rng.integers(0, 30)))
        calls.append(call(_text(rng, 0, 80), merges))
    return calls


def _naive_encode(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges.items():
        ids = _merge_ids(ids, pair, new_id)
    return ids


def decode_fixed(rng):
    merges = _naive_train(WHO + " hello hello", 280)
    return [call([256, 33], {(104, 105): 256}), call([], merges), call(_naive_encode(WHO, merges), merges),
            call([229], {}), call([1000], merges), call(list("后".encode()), {})]


def decode_random(rng):
    calls = []
    for _ in range(12):
        merges = _naive_train(_text(rng, 20, 150), 256 + int(rng.integers(0, 30)))
        calls.append(call(_naive_encode(_text(rng, 0, 80), merges), merges))
    return calls


def cosine_cases(rng):
    calls = []
    for _ in range(10):
        d = int(rng.integers(1, 20))
        calls.append(call(rng.normal(size=d), rng.normal(size=d)))
    v = rng.normal(size=4)
    return calls + [call(v, 2.5 * v), call(v, -v), call(np.array([1.0, 0.0]), np.array([1.0, 1.0])),
                    call(np.zeros(3), np.ones(3)), call(np.ones(3), np.ones(4))]


def _vectors():
    return load_word_vectors(os.path.join(os.environ.get("GENAI_HW_DATA_DIR", "."), DATA_FILES[0]))


def _separated(values, k):
    """True when the top k + 1 values are at least GAP apart (no near-ties to reorder)."""
    top = np.sort(np.asarray(values))[::-1][: k + 1]
    return bool(np.all(-np.diff(top) > GAP))


_normalized: dict = {}


def _cosines(wv, vector):
    # float32, like the vectors themselves: its rounding (~1e-7) is far below GAP, and the grader's
    # process keeps one 31 MB copy instead of 62 MB (plus a 62 MB temporary) in float64.
    if id(wv) not in _normalized:
        matrix = wv.vectors
        _normalized[id(wv)] = matrix / np.linalg.norm(matrix, axis=1)[:, None].astype(matrix.dtype)
    unit = (np.asarray(vector, dtype=np.float64) / np.linalg.norm(vector)).astype(np.float32)
    return _normalized[id(wv)] @ unit


def nearest_fixed(rng):
    wv = _vectors()
    return [call(WV, wv["cow"], k=3), call(WV, wv["cow"], k=2, exclude=["cow"]), call(WV, wv["ocean"], k=0),
            call(WV, np.zeros(wv.vector_size), k=3), call(WV, wv["cow"], k=-1), call(WV, wv["cow"][:10], k=2)]


def nearest_random_words(rng):
    wv, calls = _vectors(), []
    while len(calls) < 5:
        word = wv.index_to_key[int(rng.integers(0, len(wv.index_to_key)))]
        k = int(rng.integers(1, 8))
        exclude = [word] if rng.random() < 0.5 else []
        values = np.delete(_cosines(wv, wv[word]), [wv.key_to_index[w] for w in exclude])
        if _separated(values, k):
            calls.append(call(WV, np.asarray(wv[word], dtype=np.float64), k=k, exclude=exclude))
    return calls


def nearest_random_vectors(rng):
    wv, calls = _vectors(), []
    while len(calls) < 4:
        vector = rng.normal(size=wv.vector_size)
        k = int(rng.integers(1, 8))
        if _separated(_cosines(wv, vector), k):
            calls.append(call(WV, vector, k=k))
    return calls


LECTURE_ANALOGIES = [("woman", "man", "mother"), ("woman", "man", "girl"), ("he", "his", "you"),
                     ("man", "king", "woman")]


def analogy_fixed(rng):
    return [call(WV, a, b, c) for a, b, c in LECTURE_ANALOGIES] + [
        call(WV, "woman", "man", "mother", k=3), call(WV, "woman", "man", "no_such_word_xyz")]


def analogy_random(rng):
    wv, calls = _vectors(), []
    while len(calls) < 4:
        a, b, c = (wv.index_to_key[int(i)] for i in rng.choice(len(wv.index_to_key), size=3, replace=False))
        k = int(rng.integers(1, 4))
        target = sum(s * wv[w] / np.linalg.norm(wv[w]) for s, w in ((-1, a), (1, b), (1, c)))
        values = np.delete(_cosines(wv, target), [wv.key_to_index[w] for w in (a, b, c)])
        if _separated(values, k):
            calls.append(call(WV, a, b, c, k=k))
    return calls


def one_hot_fixed(rng):
    return [call([2, 0], 3), call([], 4), call([0, 0, 0], 1), call([3], 3), call([-1], 3), call((1, 2), 5)]


def one_hot_random(rng):
    calls = []
    for _ in range(10):
        v = int(rng.integers(1, 30))
        calls.append(call([int(i) for i in rng.integers(0, v, size=int(rng.integers(0, 20)))], v))
    return calls


def embed_fixed(rng):
    return [call(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), [2, 0]), call(np.eye(3), [1, 1, 2]),
            call(np.ones((2, 3)), []), call(np.ones((2, 3)), [3]), call(np.ones(3), [0])]


def embed_random(rng):
    calls = []
    for _ in range(10):
        d, v = int(rng.integers(1, 10)), int(rng.integers(1, 15))
        calls.append(call(rng.normal(size=(d, v)), [int(i) for i in rng.integers(0, v, size=int(rng.integers(1, 12)))]))
    return calls


OCCUPATIONS = ["nurse", "carpenter", "engineer", "homemaker", "programmer", "doctor", "receptionist",
               "architect", "hairdresser", "captain", "librarian", "plumber", "dancer", "surgeon"]


def bias_fixed(rng):
    return [call(WV, OCCUPATIONS), call(WV, ["nurse", "carpenter"], pair=("man", "woman")), call(WV, []),
            call(WV, ["nurse", "no_such_word_xyz"])]


def bias_random(rng):
    wv, calls = _vectors(), []
    for _ in range(6):
        words = [wv.index_to_key[int(i)] for i in rng.choice(len(wv.index_to_key), size=int(rng.integers(1, 12)))]
        first, second = (wv.index_to_key[int(i)] for i in rng.choice(len(wv.index_to_key), size=2, replace=False))
        calls.append(call(WV, words, pair=(first, second)))
    return calls


def document_fixed(rng):
    return [call(WV, "cow"), call(WV, "The dinosaur fossils were found by paleontologists."),
            call(WV, "Tyrannosaurus rex; dinosaurs roamed!"), call(WV, "zzqx qqqzz"), call(WV, "")]


def document_random(rng):
    wv, calls = _vectors(), []
    for _ in range(8):
        words = [wv.index_to_key[int(i)] for i in rng.integers(0, len(wv.index_to_key), size=int(rng.integers(1, 15)))]
        noise = ["xqzv", ",", "!", "COW", "--"]
        mixed = [w if rng.random() < 0.8 else noise[int(rng.integers(0, len(noise)))] for w in words] + [words[0]]
        calls.append(call(WV, " ".join(mixed)))
    return calls


CASES = [
    Case("q1", "pair_counts_examples", 1, "tokenizer.pair_counts", pair_fixed,
         "pair_counts on the docstring's example, empty and one-token lists, runs, and a str"),
    Case("q1", "pair_counts_random", 1, "tokenizer.pair_counts", pair_random, "pair_counts on random id lists"),
    Case("q2", "merge_examples", 1, "tokenizer.merge", merge_fixed,
         "merge on the docstring's example, overlapping runs, no occurrence, an empty list"),
    Case("q2", "merge_random", 1, "tokenizer.merge", merge_random, "merge on random id lists and pairs"),
    Case("q3", "train_bpe_examples", 1, "tokenizer.train_bpe", train_fixed,
         "train_bpe on the docstring's example, empty and tiny texts, CJK, a small vocab_size, bytes", ordered),
    Case("q3", "train_bpe_random_text", 2, "tokenizer.train_bpe", train_random,
         "train_bpe on random texts with accents, CJK and emoji (merges and their order)", ordered),
    Case("q4", "encode_examples", 1, "tokenizer.encode", encode_fixed,
         "encode on the docstring's example, the empty string, the lecture's sentence, emoji, bytes"),
    Case("q4", "encode_random_text", 1, "tokenizer.encode", encode_random, "encode random texts with trained merges"),
    Case("q5", "decode_examples", 1, "tokenizer.decode", decode_fixed,
         "decode on the docstring's example, the lecture's sentence, a cut character, an unknown id"),
    Case("q5", "decode_round_trip", 1, "tokenizer.decode", decode_random, "decode(encode(text)) on random texts"),
    Case("q7", "cosine_similarity_cases", 1, "embeddings.cosine_similarity", cosine_cases,
         "cosine_similarity on random, parallel, opposite, zero and mismatched vectors", CLOSE),
    Case("q8", "nearest_words_examples", 1, "embeddings.nearest_words", nearest_fixed,
         "nearest_words for cow and ocean, with exclude, k = 0, a zero vector, bad k and shape", CLOSE, timeout=20),
    Case("q8", "nearest_words_random_words", 1, "embeddings.nearest_words", nearest_random_words,
         "nearest_words for random vocabulary words", CLOSE, timeout=20),
    Case("q8", "nearest_words_random_vectors", 1, "embeddings.nearest_words", nearest_random_vectors,
         "nearest_words for random vectors", CLOSE, timeout=20),
    Case("q9", "analogy_lecture", 1, "embeddings.analogy", analogy_fixed,
         "analogy on the lecture's examples (father, boy, your, queen) and an unknown word", timeout=20),
    Case("q9", "analogy_random", 1, "embeddings.analogy", analogy_random, "analogy on random word triples",
         timeout=20),
    Case("q10", "one_hot_examples", 1, "embeddings.one_hot", one_hot_fixed,
         "one_hot on the docstring's example, no tokens, V = 1, out-of-range ids"),
    Case("q10", "one_hot_random", 1, "embeddings.one_hot", one_hot_random, "one_hot on random ids"),
    Case("q11", "embed_examples", 1, "embeddings.embed", embed_fixed,
         "embed on the docstring's example, the identity, no tokens, a bad id and a 1-D E", CLOSE),
    Case("q11", "embed_random", 1, "embeddings.embed", embed_random, "embed on random D x V matrices", CLOSE),
    Case("q12", "bias_projection_occupations", 1, "embeddings.bias_projection", bias_fixed,
         "bias_projection on occupation words, another pair, no words, an unknown word", CLOSE, timeout=20),
    Case("q12", "bias_projection_random", 1, "embeddings.bias_projection", bias_random,
         "bias_projection on random words and directions", CLOSE, timeout=20),
    Case("q13", "document_embedding_examples", 1, "embeddings.document_embedding", document_fixed,
         "document_embedding on one word, sentences with punctuation, unknown-only and empty text", CLOSE,
         timeout=20),
    Case("q13", "document_embedding_random", 1, "embeddings.document_embedding", document_random,
         "document_embedding on random word sequences with unknown words and punctuation", CLOSE, timeout=20),
]
