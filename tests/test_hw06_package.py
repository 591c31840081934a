"""Homework 6's package: the reference LoRA against peft's (same outputs for the same A and B, the same merged
weights as ``merge_and_unload``, the same trainable count for the same targets, the same initial draw's
spread), the adapted and merged TinyGPT against the pretrained one, a fine-tuning step that moves only what
trains, and the cost table against the bytes torch really holds."""

from __future__ import annotations

import sys

import peft  # a development dependency (pyproject's dev extras), never in a grading image
import pytest
import torch
from torch import nn


@pytest.fixture(scope="module")
def f(reference):
    return sys.modules[f"{reference.__name__}.finetune"]


@pytest.fixture(scope="module")
def a(reference):
    return sys.modules[f"{reference.__name__}.attention"]


class Holder(nn.Module):
    """One linear layer inside a model, as peft wants it."""

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _peft_lora(base: nn.Linear, r: int, alpha: float):
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["layer"], init_lora_weights="gaussian")
    return peft.get_peft_model(Holder(base), config)


@pytest.mark.parametrize("n_in, n_out, r, alpha, bias", [(6, 4, 2, 6.0, True), (16, 16, 4, 16.0, False),
                                                         (5, 12, 1, 1.0, True)])
def test_the_lora_layer_and_its_merge_agree_with_peft(f, n_in, n_out, r, alpha, bias):
    g = torch.Generator().manual_seed(n_in)
    base = nn.Linear(n_in, n_out, bias=bias)
    ours = f.LoRALinear(_copy(base), r, alpha, g)
    theirs = _peft_lora(_copy(base), r, alpha)
    layer = theirs.base_model.model.layer
    with torch.no_grad():  # the same A and B on both sides, B not zero
        layer.lora_A["default"].weight.copy_(ours.A)
        ours.B.copy_(torch.randn(n_out, r, generator=g))
        layer.lora_B["default"].weight.copy_(ours.B)
    assert ours.scale == layer.scaling["default"] == alpha / r
    x = torch.randn(3, 2, n_in, generator=g)
    assert torch.allclose(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
    merged = f.merge_lora(ours)
    unloaded = theirs.merge_and_unload().layer
    assert type(merged) is nn.Linear
    assert torch.allclose(merged.weight, unloaded.weight, rtol=1e-6, atol=1e-6)
    assert (merged.bias is None) == (unloaded.bias is None) and (not bias or torch.equal(merged.bias, unloaded.bias))
    assert torch.allclose(merged(x), ours(x), rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in merged.parameters())


def _copy(layer: nn.Linear) -> nn.Linear:
    twin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    twin.load_state_dict(layer.state_dict())
    return twin


def test_a_new_adapter_starts_equal_to_its_base_and_draws_a_as_peft_does(f):
    base = nn.Linear(4096, 64)
    layer = f.LoRALinear(base, 8, 16.0, torch.Generator().manual_seed(0))
    x = torch.randn(5, 4096)
    assert torch.equal(layer(x), base(x)) and torch.equal(layer.B, torch.zeros(64, 8))
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    torch.manual_seed(0)
    peft_a = _peft_lora(nn.Linear(4096, 64), 8, 16.0).base_model.model.layer.lora_A["default"].weight
    # peft draws from torch's global generator, so the values differ; the distribution is the same: N(0, 1/r^2)
    for drawn in (layer.A.detach(), peft_a.detach()):
        assert drawn.shape == (8, 4096) and abs(float(drawn.mean())) < 0.005
        assert abs(float(drawn.std()) - 1 / 8) < 0.002
    again = f.LoRALinear(nn.Linear(4096, 64), 8, 16.0, torch.Generator().manual_seed(0))
    assert torch.equal(again.A, layer.A)  # the generator decides the draw


@pytest.mark.parametrize("r, targets", [(4, ["mlp.0", "mlp.2"]), (1, ["unembedding"]), (8, ["mlp.2", "unembedding"]),
                                        (2, ["blocks.3.mlp.0"])])
def test_apply_lora_trains_what_peft_trains_and_leaves_the_model_unchanged_at_first(f, a, r, targets):
    model, _ = a.load_tiny_gpt()
    ids = torch.randint(0, 27, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids)
    trainable = f.apply_lora(model, r, 2.0 * r, targets, torch.Generator().manual_seed(2))
    theirs, _ = a.load_tiny_gpt()
    peft_model = peft.get_peft_model(theirs, peft.LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets))
    assert trainable == peft_model.get_nb_trainable_parameters()[0] == f.count_parameters(model, trainable_only=True)
    assert f.count_parameters(model) == peft_model.get_nb_trainable_parameters()[1]
    with torch.no_grad():
        assert torch.equal(model(ids), before)  # B = 0: exactly the pretrained model
    if targets == ["mlp.0", "mlp.2"] and r == 4:
        assert trainable == 20_480 and f.count_parameters(model) == 835_072  # the docstring's example


def test_apply_lora_checks_everything_before_changing_the_model(f, a):
    model, _ = a.load_tiny_gpt()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for targets in (["mlp.0", "ln_f"], ["mlp.0", "p.0"]):
        with pytest.raises(ValueError):
            f.apply_lora(model, 2, 4.0, targets)
        assert all(p.requires_grad for p in model.parameters())
        assert not any(type(m).__name__ == "LoRALinear" for m in model.modules())
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_fine_tuning_moves_only_the_adapters_and_the_merged_model_computes_the_same(f, a):
    model, _ = a.load_tiny_gpt()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    f.apply_lora(model, 4, 8.0, ["mlp.0", "mlp.2", "unembedding"], torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    g = torch.Generator().manual_seed(1)
    ids = f.random_windows(torch.randint(0, 27, (500,), generator=g), 4, 32, g)
    losses = [f.finetune_step(model, optimizer, ids) for _ in range(5)]
    assert losses[-1] < losses[0]  # one batch, five steps: it learns that batch
    for name, value in model.state_dict().items():
        plain = name.replace(".base.", ".")
        if plain in frozen:
            assert torch.equal(value, frozen[plain]), f"{name} moved"
    with torch.no_grad():
        adapted = model(ids)
        for name, module in list(model.named_modules()):
            if isinstance(module, f.LoRALinear):
                parent, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent), child, f.merge_lora(module))
        assert not any(isinstance(m, f.LoRALinear) for m in model.modules())
        assert torch.allclose(model(ids), adapted, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lora", [False, True])
def test_the_cost_table_is_what_torch_holds(f, a, lora):
    """weights, gradients and AdamW's state of the tiny GPT, in bytes, against the tensors themselves."""
    model, _ = a.load_tiny_gpt()
    if lora:
        f.apply_lora(model, 4, 8.0, ["mlp.0", "mlp.2"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    f.finetune_step(model, optimizer, torch.randint(0, 27, (2, 16)))
    measured = {
        "weights": sum(p.numel() * p.element_size() for p in model.parameters()),
        "gradients": sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None),
        "optimizer": sum(t.numel() * t.element_size() for state in optimizer.state.values()
                         for name, t in state.items() if name != "step"),  # plus one 0-dim step count each
    }
    table = f.training_memory(f.count_parameters(model), f.count_parameters(model, trainable_only=True))
    assert {k: table[k] for k in measured} == measured
    assert table["total"] == sum(measured.values())


def test_the_new_domain_is_pythons_own_text_over_the_27_symbols(f):
    from pydoc_data.topics import topics

    text = f.load_python_docs()
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ ") and "  " not in text
    assert len(text) > 0.7 * sum(len(t) for t in topics.values())
    assert "ASSERT STATEMENT" in text and "RETURN" in text
    assert f.to_27_symbols("def f(x):\n    return x") == "DEF F X RETURN X"
