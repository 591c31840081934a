"""Plain-data encoding of function inputs and outputs between processes.

Submitted code runs in a separate process; what it returns crosses over as
JSON built only from the types below, so the grader never unpickles or calls
an object that submitted code made (an ``__eq__`` that always says True cannot
reach the comparison). Anything else is encoded as ``unsupported`` with its
type name, and fails the comparison with a message that names that type.

``encode(("AB", 2)) -> {"t": "tuple", "v": ["AB", 2]}``
"""

from __future__ import annotations

import json
import math
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

MAX_DEPTH = 40
_ARRAY_KINDS = "biuf"


class WireError(ValueError):
    """Raised when data cannot be encoded or decoded."""


class Unsupported:
    """Stands for a value of a type the wire does not carry (decoded side only)."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return f"<{self.type_name} object: {self.text}>"


TENSOR_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


class Tensor:
    """A torch tensor as plain data: its dtype's name, its device type and its values as a numpy array.

    The grader's own process builds case inputs and compares outputs with these, so it never imports
    torch; a process that runs package code (:data:`REAL_TENSORS`) decodes them into real tensors.

    ``Tensor(np.array([0.5, 1.0]), "float32")`` stands for ``torch.tensor([0.5, 1.0], dtype=torch.float32)``.
    """

    def __init__(self, array: np.ndarray, dtype: str = "float32", device: str = "cpu") -> None:
        if dtype not in TENSOR_DTYPES:
            raise WireError(f"tensor dtype {dtype!r} not carried (one of {', '.join(TENSOR_DTYPES)})")
        self.dtype, self.device = dtype, device
        self.array = np.asarray(array, dtype=np.bool_ if dtype == "bool" else dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __repr__(self) -> str:
        values = np.array2string(self.array, separator=", ", threshold=20, precision=4).replace("\n", "")
        return f"tensor({values}, dtype=torch.{self.dtype})"


REAL_TENSORS = False
"""True in processes that run package code (set by the runner): tensors decode into torch tensors."""


class RngSpec:
    """A ``numpy.random.Generator`` argument, carried as its seed.

    Each side builds a fresh ``np.random.default_rng(seed)`` from it, so the
    submitted function and the reference see the same random stream.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def make(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return f"np.random.default_rng({self.seed})"


class WordVectorsSpec:
    """A gensim ``KeyedVectors`` argument, carried as the name of its data file.

    Each process loads the file once (from ``GENAI_HW_DATA_DIR``) and reuses
    it for every case. In the student process the gensim methods that would
    answer the exercises raise (see :func:`forbid_gensim_answers`).
    """

    LIBRARIES = ("gensim.models",)
    """What a student process imports to realize it (and the notebook's kernel to load the vectors): loaded
    once for the grading's processes (:meth:`autograder.grading.sandbox.Sandbox.preload_more`)."""

    def __init__(self, filename: str = "word2vec_bolukbasi_f16.npz") -> None:
        self.filename = str(filename)

    def __repr__(self) -> str:
        return "word_vectors"


FORBIDDEN_GENSIM = (
    "most_similar", "most_similar_cosmul", "similar_by_vector", "similar_by_word", "similar_by_key",
    "similarity", "n_similarity", "distance", "distances", "closer_than", "rank", "cosine_similarities",
    "most_similar_to_given", "doesnt_match", "rank_by_centrality", "similarity_unseen_docs",
)
_loaded: dict[str, Any] = {}


class TrainStepSpec:
    """A training set-up (models, optimisers, a batch), carried as a kind, a seed and options.

    Each process builds the same set-up afresh (:meth:`make`: the call's whole argument list), so the
    submitted function and the reference train identical models on identical data. After the call,
    :meth:`observe` reports every model's parameters as plain arrays, which is how a training step is
    judged: no object that submitted code made travels back.

    ``TrainStepSpec("gan", 3, {"z_dim": 2, "x_dim": 2, "hidden": 8, "batch": 16, "lr": 0.05})``: a
    generator ``Linear(z, h) - ReLU - Linear(h, x)``, a discriminator ``Linear(x, h) - ReLU - Linear(h, 1)``,
    plain SGD for each (:class:`PlainSGD`; ``"optimizer": "adam"`` for :class:`PlainAdam`), a real batch of
    shape (batch, x) and noise (batch, z):
    the arguments of ``gan.gan_train_step``. The parameters carry gradients left from an earlier step, as
    in a training loop, so a step that forgets ``zero_grad()`` ends somewhere else.

    ``TrainStepSpec("lora", 3, {"model": {...}, "r": 2, "alpha": 4.0, "targets": ["mlp.0"]})``: the arguments
    of ``finetune.apply_lora``: a ``ModelSpec("gpt", 3, model)`` TinyGPT, ``r``, ``alpha``, ``targets`` and a
    ``torch.Generator`` seeded with ``seed + 1``; :meth:`observe` reports the model's parameters by name, the
    names of those that train and the names of the modules that are LoRA adapters (class ``LoRALinear``).

    ``TrainStepSpec("finetune", 3, {"model": {...}, "frozen": ["blocks.0"], "batch": 2, "lr": 0.1})``: the
    arguments of ``finetune.finetune_step``: the TinyGPT of ``ModelSpec("gpt", 3, model)`` with the
    parameters whose names start with a ``frozen`` prefix frozen, a :class:`PlainSGD` over the others
    (gradients left from an earlier step on them), and a batch of random ids of shape (batch, model's
    context_length).
    """

    KINDS = ("gan", "lora", "finetune")

    def __init__(self, kind: str, seed: int, options: dict | None = None) -> None:
        if kind not in self.KINDS:
            raise WireError(f"unknown training set-up {kind!r}")
        self.kind, self.seed, self.options = kind, int(seed), dict(options or {})

    def make(self) -> list:
        if self.kind == "lora":
            return self._lora()
        if self.kind == "finetune":
            return self._finetune()
        return self._gan()

    def _model(self) -> Any:
        return ModelSpec("gpt", self.seed, {"vocab_size": 11, "context_length": 8, "d_model": 16, "n_heads": 2,
                                            "n_layers": 2, **dict(self.options.get("model", {}))}).make()

    def _lora(self) -> list:
        import torch

        o = {"r": 2, "alpha": 4.0, "targets": ["mlp.0", "mlp.2"], **self.options}
        return [self._model(), o["r"], o["alpha"], o["targets"], torch.Generator().manual_seed(self.seed + 1)]

    def _finetune(self) -> list:
        import torch

        o = {"frozen": [], "batch": 2, "lr": 0.1, **self.options}
        model = self._model()
        data = torch.Generator().manual_seed(self.seed + 1)
        trainable = []
        for name, parameter in model.named_parameters():
            if any(name.startswith(prefix) for prefix in o["frozen"]):
                parameter.requires_grad_(False)
            else:
                parameter.grad = torch.randn(parameter.shape, generator=data).to(parameter.device)
                trainable.append(parameter)
        optimizer = PlainSGD(trainable, float(o["lr"]))
        ids = torch.randint(0, model.vocab_size, (int(o["batch"]), model.context_length), generator=data)
        return [model, optimizer, ids.to(tensor_device())]

    def _gan(self) -> list:
        import torch

        o = {"z_dim": 2, "x_dim": 2, "hidden": 8, "batch": 16, "lr": 0.05, "optimizer": "sgd", **self.options}
        device = tensor_device()
        torch.manual_seed(self.seed)
        generator = torch.nn.Sequential(torch.nn.Linear(o["z_dim"], o["hidden"]), torch.nn.ReLU(),
                                        torch.nn.Linear(o["hidden"], o["x_dim"])).to(device)
        discriminator = torch.nn.Sequential(torch.nn.Linear(o["x_dim"], o["hidden"]), torch.nn.ReLU(),
                                            torch.nn.Linear(o["hidden"], 1)).to(device)
        optimizer = PlainAdam if o["optimizer"] == "adam" else PlainSGD  # torch.optim's, step for step
        opt_g = optimizer(generator.parameters(), float(o["lr"]))
        opt_d = optimizer(discriminator.parameters(), float(o["lr"]))
        data = torch.Generator().manual_seed(self.seed + 1)
        for model in (generator, discriminator):  # gradients left from an earlier step, as in a training loop
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=data).to(device)
        real = (torch.randn(o["batch"], o["x_dim"], generator=data) * 0.5 + 2.0).to(device)
        z = torch.randn(o["batch"], o["z_dim"], generator=data).to(device)
        return [generator, discriminator, opt_g, opt_d, real, z]

    def observe(self, args: list) -> dict:
        """The models' parameters after the call, as float64 arrays, by model (by name for ``lora``)."""
        import torch

        if self.kind == "finetune":
            return {"model": [p.detach().cpu().double().numpy() for p in torch.nn.Module.parameters(args[0])]}
        if self.kind == "lora":
            model = args[0]
            named = list(torch.nn.Module.named_parameters(model))
            return {"model": {
                "parameters": {name: p.detach().cpu().double().numpy() for name, p in named},
                "trainable": [name for name, p in named if p.requires_grad],
                "adapters": [name for name, m in torch.nn.Module.named_modules(model)
                             if type(m).__name__ == "LoRALinear"]}}
        return {name: [p.detach().cpu().double().numpy() for p in model.parameters()]
                for name, model in (("generator", args[0]), ("discriminator", args[1]))}

    def __repr__(self) -> str:
        return f"<{self.kind} training set-up, seed {self.seed}, {self.options}>"


class PlainSGD:
    """Plain SGD with what a training step uses of ``torch.optim.SGD``: ``zero_grad()`` and ``step()``.

    Not torch.optim's own: the first use of a ``torch.optim`` optimiser in a process imports
    ``torch._dynamo`` (about a second and 68 MiB here), which every runner would pay once per grading.
    ``step()`` moves each parameter by ``-lr * grad`` as ``torch.optim.SGD(params, lr)`` does.
    """

    def __init__(self, params: Any, lr: float) -> None:
        self.lr = float(lr)
        self.param_groups = [{"params": list(params), "lr": self.lr}]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    def step(self, closure: Any = None) -> Any:
        import torch

        loss = closure() if closure is not None else None
        with torch.no_grad():
            for p in self.param_groups[0]["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-self.lr)
        return loss


class PlainAdam(PlainSGD):
    """Adam with what a training step uses of ``torch.optim.Adam(params, lr)``: ``zero_grad()`` and ``step()``.

    Not torch.optim's own, for the reason :class:`PlainSGD` gives. ``step()`` is the arithmetic of torch's
    single-tensor Adam (its default for CPU tensors) with its defaults (betas 0.9 and 0.999, eps 1e-8, no
    weight decay, no amsgrad), in its order of operations, so a parameter moves bit for bit as under
    ``torch.optim.Adam`` on the CPU (tests/test_wire.py), and by the same formula on a GPU.
    """

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, params: Any, lr: float) -> None:
        super().__init__(params, lr)
        self.state: dict[int, tuple[Any, Any, list[int]]] = {}
        """Each parameter's running averages and its count of steps, by ``id``."""

    def step(self, closure: Any = None) -> Any:
        import torch

        loss = closure() if closure is not None else None
        beta1, beta2 = self.BETAS
        with torch.no_grad():
            for p in self.param_groups[0]["params"]:
                if p.grad is None:
                    continue
                if id(p) not in self.state:
                    self.state[id(p)] = (torch.zeros_like(p), torch.zeros_like(p), [0])
                exp_avg, exp_avg_sq, count = self.state[id(p)]
                count[0] += 1  # torch counts steps per parameter: one without a gradient is skipped
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step = float(count[0])
                step_size = self.lr / (1 - beta1 ** step)
                denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(self.EPS)
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss


class ModelSpec:
    """A network argument, carried as a kind, a seed and options; each process builds it afresh (:meth:`make`).

    ``ModelSpec("denoiser", 3, {"dim": 2, "hidden": 16, "steps": 50})``: a denoiser for ``dim``-number
    examples (an image of shape (C, H, W) counts as C*H*W numbers), called as ``model(x_t, t)`` with ``x_t``
    of shape (B, ...) and ``t`` a long tensor of shape (B,) in ``0 .. steps-1``; it returns a tensor shaped
    like ``x_t``: ``Linear(dim + 8, hidden) - SiLU - Linear(hidden, dim)`` on the flattened example next to a
    learned 8-number embedding of ``t`` (``"zero": True``: it predicts zeros). It checks how it is called
    and raises a clear error otherwise.

    ``ModelSpec("block", 3, {"d_model": 16, "n_heads": 2})`` and ``ModelSpec("gpt", 3, {"vocab_size": 11,
    "context_length": 8, "d_model": 16, "n_heads": 2, "n_layers": 2})``: the package's own
    ``attention.TransformerBlock`` / ``attention.TinyGPT`` (its given ``__init__``), with every parameter then
    drawn from the seed in name order (layer-norm weights near 1, the rest ``0.3 * N(0, 1)``), so that
    the layer norms matter and the same seed gives the same network in every process.

    ``ModelSpec("lm", 3, {"vocab_size": 7, "context_length": 5})``: a small language model for
    ``sampling.generate``: ``model(x)`` with ``x`` a (1, n) long tensor, ``1 <= n <= context_length``, on
    the model's device, returns logits (1, n, V) where position ``i`` scores the mean of the learned
    embeddings of tokens ``0 .. i`` (so every position and the cropping of the context change the
    answer); ``model.context_length`` is its context window. It raises a clear error when called otherwise.

    ``ModelSpec("linear", 3, {"in": 4, "out": 3, "bias": True})``: an ``nn.Linear``, parameters drawn from the
    seed as above. ``ModelSpec("lora", 3, {"in": 4, "out": 3, "bias": True, "r": 2, "alpha": 4.0})``: a
    ``finetune.LoRALinear`` of the package around such a frozen linear layer, its attributes set without its
    constructor, then *every* parameter (``A``, ``B`` too) drawn from the seed, so that ``B`` is not 0 and
    the layer's forward pass and merge do not depend on the package's constructor. A ``"gpt"`` may have
    ``"tied": True`` (the unembedding shares the token embedding's weight); any of these may have
    ``"frozen"``: name prefixes of parameters made frozen.
    """

    KINDS = ("denoiser", "block", "gpt", "lm", "linear", "lora")

    def __init__(self, kind: str, seed: int, options: dict | None = None) -> None:
        if kind not in self.KINDS:
            raise WireError(f"unknown model {kind!r}")
        self.kind, self.seed, self.options = kind, int(seed), dict(options or {})

    def make(self) -> Any:
        if self.kind in ("block", "gpt", "linear", "lora"):
            return self._package_model()
        if self.kind == "lm":
            return self._language_model()
        return self._denoiser()

    def _package_model(self) -> Any:
        import importlib

        import torch

        o = dict(self.options)
        if self.kind in ("linear", "lora"):
            model = torch.nn.Linear(int(o.get("in", 4)), int(o.get("out", 3)), bias=bool(o.get("bias", True)))
            if self.kind == "lora":
                model = self._lora_layer(model, int(o.get("r", 2)), float(o.get("alpha", 4.0)))
        elif self.kind == "block":
            attention = importlib.import_module("genai_hw.attention")
            model = attention.TransformerBlock(int(o.get("d_model", 16)), int(o.get("n_heads", 2)))
        else:
            attention = importlib.import_module("genai_hw.attention")
            model = attention.TinyGPT(int(o.get("vocab_size", 11)), int(o.get("context_length", 8)),
                                      int(o.get("d_model", 16)), int(o.get("n_heads", 2)), int(o.get("n_layers", 2)))
            if o.get("tied"):
                model.unembedding.weight = model.token_embedding.weight
        draws = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for name, parameter in sorted(torch.nn.Module.named_parameters(model)):
                noise = torch.randn(parameter.shape, generator=draws)
                norm_weight = "." in name and name.rsplit(".", 2)[-2].startswith("ln") and name.endswith(".weight")
                parameter.copy_(1 + 0.2 * noise if norm_weight else float(o.get("scale", 0.3)) * noise)
        for name, parameter in torch.nn.Module.named_parameters(model):
            if any(name.startswith(prefix) for prefix in o.get("frozen", [])):
                parameter.requires_grad_(False)
        return model.to(tensor_device())

    @staticmethod
    def _lora_layer(base: Any, r: int, alpha: float) -> Any:
        """A ``LoRALinear`` of the package with the attributes its docstring names (``base``, frozen; ``A``,
        ``B``, ``r``, ``alpha``, ``scale``) set here, without calling its constructor (an exercise of its
        own): a broken or unwritten ``__init__`` costs its question, not forward's and merge's."""
        import importlib

        import torch

        cls = importlib.import_module("genai_hw.finetune").LoRALinear
        layer = cls.__new__(cls)
        torch.nn.Module.__init__(layer)
        layer.r, layer.alpha, layer.scale = r, alpha, alpha / r
        layer.base = base.requires_grad_(False)
        layer.A = torch.nn.Parameter(torch.zeros(r, base.in_features))
        layer.B = torch.nn.Parameter(torch.zeros(base.out_features, r))
        return layer

    def _language_model(self) -> Any:
        import torch

        o = {"vocab_size": 7, "context_length": 5, **self.options}
        vocab, context = int(o["vocab_size"]), int(o["context_length"])

        class LanguageModel(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.context_length = context
                self.embed = torch.nn.Embedding(vocab, 8)
                self.out = torch.nn.Linear(8, vocab, bias=False)

            def forward(self, x: Any) -> Any:
                device = self.out.weight.device
                if not isinstance(x, torch.Tensor) or x.dtype != torch.long or x.ndim != 2 or x.shape[0] != 1:
                    raise ValueError(f"the model takes a (1, n) long tensor of token ids, got "
                                     f"{x!r}"[:300])
                if x.device != device:
                    raise ValueError(f"the model's parameters are on {device}; its input came on {x.device}")
                if not 1 <= x.shape[1] <= context:
                    raise ValueError(f"the model reads 1 to {context} tokens (its context_length), got {x.shape[1]}")
                if int(x.min()) < 0 or int(x.max()) >= vocab:
                    raise ValueError(f"token ids must lie in 0 .. {vocab - 1}, got {x.tolist()}"[:300])
                steps = torch.arange(1, x.shape[1] + 1, device=device, dtype=torch.float32)[None, :, None]
                return self.out(self.embed(x).cumsum(dim=1) / steps) * 3.0

        torch.manual_seed(self.seed)
        return LanguageModel().to(tensor_device())

    def _denoiser(self) -> Any:
        import torch

        o = {"dim": 2, "hidden": 16, "steps": 50, **self.options}
        dim, steps = int(o["dim"]), int(o["steps"])

        class Denoiser(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = torch.nn.Embedding(steps, 8)
                self.net = torch.nn.Sequential(torch.nn.Linear(dim + 8, int(o["hidden"])), torch.nn.SiLU(),
                                               torch.nn.Linear(int(o["hidden"]), dim))

            def forward(self, x: Any, t: Any) -> Any:
                if not isinstance(x, torch.Tensor) or x.ndim < 1 or x[0].numel() != dim:
                    raise ValueError(f"the model takes x_t of shape (B, ...) with {dim} numbers per example, "
                                     f"got {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
                if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != (x.shape[0],):
                    raise ValueError(f"the model is called as model(x_t, t) with t a long tensor of shape "
                                     f"({x.shape[0]},), got {t!r}"[:300])
                if len(t) and (int(t.min()) < 0 or int(t.max()) >= steps):
                    raise ValueError(f"the model knows timesteps 0 .. {steps - 1}, got {t.tolist()}"[:300])
                if o.get("zero"):
                    return torch.zeros_like(x)
                flat = x.reshape(x.shape[0], dim)
                return self.net(torch.cat([flat, self.embed(t).to(flat.dtype)], dim=1)).reshape(x.shape)

        torch.manual_seed(self.seed)
        return Denoiser().to(tensor_device())

    def __repr__(self) -> str:
        return f"<{self.kind} network, seed {self.seed}, {self.options}>"


class ModuleState:
    """A ``torch.nn.Module`` that a function returned, as plain data: its class's name, its parameters by name
    (each parameter once, as :class:`Tensor`) and the names of those that train (``requires_grad``).

    Written in the process that ran the function (:func:`encode`); the grader compares it with the
    reference's (``cases``): the same class name, parameters of the same names and values, the same ones
    trainable. Nothing of the module itself travels.
    """

    def __init__(self, type_name: str, parameters: dict, trainable: list) -> None:
        self.type_name, self.parameters, self.trainable = str(type_name), dict(parameters), list(trainable)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}: {tuple(value.shape) if hasattr(value, 'shape') else '?'}"
                           for name, value in list(self.parameters.items())[:6])
        return f"<{self.type_name} module with parameters {{{shapes}}}>"


def _module_data(value: Any, depth: int) -> Any:
    """A torch module as plain data (see :class:`ModuleState`), or None when ``value`` is not one."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.nn.Module):
        return None
    named = list(torch.nn.Module.named_parameters(value))
    return {"t": "module", "type": type(value).__name__[:200],
            "v": encode({name: p.detach() for name, p in named}, depth + 1),
            "trainable": [name for name, p in named if p.requires_grad]}


class TorchRngSpec:
    """A ``torch.Generator`` argument (on the CPU), carried as its seed: ``torch.Generator().manual_seed(seed)``."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def make(self) -> Any:
        import torch

        return torch.Generator().manual_seed(self.seed)

    def __repr__(self) -> str:
        return f"torch.Generator().manual_seed({self.seed})"


TORCH_ATTENTION = (
    ("torch", "softmax"), ("torch", "log_softmax"), ("torch", "_softmax"), ("torch", "_log_softmax"),
    ("torch.Tensor", "softmax"), ("torch.Tensor", "log_softmax"),
    ("torch.nn.functional", "softmax"), ("torch.nn.functional", "log_softmax"),
    ("torch.nn.functional", "scaled_dot_product_attention"), ("torch.nn.functional", "multi_head_attention_forward"),
    ("torch._C._nn", "scaled_dot_product_attention"), ("torch.special", "softmax"), ("torch.special", "log_softmax"),
    ("torch.nn.MultiheadAttention", "forward"), ("torch.nn.Softmax", "forward"), ("torch.nn.LogSoftmax", "forward"),
)
"""What :func:`forbid_torch_attention` guards: the public names (and their C aliases) of torch's softmax
and attention. A check of honest work, not a boundary: code that reads the runner can switch it off."""
_guard_on = [False]


def forbid_torch_attention() -> None:
    """In this process, make torch's softmax, log_softmax and attention raise while the guard is on.

    Installed before the submitted package is imported (so that ``from torch.nn.functional import
    scaled_dot_product_attention`` gets the guarded function); the runner switches the guard on
    (:func:`torch_attention_guard`) only while it calls a function of a case with
    ``forbid_torch_attention``, so torch's own code and the other exercises are unaffected.
    """
    import torch

    def guarded(label: str, original: Any) -> Any:
        def function(*args: Any, **kwargs: Any) -> Any:
            if _guard_on[0]:
                raise RuntimeError(f"{label} is off limits in this exercise: the point is to build it "
                                   "(see the docstring)")
            return original(*args, **kwargs)
        function.__name__ = getattr(original, "__name__", "guarded")
        return function

    for owner_name, attribute in TORCH_ATTENTION:
        owner: Any = torch
        for part in owner_name.split(".")[1:]:
            owner = getattr(owner, part, None)
        original = getattr(owner, attribute, None)
        if original is not None:  # a torch build without one of them: nothing to guard there
            setattr(owner, attribute, guarded(f"{owner_name}.{attribute}", original))


def torch_attention_guard(on: bool) -> None:
    """Switch the guard of :func:`forbid_torch_attention` on or off (it does nothing where not installed)."""
    _guard_on[0] = bool(on)


def realize_args(args: Any) -> Any:
    """The call's arguments: a lone :class:`TrainStepSpec` becomes its whole argument list."""
    if type(args) in (list, tuple) and len(args) == 1 and isinstance(args[0], TrainStepSpec):
        return tuple(args[0].make())
    return realize(args)


def observe(args: Any, real_args: Any) -> Any:
    """After a call: what the training set-up's models look like (None for other calls)."""
    if type(args) in (list, tuple) and len(args) == 1 and isinstance(args[0], TrainStepSpec):
        return args[0].observe(list(real_args))
    return None


def forbid_gensim_answers() -> None:
    """Make the gensim methods that answer the embedding exercises raise, in this process."""
    from gensim.models import KeyedVectors

    def forbidden(name: str):
        def method(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"KeyedVectors.{name} is off limits here: compute the answer yourself "
                               "with numpy (word_vectors.vectors, word_vectors[word])")
        return method

    for name in FORBIDDEN_GENSIM:
        if hasattr(KeyedVectors, name):
            setattr(KeyedVectors, name, forbidden(name))


STUDENT_SIDE = False
"""True in the student process (set by the runner): it gets real gensim KeyedVectors."""


class PlainVectors:
    """The part of gensim's ``KeyedVectors`` that the reference uses, without importing gensim.

    The grader's own process computes expected outputs with this (gensim's
    import costs a second or two per grading run); submitted code always gets
    real ``KeyedVectors``.
    """

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.index_to_key = words
        self.key_to_index = {word: i for i, word in enumerate(words)}
        self.vectors = vectors
        self.vector_size = vectors.shape[1]

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.key_to_index[word]]

    def __len__(self) -> int:
        return len(self.index_to_key)


def load_word_vectors(path: str, keyed: bool | None = None) -> Any:
    """Load a ``words``/``vectors`` npz (as written by scripts/derive_word2vec.py), once per process.

    ``keyed``: a gensim ``KeyedVectors`` (default in the student process) or a
    :class:`PlainVectors` (default in the grader's process).
    """
    keyed = STUDENT_SIDE if keyed is None else keyed
    if (path, keyed) not in _loaded:
        with np.load(path) as data:
            words = data["words"].tobytes().decode("utf-8").split("\n")
            vectors = data["vectors"].astype(np.float32)
        if keyed:
            word_vectors = keyed_vectors(words, vectors)
        else:
            word_vectors = PlainVectors(words, vectors)
        _loaded[(path, keyed)] = word_vectors
    return _loaded[(path, keyed)]


def keyed_vectors(words: list[str], vectors: np.ndarray) -> Any:
    """A gensim ``KeyedVectors`` that holds ``vectors`` itself (distinct ``words``, one per row).

    What ``add_vectors`` makes, without its copy of the matrix into a new array: for the 26,423 x 300
    word vectors that copy is 0.1 s of CPU (page faults) in each process that loads them, and 31 MB
    more at its peak. tests/test_wire.py checks it against ``add_vectors``.
    """
    from gensim.models import KeyedVectors

    word_vectors = KeyedVectors(vector_size=vectors.shape[1], dtype=vectors.dtype)
    word_vectors.index_to_key = list(words)
    word_vectors.key_to_index = {word: i for i, word in enumerate(word_vectors.index_to_key)}
    word_vectors.vectors = vectors
    return word_vectors


def is_resource(value: Any) -> bool:
    """Arguments made afresh in each process (not data to compare for mutation)."""
    return isinstance(value, (RngSpec, WordVectorsSpec, TrainStepSpec, ModelSpec, TorchRngSpec))


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = object.__repr__(value)
    except Exception:  # pragma: no cover - object.__repr__ does not fail
        text = "?"
    return text[:limit]


def encode(value: Any, depth: int = 0) -> Any:
    """Turn ``value`` into JSON-ready data. Exact classes only: subclasses of
    ``str``, ``int``, ``dict`` ... are reported as unsupported rather than trusted."""
    if depth > MAX_DEPTH:
        return {"t": "unsupported", "type": "nesting", "repr": f"nested deeper than {MAX_DEPTH}"}
    cls = type(value)
    if value is None or cls in (bool, str):
        return value
    if cls is int:
        return value
    if cls is float:
        if math.isnan(value) or math.isinf(value):
            return {"t": "float", "v": repr(value)}
        return value
    if cls in (list, tuple, set, frozenset):
        items = sorted(value, key=repr) if cls in (set, frozenset) else value
        return {"t": cls.__name__, "v": [encode(item, depth + 1) for item in items]}
    if cls in (dict, Counter, OrderedDict):
        pairs = [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]
        return {"t": {dict: "dict", Counter: "Counter", OrderedDict: "dict"}[cls], "v": pairs}
    if cls is RngSpec:
        return {"t": "rng", "v": value.seed}
    if cls is WordVectorsSpec:
        return {"t": "kv", "v": value.filename}
    if cls is TrainStepSpec:
        return {"t": "setup", "kind": value.kind, "seed": value.seed, "v": encode(value.options, depth + 1)}
    if cls is ModelSpec:
        return {"t": "model", "kind": value.kind, "seed": value.seed, "v": encode(value.options, depth + 1)}
    if cls is TorchRngSpec:
        return {"t": "trng", "v": value.seed}
    if cls is np.ndarray:
        if value.dtype.kind not in _ARRAY_KINDS:
            return {"t": "unsupported", "type": f"numpy.ndarray[{value.dtype}]", "repr": ""}
        flat = [float(x) if value.dtype.kind == "f" else x for x in value.ravel().tolist()]
        flat = [encode(x, depth + 1) for x in flat]
        return {"t": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape), "v": flat}
    if cls.__module__ == "torch" and cls.__name__ in ("Tensor", "Parameter"):
        array = value.detach().cpu().numpy()
        return {"t": "tensor", "dtype": str(value.dtype).removeprefix("torch."),
                "device": value.device.type, "v": encode(array, depth + 1)}
    if cls is Tensor:
        return {"t": "tensor", "dtype": value.dtype, "device": value.device, "v": encode(value.array, depth + 1)}
    if isinstance(value, np.generic) and cls.__module__ == "numpy" and value.dtype.kind in _ARRAY_KINDS:
        return {"t": "npscalar", "dtype": value.dtype.str, "v": encode(value.item(), depth + 1)}
    module = _module_data(value, depth)
    if module is not None:
        return module
    return {"t": "unsupported", "type": _type_name(value), "repr": _short_repr(value)}


def decode(data: Any, depth: int = 0) -> Any:
    """Inverse of :func:`encode`; raises :class:`WireError` on anything malformed."""
    if depth > MAX_DEPTH + 1:
        raise WireError("data nested too deeply")
    if data is None or type(data) in (bool, str, int, float):
        return data
    if type(data) is not dict or "t" not in data:
        raise WireError(f"malformed value of type {type(data).__name__}")
    tag = data["t"]
    if tag == "float":
        if data.get("v") not in ("nan", "inf", "-inf"):
            raise WireError("malformed float")
        return float(data["v"])
    if tag in ("list", "tuple", "set", "frozenset"):
        items = [decode(item, depth + 1) for item in _list(data.get("v"))]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
    if tag in ("dict", "Counter"):
        result: dict = {} if tag == "dict" else Counter()
        for pair in _list(data.get("v")):
            if type(pair) is not list or len(pair) != 2:
                raise WireError("malformed dict entry")
            key = decode(pair[0], depth + 1)
            try:
                hash(key)
            except TypeError as err:
                raise WireError("unhashable dict key") from err
            result[key] = decode(pair[1], depth + 1)
        return result
    if tag == "rng":
        return RngSpec(int(data["v"]))
    if tag == "kv":
        return WordVectorsSpec(str(data["v"]))
    if tag == "setup":
        options = decode(data.get("v"), depth + 1)
        if type(options) is not dict or type(data.get("seed")) is not int:
            raise WireError("malformed training set-up")
        return TrainStepSpec(str(data.get("kind")), data["seed"], options)
    if tag == "model":
        options = decode(data.get("v"), depth + 1)
        if type(options) is not dict or type(data.get("seed")) is not int:
            raise WireError("malformed model")
        return ModelSpec(str(data.get("kind")), data["seed"], options)
    if tag == "trng":
        if type(data.get("v")) is not int:
            raise WireError("malformed torch generator")
        return TorchRngSpec(data["v"])
    if tag == "ndarray":
        dtype = np.dtype(str(data.get("dtype")))
        if dtype.kind not in _ARRAY_KINDS:
            raise WireError(f"array dtype {dtype} not allowed")
        shape = tuple(int(s) for s in _list(data.get("shape")))
        values = [decode(v, depth + 1) for v in _list(data.get("v"))]
        return np.array(values, dtype=dtype).reshape(shape)
    if tag == "npscalar":
        dtype = np.dtype(str(data.get("dtype")))
        if dtype.kind not in _ARRAY_KINDS:
            raise WireError(f"scalar dtype {dtype} not allowed")
        return dtype.type(decode(data.get("v"), depth + 1))
    if tag == "tensor":
        array = decode(data.get("v"), depth + 1)
        dtype = str(data.get("dtype"))[:40]
        if isinstance(array, Unsupported) or (isinstance(array, np.ndarray) and dtype not in TENSOR_DTYPES):
            return Unsupported(f"torch.Tensor of dtype {dtype}", "")
        if not isinstance(array, np.ndarray):
            raise WireError("malformed tensor")
        if not REAL_TENSORS:
            return Tensor(array, dtype, str(data.get("device"))[:20])
        import torch

        if dtype not in TENSOR_DTYPES:
            raise WireError(f"tensor dtype {dtype!r} not carried")
        return torch.from_numpy(array.copy()).to(dtype=getattr(torch, dtype), device=tensor_device())
    if tag == "module":
        parameters, trainable = decode(data.get("v"), depth + 1), data.get("trainable")
        if type(parameters) is not dict or type(trainable) is not list or not all(type(n) is str for n in trainable):
            raise WireError("malformed module")
        return ModuleState(str(data.get("type"))[:200], parameters, trainable)
    if tag == "unsupported":
        return Unsupported(str(data.get("type"))[:200], str(data.get("repr"))[:200])
    raise WireError(f"unknown tag {tag!r}")


def _list(value: Any) -> list:
    if type(value) is not list:
        raise WireError("expected a list")
    return value


_device: list[str] = []


def tensor_device() -> str:
    """Where decoded tensors and training set-ups go in this process: ``GENAI_HW_DEVICE``.

    The student's runner gets ``auto``: the GPU when torch sees one, so submitted functions get tensors
    where a GPU grader puts them. The reference runs on the CPU (``cpu``, the default).
    """
    if not _device:
        import os

        device = os.environ.get("GENAI_HW_DEVICE", "cpu")
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        _device.append(device if device in ("cpu", "cuda") else "cpu")
    return _device[0]


def realize(value: Any) -> Any:
    """Replace every :class:`RngSpec` inside ``value`` by a fresh Generator."""
    if isinstance(value, (RngSpec, ModelSpec, TorchRngSpec)):
        return value.make()
    if isinstance(value, WordVectorsSpec):
        import os

        name = os.path.basename(value.filename)
        return load_word_vectors(os.path.join(os.environ.get("GENAI_HW_DATA_DIR", "."), name))
    if type(value) in (list, tuple):
        return type(value)(realize(v) for v in value)
    if type(value) is dict:
        return {k: realize(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"))


def loads(text: str) -> Any:
    try:
        return decode(json.loads(text))
    except (json.JSONDecodeError, RecursionError, TypeError, KeyError, OverflowError) as err:
        raise WireError(str(err)) from err
