"""Homework 2 (tokens and embeddings): reference, grading, and the no-gensim-shortcut rule."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import HW02, ROOT, SOLUTIONS, STUBS, assert_costs_exactly, plant

CASES = load_cases(ROOT / "assignments" / HW02 / "hidden_cases.py")
DATA = SOLUTIONS / "data"


@pytest.fixture(scope="module")
def word_vectors(reference):
    return sys.modules["genai_hw_reference.data"].load_word_vectors()


@pytest.mark.parametrize("seed", [0, 31337])
def test_reference_passes_every_case(reference, seed):
    results = grade_cases(CASES, SOLUTIONS, SOLUTIONS, seed, data_dir=DATA)
    assert [(r.case.name, r.message) for r in results if not r.passed] == []


def test_stubs_fail_every_case(reference):
    results = grade_cases(CASES, STUBS, SOLUTIONS, 1, data_dir=DATA)
    assert all(not r.passed and "NotImplementedError" in r.message for r in results)


BUGS = {
    # ties go to the last pair instead of the first occurrence
    "q3": ("tokenizer", "    best = np.lexsort((first, -counts))[0]", "    best = np.lexsort((-first, -counts))[0]"),
    # forgets to leave out the excluded words (analogy relies on it too)
    "q8": ("embeddings", "        if int(index) not in excluded:", "        if True:"),
    # the gensim shortcut the rules forbid
    "q9": ("embeddings", "    return [word for word, _ in nearest_words(word_vectors, target, k=k, exclude=(a, b, c))]",
           "    return [w for w, _ in word_vectors.most_similar(positive=[b, c], negative=[a], topn=k)]"),
    # one-hot rows and columns swapped
    "q10": ("embeddings", "    matrix = np.zeros((vocab_size, ids.size))\n    matrix[ids, np.arange(ids.size)] = 1.0",
           "    matrix = np.zeros((ids.size, vocab_size))\n    matrix[np.arange(ids.size), ids] = 1.0\n"
           "    matrix = matrix.T if ids.size == vocab_size else matrix"),
}
BROKEN_BY = {"q3": {"q3"}, "q8": {"q8", "q9"}, "q9": {"q9"}, "q10": {"q10", "q11"}}


@pytest.mark.parametrize("question", sorted(BUGS))
def test_planted_bug_costs_exactly_its_questions(reference, tmp_path, question):
    module, old, new = BUGS[question]
    package = plant(tmp_path, {module: [(old, new)]})
    results = grade_cases(CASES, package, SOLUTIONS, 8, data_dir=DATA)
    assert_costs_exactly(results, BROKEN_BY[question], question)
    if question == "q9":
        messages = " ".join(r.message for r in results if r.case.question == "q9")
        assert "most_similar is off limits" in messages


def test_analogy_equals_gensim_most_similar(reference, word_vectors):
    embeddings = sys.modules["genai_hw_reference.embeddings"]
    for a, b, c in [("woman", "man", "mother"), ("woman", "man", "girl"), ("he", "his", "you"),
                    ("man", "king", "woman"), ("paris", "france", "tokyo")]:
        if not all(w in word_vectors for w in (a, b, c)):
            continue
        gensim = [w for w, _ in word_vectors.most_similar(positive=[b, c], negative=[a], topn=5)]
        assert embeddings.analogy(word_vectors, a, b, c, k=5) == gensim
    assert embeddings.analogy(word_vectors, "woman", "man", "mother") == ["father"]
    assert embeddings.analogy(word_vectors, "he", "his", "you") == ["your"]


def test_lecture_vector_figures(reference, word_vectors):
    cow = word_vectors["cow"]
    assert np.allclose(cow[:3] * (0.189 / cow[0]), [0.189, -0.075, -0.156], atol=2e-3)  # lecture's vector, rescaled
    embeddings = sys.modules["genai_hw_reference.embeddings"]
    assert embeddings.cosine_similarity(word_vectors["horse"], word_vectors["cow"]) > \
        embeddings.cosine_similarity(word_vectors["horse"], word_vectors["ocean"])
    projection = embeddings.bias_projection(word_vectors, ["nurse", "carpenter"])
    assert projection["nurse"] < 0 < projection["carpenter"]
    E = np.random.default_rng(0).normal(size=(4, 9))
    ids = [3, 0, 3, 8]
    assert np.allclose(embeddings.embed(E, ids), E[:, ids])


def test_fast_bpe_equals_the_documented_loop(reference):
    tokenizer = sys.modules["genai_hw_reference.tokenizer"]

    def loop(text, vocab_size):
        ids, merges = list(text.encode("utf-8")), {}
        for new_id in range(256, vocab_size):
            counts = tokenizer.pair_counts(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = new_id
            ids = tokenizer.merge(ids, pair, new_id)
        return merges, ids

    rng = random.Random(4)
    for _ in range(200):
        text = "".join(rng.choice("aab 后😀") for _ in range(rng.randint(0, 80)))
        merges, ids = loop(text, rng.randint(256, 290))
        assert list(tokenizer.train_bpe(text, 256 + len(merges)).items()) == list(merges.items())
        assert tokenizer.encode(text, merges) == ids
        assert tokenizer.decode(ids, merges) == text


def test_word_vectors_ship_with_the_package():
    path = Path(SOLUTIONS / "data" / "word2vec_bolukbasi_f16.npz")
    assert path.is_file() and (STUBS / "data" / path.name).read_bytes() == path.read_bytes()


def test_the_notebooks_word_vectors_are_what_gensims_add_vectors_makes(word_vectors):
    from gensim.models import KeyedVectors

    with np.load(DATA / "word2vec_bolukbasi_f16.npz") as data:
        words = data["words"].tobytes().decode("utf-8").split("\n")
        vectors = data["vectors"].astype(np.float32)
    theirs = KeyedVectors(vector_size=300)
    theirs.add_vectors(words, vectors)
    assert len(word_vectors) == len(theirs) == 26_423 and word_vectors.index_to_key == theirs.index_to_key
    assert word_vectors.key_to_index == theirs.key_to_index and word_vectors.vectors.dtype == np.float32
    assert np.array_equal(word_vectors.vectors, theirs.vectors)
    assert word_vectors.most_similar("cow", topn=3) == theirs.most_similar("cow", topn=3)
    assert word_vectors.next_index == theirs.next_index  # where add_vector puts a word (after the others)
