"""genai-hw's instructor side: from the reference solutions to graded results.

- ``stubgen``: derives the student package ``genai_hw/`` from ``solutions/genai_hw/``.
- ``release``: builds the student release and one Gradescope autograder zip per homework.
- ``cases``, ``wire``, ``runner``, ``harness``: the hidden-test harness. Submitted
  code runs in its own isolated Python process (``runner``); its outputs come
  back as plain data (``wire``) and are compared with the reference in the
  grader's process (``harness``), which never runs student code.
- ``plugin``: the Otter plugin that runs the harness during ``otter run``.
- ``grade``: grades a folder of submissions into a table and a CSV.

This package imports nothing heavy at import time: the grading image loads it
from the autograder zip.
"""
