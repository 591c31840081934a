"""What crosses from the student process is plain data, never a live object."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from autograder import wire
from autograder.cases import approx, exact


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


def test_tensors_cross_as_data_and_compare_by_value():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    back = wire.loads(wire.dumps(t))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32 and torch.equal(back, t)
    assert exact(t, back) is None
    assert "expected dtype" in exact(t, back.double())
    assert "expected a torch.Tensor" in exact(t, t.numpy())
    assert approx(1e-5, 1e-6)(t, t + 1e-7) is None and approx(1e-5, 1e-6)(t, t + 1) is not None


def test_on_a_gpu_grader_float32_tensors_may_differ_by_float32_rounding_only(monkeypatch):
    import torch

    from autograder import cases

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

    from autograder import wire

    spec = wire.TrainStepSpec("gan", 5, {"lr": 0.1, "batch": 4})
    back = wire.loads(wire.dumps(spec))
    assert isinstance(back, wire.TrainStepSpec) and (back.kind, back.seed, back.options) == ("gan", 5, spec.options)
    first, second = wire.realize_args((spec,)), wire.realize_args((back,))
    assert len(first) == 6 and isinstance(first[2], torch.optim.SGD)
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
