"""Hidden test cases for homework 1 (shipped only inside the autograder zip).

Each case draws fresh random inputs from the run's seed and compares the
submitted function with the reference on them, plus fixed edge cases. The
points of each question here must add up to the ``points`` of that question
in ``hw01_ngrams.ipynb`` (``genai-hw release`` checks it).
"""

from __future__ import annotations

import string

import numpy as np

from autograder.grading.cases import Case, approx, call, random_text, seed_from

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ "
CLOSE = approx(rtol=1e-9, atol=1e-12)
"""Everything here is float64 (numpy arrays, Python floats): a rounding is 1.1e-16 relative, and fit_line's up to
200 steps, the probabilities and perplexity's exp of a mean of up to 100 logs stay near 1e-14 in any order
(tests/test_tolerances.py grades exact fsum sums and dot-product reorderings; measured worst 1.1e-13 absolute on
perplexities near 25, 4e-15 relative). Far above that, far below any mistake (a learning rate off, k missing)."""
WORDS = ["THE", "WHITE", "WHALE", "SHARK", "SEA", "SHIP", "AHAB", "CALL", "ME", "ISHMAEL"]


def _primer_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=200)
    y = 2 * x + 0.5 + rng.normal(0, 0.1, size=200)
    return x, y


def fit_line_fixed(rng):
    x, y = _primer_data()
    return [
        call(np.array([0.0, 1.0]), np.array([1.0, 3.0]), 0.5, 1),
        call(x, y, 0.05, 200),
        call(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]), 0.1, 0),
        call(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 0.1, 3),
    ]


def fit_line_random(rng):
    calls = []
    for _ in range(6):
        m = int(rng.integers(2, 60))
        x = rng.normal(0, 1, size=m)
        y = rng.normal(0, 3) * x + rng.normal(0, 3) + rng.normal(0, 0.5, size=m)
        calls.append(call(x, y, float(rng.uniform(0.01, 0.2)), int(rng.integers(1, 60))))
    return calls


NOISY = string.ascii_letters + string.digits + string.punctuation + " \t\n" + "éÀßñ—’😀后"


def normalize_fixed(rng):
    texts = ["Call me Ishmael.\nSome years ago", "", "   ", "a1b2c3", "café", "ÀÉÎ straße",
             "tabs\tand\nnewlines\r\n", "ALREADY NORMAL", "--Moby-Dick!--"]
    return [call(t) for t in texts] + [call(123)]


def normalize_random(rng):
    return [call(random_text(rng, int(rng.integers(0, 80)), NOISY)) for _ in range(25)]


def char_fixed(rng):
    return [call("", 1), call("AB", 3), call("AAAA", 3), call("ABABA", 2), call("HELLO", 1),
            call("ABC", 3), call("ABC", 0)]


def char_random(rng):
    calls = []
    for _ in range(15):
        alphabet = ("AB ", "ABC", ALPHABET)[int(rng.integers(0, 3))]
        calls.append(call(random_text(rng, int(rng.integers(0, 200)), alphabet), int(rng.integers(1, 6))))
    return calls


def _random_words(rng, count, vocabulary=WORDS):
    return [vocabulary[i] for i in rng.integers(0, len(vocabulary), size=count)]


def word_fixed(rng):
    return [call([], 1), call(["A"], 2), call(["THE", "WHITE", "WHALE", "THE", "WHITE"], 2),
            call("THE WHITE WHALE THE WHITE SHARK".split(), 3), call("A B C", 2),
            call(["A", "B"], 0)]


def word_random(rng):
    return [call(_random_words(rng, int(rng.integers(0, 60)), WORDS[: int(rng.integers(2, 10))]),
                 int(rng.integers(1, 5))) for _ in range(12)]


def _char_counts(text, n):
    counts = {}
    for i in range(len(text) - n + 1):
        counts[text[i : i + n]] = counts.get(text[i : i + n], 0) + 1
    from collections import Counter

    return Counter(counts)


def _word_counts(words, n):
    from collections import Counter

    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def next_fixed(rng):
    from collections import Counter

    abab = _char_counts("ABABAC", 3)
    words = _word_counts("THE WHITE WHALE THE WHITE SHARK THE SEA".split(), 3)
    return [call(abab, "BA"), call(abab, "ZZ"), call(Counter(), "AB"), call(abab, "B"),
            call(_char_counts("ABCABD", 1), ""), call(words, ("THE", "WHITE")),
            call(words, ["THE", "WHITE"]), call(words, ("WHITE",))]


def next_random_chars(rng):
    calls = []
    for _ in range(12):
        text = random_text(rng, int(rng.integers(5, 300)), ("AB ", "ABCD", ALPHABET)[int(rng.integers(0, 3))])
        n = int(rng.integers(2, 5))
        counts = _char_counts(text, n)
        start = int(rng.integers(0, max(1, len(text) - n)))
        calls.append(call(counts, text[start : start + n - 1]))
        calls.append(call(counts, random_text(rng, n - 1, "ABC ")))
    return calls


def next_random_words(rng):
    calls = []
    for _ in range(10):
        words = _random_words(rng, int(rng.integers(3, 80)), WORDS[: int(rng.integers(2, 10))])
        n = int(rng.integers(2, 4))
        counts = _word_counts(words, n)
        start = int(rng.integers(0, max(1, len(words) - n)))
        calls.append(call(counts, tuple(words[start : start + n - 1])))
    return calls


def sample_fixed(rng):
    calls = [call({"U": 470, " ": 1}, seed_from(rng)) for _ in range(5)]
    calls += [call({"U": 470 / 471, " ": 1 / 471}, seed_from(rng)) for _ in range(3)]
    calls += [call({"A": 1.0}, seed_from(rng)), call({"A": 0.0, "B": 1.0}, seed_from(rng)),
              call({"B": 0.5, "A": 0.5}, seed_from(rng)), call({}, seed_from(rng)),
              call({"A": -1.0, "B": 2.0}, seed_from(rng))]
    return calls


def sample_random(rng):
    calls = []
    for _ in range(30):
        size = int(rng.integers(1, 12))
        symbols = list(rng.permutation(list(ALPHABET))[:size])
        weights = rng.random(size) * (rng.random(size) > 0.2)
        if weights.sum() == 0:
            weights[0] = 1.0
        total = weights.sum() if rng.random() < 0.7 else 1.0
        calls.append(call({str(s): float(w / total) for s, w in zip(symbols, weights)}, seed_from(rng)))
    return calls


def generate_fixed(rng):
    ab = _char_counts("ABABAB", 2)
    return [call(ab, "A", 3, seed_from(rng)), call(ab, "A", 0, seed_from(rng)),
            call(_char_counts("ABCABC", 3), "ZZ", 5, seed_from(rng)),
            call(_char_counts("ABCABC", 3), "A", 5, seed_from(rng)),
            call(_char_counts("ABCABC", 3), "AB", -1, seed_from(rng)),
            call(_char_counts("ABCA", 1), "", 6, seed_from(rng))]


def generate_chars(rng):
    calls = []
    for _ in range(10):
        text = random_text(rng, 300, ("AB ", "ABC ", "ABCDE ")[int(rng.integers(0, 3))])
        n = int(rng.integers(1, 5))
        start = int(rng.integers(0, 200))
        prompt = text[start : start + n - 1 + int(rng.integers(0, 3))]
        calls.append(call(_char_counts(text, n), prompt, int(rng.integers(0, 40)), seed_from(rng)))
    return calls


def generate_words(rng):
    calls = []
    for _ in range(8):
        words = _random_words(rng, 120, WORDS[: int(rng.integers(3, 10))])
        n = int(rng.integers(2, 4))
        start = int(rng.integers(0, 100))
        calls.append(call(_word_counts(words, n), " ".join(words[start : start + n - 1]),
                          int(rng.integers(0, 20)), seed_from(rng)))
    return calls


def perplexity_fixed(rng):
    from collections import Counter

    return [call(Counter({"AB": 1}), "AB", 2, k=1), call(_char_counts("ABAB", 2), "ABBA", 2, k=0),
            call(_char_counts("ABAB", 2), "ABAB", 2, k=0), call(_char_counts("AB", 2), "A", 2, k=1),
            call(_char_counts("AB", 2), "ab", 2, k=1), call(_char_counts("AB", 2), "AB", 2, k=-1),
            call(_char_counts("AB A", 1), "BA A", 1, k=0.5)]


def perplexity_random(rng):
    calls = []
    for _ in range(10):
        train = random_text(rng, int(rng.integers(50, 400)), "ABCD ")
        test = random_text(rng, int(rng.integers(10, 100)), "ABCD ")
        n = int(rng.integers(1, 5))
        k = float((0.01, 0.1, 0.5, 1.0, 2.0)[int(rng.integers(0, 5))])
        calls.append(call(_char_counts(train, n), test, n, k=k))
    return calls


def perplexity_unseen(rng):
    calls = []
    for _ in range(8):
        train = random_text(rng, int(rng.integers(20, 100)), "AB ")
        test = random_text(rng, int(rng.integers(10, 60)), "ABXYZ ")
        n = int(rng.integers(2, 5))
        calls.append(call(_char_counts(train, n), test, n, k=float(rng.uniform(0.05, 1.5))))
    return calls


CASES = [
    Case("q1", "fit_line_worked_examples", 1, "training.fit_line", fit_line_fixed,
         "fit_line on the docstring's example, the primer's data, 0 steps and mismatched shapes", CLOSE),
    Case("q1", "fit_line_random_data", 1, "training.fit_line", fit_line_random,
         "fit_line on random noisy lines", CLOSE),
    Case("q2", "normalize_edge_cases", 1, "ngrams.normalize", normalize_fixed,
         "normalize on empty, accented, digit and whitespace text, and a non-str"),
    Case("q2", "normalize_random_text", 1, "ngrams.normalize", normalize_random,
         "normalize on random text with punctuation, digits, accents and emoji"),
    Case("q3", "char_ngrams_edge_cases", 1, "ngrams.char_ngram_counts", char_fixed,
         "char_ngram_counts on empty and short texts, overlaps, and n = 0"),
    Case("q3", "char_ngrams_random_text", 1, "ngrams.char_ngram_counts", char_random,
         "char_ngram_counts on random texts for n = 1..5"),
    Case("q4", "word_ngrams_edge_cases", 1, "ngrams.word_ngram_counts", word_fixed,
         "word_ngram_counts on empty and short word lists, a str, and n = 0"),
    Case("q4", "word_ngrams_random_words", 1, "ngrams.word_ngram_counts", word_random,
         "word_ngram_counts on random word lists for n = 1..4"),
    Case("q5", "next_symbol_edge_cases", 1, "ngrams.next_symbol_distribution", next_fixed,
         "next_symbol_distribution on the docstring's example, unseen contexts, empty counts, bad contexts", CLOSE),
    Case("q5", "next_symbol_random_chars", 1, "ngrams.next_symbol_distribution", next_random_chars,
         "next_symbol_distribution on random character counts", CLOSE),
    Case("q5", "next_symbol_random_words", 1, "ngrams.next_symbol_distribution", next_random_words,
         "next_symbol_distribution on random word counts", CLOSE),
    Case("q6", "sample_next_edge_cases", 1, "ngrams.sample_next", sample_fixed,
         "sample_next on the lecture's ' Q' table, one-symbol and zero-weight tables, bad tables"),
    Case("q6", "sample_next_random", 1, "ngrams.sample_next", sample_random,
         "sample_next on random tables, following the documented procedure"),
    Case("q7", "generate_edge_cases", 1, "ngrams.generate", generate_fixed,
         "generate on the docstring's example, length 0, unseen contexts, a negative length, N = 1"),
    Case("q7", "generate_random_chars", 1, "ngrams.generate", generate_chars,
         "generate at character level on random corpora"),
    Case("q7", "generate_random_words", 1, "ngrams.generate", generate_words,
         "generate at word level on random corpora"),
    Case("q8", "perplexity_edge_cases", 1, "ngrams.perplexity", perplexity_fixed,
         "perplexity on the docstring's example, k = 0, short text, bad symbols, negative k, N = 1", CLOSE),
    Case("q8", "perplexity_random", 1, "ngrams.perplexity", perplexity_random,
         "perplexity with add-k smoothing on random train and test texts", CLOSE),
    Case("q8", "perplexity_unseen_contexts", 1, "ngrams.perplexity", perplexity_unseen,
         "perplexity on test text with contexts never seen in training", CLOSE),
]
