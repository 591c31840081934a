"""The grading, inside the autograder zip (the whole folder, as it is here), next to student code.

- ``plugin``: the Otter plugin that runs a grading's phases during ``otter run``; ``gradescope``: the zip's
  entry point and a results.json whatever happens.
- ``cases``, ``wire``, ``runner``, ``harness``: the hidden-test harness. Submitted code runs in its own
  isolated Python process (``runner``); its outputs come back as plain data (``wire``) and are compared with
  the reference in the grader's process (``harness``), which never runs student code.
- ``sandbox`` (with ``namespaces`` and ``seccomp``): the one place that decides what student code may do:
  its user, its limits, how it is started and how it is ended.

Imports nothing of :mod:`autograder.build`, and nothing heavy at import time.
"""
