"""What crosses from the student process is plain data, never a live object."""

from __future__ import annotations

import math
import sys
from collections import Counter

import numpy as np
import pytest

from autograder.grading import wire
from autograder.grading.cases import approx, exact
from autograder.grading.cases import tensor as cases_tensor
from conftest import HW03, ROOT, SOLUTIONS


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, "é后😀", [1, (2, "a")], {"a": 1.0}, Counter({("A", "B"): 2}),
    {("THE", "WHITE"): 0.5}, {1, 2}, np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array([0.5, np.nan]), np.float64(1.5), np.int32(7), [float("inf"), -math.inf],
])
def test_round_trip_keeps_value_and_type(value):
    back = wire.loads(wire.dumps(value))
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value, equal_nan=True)
    else:
        assert back == value


class Liar:
    def __eq__(self, other):
        return True


class SneakyStr(str):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [Liar(), SneakyStr("x"), np.array([Liar()], dtype=object), (lambda: 1)])
def test_foreign_objects_arrive_as_unsupported_and_fail(value):
    back = wire.loads(wire.dumps(value))
    assert isinstance(back, wire.Unsupported)
    assert exact("x", back) is not None


def test_decoder_refuses_malformed_data():
    bad_data = ['{"t": "eval", "v": "1"}', '{"t": "dict", "v": [[1]]}', '[1, 2]',
                '{"t": "ndarray", "dtype": "O", "shape": [1], "v": [1]}']
    for bad in bad_data:
        with pytest.raises(wire.WireError):
            wire.loads(bad)


def test_comparators_explain_what_differs():
    assert "expected a collections.Counter" in exact(Counter({"A": 1}), {"A": 1})
    assert "expected a tuple" in exact((1.0, 2.0), [1.0, 2.0])
    assert "missing keys" in exact({"A": 0.5, "B": 0.5}, {"A": 1.0})
    assert approx(1e-6)({"A": 0.5}, {"A": 0.5 + 1e-9}) is None
    assert approx(1e-6)(1.0, True) is not None
    assert exact(np.array([1, 2]), np.array([1, 2, 3])).startswith("expected shape")


def test_tensors_cross_as_data_and_compare_by_value(monkeypatch):
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    back = wire.loads(wire.dumps(t))  # the grader's side: plain data, no torch needed
    assert isinstance(back, wire.Tensor) and back.dtype == "float32" and back.shape == (2, 3)
    assert np.array_equal(back.array, t.numpy()) and back.array.dtype == np.float32
    assert repr(back) == "tensor([[0., 1., 2.], [3., 4., 5.]], dtype=torch.float32)"
    assert exact(t, back) is None and exact(back, t) is None
    assert "expected dtype torch.float32" in exact(back, wire.loads(wire.dumps(t.double())))
    assert "expected a torch.Tensor" in exact(back, t.numpy())
    assert approx(1e-5, 1e-6)(back, t + 1e-7) is None and approx(1e-5, 1e-6)(back, t + 1) is not None
    monkeypatch.setattr(wire, "REAL_TENSORS", True)  # a runner's side: real tensors, where it computes
    real = wire.loads(wire.dumps(back))
    assert isinstance(real, torch.Tensor) and real.dtype == torch.float32 and torch.equal(real, t)
    assert isinstance(wire.loads(wire.dumps(cases_tensor([1, 2], "int64"))), torch.Tensor)


def test_a_tensor_of_a_dtype_the_wire_does_not_carry_is_reported_as_such():
    torch = pytest.importorskip("torch")
    back = wire.loads(wire.dumps(torch.zeros(2, dtype=torch.complex64)))
    assert isinstance(back, wire.Unsupported) and "complex64" in back.type_name
    assert "returned a torch.Tensor of dtype complex64" in exact(cases_tensor([0.0, 0.0]), back)
    with pytest.raises(wire.WireError):
        wire.Tensor(np.zeros(2), "complex64")


def test_the_graders_process_compares_tensors_without_importing_torch():
    """Making hw03's inputs, sending them, and comparing tensor outputs: torch stays out of the process."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from autograder.grading import harness\n"
        f"cases = harness.load_cases(Path({str(ROOT / 'assignments' / HW03 / 'hidden_cases.py')!r}))\n"
        f"results = harness.grade_cases(cases, Path({str(SOLUTIONS)!r}), Path({str(SOLUTIONS)!r}), 4)\n"
        "assert [r.message for r in results if not r.passed] == []\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'gensim', 'genai_hw')], 'imported'\n"
        "print('ok', len(results))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr[-2000:]


def test_on_a_gpu_grader_float32_tensors_may_differ_by_float32_rounding_only(monkeypatch):
    import torch

    from autograder.grading import cases

    compare = cases.approx(rtol=1e-7)
    expected = torch.tensor([1.0, 2.0, 3.0])
    close = expected * (1 + 3e-6)
    assert compare(expected, close) is not None  # on the CPU the case's own tolerance holds
    monkeypatch.setattr(cases, "STUDENT_DEVICE", "cuda")
    assert compare(expected, close) is None  # float32 summed in another order on the GPU
    assert compare(expected, expected * (1 + 1e-3)) is not None  # a real error still fails
    assert compare(expected.double(), close.double()) is not None  # float64 keeps the case's tolerance
    assert cases.exact(torch.tensor([1, 2]), torch.tensor([1, 3])) is not None


def test_a_training_setup_travels_as_its_seed_and_is_built_alike_on_both_sides():
    import torch

    from autograder.grading import wire

    spec = wire.TrainStepSpec("gan", 5, {"lr": 0.1, "batch": 4})
    back = wire.loads(wire.dumps(spec))
    assert isinstance(back, wire.TrainStepSpec) and (back.kind, back.seed, back.options) == ("gan", 5, spec.options)
    first, second = wire.realize_args((spec,)), wire.realize_args((back,))
    assert len(first) == 6 and type(first[2]) is wire.PlainSGD and first[2].lr == 0.1
    adam = wire.realize_args((wire.TrainStepSpec("gan", 5, {"optimizer": "adam"}),))
    assert type(adam[2]) is wire.PlainAdam and type(adam[3]) is wire.PlainAdam
    for a, b in zip(first[0].parameters(), second[0].parameters()):
        assert torch.equal(a, b) and torch.equal(a.grad, b.grad)
    assert torch.equal(first[4], second[4]) and first[4].shape == (4, 2)
    state = wire.loads(wire.dumps(wire.observe((spec,), first)))
    assert set(state) == {"generator", "discriminator"} and all(a.dtype == np.float64 for a in state["generator"])
    assert wire.observe(("not a set-up",), ("x",)) is None and wire.is_resource(spec)
    with pytest.raises(wire.WireError):
        wire.decode({"t": "setup", "kind": "rocket", "seed": 1, "v": {"t": "dict", "v": []}})
    with pytest.raises(wire.WireError):
        wire.decode({"t": "setup", "kind": "gan", "seed": "1", "v": {"t": "dict", "v": []}})


def test_a_model_and_a_torch_generator_travel_as_seeds_and_are_built_alike():
    import torch

    spec = wire.ModelSpec("denoiser", 9, {"dim": 4, "steps": 10, "hidden": 8})
    back = wire.loads(wire.dumps([spec, wire.TorchRngSpec(3)]))
    assert isinstance(back[0], wire.ModelSpec) and (back[0].seed, back[0].options) == (9, spec.options)
    assert isinstance(back[1], wire.TorchRngSpec) and back[1].seed == 3
    assert wire.is_resource(back[0]) and wire.is_resource(back[1])
    first, second = wire.realize(back), wire.realize([spec, wire.TorchRngSpec(3)])
    x, t = torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 3, 9])
    assert torch.equal(first[0](x, t), second[0](x, t)) and first[0](x, t).shape == x.shape
    assert torch.equal(torch.randn(3, generator=first[1]), torch.randn(3, generator=second[1]))
    for bad_t, words in ((t.float(), "long tensor"), (t[:2], "shape (5,)"), (t + 1, "timesteps 0 .. 9")):
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            first[0](x, bad_t)
    zero = wire.ModelSpec("denoiser", 0, {"dim": 4, "steps": 10, "zero": True}).make()
    assert torch.equal(zero(x, t), torch.zeros_like(x))
    with pytest.raises(wire.WireError):
        wire.decode({"t": "model", "kind": "gan", "seed": 1, "v": {"t": "dict", "v": []}})
    with pytest.raises(wire.WireError):
        wire.decode({"t": "trng", "v": "1"})


def test_the_packages_block_and_model_travel_as_seeds_with_every_weight_drawn(monkeypatch):
    """A "block" or "gpt" spec builds the package's own class (its given __init__) and draws every parameter
    from the seed: the same network in every process, with layer norms that are not the identity."""
    import torch

    for name in [n for n in sys.modules if n == "genai_hw" or n.startswith("genai_hw.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(SOLUTIONS.parent))  # the reference package, as a runner imports it: genai_hw
    try:
        options = {"vocab_size": 11, "context_length": 6, "d_model": 8, "n_heads": 2, "n_layers": 2}
        spec = wire.loads(wire.dumps(wire.ModelSpec("gpt", 4, options)))
        first, second = spec.make(), wire.ModelSpec("gpt", 4, options).make()
        assert type(first).__module__ == "genai_hw.attention" and type(first).__name__ == "TinyGPT"
        for (name, p), q in zip(first.named_parameters(), second.parameters()):
            assert torch.equal(p, q), name
        ln = dict(first.named_parameters())["blocks.0.ln_1.weight"]
        assert not torch.equal(ln, torch.ones_like(ln)) and (ln - 1).abs().max() < 1.5
        other = wire.ModelSpec("gpt", 5, options).make()
        assert not torch.equal(first.unembedding.weight, other.unembedding.weight)
        zero = wire.ModelSpec("block", 0, {"d_model": 4, "n_heads": 2, "scale": 0.0}).make()
        x = torch.randn(1, 3, 4)
        assert torch.equal(zero(x), x)  # residual branches with zero weights add nothing
    finally:
        sys.path.remove(str(SOLUTIONS.parent))
        for name in [n for n in sys.modules if n == "genai_hw" or n.startswith("genai_hw.")]:
            del sys.modules[name]


def test_the_language_model_for_generate_checks_how_it_is_called():
    import torch

    lm = wire.realize(wire.loads(wire.dumps(wire.ModelSpec("lm", 3, {"vocab_size": 7, "context_length": 4}))))
    assert lm.context_length == 4
    logits = lm(torch.tensor([[1, 2, 3]]))
    assert logits.shape == (1, 3, 7)
    assert not torch.allclose(logits[0, 1], logits[0, 2])  # every position scores its own prefix
    assert not torch.allclose(lm(torch.tensor([[2, 3]]))[0, -1], logits[0, -1])  # and the crop matters
    for bad, words in ((torch.tensor([[1, 2, 3, 4, 5]]), "1 to 4 tokens"), (torch.tensor([1, 2]), r"\(1, n\)"),
                       (torch.tensor([[1.0]]), r"\(1, n\)"), (torch.tensor([[7]]), "0 .. 6")):
        with pytest.raises(ValueError, match=words):
            lm(bad)


def test_a_returned_module_crosses_as_its_class_name_parameters_and_what_trains(monkeypatch):
    """``LoRALinear(...)`` and ``merge_lora`` return modules: they cross as plain data (never the object) and
    compare by class name, parameters and which of them train; a dict that looks alike is not a module."""
    import torch

    for name in [n for n in sys.modules if n == "genai_hw" or n.startswith("genai_hw.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(SOLUTIONS.parent))
    try:
        layer = wire.ModelSpec("lora", 3, {"in": 4, "out": 3, "r": 2, "alpha": 4.0}).make()
        assert type(layer).__name__ == "LoRALinear" and float(layer.B.detach().abs().sum()) > 0  # B drawn, not 0
        assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
        state = wire.loads(wire.dumps(layer))
        assert isinstance(state, wire.ModuleState) and state.type_name == "LoRALinear"
        assert sorted(state.parameters) == ["A", "B", "base.bias", "base.weight"] and state.trainable == ["A", "B"]
        assert approx(1e-6, 1e-7)(state, wire.loads(wire.dumps(layer))) is None
        plain = wire.loads(wire.dumps(torch.nn.Linear(4, 3)))
        assert approx(1e-6, 1e-7)(state, plain) == "expected a LoRALinear, got a Linear"
        layer.A.requires_grad_(False)
        assert "the parameters that train" in approx(1e-6, 1e-7)(state, wire.loads(wire.dumps(layer)))
        lookalike = {name: value for name, value in state.parameters.items()}
        assert approx(1e-6, 1e-7)(state, lookalike).startswith("expected a torch.nn.Module (LoRALinear)")
        for bad in ({"t": "module", "type": "X", "v": [], "trainable": []},
                    {"t": "module", "type": "X", "v": {"t": "dict", "v": []}, "trainable": [1]}):
            with pytest.raises(wire.WireError):
                wire.decode(bad)
    finally:
        sys.path.remove(str(SOLUTIONS.parent))
        for name in [n for n in sys.modules if n == "genai_hw" or n.startswith("genai_hw.")]:
            del sys.modules[name]


def test_the_plain_sgd_of_the_training_setups_steps_exactly_as_torchs():
    """finetune_step's set-up avoids torch.optim (its first use imports torch._dynamo); its stand-in must move
    the parameters bit for bit as ``torch.optim.SGD`` does, and forgetting ``zero_grad`` must still show."""
    import torch

    g = torch.Generator().manual_seed(0)
    ours, theirs = (torch.nn.Linear(4, 3) for _ in range(2))
    theirs.load_state_dict(ours.state_dict())
    plain, reference = wire.PlainSGD(ours.parameters(), 0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    x = torch.randn(5, 4, generator=g)
    for step in range(3):
        for model, optimizer in ((ours, plain), (theirs, reference)):
            if step != 1:  # step 1 forgets zero_grad: the gradients add up on both sides alike
                optimizer.zero_grad()
            model(x).square().sum().backward()
            optimizer.step()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(p, q)


@pytest.mark.parametrize("lr", [0.05, 1e-3])
def test_the_plain_adam_of_the_gan_setup_steps_exactly_as_torchs(lr):
    """The GAN training set-up avoids torch.optim too (homework 3's cases); its Adam must move the parameters
    bit for bit as ``torch.optim.Adam(params, lr)`` does over several steps, a forgotten ``zero_grad`` and a
    parameter without a gradient (which neither counts as a step) included."""
    import torch

    g = torch.Generator().manual_seed(1)
    ours, theirs = (torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)) for _ in range(2))
    theirs.load_state_dict(ours.state_dict())
    start = [p.detach().clone() for p in ours.parameters()]
    plain, reference = wire.PlainAdam(ours.parameters(), lr), torch.optim.Adam(theirs.parameters(), lr=lr)
    x = torch.randn(5, 4, generator=g)
    for step in range(6):
        for model, optimizer in ((ours, plain), (theirs, reference)):
            if step != 2:
                optimizer.zero_grad()
            layer = model[0] if step == 4 else model  # step 4: the second layer gets no gradient
            (layer(x).square().sum() if step == 4 else model(x).square().sum()).backward()
            optimizer.step()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(p, q), f"step {step}"
    assert all(not torch.equal(p, q) for p, q in zip(ours.parameters(), start))


def test_the_student_sides_word_vectors_are_what_gensims_add_vectors_makes():
    from gensim.models import KeyedVectors

    with np.load(SOLUTIONS / "data" / "word2vec_bolukbasi_f16.npz") as data:
        words = data["words"].tobytes().decode("utf-8").split("\n")
        vectors = data["vectors"].astype(np.float32)
    ours = wire.keyed_vectors(words, vectors.copy())
    theirs = KeyedVectors(vector_size=vectors.shape[1])
    theirs.add_vectors(words, vectors)
    assert len(ours) == len(theirs) == 26_423 and ours.vector_size == theirs.vector_size == 300
    assert ours.index_to_key == theirs.index_to_key and ours.key_to_index == theirs.key_to_index
    assert ours.vectors.dtype == theirs.vectors.dtype == np.float32
    assert np.array_equal(ours.vectors, theirs.vectors)
    assert np.array_equal(ours["cow"], theirs["cow"]) and ours.get_index("whale") == theirs.get_index("whale")
    assert np.array_equal(ours.get_vector("cow", norm=True), theirs.get_vector("cow", norm=True))
    assert ours.most_similar("cow", topn=5) == theirs.most_similar("cow", topn=5)
    assert ours.has_index_for("ocean") and not ours.has_index_for("no_such_word_xyz")
    assert ours.next_index == theirs.next_index
    for kv in (ours, theirs):  # one more word goes after the others, as with gensim's own
        with pytest.warns(UserWarning, match="Adding single vectors"):
            kv.add_vector("no_such_word_xyz", np.ones(300, dtype=np.float32))
    assert ours.get_index("no_such_word_xyz") == theirs.get_index("no_such_word_xyz") == 26_423
    assert np.array_equal(ours.vectors, theirs.vectors) and ours.index_to_key == theirs.index_to_key
