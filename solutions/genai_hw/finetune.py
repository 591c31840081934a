"""Fine-tuning a pretrained model: count what trains, LoRA adapters, a training step, and what it all costs.

The primers' two stages: *pre-training* teaches a model the language from a huge corpus (homework 5's
tiny GPT read Moby-Dick), and *fine-tuning* adapts that model to a small corpus of its own (here:
Python's documentation, or a text of your own). A *full* fine-tune keeps training every weight; the
optimiser then holds a gradient and two running averages (Adam) for each of them, four copies of the
model in all. LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") freezes the
pretrained weights and learns a small change of chosen layers instead: a weight matrix ``W`` of shape
(out, in) is used as ``W + (alpha / r) B A`` with ``B`` of shape (out, r) and ``A`` of shape (r, in), for a
small rank ``r``. Only ``A`` and ``B`` train: ``r * (in + out)`` numbers instead of ``in * out``. That is how
the lecture's image model learns a face from a few photos on one GPU.

Layout: as in torch, an ``nn.Linear(in, out)`` holds ``weight`` of shape (out, in) and computes
``x @ weight.T + bias`` on inputs ``x`` of shape (..., in) (any number of leading dimensions).

The model fine-tuned in the notebook is homework 5's :class:`genai_hw.attention.TinyGPT`, given solved in
this homework. Its ``nn.Linear`` layers are the two layers of each block's MLP (``blocks.i.mlp.0``,
``blocks.i.mlp.2``) and the unembedding; its attention projections are plain weight matrices of
``SelfAttention``, so LoRA here adapts the per-token networks and the unembedding.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from .attention import next_token_loss


def _check_module(name: str, value: Any) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a number, got {type(alpha).__name__} {alpha!r}"[:200])
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return alpha


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}"[:200])
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """How many numbers a model holds: the sum of ``numel()`` over ``model.parameters()``.

    Args:
        model: any ``torch.nn.Module``.
        trainable_only: count only the parameters that train (``requires_grad`` True); frozen ones are
            left out.

    Returns:
        An int. A parameter shared by two layers (the same tensor object, for example tied embedding and
        unembedding weights) counts once: ``model.parameters()`` yields each parameter once, while
        ``model.state_dict()`` would list it under both names.

    Worked example: ``nn.Linear(3, 2)`` has a (2, 3) weight and a bias of 2: ``count_parameters`` is 8.
    After ``layer.bias.requires_grad_(False)``, ``count_parameters(layer, trainable_only=True)`` is 6 and
    ``count_parameters(layer)`` still 8. Homework 5's TinyGPT has 814,592 parameters.

    Raises:
        TypeError: if ``model`` is not a ``torch.nn.Module``.
    """
    _check_module("model", model)
    # BEGIN SOLUTION hw06 q1
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    # END SOLUTION


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank change: ``base(x) + (alpha / r) * x A^T B^T``.

    ``LoRALinear(base, r, alpha, generator)`` wraps ``base`` (an ``nn.Linear(in, out)``); the wrapped model
    computes what the base computed as long as ``B`` is 0, and fine-tuning moves only ``A`` and ``B``.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, generator: torch.Generator | None = None) -> None:
        """Wrap ``base`` with a rank-``r`` adapter, scaled by ``alpha / r``.

        Given (already written below): ``self.r = r``, ``self.alpha = alpha`` and ``self.scale = alpha / r``
        (a float). Yours, in this order:

        1. ``self.base = base``, and freeze it: every parameter of ``base`` gets ``requires_grad`` False
           (its weight and, when it has one, its bias).
        2. ``self.A``: an ``nn.Parameter`` of shape (r, in), drawn as ``torch.randn(r, in, generator=
           generator) / r`` (normal with standard deviation ``1 / r``, as peft's ``init_lora_weights=
           "gaussian"``; one draw of r * in numbers, in that shape), then moved to the device and dtype of
           ``base.weight``.
        3. ``self.B``: an ``nn.Parameter`` of zeros, shape (out, r), on that device and dtype.

        ``B = 0`` makes the adapted layer start *exactly* equal to the base (``B A = 0``), so fine-tuning
        starts from the pretrained model; ``A`` must not be 0 as well: with ``A = B = 0`` both gradients are
        0 and the adapter never moves (``B``'s gradient passes through ``x A^T``, ``A``'s through ``B``).
        ``A`` and ``B`` train (``nn.Parameter`` requires grad by default). ``generator`` is a
        ``torch.Generator`` on the CPU, or None for torch's global one. In peft's names, ``A`` is
        ``lora_A.weight``, ``B`` is ``lora_B.weight`` and ``scale`` is ``scaling``.

        Worked example: ``LoRALinear(nn.Linear(3, 2), r=1, alpha=2.0, generator=torch.Generator().
        manual_seed(0))`` has ``A = [[1.5410, -0.2934, -2.1788]]`` (shape (1, 3)), ``B = [[0.], [0.]]``,
        ``scale = 2.0``, and its trainable parameters are ``A`` and ``B`` only (5 numbers).

        Raises:
            TypeError: if ``base`` is not an ``nn.Linear``, ``r`` not an int or ``alpha`` not a number.
            ValueError: if ``r`` < 1 or ``alpha`` <= 0.
        """
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        _check_count("r", r, 1)
        _check_alpha(alpha)
        self.r, self.alpha, self.scale = r, alpha, alpha / r
        # BEGIN SOLUTION hw06 q2
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        weight = base.weight
        a = torch.randn(r, base.in_features, generator=generator) / r
        self.A = nn.Parameter(a.to(device=weight.device, dtype=weight.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=weight.device, dtype=weight.dtype))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base(x) + scale * (x @ A.T @ B.T)`` for ``x`` of shape (..., in): shape (..., out).

        Multiply in that order, ``(x @ A.T) @ B.T``: through the r-number bottleneck, never forming the
        (out, in) matrix ``B @ A`` (for a 4096 x 4096 layer at r = 8 that is 16.8 million numbers against
        the 65,536 of ``A`` and ``B``). With ``B = 0`` the output is exactly ``base(x)``.

        Worked example: base with weight ``[[1., 0.], [0., 1.]]`` and bias ``[0., 1.]``, ``r = 1``,
        ``alpha = 2`` (scale 2), ``A = [[1., 1.]]``, ``B = [[0.5], [0.]]``: ``x = [[1., 2.]]`` gives ``base(x) =
        [[1., 3.]]``, ``x A^T = [[3.]]``, ``x A^T B^T = [[1.5, 0.]]``, so the output is ``[[1 + 2 * 1.5, 3 + 0]] =
        [[4., 3.]]``.
        """
        # BEGIN SOLUTION hw06 q3
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale
        # END SOLUTION


def _check_targets(targets: Any) -> list[str]:
    if isinstance(targets, str) or not isinstance(targets, (list, tuple)) or not targets:
        raise TypeError(f"targets must be a non-empty list of module names such as ['mlp.0', 'mlp.2'], got "
                        f"{targets!r}"[:200])
    if not all(isinstance(t, str) and t for t in targets):
        raise TypeError(f"every target must be a non-empty str, got {targets!r}"[:200])
    return list(targets)


def apply_lora(model: nn.Module, r: int, alpha: float, targets: list[str],
               generator: torch.Generator | None = None) -> int:
    """Put a :class:`LoRALinear` in place of each targeted ``nn.Linear`` of ``model`` and freeze everything else.

    A module of ``model`` is targeted when its name in ``model.named_modules()`` equals a target or ends
    with ``"." + target`` (peft's ``target_modules`` rule): ``"mlp.0"`` targets ``blocks.0.mlp.0``,
    ``blocks.1.mlp.0``, ...; ``"unembedding"`` targets ``unembedding``; ``"p.0"`` targets nothing (a name
    is matched by whole dot-separated parts).

    In this order:

    1. Find the targeted modules, in the order of ``model.named_modules()``. If a target matches no
       module, or a targeted module is not an ``nn.Linear`` (for example a LayerNorm, or a layer that
       already holds a LoRA adapter), raise ``ValueError`` *before changing anything*.
    2. Freeze every parameter of ``model`` (``requires_grad`` False).
    3. Replace each targeted module, in that order, by ``LoRALinear(module, r, alpha, generator)`` (so the
       adapters draw their ``A`` from ``generator`` one after the other). A module named ``"a.b.c"`` is
       attribute ``c`` of ``model.get_submodule("a.b")``; ``setattr`` on that parent replaces it (inside an
       ``nn.Sequential`` the attribute is the index as a string, ``"0"``).

    Args:
        model: the model to change in place (for example homework 5's TinyGPT).
        r, alpha: the rank and the scale numerator of every adapter.
        targets: a non-empty list of module names, as above.
        generator: a CPU ``torch.Generator`` for the adapters' ``A``, or None for torch's global one.

    Returns:
        The number of parameters of ``model`` that train afterwards (those of the adapters' ``A`` and ``B``):
        the same count as peft's ``get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha,
        target_modules=targets)).get_nb_trainable_parameters()[0]``.

    Worked example: homework 5's TinyGPT (D = 128, 4 blocks) with ``r = 4`` and ``targets = ["mlp.0",
    "mlp.2"]``: each ``Linear(128, 512)`` and ``Linear(512, 128)`` gets ``4 * (128 + 512) = 2,560``
    parameters, so 8 adapters give 20,480 (2.45 % of the 835,072 parameters the model then holds).

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``, ``targets`` not a non-empty list of str, ``r`` not an
            int or ``alpha`` not a number.
        ValueError: as in step 1 (each target must match at least one module), or if ``r`` < 1 or
            ``alpha`` <= 0.
    """
    _check_module("model", model)
    targets = _check_targets(targets)
    _check_count("r", r, 1)
    _check_alpha(alpha)
    # BEGIN SOLUTION hw06 q4
    def matches(name: str, target: str) -> bool:
        return name == target or name.endswith("." + target)

    found = [(name, module) for name, module in model.named_modules() if any(matches(name, t) for t in targets)]
    for target in targets:
        if not any(matches(name, target) for name, _ in found):
            raise ValueError(f"target {target!r} matches no module of the model")
    for name, module in found:
        if not isinstance(module, nn.Linear):
            raise ValueError(f"{name} is a {type(module).__name__}, not an nn.Linear: LoRA wraps linear layers")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, r, alpha, generator))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    # END SOLUTION


def merge_lora(layer: LoRALinear) -> nn.Linear:
    """A plain ``nn.Linear`` that computes what ``layer`` computes: weight ``W + scale * (B @ A)``, the base's bias.

    ``B @ A`` has shape (out, r) @ (r, in) = (out, in), the shape of ``W = layer.base.weight`` (``A @ B``
    would be (r, r)). After merging, the adapter costs nothing at inference: one matrix product, as
    before fine-tuning (peft's ``merge_and_unload``).

    Returns:
        A new ``nn.Linear(in, out)`` (with a bias exactly when the base has one) on the device and dtype
        of the base's weight, whose ``weight`` is ``W + scale * (B @ A)`` and whose ``bias`` is a copy of the
        base's (how the layer is made does not matter: those values replace its own); its parameters are
        frozen (``requires_grad`` False), as the base's are. ``layer`` itself is left as it was.

    Worked example: the layer of :meth:`LoRALinear.forward`'s example merges into weight ``[[1., 0.],
    [0., 1.]] + 2 * [[0.5], [0.]] @ [[1., 1.]] = [[2., 1.], [0., 1.]]`` and bias ``[0., 1.]``; ``x = [[1., 2.]]``
    gives ``[[4., 3.]]`` again.

    Raises:
        TypeError: if ``layer`` is not a :class:`LoRALinear`.
    """
    if not isinstance(layer, LoRALinear):
        raise TypeError(f"layer must be a LoRALinear, got {type(layer).__name__}")
    # BEGIN SOLUTION hw06 q5
    base = layer.base
    with torch.no_grad():
        weight = base.weight + layer.scale * (layer.B @ layer.A)
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=weight.device, dtype=weight.dtype)
        merged.weight.copy_(weight)
        if base.bias is not None:
            merged.bias.copy_(base.bias)
    return merged.requires_grad_(False)
    # END SOLUTION


def random_windows(ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """A training batch: ``batch_size`` windows of ``length`` consecutive tokens from a long text, at random places.

    Draw all the windows' starts at once, ``starts = torch.randint(0, len(ids) - length + 1, (batch_size,),
    generator=generator)`` (every start that leaves a whole window is possible, repeats too), then row
    ``b`` of the result is ``ids[starts[b] : starts[b] + length]``.

    Args:
        ids: the text's token ids, a 1-D long tensor (on any device).
        batch_size: the number of windows, at least 1.
        length: tokens per window, from 1 to ``len(ids)``.
        generator: a ``torch.Generator`` on the CPU.

    Returns:
        A long tensor of shape (batch_size, length) on the device of ``ids``.

    Worked example: ``ids = torch.arange(10)``, ``batch_size = 3``, ``length = 4`` and
    ``torch.Generator().manual_seed(0)``: the starts are ``[4, 3, 0]``, so the batch is ``[[4, 5, 6, 7],
    [3, 4, 5, 6], [0, 1, 2, 3]]``. With ``length = 10`` every row is the whole text.

    Raises:
        TypeError: if ``ids`` is not a 1-D long tensor, or ``batch_size`` / ``length`` not ints.
        ValueError: if ``batch_size`` < 1, or ``length`` is not between 1 and ``len(ids)``.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 1:
        raise TypeError(f"ids must be a 1-D long tensor of token ids, got {type(ids).__name__}"
                        f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else ''}"
                        f"{' of dtype ' + str(ids.dtype) if isinstance(ids, torch.Tensor) else ''}")
    _check_count("batch_size", batch_size, 1)
    _check_count("length", length, 1)
    if length > len(ids):
        raise ValueError(f"length must be at most the text's {len(ids)} tokens, got {length}")
    # BEGIN SOLUTION hw06 q6
    starts = torch.randint(0, len(ids) - length + 1, (batch_size,), generator=generator)
    return torch.stack([ids[s:s + length] for s in starts.tolist()])
    # END SOLUTION


def finetune_step(model: nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor) -> float:
    """One step of next-token training on a batch of windows; returns the batch's loss before the update.

    In this order: ``optimizer.zero_grad()``; ``loss = next_token_loss(model(ids), ids)`` (homework 5's
    loss: every position predicts the token after it); ``loss.backward()``; ``optimizer.step()``; return
    ``float(loss.detach())`` (the loss computed before the update, as a plain float; ``detach()`` spares
    torch's warning about converting a tensor that requires grad).

    The same step serves a full fine-tune (the optimiser holds every parameter) and LoRA (it holds only
    the adapters' ``A`` and ``B``; the frozen weights get no gradient and do not move). Forgetting
    ``zero_grad()`` adds the previous step's gradients (those of whatever ran before) to this one's.

    Args:
        model: a language model, ``model(ids)`` of shape (B, N, V) (homework 5's TinyGPT).
        optimizer: the optimiser of the parameters that train (for example ``torch.optim.AdamW``).
        ids: a batch of windows, a long tensor of shape (B, N) with N >= 2 (see :func:`random_windows`).

    Returns:
        The loss as a Python float (the mean cross-entropy per predicted token, in nats).

    Worked example: a TinyGPT whose parameters are all 0 gives uniform logits, so the first step's loss
    is ``log V`` (``log 27 = 3.2958`` for homework 5's 27 symbols) whatever ``ids`` is.
    """
    # BEGIN SOLUTION hw06 q7
    optimizer.zero_grad()
    loss = next_token_loss(model(ids), ids)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
    # END SOLUTION


def training_memory(n_parameters: int, n_trainable: int, bytes_per_value: int = 4,
                    optimizer_values: int = 2) -> dict[str, int]:
    """The bytes a training run holds for the model, not counting activations: the primers' cost table.

    - ``weights``: every parameter, trainable or frozen: ``n_parameters * bytes_per_value``;
    - ``gradients``: one per trainable parameter: ``n_trainable * bytes_per_value``;
    - ``optimizer``: the optimiser's state, ``optimizer_values`` numbers per trainable parameter (Adam and
      AdamW keep 2: running averages of the gradient and of its square; plain SGD 0):
      ``n_trainable * optimizer_values * bytes_per_value``;
    - ``total``: the sum of the three.

    Args:
        n_parameters: all parameters of the model (an int >= 0).
        n_trainable: the ones that train, from 0 to ``n_parameters``.
        bytes_per_value: 4 for float32, 2 for float16 or bfloat16 (an int >= 1).
        optimizer_values: numbers of optimiser state per trainable parameter (an int >= 0).

    Returns:
        ``{"weights": ..., "gradients": ..., "optimizer": ..., "total": ...}``, all ints (bytes).

    Worked example: a full fine-tune of a 7-billion-parameter model in float32 with AdamW,
    ``training_memory(7_000_000_000, 7_000_000_000)``, holds 28 GB of weights, 28 GB of gradients and
    56 GB of optimiser state: ``total = 112,000,000,000`` bytes (112 GB), more than the 80 GB of one A100
    or H100.
    ``training_memory(10, 4, 2, 2)`` is ``{"weights": 20, "gradients": 8, "optimizer": 16, "total": 44}``.

    Raises:
        TypeError: if an argument is not an int.
        ValueError: if one is out of its range.
    """
    _check_count("n_parameters", n_parameters, 0)
    _check_count("n_trainable", n_trainable, 0)
    _check_count("bytes_per_value", bytes_per_value, 1)
    _check_count("optimizer_values", optimizer_values, 0)
    if n_trainable > n_parameters:
        raise ValueError(f"n_trainable ({n_trainable}) cannot exceed n_parameters ({n_parameters})")
    # BEGIN SOLUTION hw06 q8
    weights = n_parameters * bytes_per_value
    gradients = n_trainable * bytes_per_value
    optimizer = n_trainable * optimizer_values * bytes_per_value
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer,
            "total": weights + gradients + optimizer}
    # END SOLUTION


_OUTSIDE_ALPHABET = re.compile("[^A-Z]+")


def to_27_symbols(text: str) -> str:
    """Any text over homework 5's 27 symbols: uppercase, every run of other characters one space.

    Given, not an exercise (homework 1's ``normalize``). ``to_27_symbols("def f(x):\\n    return x")``
    is ``"DEF F X RETURN X"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _OUTSIDE_ALPHABET.sub(" ", text.upper())


def load_python_docs() -> str:
    """Python's own reference text over the 27 symbols: every topic of ``pydoc_data.topics`` in name order.

    Given, not an exercise. ``pydoc_data`` is part of every CPython (the text ``help("if")`` shows), so
    nothing downloads; about 465,000 characters before the mapping (the exact size depends on the
    Python version). The fine-tuning corpus of the notebook.
    """
    from pydoc_data.topics import topics

    return to_27_symbols("\n".join(topics[name] for name in sorted(topics))).strip()
