"""Wall time of ``genai-hw release``, verification included: hw01 alone (budget: under 30 s) and every
homework (budget: under 90 s).

    python bench/release.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    for label, homeworks, budget in (("hw01", ["hw01_ngrams"], 30.0), ("all", [], 90.0)):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak, rc = measure([sys.executable, "-m", "autograder.build.cli", "--root", str(ROOT), "release",
                                         *homeworks, "--out", tmp])
        if rc != 0:
            raise SystemExit("genai-hw release failed")
        report(f"release_{label}", {"seconds": seconds, "budget_s": budget, "peak_mib": peak})
