"""Seconds per training step of the notebooks' small models with 1, 2, ... torch threads, and what
genai_hw.utils.fit_torch_threads picks here. Each thread count runs in a fresh process.

    python bench/threads.py [--steps 100]

Run it on a quiet machine, and once more beside a busy process (``--busy``: one CPU-bound Python loop
runs meanwhile) to see what a shared machine does to more threads than free CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

STEP = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[3])
from genai_hw.attention import TinyGPT, next_token_loss
steps = int(sys.argv[2])
torch.manual_seed(0)
gpt = TinyGPT(27, context_length=64, d_model=64, n_heads=4, n_layers=2)  # hw05's CPU model
mlp = torch.nn.Sequential(torch.nn.Linear(66, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128), torch.nn.SiLU(),
                          torch.nn.Linear(128, 2))  # hw04's ring denoiser
out = {}
for name, model, make in (("tinygpt", gpt, lambda: torch.randint(0, 27, (32, 64))),
                          ("denoiser", mlp, lambda: torch.randn(256, 66))):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(steps + 5):
        if i == 5:
            start = time.perf_counter()
        x = make()
        loss = next_token_loss(model(x), x) if name == "tinygpt" else model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out[name] = (time.perf_counter() - start) / steps
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--busy", action="store_true", help="one CPU-bound process runs meanwhile")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "solutions"))
    from genai_hw.utils import available_cpus

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        for threads in range(1, len(os.sched_getaffinity(0)) + 1):
            done = subprocess.run([sys.executable, "-c", STEP, str(threads), str(args.steps), str(ROOT / "solutions")],
                                  capture_output=True, text=True, check=True)
            seconds = json.loads(done.stdout)
            report(f"threads_{threads}{'_busy' if args.busy else ''}",
                   {f"{name}_ms_per_step": 1000 * s for name, s in seconds.items()} | {"threads": threads})
    finally:
        if busy is not None:
            busy.kill()
    report("threads_fitted", {"available_cpus": available_cpus()})


if __name__ == "__main__":
    main()
