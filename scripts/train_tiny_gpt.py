"""Train homework 5's character-level TinyGPT on Moby-Dick and write genai_hw/data/tiny_gpt_moby.npz.

    python scripts/train_tiny_gpt.py [--steps 4000] [--threads 2]

Deterministic: the same seed, thread count and torch build give the same weights (seeded initialisation
and batches, ``torch.use_deterministic_algorithms``). It trains the reference ``attention.TinyGPT`` on the
training 90 % of ``data.load_moby_dick_27()`` (homework 1's split, ``split_text(text, 0.9)``), rounds the
weights to float16 (how they are stored), and measures on the held-out 10 %: the model's perplexity per
character (``attention.heldout_perplexity``), its perplexity at the last position of a full window (what
``sampling.generate`` reads once the text fills the window), and homework 1's n-gram models for N = 1..6
(the reference ``ngrams.perplexity`` with ``k = 0.1``, counts of the training text).

The loss is ``next_token_loss``'s cross-entropy with one more target: a batch of windows of 129 characters,
the model reads the first 128 and every one of its 128 positions predicts the character after it.
``next_token_loss(model(x), x)`` on windows of 128 would score only positions 0 .. 126, and position 127
(its position embedding included) would never learn, although ``generate`` reads exactly that position
once the text is 128 characters long.

Everything it measured goes into the file's ``info`` (JSON) next to the weights (``w/<name>``), and is
printed; the data README quotes the figures. Run ``genai-hw stubs`` afterwards to copy the file
into ``genai_hw/``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "solutions" / "genai_hw" / "data" / "tiny_gpt_moby.npz"
CONFIG = {"vocab_size": 27, "context_length": 128, "d_model": 128, "n_heads": 4, "n_layers": 4}
BATCH, LR, WARMUP, SEED = 32, 2e-3, 100, 0


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then a cosine decay to a tenth."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(steps - WARMUP, 1)
    return LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(ROOT / "solutions"))
    from genai_hw import attention, ngrams, sampling
    from genai_hw.data import load_moby_dick_27, split_text

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    train_text, heldout_text = split_text(load_moby_dick_27(), 0.9)
    train = torch.tensor(sampling.encode(train_text), dtype=torch.long)
    heldout = sampling.encode(heldout_text)

    torch.manual_seed(SEED)
    model = attention.TinyGPT(**CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.01)
    batches = torch.Generator().manual_seed(SEED + 1)
    size = CONFIG["context_length"]
    start, smoothed, curve = time.perf_counter(), None, []
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps)
        offsets = torch.randint(0, len(train) - size - 1, (BATCH,), generator=batches)
        windows = torch.stack([train[o:o + size + 1] for o in offsets.tolist()])
        logits = model(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        value = loss.item()
        smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
        if (step + 1) % 100 == 0 or step == 0:
            curve.append([step + 1, round(smoothed, 4)])
            print(f"step {step + 1}/{args.steps}: loss {smoothed:.3f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())  # measure the weights as they are stored
    gpt = attention.heldout_perplexity(model, heldout)
    ids = torch.tensor(heldout, dtype=torch.long)
    starts = range(0, len(ids) - size - 1, size)
    with torch.no_grad():
        nll = [float(torch.nn.functional.cross_entropy(model(torch.stack([ids[s:s + size] for s in chunk]))[:, -1],
                                                        torch.stack([ids[s + size] for s in chunk]), reduction="sum"))
               for chunk in (list(starts)[i:i + 64] for i in range(0, len(starts), 64))]
    last = math.exp(sum(nll) / len(starts))
    print(f"TinyGPT: held-out perplexity {last:.3f} at the last position of a full window", flush=True)
    table = {}
    for n in range(1, 7):
        table[str(n)] = ngrams.perplexity(ngrams.char_ngram_counts(train_text, n), heldout_text, n, k=0.1)
        print(f"{n}-gram: held-out perplexity {table[str(n)]:.3f}", flush=True)
    info = {
        "config": CONFIG, "steps": args.steps, "batch": BATCH, "seconds": round(seconds, 1),
        "threads": args.threads, "torch": torch.__version__, "seed": SEED,
        "optimizer": f"AdamW(lr {LR} peak, {WARMUP} warm-up steps, cosine to a tenth; betas (0.9, 0.99), "
                     "weight decay 0.01), gradients clipped at norm 1",
        "train_characters": len(train_text), "heldout_characters": len(heldout_text),
        "heldout_perplexity": round(gpt, 4), "last_position_perplexity": round(last, 4),
        "ngram_heldout_perplexity": {k: round(v, 4) for k, v in table.items()},
        "ngram_k": 0.1, "loss_curve": curve,
        "command": "python scripts/train_tiny_gpt.py " + " ".join(sys.argv[1:]),
    }
    arrays = {f"w/{name}": value.detach().numpy().astype(np.float16) for name, value in model.state_dict().items()}
    arrays["info"] = np.frombuffer(json.dumps(info).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(args.out, **arrays)
    prompt = sampling.encode("THIS IS THE Q")
    sample = sampling.generate(model, prompt, 120, 0.7, torch.Generator().manual_seed(0))
    print(f"TinyGPT: held-out perplexity {gpt:.3f} per character after {args.steps} steps ({seconds:.0f} s)")
    print(f"sample at temperature 0.7: {sampling.decode(sample)!r}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
