"""Sampling: from a language model's scores to text, one token at a time.

The primer's loop: tokenize -> embed -> transform -> predict -> *sample* -> repeat. A model gives V scores
(logits) for the next token; the softmax turns them into probabilities; one token is drawn; it is appended
to the text, and the model is asked again. The lecture's *temperature* sets how adventurous the draw is:
0 always takes the most likely token ("no creativity"), 1 uses the model's probabilities as they are,
and above 1 the probabilities are flattened, so that unlikely tokens come up more often.

Randomness comes only from the ``torch.Generator`` the caller passes, through
``torch.multinomial(probabilities, 1, generator=generator)`` on the CPU, so that a draw can be repeated
exactly (and graded).

The characters of homework 1 (the 26 letters and the space) are the tokens of the character model of
homework 5: :func:`encode` and :func:`decode` are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ "
"""The 27 symbols of homework 1; the token id of a character is its index here (space: 26)."""


def encode(text: str) -> list[int]:
    """Token ids of a text over the 27 symbols: ``encode("HI ")`` is ``[7, 8, 26]``. Given, not an exercise."""
    unknown = sorted(set(text) - set(CHARS))
    if unknown:
        raise ValueError(f"text has symbols outside the 27 of homework 1 (A-Z and space): {unknown[:5]}")
    return [CHARS.index(c) for c in text]


def decode(ids: Sequence[int]) -> str:
    """The text of token ids: ``decode([7, 8, 26])`` is ``"HI "``. Given, not an exercise."""
    return "".join(CHARS[int(i)] for i in ids)


def _check_temperature(temperature: Any) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0 \
            or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    return float(temperature)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The next-token probabilities at a given temperature.

    Temperature ``T > 0``: ``softmax(logits / T)`` along the last dimension (``torch.softmax`` is allowed
    here; so is your ``softmax`` of ``attention.py``, but then a bug there costs this question too).
    ``T = 1`` gives the model's own probabilities; ``T < 1`` sharpens them (the most likely token gains),
    ``T > 1`` flattens them towards uniform.
    ``T = 0`` is the limit: all the probability on the most likely token; when several tokens share the
    highest score, on the first of them (the lowest index), exactly 1.0 there and 0.0 elsewhere.

    Args:
        logits: the model's scores, a floating-point tensor of shape (..., V).
        temperature: a finite number ``>= 0``.

    Returns:
        A tensor of the same shape, dtype and device as ``logits``, summing to 1 along the last dimension.

    Worked example: for ``logits = [1.0, 2.0, 3.0]``, ``T = 1`` gives ``[0.0900, 0.2447, 0.6652]``,
    ``T = 0.5`` (scores doubled) gives ``[0.0159, 0.1173, 0.8668]``, ``T = 2`` gives
    ``[0.1863, 0.3072, 0.5065]``, and ``T = 0`` gives ``[0.0, 0.0, 1.0]``; ``[3.0, 3.0, 1.0]`` at
    ``T = 0`` gives ``[1.0, 0.0, 0.0]``.

    Raises:
        TypeError: if ``logits`` is not a floating-point tensor with at least one dimension.
        ValueError: if ``temperature`` is negative, infinite or not a number.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim < 1:
        raise TypeError(f"logits must be a floating-point tensor of shape (..., V), got {logits!r}"[:200])
    temperature = _check_temperature(temperature)
    raise NotImplementedError(
        'apply_temperature() is not written yet: implement it in genai_hw/sampling.py '
        '(homework 5, question q8)'
    )


def sample_next_token(logits: torch.Tensor, temperature: float, generator: torch.Generator,
                      top_k: int | None = None) -> int:
    """Draw the next token from a model's scores for it.

    1. With ``top_k``, keep only the ``top_k`` highest scores: every logit smaller than the ``top_k``-th
       largest becomes ``-inf`` (logits tied with it stay), so only the likeliest tokens can be drawn.
    2. At ``temperature == 0`` return the index of the (first) highest score, drawing nothing.
    3. Else ``probabilities = apply_temperature(logits, temperature)``, and return
       ``int(torch.multinomial(probabilities.cpu(), 1, generator=generator))``: exactly one call of
       ``torch.multinomial`` with the probabilities on the CPU, so that the same generator gives the same
       token on every machine (and the autograder can repeat your draw).

    Args:
        logits: the scores for the next token, a floating-point tensor of shape (V,) on any device.
        temperature: a finite number ``>= 0``.
        generator: a ``torch.Generator`` on the CPU, the only source of randomness.
        top_k: None (keep every token) or a positive int; ``top_k >= V`` keeps every token.

    Returns:
        The token id, a Python ``int`` in ``0 .. V-1``.

    Worked example: ``sample_next_token(torch.tensor([1.0, 3.0, 2.0]), 0, g)`` is 1, whatever ``g``.
    With ``g = torch.Generator().manual_seed(0)``, ``sample_next_token(torch.tensor([0.0, 0.0]), 1.0, g)``
    is ``int(torch.multinomial(torch.tensor([0.5, 0.5]), 1, generator=torch.Generator().manual_seed(0)))``.
    ``top_k=1`` gives the highest score's token at any temperature.

    Raises:
        TypeError: if ``logits`` is not a 1-D floating-point tensor or ``generator`` not a ``torch.Generator``.
        ValueError: for a bad ``temperature`` or ``top_k``.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim != 1 \
            or logits.numel() == 0:
        raise TypeError(f"logits must be a non-empty 1-D floating-point tensor of shape (V,), got {logits!r}"[:200])
    temperature = _check_temperature(temperature)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (on the CPU), got {type(generator).__name__}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or a positive int, got {top_k!r}")
    raise NotImplementedError(
        'sample_next_token() is not written yet: implement it in genai_hw/sampling.py '
        '(homework 5, question q9)'
    )


def generate(model: Any, prompt_ids: Sequence[int], max_new_tokens: int, temperature: float,
             generator: torch.Generator, top_k: int | None = None) -> list[int]:
    """Continue a prompt one token at a time: the primer's predict -> sample -> repeat.

    ``ids`` starts as the prompt. Then ``max_new_tokens`` times:

    1. ``context`` is the last ``model.context_length`` ids (all of them while there are fewer): the
       model cannot read more than its context window, so the oldest tokens fall out of view.
    2. ``logits = model(x)`` with ``x`` a (1, len(context)) long tensor of the context, on the device of
       the model's parameters (``next(model.parameters()).device``); inside ``torch.no_grad()``.
    3. The next token is ``sample_next_token(logits[0, -1], temperature, generator, top_k)``: only the
       last position's scores, as in the lecture's unembedding of the final column. Append it.

    Args:
        model: a language model: ``model(x)`` maps a (1, n) long tensor to logits (1, n, V), and
            ``model.context_length`` is its context window (for example a :class:`attention.TinyGPT`).
        prompt_ids: the prompt's token ids, a non-empty list (or tuple) of ints.
        max_new_tokens: how many tokens to add, an int ``>= 0``.
        temperature, generator, top_k: as for :func:`sample_next_token`.

    Returns:
        A list of ``len(prompt_ids) + max_new_tokens`` Python ints: the prompt, then the new tokens.

    Worked example: with ``temperature=0`` the result is the same on every call (always the likeliest
    token); ``generate(model, encode("THIS IS THE Q"), 5, 0.0, g)`` starts with the 13 prompt ids.

    Raises:
        TypeError: if ``prompt_ids`` is not a non-empty list or tuple of ints.
        ValueError: if ``max_new_tokens`` is negative or not an int.
    """
    if type(prompt_ids) not in (list, tuple) or not prompt_ids \
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in prompt_ids):
        raise TypeError(f"prompt_ids must be a non-empty list of ints (token ids), got {prompt_ids!r}"[:200])
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    raise NotImplementedError(
        'generate() is not written yet: implement it in genai_hw/sampling.py '
        '(homework 5, question q10)'
    )
