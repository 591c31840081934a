"""Attention and a tiny GPT: the lecture's transformer, built from its pieces.

The lecture's language model has three phases. *Embedding*: each token of the text becomes a column of
the D x N embedded text matrix (the D numbers of its column in the D x V embedding matrix).
*Transformation*: each layer of the transformer lets the tokens "talk to each other" (self-attention)
and then feeds every token through the same small dense network, turning the matrix into an enriched
D x N matrix. *Unembedding*: the last token's enriched column, times the unembedding matrix, gives V
scores whose softmax is the distribution of the next token.

Layout: rows are tokens. A batch of embedded texts is a tensor ``x`` of shape (B, N, D): ``x[b]`` is the
*transpose* of the lecture's D x N matrix (row ``i`` is the embedding of token ``i``), which is how torch
lays text out. A weight matrix ``w`` of shape (D, D) is applied to every token at once as ``x @ w``.

Self-attention (Vaswani et al. 2017, "Attention Is All You Need"): every token makes a *query*, a
*key* and a *value* (``x @ w_q``, ``x @ w_k``, ``x @ w_v``). Token ``i`` scores every token ``j`` by the
dot product of its query with ``j``'s key, the softmax of its scores says how much of each value it takes,
and the weighted sum of values is the context vector added to its embedding (the lecture's "edible thing"
vector that ``<space>dev`` and ``oured`` add to ``<space>orange``). In a language model a token may look
only at itself and the tokens before it (*causal* attention): it is trained to predict the next token,
so it must not see it.

The model here is GPT-2's shape (Radford et al. 2019) at toy size: pre-norm blocks, learned position
embeddings, no dropout, no biases in attention. In ``softmax``, ``scaled_dot_product_attention`` and
``multi_head_attention`` (and whatever they call), torch's own ``softmax``, ``log_softmax``,
``scaled_dot_product_attention`` and ``MultiheadAttention`` are off limits: the point is to build them.
The autograder makes those raise while it runs these functions and the two ``forward`` methods.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn


def _check_float(name: str, value: Any, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}"
                        f"{' of dtype ' + str(value.dtype) if isinstance(value, torch.Tensor) else ''}")
    if value.ndim < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(value.shape)}")
    return value


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The softmax of ``x`` along ``dim``: ``exp(x_i) / sum_j exp(x_j)``, computed so that it never overflows.

    ``exp(1e4)`` is ``inf`` in any float type, so the formula as written gives ``inf / inf = nan`` for
    large scores. Subtract each slice's maximum first (``x - x.max(dim, keepdim=True)``): the result is
    mathematically the same (the factor ``exp(-max)`` cancels) and the largest exponent is ``exp(0) = 1``.

    Args:
        x: a floating-point tensor of any shape with at least one dimension (scores, logits).
        dim: the dimension along which the result sums to 1.

    Returns:
        A tensor of the same shape, dtype and device as ``x``, non-negative, summing to 1 along ``dim``.

    Worked example: ``softmax(torch.tensor([1.0, 2.0, 3.0]))`` is ``[0.0900, 0.2447, 0.6652]``;
    ``softmax(torch.tensor([1e4, 0.0, -1e4]))`` is ``[1.0, 0.0, 0.0]`` (not ``nan``); entries of ``-inf``
    get probability 0: ``softmax(torch.tensor([0.0, -math.inf]))`` is ``[1.0, 0.0]``.

    Do not call torch's ``softmax`` or ``log_softmax`` (``torch.softmax``, ``Tensor.softmax``,
    ``torch.nn.functional.softmax``, ...): the autograder makes them raise here.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: if ``x`` is 0-dimensional.
    """
    _check_float("x", x)
    raise NotImplementedError(
        'softmax() is not written yet: implement it in genai_hw/attention.py '
        '(homework 5, question q1)'
    )


def causal_mask(n: int, device: Any = None) -> torch.Tensor:
    """Which tokens each token may look at in a language model: itself and the ones before it.

    Args:
        n: the number of tokens, at least 1.
        device: where to make the mask (default: the CPU).

    Returns:
        A bool tensor of shape (n, n): entry ``[i, j]`` is True when position ``i`` may attend to
        position ``j``, that is when ``j <= i`` (the lower triangle with its diagonal). True means
        "allowed", as for a boolean ``attn_mask`` of ``torch.nn.functional.scaled_dot_product_attention``
        (``torch.nn.MultiheadAttention`` uses the opposite convention: True there means "blocked").

    Worked example: ``causal_mask(3)`` is
    ``[[True, False, False], [True, True, False], [True, True, True]]``.

    Raises:
        ValueError: if ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (the number of tokens), got {n!r}")
    raise NotImplementedError(
        'causal_mask() is not written yet: implement it in genai_hw/attention.py '
        '(homework 5, question q2)'
    )


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention: each query takes a weighted average of the values, weighted by how well it matches the keys.

    ``scores = q @ k^T / sqrt(d)`` (``d``: the length of a query), then every score whose ``mask`` entry is
    False becomes ``-inf``, ``weights = softmax(scores)`` along the keys (use your :func:`softmax`), and
    ``out = weights @ v``. Dividing by ``sqrt(d)`` keeps the scores of random vectors near unit size, so the
    softmax does not saturate as ``d`` grows. A query row whose mask allows no key at all gets weights
    of 0 and an output of 0 (torch's built-in does the same).

    Args:
        q: queries, a floating-point tensor of shape (..., N, d).
        k: keys, shape (..., M, d), same dtype as ``q``.
        v: values, shape (..., M, d_v), same dtype as ``q``. The leading dimensions ``...`` of ``q``, ``k``
            and ``v`` (batch, heads) must be equal.
        mask: None (every query sees every key) or a bool tensor broadcastable to (..., N, M): entry
            ``[i, j]`` True when query ``i`` may attend to key ``j`` (for example :func:`causal_mask`).

    Returns:
        ``(out, weights)``: ``out`` of shape (..., N, d_v), equal (up to rounding) to
        ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)``, and ``weights`` of
        shape (..., N, M), each row summing to 1 over the keys it may attend to (0 where masked).

    Worked example: ``q = [[1., 0.]]``, ``k = [[1., 0.], [0., 1.]]``, ``v = [[1., 2.], [3., 4.]]``: the
    scores are ``[1, 0] / sqrt(2) = [0.7071, 0]``, the weights ``[0.6698, 0.3302]``, and ``out`` is
    ``0.6698 * [1, 2] + 0.3302 * [3, 4] = [1.6605, 2.6605]``. With ``mask = [[True, False]]`` the
    weights are ``[1, 0]`` and ``out`` is ``[1, 2]``.

    Do not call torch's ``scaled_dot_product_attention``, ``MultiheadAttention`` or softmax: the
    autograder makes them raise here.

    Raises:
        TypeError: if ``q``, ``k``, ``v`` are not floating-point tensors of one dtype, or ``mask`` is not bool.
        ValueError: if their shapes do not fit together.
    """
    for name, value in (("q", q), ("k", k), ("v", v)):
        _check_float(name, value, min_dim=2)
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         "(expected (..., N, d), (..., M, d), (..., M, d_v))")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be None or a bool tensor (True: may attend), got {mask!r}"[:200])
        scores_shape = (*q.shape[:-1], k.shape[-2])
        # by hand: torch.broadcast_shapes costs a quarter of a second on its first call
        if mask.ndim > len(scores_shape) or any(m not in (1, s) for m, s in zip(mask.shape[::-1], scores_shape[::-1])):
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                             f"{scores_shape}")
    raise NotImplementedError(
        'scaled_dot_product_attention() is not written yet: implement it in genai_hw/attention.py '
        '(homework 5, question q3)'
    )


def multi_head_attention(
    x: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
    w_o: torch.Tensor,
    n_heads: int,
    causal: bool = True,
    return_weights: bool = False,
) -> Any:
    """Self-attention with ``n_heads`` heads: several smaller attentions side by side, then mixed by ``w_o``.

    1. ``q = x @ w_q``, ``k = x @ w_k``, ``v = x @ w_v``, each of shape (B, N, D).
    2. Split the D columns into ``n_heads`` heads of ``d = D / n_heads`` columns: head ``h`` uses columns
       ``h * d`` to ``(h + 1) * d - 1`` of ``q``, ``k`` and ``v`` (reshape to (B, N, n_heads, d), then move
       the heads before the tokens: (B, n_heads, N, d)).
    3. Run :func:`scaled_dot_product_attention` on every head at once, with :func:`causal_mask` when
       ``causal``, else no mask.
    4. Put the heads' outputs back side by side in the same column order, (B, N, D), and return that
       ``@ w_o``.

    Each head can look for a different kind of relation (one at the previous letter, one at the start
    of the word, ...) with its own share of the dimensions.

    Args:
        x: the embedded texts, a floating-point tensor of shape (B, N, D) (rows are tokens).
        w_q, w_k, w_v, w_o: the (D, D) weight matrices, same dtype as ``x``.
        n_heads: the number of heads, a positive int that divides D.
        causal: whether token ``i`` sees only tokens ``j <= i`` (a language model) or every token.
        return_weights: also return the attention weights.

    Returns:
        The output, shape (B, N, D): equal (up to rounding) to ``torch.nn.MultiheadAttention(D, n_heads,
        bias=False, batch_first=True)`` given the same weights (its ``in_proj_weight`` is
        ``cat([w_q.T, w_k.T, w_v.T])`` and its ``out_proj.weight`` is ``w_o.T``) and the causal mask.
        With ``return_weights``: ``(output, weights)``, ``weights`` of shape (B, n_heads, N, N), one
        attention pattern per head.

    Worked example: ``x = [[[1., 0.], [0., 1.]]]`` (B = 1, N = 2, D = 2), every ``w`` the 2 x 2 identity,
    ``causal=True``. With ``n_heads = 1``, token 0 sees only itself (output ``[1, 0]``) and token 1 scores
    ``[0, 1] / sqrt(2)``, weights ``[0.3302, 0.6698]``, output ``[0.3302, 0.6698]``. With ``n_heads = 2``
    (d = 1), head 0 uses column 0 and head 1 column 1: the output is ``[[1, 0], [0.5, 0.7311]]`` (token
    1's head 0 query is 0, so it weighs both tokens equally; its head 1 scores are ``[0, 1]``).

    Do not call torch's attention or softmax: the autograder makes them raise here.

    Raises:
        TypeError: if ``x`` or a weight is not a floating-point tensor of ``x``'s dtype.
        ValueError: if ``x`` is not (B, N, D), a weight not (D, D), or ``n_heads`` does not divide D.
    """
    _check_float("x", x, min_dim=3)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, N, D), got {tuple(x.shape)}")
    D = x.shape[-1]
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        _check_float(name, w)
        if w.shape != (D, D) or w.dtype != x.dtype:
            raise ValueError(f"{name} must have shape ({D}, {D}) and dtype {x.dtype}, got {tuple(w.shape)} {w.dtype}")
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1 or D % n_heads:
        raise ValueError(f"n_heads must be a positive int that divides D = {D}, got {n_heads!r}")
    raise NotImplementedError(
        'multi_head_attention() is not written yet: implement it in genai_hw/attention.py '
        '(homework 5, question q4)'
    )


class SelfAttention(nn.Module):
    """The attention layer of a block: four (D, D) weight matrices and :func:`multi_head_attention`.

    Given, not an exercise: ``SelfAttention(16, 2)(x)`` is ``multi_head_attention(x, w_q, w_k, w_v, w_o,
    2, causal=True)`` with its own weights.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"n_heads = {n_heads} must divide d_model = {d_model}")
        self.n_heads = n_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Parameter(torch.randn(d_model, d_model) * 0.02)
                                                  for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return multi_head_attention(x, self.w_q, self.w_k, self.w_v, self.w_o, self.n_heads, causal=True)


class TransformerBlock(nn.Module):
    """One layer of the transformer: attention between the tokens, then a small network on each token.

    Its layers are given: ``ln_1`` and ``ln_2`` (``nn.LayerNorm(D)``: each token's D numbers rescaled to
    mean 0 and variance 1, then by learned weights), ``attention`` (:class:`SelfAttention`, causal) and
    ``mlp`` (``Linear(D, 4D) - GELU - Linear(4D, D)``, applied to every token on its own: the lecture's
    "same D-dimensional dense neural network").
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, n_heads)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block on a batch of embedded texts: ``x`` of shape (B, N, D) -> the enriched texts, (B, N, D).

        Pre-norm residual form (GPT-2): first ``x = x + attention(ln_1(x))`` (each token adds the context
        vector it gathered from the tokens before it), then ``x = x + mlp(ln_2(x))``; return ``x``. The
        residual ``x + ...`` keeps the original embedding and *adds* to it, as in the lecture: the
        transformer "adjusts the embeddings ... by adding a context vector". Normalise the input of each
        branch, never the residual stream itself.

        Worked example: if every weight of ``attention`` and of ``mlp`` is 0 (and the biases too), both
        branches add 0 and the block returns ``x`` unchanged, whatever the layer norms do.
        """
        raise NotImplementedError(
            'forward() is not written yet: implement it in genai_hw/attention.py '
            '(homework 5, question q5)'
        )


def _check_ids(ids: Any, vocab_size: int, context_length: int) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2:
        raise TypeError(f"ids must be a long tensor of shape (B, N), got {type(ids).__name__}"
                        f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else ''}"
                        f"{' of dtype ' + str(ids.dtype) if isinstance(ids, torch.Tensor) else ''}")
    if not 1 <= ids.shape[1] <= context_length:
        raise ValueError(f"the model reads 1 to {context_length} tokens (its context window), got {ids.shape[1]}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"token ids must lie in 0 .. {vocab_size - 1}, got {int(ids.min())} .. {int(ids.max())}")
    return ids


class TinyGPT(nn.Module):
    """A GPT at toy size: embedding, a stack of :class:`TransformerBlock`, unembedding.

    Its layers are given: ``token_embedding`` (``nn.Embedding(V, D)``: its weight, shape (V, D), is the
    transpose of the lecture's D x V embedding matrix), ``position_embedding`` (``nn.Embedding(
    context_length, D)``: one learned vector per position, since attention by itself does not know the
    order of the tokens), ``blocks`` (``n_layers`` blocks), ``ln_f`` (a final ``nn.LayerNorm(D)``) and
    ``unembedding`` (``nn.Linear(D, V, bias=False)``: the lecture's unembedding matrix).

    ``context_length`` is the context window: the model reads at most that many tokens at once (GPT 3.5's
    was 4096; this one's is a few hundred characters at most).
    """

    def __init__(self, vocab_size: int, context_length: int, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("context_length", context_length),
                            ("d_model", d_model), ("n_heads", n_heads), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.vocab_size, self.context_length = vocab_size, context_length
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(context_length, d_model)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.unembedding = nn.Linear(d_model, vocab_size, bias=False)
        for module in self.modules():  # GPT-2's initialisation: small normal weights, zero biases
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token scores for every position: ``ids`` (B, N) long -> logits (B, N, V).

        1. Embedding: ``x = token_embedding(ids) + position_embedding(positions)`` with positions
           ``0 .. N-1`` (a long tensor on ``ids``' device), shape (B, N, D).
        2. Transformation: every block of ``blocks`` in order, ``x = block(x)``.
        3. Unembedding: ``unembedding(ln_f(x))``, shape (B, N, V).

        Position ``i``'s logits are the model's scores for the token that follows token ``i``; since
        attention is causal they depend on tokens ``0 .. i`` only. The lecture unembeds only the last
        column to generate; in training every position is a prediction (see :func:`next_token_loss`).

        Worked example: ``TinyGPT(27, 8, d_model=16, n_heads=2, n_layers=1)(torch.zeros(2, 5,
        dtype=torch.long))`` has shape (2, 5, 27); changing token 4 changes only position 4's logits.

        Raises:
            TypeError: if ``ids`` is not a long tensor of shape (B, N).
            ValueError: if N is 0 or longer than ``context_length``, or an id is outside ``0 .. V-1``.
        """
        _check_ids(ids, self.vocab_size, self.context_length)
        raise NotImplementedError(
            'forward() is not written yet: implement it in genai_hw/attention.py '
            '(homework 5, question q6)'
        )


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The language model's training loss: how well each position predicts the token that follows it.

    The lecture: "if we have a 1000-token Reddit post, we get 1000 training examples just from that
    post": position ``i``'s logits (which saw tokens ``0 .. i``) are scored against token ``i + 1``. So the
    loss is the mean cross-entropy of ``logits[:, :-1]`` (the last position has nothing to predict)
    against the targets ``ids[:, 1:]`` (the first token is never a target), averaged over all
    ``B * (N - 1)`` predictions: ``mean(-log softmax(logits[b, i])[ids[b, i + 1]])``.

    Args:
        logits: the model's scores, a floating-point tensor of shape (B, N, V).
        ids: the tokens the model read, a long tensor of shape (B, N), values in ``0 .. V-1``, N >= 2.

    Returns:
        A 0-dim tensor (so that ``loss.backward()`` works). ``exp(loss)`` is the perplexity per token.
        ``torch.nn.functional.cross_entropy`` is allowed here; the shift is the exercise.

    Worked example: logits all 0 for V = 4 (every token equally likely) give ``log 4 = 1.3863`` whatever
    ``ids`` is. ``ids = [[0, 1]]`` with ``logits[0, 0] = [0, 10, 0, 0]`` gives about ``1.4e-4`` (token 1
    was predicted with confidence), and ``ids = [[0, 2]]`` gives about ``10.0001``.

    Raises:
        TypeError: if ``logits`` is not a floating-point tensor or ``ids`` not a long tensor.
        ValueError: if the shapes do not match, N < 2, or an id is outside ``0 .. V-1``.
    """
    _check_float("logits", logits, min_dim=3)
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError(f"ids must be a long tensor, got {type(ids).__name__}"
                        f"{' of dtype ' + str(ids.dtype) if isinstance(ids, torch.Tensor) else ''}")
    if logits.ndim != 3 or ids.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, N, V) and ids (B, N), got {tuple(logits.shape)} and {tuple(ids.shape)}")
    if ids.shape[1] < 2:
        raise ValueError(f"need N >= 2 tokens (the first prediction is token 1 from token 0), got N = {ids.shape[1]}")
    if int(ids.min()) < 0 or int(ids.max()) >= logits.shape[2]:
        raise ValueError(f"ids must lie in 0 .. {logits.shape[2] - 1}, got {int(ids.min())} .. {int(ids.max())}")
    raise NotImplementedError(
        'next_token_loss() is not written yet: implement it in genai_hw/attention.py '
        '(homework 5, question q7)'
    )


CHECKPOINT = "tiny_gpt_moby.npz"
"""The trained character model that ships with homework 5 (``scripts/train_tiny_gpt.py``)."""


def load_tiny_gpt(path: Any = None) -> tuple[TinyGPT, dict[str, Any]]:
    """The character-level TinyGPT trained on Moby-Dick's 27-symbol text, and what its training measured.

    Returns ``(model, info)``: the model in eval mode on the CPU, and a dict with its configuration,
    training steps and seconds, its held-out perplexity per character and the n-gram models' (homework 1's
    ``perplexity`` with ``k = 0.1`` on the same split), as ``scripts/train_tiny_gpt.py`` wrote them.
    Weights are plain arrays (``numpy.load`` with ``allow_pickle=False``): loading runs no code.
    """
    import json

    import numpy as np

    from . import data

    file = data._data_file(data.DATA_DIR / CHECKPOINT if path is None else path)
    with np.load(file, allow_pickle=False) as arrays:
        info = json.loads(arrays["info"].tobytes().decode("utf-8"))
        config = info["config"]
        model = TinyGPT(config["vocab_size"], config["context_length"], config["d_model"], config["n_heads"],
                        config["n_layers"])
        state = {name: torch.from_numpy(arrays[f"w/{name}"].astype(np.float32)) for name in model.state_dict()}
    model.load_state_dict(state)
    return model.eval(), info


def heldout_log_probs(model: TinyGPT, ids: Any, batch_size: int = 64) -> torch.Tensor:
    """``log p(ids[i] | the ids before it)`` under ``model`` for every position of a long text, as float64.

    Given, not an exercise. ``ids`` is a list or 1-D tensor of token ids, longer than the context window
    if you like: it is read in windows of ``model.context_length`` tokens that overlap by half, and each
    token from the second one on is scored once, with at least half a window of context (all the text
    before it in the first window). Returns a tensor of shape (len(ids),), ``nan`` at position 0 (the
    first token has nothing before it).
    """
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    size = model.context_length
    if size < 2:
        raise ValueError(f"a model with a context window of {size} token cannot be scored in windows")
    half = size // 2
    starts = [0]  # every window is full but the last, which ends the text
    while starts[-1] + size < len(ids):
        starts.append(starts[-1] + half)
    scored = torch.full((len(ids),), math.nan, dtype=torch.float64)
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(starts), batch_size):
            for length, group in itertools.groupby(starts[i:i + batch_size], key=lambda s: min(size, len(ids) - s)):
                group = list(group)
                x = torch.stack([ids[s:s + length] for s in group]).to(device)
                log_p = torch.log_softmax(model(x).double(), dim=-1)[:, :-1].gather(2, x[:, 1:, None])[..., 0]
                for row, s in enumerate(group):
                    first = 1 if s == 0 else size - half  # the windows before covered the rest
                    scored[s + first:s + length] = log_p[row, first - 1:].cpu()
    return scored


def heldout_perplexity(model: TinyGPT, ids: Any, batch_size: int = 64) -> float:
    """Perplexity per token of ``model`` on a long text ``ids``: ``exp(mean(-log p(token | the tokens before)))``
    over every token from the second one on, scored as :func:`heldout_log_probs` does.

    Given, not an exercise. Comparable with homework 1's ``perplexity``, which scores every token after
    the first ``n - 1``.
    """
    log_p = heldout_log_probs(model, ids, batch_size)
    if len(log_p) < 2:
        raise ValueError("need at least 2 tokens: the first one is never scored")
    return math.exp(-float(log_p[1:].mean()))
