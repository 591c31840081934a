"""Every float-valued hidden case accepts the answers that the docstrings allow.

A student implements from the docstring alone, in whatever order of operations comes naturally; a case
must not fail a faithful answer because its floats were rounded differently from the reference's. For each
homework this plants two alternative implementations of every function whose outputs are floats and grades
them at several seeds:

- ``float64``: the docstring's formula computed in float64 and cast to the returned dtype (the most accurate
  answer: what the issue's student wrote for ``timestep_embedding``);
- ``reordered``: the returned precision (float32 for tensors), in another order of operations than the
  reference's (``x ** 0.5`` vs ``sqrt``, ``exp(-log(b) * e)`` vs ``b ** -e``, sums in another order,
  ``logsigmoid`` vs ``softplus``, ``x * (1 / T)`` vs ``x / T``, ...).

Both must pass every case. Cases whose values are not floats are left as they are (their functions are
not replaced); see ``NOT_FLOAT`` for which and why.
"""

from __future__ import annotations

import pytest

from autograder.grading.harness import grade_cases, load_cases
from conftest import HOMEWORKS, ROOT, SOLUTIONS, plant

DATA = SOLUTIONS / "data"  # hw02's word vectors

SEEDS = [0, 1, 2]

# Cases whose values are exact (ints, strings, bools, token ids, samples drawn with a seeded generator):
# graded with `exact`, their functions stay the reference's.
NOT_FLOAT = {
    "hw01_ngrams": "q2..q4 return strings and Counters of ints; q6, q7 return sampled symbols",
    "hw02_tokens_embeddings": "q1..q5 (tokenizer) return ints and strings; q9 analogy returns words; "
                              "q10 one_hot is exactly 0 and 1",
    "hw03_gans_vaes": "q4 mode_coverage returns an int",
    "hw04_diffusion": "none: every question returns floats (cosine_betas is float64 by its docstring: reordered only)",
    "hw05_transformers": "q2 causal_mask is bool; q9, q10 return sampled token ids",
    "hw06_fine_tuning": "q1 count_parameters, q6 random_windows and q8 training_memory return ints (q4 apply_lora "
                        "draws with the LoRALinear of the variants)",
}

_FIT_LINE = ("        losses.append(float((error**2).mean()))\n"
             "        grad_w = 2.0 * float((error * x).mean())\n"
             "        grad_b = 2.0 * float(error.mean())\n")
_PERPLEXITY_SUM = "        log_sum += math.log(numerator / denominator)\n"
_NEAREST = "    cosines = (matrix @ _unit(vector).astype(matrix.dtype)).astype(np.float64) / norms\n"
_BIAS = ("    direction = _unit(_lookup(word_vectors, pair[0]) - _lookup(word_vectors, pair[1]))\n"
         "    return {word: float(_unit(_lookup(word_vectors, word)) @ direction) for word in words}\n")
_DOCUMENT = "    return np.mean(np.asarray(vectors, dtype=np.float64), axis=0)\n"
_F = "torch.nn.functional"
_LORA_A = "        a = torch.randn(r, base.in_features, generator=generator) / r\n"
_LORA_FORWARD = "        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale\n"
_MERGE = "        weight = base.weight + layer.scale * (layer.B @ layer.A)\n"
_STEP_LOSS = "    loss = next_token_loss(model(ids), ids)\n"
_DISCRIMINATOR = f"    return {_F}.softplus(-real).mean() + {_F}.softplus(fake).mean()\n"
_GENERATOR = (f"    if saturating:\n        return -{_F}.softplus(fake).mean()\n"
              f"    return {_F}.softplus(-fake).mean()\n")
_KL = "    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=1)\n"
_VAE = ("    squared = ((x - x_hat) ** 2).reshape(x.shape[0], -1).sum(dim=1)\n"
        "    return (squared + beta * kl_to_standard_normal(mu, logvar)).mean()\n")
_EMBEDDING = ("    frequencies = 10000.0 ** (-torch.arange(half, dtype=torch.float64, device=t.device) / half)\n"
              "    angles = t.to(torch.float64)[:, None] * frequencies[None, :]\n"
              "    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(torch.float32)\n")
_STEP = ("    mean = (x_t - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - beta)\n"
         "    if t == 0:\n        return mean\n"
         "    sigma2 = beta * (1 - abar[t - 1]) / (1 - ab)\n"
         "    return mean + torch.sqrt(sigma2) * noise\n")
_SOFTMAX = ("    shifted = x - x.amax(dim=dim, keepdim=True)\n    exps = torch.exp(shifted)\n"
            "    return exps / exps.sum(dim=dim, keepdim=True)\n")
_SCORES = "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
_ATTENTION_OUT = "    return weights @ v, weights\n"
_MHA_OUT = "    out = out.transpose(1, 2).reshape(B, N, D) @ w_o\n"
_BLOCK = "        x = x + self.attention(self.ln_1(x))\n        return x + self.mlp(self.ln_2(x))\n"
_LOSS = "    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))\n"
_TEMPERATURE = "    return torch.softmax(logits / temperature, dim=-1)\n"

ALTERNATIVES: dict[str, dict[str, dict[str, list[tuple[str, str]]]]] = {
    "hw01_ngrams": {
        # hw01 works in float64 (numpy arrays and Python floats): the "float64" answer sums exactly (fsum),
        # the reordered one with dot products and a division at the end
        "float64": {
            "training": [(_FIT_LINE,
                          "        fsum = __import__('math').fsum\n"
                          "        losses.append(fsum(error**2) / len(x))\n"
                          "        grad_w = 2.0 * (fsum(error * x) / len(x))\n"
                          "        grad_b = 2.0 * (fsum(error) / len(x))\n")],
            "ngrams": [("    log_sum = 0.0\n", "    log_sum, logs = 0.0, []\n"),
                       (_PERPLEXITY_SUM, "        logs.append(math.log(numerator / denominator))\n"
                                         "        log_sum = math.fsum(logs)\n")],
        },
        "reordered": {
            "training": [(_FIT_LINE,
                          "        losses.append(float(np.dot(error, error) / len(x)))\n"
                          "        grad_w = float(2.0 * np.dot(x, error) / len(x))\n"
                          "        grad_b = float(np.sum(2.0 * error) / len(x))\n")],
            "ngrams": [("    return {symbol: count / total for symbol, count in followers.items()}\n",
                        "    return {symbol: count * (1.0 / total) for symbol, count in followers.items()}\n"),
                       (_PERPLEXITY_SUM, "        log_sum += math.log(numerator) - math.log(denominator)\n"),
                       ("    return math.exp(-log_sum / positions)\n",
                        "    return 1.0 / math.exp(log_sum / positions)\n")],
        },
    },
    "hw02_tokens_embeddings": {
        "float64": {
            "embeddings": [
                ("    return float(np.dot(_unit(u), _unit(v)))\n",
                 "    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)\n"
                 "    norms = np.linalg.norm(u) * np.linalg.norm(v)\n"
                 "    if norms == 0:\n        raise ValueError('zero vector')\n"
                 "    return float(np.dot(u, v) / norms)\n"),
                (_NEAREST, "    cosines = (matrix.astype(np.float64) @ _unit(vector)) / norms\n"),
                ("    return E @ one_hot(token_ids, E.shape[1])\n",
                 "    one_hot(token_ids, E.shape[1])  # its checks\n"
                 "    return np.asarray(E, dtype=np.float64)[:, [int(i) for i in token_ids]]\n"),
                (_BIAS, "    difference = _lookup(word_vectors, pair[0]) - _lookup(word_vectors, pair[1])\n"
                        "    return {word: float(np.dot(_lookup(word_vectors, word), difference)\n"
                        "                        / (np.linalg.norm(_lookup(word_vectors, word)) * "
                        "np.linalg.norm(difference))) for word in words}\n"),
                (_DOCUMENT, "    return np.sum(np.asarray(vectors, dtype=np.float64), axis=0) / len(vectors)\n"),
            ],
        },
        "reordered": {
            # the word vectors are float32: this answer stays in float32 (rows normalised, then one product)
            "embeddings": [
                ("    return float(np.dot(_unit(u), _unit(v)))\n",
                 "    squares = np.dot(u, u) * np.dot(v, v)\n"
                 "    if squares == 0:\n        raise ValueError('zero vector')\n"
                 "    return float(np.dot(u, v) / np.sqrt(squares))\n"),
                (_NEAREST, "    rows = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-30)\n"
                           "    cosines = (rows @ _unit(vector).astype(np.float32)).astype(np.float64)\n"),
                ("    return E @ one_hot(token_ids, E.shape[1])\n",
                 "    return (one_hot(token_ids, E.shape[1]).T @ E.T).T\n"),
                (_BIAS, "    difference = word_vectors[pair[0]] - word_vectors[pair[1]]\n"
                        "    direction = difference / np.linalg.norm(difference)\n"
                        "    return {word: float(word_vectors[word] @ direction / np.linalg.norm(word_vectors[word]))\n"
                        "            for word in words}\n"),
                (_DOCUMENT, "    return np.mean(np.asarray(vectors), axis=0).astype(np.float64)\n"),
            ],
        },
    },
    "hw03_gans_vaes": {
        "float64": {
            "gan": [(_DISCRIMINATOR, f"    return ({_F}.softplus(-real.double()).mean() + "
                                     f"{_F}.softplus(fake.double()).mean()).to(real.dtype)\n"),
                    (_GENERATOR, f"    if saturating:\n"
                                 f"        return (-{_F}.softplus(fake.double()).mean()).to(fake.dtype)\n"
                                 f"    return {_F}.softplus(-fake.double()).mean().to(fake.dtype)\n")],
            "vae": [("    return mu + torch.exp(logvar / 2) * eps\n",
                     "    return (mu.double() + torch.exp(logvar.double() / 2) * eps.double()).to(mu.dtype)\n"),
                    (_KL, "    m, lv = mu.double(), logvar.double()\n"
                          "    return (0.5 * (torch.exp(lv) + m**2 - 1.0 - lv).sum(dim=1)).to(mu.dtype)\n"),
                    (_VAE, "    squared = ((x.double() - x_hat.double()) ** 2).reshape(x.shape[0], -1).sum(dim=1)\n"
                           "    m, lv = mu.double(), logvar.double()\n"
                           "    kl = 0.5 * (torch.exp(lv) + m**2 - 1.0 - lv).sum(dim=1)\n"
                           "    return (squared + beta * kl).mean().to(x.dtype)\n")],
        },
        "reordered": {
            "gan": [(_DISCRIMINATOR, f"    return -({_F}.logsigmoid(real).mean() + {_F}.logsigmoid(-fake).mean())\n"),
                    (_GENERATOR, f"    if saturating:\n        return {_F}.logsigmoid(-fake).mean()\n"
                                 f"    return {_F}.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))\n")],
            "vae": [("    return mu + torch.exp(logvar / 2) * eps\n",
                     "    return eps * torch.sqrt(torch.exp(logvar)) + mu\n"),
                    (_KL, "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)\n"),
                    (_VAE, f"    squared = {_F}.mse_loss(x_hat, x, reduction='sum') / x.shape[0]\n"
                           "    return squared + beta * kl_to_standard_normal(mu, logvar).sum() / x.shape[0]\n")],
        },
    },
    "hw04_diffusion": {
        "float64": {
            "diffusion": [
                ("    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)\n",
                 "    t = torch.arange(T, dtype=torch.float64)\n"
                 "    return (beta_start + t * (beta_end - beta_start) / max(T - 1, 1)).to(torch.float32)\n"),
                ("    return torch.cumprod(1 - betas, dim=0)\n",
                 "    return torch.cumprod(1 - betas.double(), dim=0).to(betas.dtype)\n"),
                ("    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise\n",
                 "    b64 = math.sqrt(1 - beta) * x_prev.double() + math.sqrt(beta) * noise.double()\n"
                 "    return b64.to(x_prev.dtype)\n"),
                ("    return kept.sqrt() * x0 + (1 - kept).sqrt() * noise\n",
                 "    k64 = abar.double()[t].reshape(-1, *([1] * (x0.ndim - 1)))\n"
                 "    return (k64.sqrt() * x0.double() + (1 - k64).sqrt() * noise.double()).to(x0.dtype)\n"),
                (_EMBEDDING, "    i = torch.arange(half, dtype=torch.float64, device=t.device)\n"
                             "    frequencies = torch.exp(-math.log(10000.0) * i / half)\n"
                             "    angles = t.to(torch.float64)[:, None] * frequencies[None, :]\n"
                             "    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(torch.float32)\n"),
                ("    return torch.mean((model(x_t, t) - noise) ** 2)\n",
                 "    return torch.mean((model(x_t, t).double() - noise.double()) ** 2).to(x0.dtype)\n"),
                (_STEP, "    b, a, e = beta.double(), ab.double(), eps.double()\n"
                        "    mean = (x_t.double() - b / torch.sqrt(1 - a) * e) / torch.sqrt(1 - b)\n"
                        "    if t == 0:\n        return mean.to(x_t.dtype)\n"
                        "    sigma2 = b * (1 - abar[t - 1].double()) / (1 - a)\n"
                        "    return (mean + torch.sqrt(sigma2) * noise.double()).to(x_t.dtype)\n"),
            ],
        },
        "reordered": {
            "diffusion": [
                # the docstring asks for float64 here (1 - f(t + 1) / f(t) cancels): the same, vectorised
                ("    betas = [min(1 - f((t + 1) / T) / f(t / T), max_beta) for t in range(T)]\n"
                 "    return torch.tensor(betas, dtype=torch.float64).to(torch.float32)\n",
                 "    u = torch.arange(T + 1, dtype=torch.float64) / T\n"
                 "    kept = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2\n"
                 "    return torch.clamp(1 - kept[1:] / kept[:-1], max=max_beta).to(torch.float32)\n"),
                ("    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)\n",
                 "    step = (beta_end - beta_start) / (T - 1) if T > 1 else 0.0\n"
                 "    return beta_start + torch.arange(T, dtype=torch.float32) * step\n"),
                ("    return torch.cumprod(1 - betas, dim=0)\n",
                 "    return torch.exp(torch.cumsum(torch.log1p(-betas), dim=0))\n"),
                ("    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise\n",
                 "    b = torch.tensor(beta, dtype=x_prev.dtype)\n"
                 "    return (1 - b) ** 0.5 * x_prev + b ** 0.5 * noise\n"),
                ("    return kept.sqrt() * x0 + (1 - kept).sqrt() * noise\n",
                 "    return (kept * x0 * x0) ** 0.5 * torch.sign(x0) + ((1 - kept) * noise * noise) ** 0.5 * "
                 "torch.sign(noise)\n"),
                (_EMBEDDING, "    i = torch.arange(half, device=t.device)\n"
                             "    frequencies = torch.exp(-math.log(10000.0) * i / half)\n"
                             "    angles = t.to(torch.float32)[:, None] * frequencies[None, :]\n"
                             "    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)\n"),
                ("    return torch.mean((model(x_t, t) - noise) ** 2)\n",
                 "    return torch.nn.functional.mse_loss(noise, model(x_t, t))\n"),
                (_STEP, "    mean = (x_t - beta * eps / torch.sqrt(1 - ab)) * torch.rsqrt(1 - beta)\n"
                        "    if t == 0:\n        return mean\n"
                        "    return mean + torch.sqrt(beta) * torch.sqrt((1 - abar[t - 1]) / (1 - ab)) * noise\n"),
            ],
        },
    },
    "hw05_transformers": {
        "float64": {
            "attention": [
                (_SOFTMAX, "    x64 = x.double()\n    exps = torch.exp(x64 - x64.amax(dim=dim, keepdim=True))\n"
                           "    return (exps / exps.sum(dim=dim, keepdim=True)).to(x.dtype)\n"),
                (_SCORES, "    dtype, q, k, v = q.dtype, q.double(), k.double(), v.double()\n"
                          "    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"),
                (_ATTENTION_OUT, "    return (weights @ v).to(dtype), weights.to(dtype)\n"),
                (_MHA_OUT, "    out = (out.transpose(1, 2).reshape(B, N, D).double() @ w_o.double()).to(x.dtype)\n"),
                (_BLOCK, "        x = (x.double() + self.attention(self.ln_1(x)).double()).float()\n"
                         "        return (x.double() + self.mlp(self.ln_2(x)).double()).float()\n"),
                (_LOSS, "    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)\n"
                        "    return -lp.gather(-1, ids[:, 1:, None]).mean().to(logits.dtype)\n"),
            ],
            "sampling": [(_TEMPERATURE,
                          "    return torch.softmax(logits.double() / temperature, dim=-1).to(logits.dtype)\n")],
        },
        "reordered": {
            "attention": [
                (_SOFTMAX, "    shifted = x - x.amax(dim=dim, keepdim=True)\n"
                           "    log_total = torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))\n"
                           "    return torch.exp(shifted - log_total)\n"),
                (_SCORES, "    scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)\n"),
                (_ATTENTION_OUT, "    return (weights[..., :, :, None] * v[..., None, :, :]).sum(dim=-2), weights\n"),
                (_MHA_OUT, "    out = sum(out[:, h] @ w_o[h * d:(h + 1) * d] for h in range(n_heads))\n"),
                (_BLOCK, "        y = x + self.attention(self.ln_1(x))\n"
                         "        return self.mlp(self.ln_2(y)) + self.attention(self.ln_1(x)) + x\n"),
                (_LOSS, "    scores, targets = logits[:, :-1], ids[:, 1:, None]\n"
                        "    return (torch.logsumexp(scores, dim=-1) - scores.gather(-1, targets)[..., 0]).mean()\n"),
            ],
            "sampling": [(_TEMPERATURE, "    return torch.softmax(logits * (1.0 / temperature), dim=-1)\n")],
        },
    },
    "hw06_fine_tuning": {
        "float64": {
            "finetune": [
                (_LORA_A, "        a = (torch.randn(r, base.in_features, generator=generator).double() / r).float()\n"),
                (_LORA_FORWARD, "        x64, a, b = x.double(), self.A.double(), self.B.double()\n"
                                "        low = (x64 @ a.T @ b.T) * self.scale\n"
                                "        return (self.base(x).double() + low).to(x.dtype)\n"),
                (_MERGE, "        change = layer.scale * (layer.B.double() @ layer.A.double())\n"
                         "        weight = (base.weight.double() + change).to(base.weight.dtype)\n"),
                (_STEP_LOSS, "    loss = next_token_loss(model(ids).double(), ids)\n"),
            ],
        },
        "reordered": {
            "finetune": [
                (_LORA_A, "        a = torch.randn(r, base.in_features, generator=generator) * (1.0 / r)\n"),
                (_LORA_FORWARD, f"        low = {_F}.linear({_F}.linear(x, self.A), self.B * self.scale)\n"
                                "        return low + self.base(x)\n"),
                (_MERGE, "        weight = (layer.scale * layer.B) @ layer.A + base.weight\n"),
                (_STEP_LOSS, "    logits = model(ids)\n"
                             f"    loss = {_F}.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:])\n"),
            ],
        },
    },
}


@pytest.mark.slow  # the runners of hw03..hw05 import torch
@pytest.mark.parametrize("variant", ["float64", "reordered"])
@pytest.mark.parametrize("hw", HOMEWORKS)
def test_faithful_answers_in_another_precision_or_order_pass_every_case(tmp_path, hw, variant):
    cases = load_cases(ROOT / "assignments" / hw / "hidden_cases.py")
    package = plant(tmp_path, ALTERNATIVES[hw][variant])
    for seed in SEEDS:
        results = grade_cases(cases, package, SOLUTIONS, seed, data_dir=DATA)
        failed = [f"{r.case.name}: {r.message}" for r in results if not r.passed]
        assert not failed, f"{hw}, {variant} answer, seed {seed}:\n" + "\n".join(failed)


def test_a_failed_approximate_comparison_says_how_far_off_and_what_was_allowed():
    import numpy as np

    from autograder.grading.cases import approx, exact, tensor

    expected = np.zeros((4, 20), dtype=np.float32)
    expected[3, 17] = -0.99093735
    got = expected.copy()
    got[3, 17], got[0, 0] = -0.9909702, 1e-5
    assert approx(rtol=1e-5, atol=1e-5)(tensor(expected), tensor(got)) == (
        "array values differ: largest difference 3.3e-05 at index (3, 17) (expected -0.99093735, got -0.9909702); "
        "allowed 1e-05 + 1e-05 * |expected|")
    assert approx(rtol=0, atol=2 * 2**-14)(np.array([0.5, 1.0]), np.array([0.5, 1.001])) == (
        "array values differ: largest difference 0.001 at index 1 (expected 1.0, got 1.001); allowed 0.00012")
    assert approx(1e-5, 1e-6)(0.5, 0.50002) == (
        "expected 0.5, got 0.50002 (difference 2e-05; allowed 1e-06 + 1e-05 * |expected|)")
    assert approx(1e-5, 1e-6)(np.array([1.0, 2.0]), np.array([1.0, np.nan])) == (
        "array values differ at index 1: expected 2.0, got nan")
    assert exact(np.array([1, 2]), np.array([1, 3])) == "array values differ at index 1: expected 2, got 3"
    assert exact(0.5, 0.50002) == "expected 0.5, got 0.50002"
    # float16 carries its own rounding: 1 ulp at 0.88 passes any case's tolerance, a wrong value does not
    assert approx(1e-5, 1e-6)(tensor([0.1192, 0.8804], "float16"), tensor([0.1192, 0.8809], "float16")) is None
    assert approx(1e-5, 1e-6)(tensor([0.1192, 0.8804], "float16"), tensor([0.1192, 0.89], "float16")) is not None
