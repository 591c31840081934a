"""The student package is exactly what the generator derives from the solutions."""

from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

from autograder.build import stubgen
from conftest import ROOT, SOLUTIONS, STUBS


def test_student_package_matches_generator():
    stale = stubgen.stale_files(SOLUTIONS, STUBS)
    assert stale == [], f"genai_hw/ is out of date (run `genai-hw stubs`): {stale}"


def test_stub_replaces_region_with_question_message():
    source = (
        "def f(x):\n"
        "    \"\"\"Doc.\"\"\"\n"
        "    if x < 0:\n"
        "        raise ValueError('x')\n"
        "    # BEGIN SOLUTION hw03 q4b\n"
        "    return x * 2\n"
        "    # END SOLUTION\n"
    )
    stub = stubgen.stub_source(source, "topic")
    assert "return x * 2" not in stub and "SOLUTION" not in stub
    assert "raise ValueError('x')" in stub
    namespace: dict = {}
    exec(compile(stub, "topic.py", "exec"), namespace)
    with pytest.raises(NotImplementedError) as info:
        namespace["f"](1)
    assert str(info.value) == ("f() is not written yet: implement it in genai_hw/topic.py "
                               "(homework 3, question q4b)")
    with pytest.raises(ValueError):
        namespace["f"](-1)


def test_a_module_level_region_of_helpers_is_left_out():
    source = ("import math\n\n# BEGIN SOLUTION hw01 q1\ndef _helper(x):\n    return x + 1\n# END SOLUTION\n\n\n"
              "def f(x):\n    # BEGIN SOLUTION hw01 q1\n    return _helper(x)\n    # END SOLUTION\n")
    stub = stubgen.stub_source(source, "m")
    assert "_helper" not in stub and "import math" in stub and "raise NotImplementedError(" in stub
    compile(stub, "m.py", "exec")


@pytest.mark.parametrize(
    "source, problem",
    [
        ("def f():\n    # BEGIN SOLUTION hw01 q1\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "without a BEGIN"),
        ("# BEGIN SOLUTION hw01 q1\nX = 1\n# END SOLUTION\n", "or hold only helper functions"),
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "malformed marker"),
        ("def f():\n    pass\n    # BEGIN SOLUTION hw01 q1\n    # BEGIN SOLUTION hw01 q1\n    # END SOLUTION\n",
         "nested"),
    ],
)
def test_bad_markers_are_refused(source, problem):
    with pytest.raises(stubgen.StubError, match=problem):
        stubgen.stub_source(source, "m")


def _exercises():
    """(module, function, question) for every solution region inside a function (module-level regions hold
    the reference's own helpers, which the stubs leave out)."""
    found = []
    for path in sorted(SOLUTIONS.glob("*.py")):
        source = path.read_text()
        for match in re.finditer(r"# BEGIN SOLUTION hw(\d+) (q\w+)", source):
            line = source[: match.start()].count("\n") + 1
            tree = ast.parse(source)
            functions = [n for n in ast.walk(tree)
                         if isinstance(n, ast.FunctionDef) and n.lineno < line <= n.end_lineno]
            if functions:
                function = min(functions, key=lambda n: n.end_lineno - n.lineno)
                owner = [c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and function in c.body]
                found.append((path.stem, ".".join([*owner, function.name]), match[2]))
    return found


def test_every_exercise_has_a_region():
    names = {(m, f) for m, f, _ in _exercises()}
    assert {("training", "fit_line"), ("ngrams", "normalize"), ("ngrams", "char_ngram_counts"),
            ("ngrams", "word_ngram_counts"), ("ngrams", "next_symbol_distribution"),
            ("ngrams", "sample_next"), ("ngrams", "generate"), ("ngrams", "perplexity")} <= names


@pytest.mark.parametrize("module, function, question", _exercises())
def test_stub_raises_not_implemented_naming_question(module, function, question):
    """Calling a stub with valid arguments fails loudly, naming its question."""
    import numpy as np
    import torch
    from gensim.models import KeyedVectors

    nets = (torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    optimizers = tuple(torch.optim.SGD(net.parameters(), lr=0.1) for net in nets)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731 - a denoiser
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["a", "b", "c", "d"], np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
    stub_module = importlib.import_module(f"genai_hw.{module}")
    assert stub_module.__file__.startswith(str(STUBS))
    valid = {
        "fit_line": (np.array([0.0, 1.0]), np.array([1.0, 3.0]), 0.5, 1),
        "normalize": ("Call me Ishmael.",),
        "char_ngram_counts": ("ABAB", 2),
        "word_ngram_counts": (["A", "B"], 1),
        "next_symbol_distribution": ({"AB": 1}, "A"),
        "sample_next": ({"A": 1.0}, np.random.default_rng(0)),
        "generate": ({"AB": 1}, "A", 2, np.random.default_rng(0)),
        "perplexity": ({"AB": 1}, "AB", 2),
        "pair_counts": ([1, 2],),
        "merge": ([1, 2], (1, 2), 256),
        "train_bpe": ("ab", 257),
        "encode": ("ab", {}),
        "decode": ([97], {}),
        "cosine_similarity": ([1.0, 0.0], [0.0, 1.0]),
        "nearest_words": (kv, np.array([1.0, 0.0])),
        "analogy": (kv, "a", "b", "c"),
        "one_hot": ([0], 1),
        "embed": ([[1.0]], [0]),
        "bias_projection": (kv, ["c"], ("a", "b")),
        "document_embedding": (kv, "a b"),
        "discriminator_loss": (torch.zeros(2), torch.zeros(2)),
        "generator_loss": (torch.zeros(2),),
        "gan_train_step": (*nets, *optimizers, torch.zeros(2, 2), torch.zeros(2, 3)),
        "mode_coverage": (np.zeros((1, 2)), np.zeros((1, 2)), 1.0),
        "reparameterize": (torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2)),
        "kl_to_standard_normal": (torch.zeros(1, 2), torch.zeros(1, 2)),
        "vae_loss": (torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 2), torch.zeros(1, 2)),
        "linear_betas": (10,),
        "cosine_betas": (10,),
        "alpha_bars": (torch.full((3,), 0.1),),
        "noise_step": (torch.zeros(2), 0.1, torch.zeros(2)),
        "q_sample": (torch.zeros(2, 1), torch.tensor([0, 1]), torch.tensor([0.9, 0.8]), torch.zeros(2, 1)),
        "timestep_embedding": (torch.tensor([0, 1]), 4),
        "denoising_loss": (zero, torch.zeros(2, 1), torch.tensor([0, 1]), torch.zeros(2, 1), torch.tensor([0.9, 0.8])),
        "p_sample_step": (zero, torch.zeros(2, 1), 1, torch.full((2,), 0.1), torch.tensor([0.9, 0.81]),
                          torch.zeros(2, 1)),
        "sample": (zero, (2, 1), torch.full((2,), 0.1), torch.Generator().manual_seed(0)),
    }
    ids = torch.zeros(1, 3, dtype=torch.long)
    valid.update({
        "softmax": (torch.zeros(3),),
        "causal_mask": (3,),
        "scaled_dot_product_attention": (torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(3, 2)),
        "multi_head_attention": (torch.zeros(1, 3, 4), *[torch.eye(4)] * 4, 2),
        "TransformerBlock.forward": (stub_module.TransformerBlock(4, 2), torch.zeros(1, 3, 4))
        if module == "attention" else (),
        "TinyGPT.forward": (stub_module.TinyGPT(5, 4, 8, 2, 1), ids) if module == "attention" else (),
        "next_token_loss": (torch.zeros(1, 3, 5), ids),
        "apply_temperature": (torch.zeros(3), 1.0),
        "sample_next_token": (torch.zeros(3), 1.0, torch.Generator()),
    })
    if module == "sampling":
        valid["generate"] = (torch.nn.Module(), [1, 2], 3, 1.0, torch.Generator())
    if module == "finetune":  # a LoRALinear without its (stubbed) constructor, for the methods and merge_lora
        lora = stub_module.LoRALinear.__new__(stub_module.LoRALinear)
        torch.nn.Module.__init__(lora)
        valid.update({
            "count_parameters": (nets[0],),
            "LoRALinear.__init__": (stub_module.LoRALinear.__new__(stub_module.LoRALinear), nets[0], 1, 2.0),
            "LoRALinear.forward": (lora, torch.zeros(1, 3)),
            "apply_lora": (torch.nn.Sequential(nets[0]), 2, 4.0, ["0"]),
            "merge_lora": (lora,),
            "random_windows": (torch.arange(5), 2, 3, torch.Generator()),
            "finetune_step": (nets[0], optimizers[0], ids),
            "training_memory": (10, 4),
        })
    target = stub_module
    for part in function.split("."):
        target = getattr(target, part)
    name = function.split(".")[-1]
    with pytest.raises(NotImplementedError, match=rf"{name}\(\).*question {question}\)"):
        target(*valid[function])


def test_solutions_import_their_own_package_relatively():
    """The grader loads the reference under another name: absolute imports would escape it."""
    for path in SOLUTIONS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("genai_hw"):
                pytest.fail(f"{path.name}: absolute import of {node.module}")
            if isinstance(node, ast.Import) and any(a.name.startswith("genai_hw") for a in node.names):
                pytest.fail(f"{path.name}: absolute import of genai_hw")


def test_docstrings_survive_in_stubs():
    for module in ("training", "ngrams"):
        ref = importlib.import_module(f"genai_hw.{module}")
        for name, function in inspect.getmembers(ref, inspect.isfunction):
            if function.__module__ == ref.__name__ and not name.startswith("_"):
                assert function.__doc__ and len(function.__doc__) > 40, f"{module}.{name} lacks a docstring"
    assert (ROOT / "genai_hw" / "data" / "moby_dick.txt").is_file()
