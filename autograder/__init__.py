"""genai-hw's instructor side, in two packages for two jobs (as Otter splits ``assign`` from ``run``):

- :mod:`autograder.build` runs on the instructor's machine: the ``genai-hw`` command, the stub generator,
  the release (student folders and one Gradescope autograder zip per homework) and batch grading.
- :mod:`autograder.grading` runs inside the autograder zip, as root, next to student code: the Otter
  plugin, the hidden-case harness, the runner, the wire, the sandbox and its limits.

The build imports the grading; the grading never imports the build. The autograder zip carries this file
and ``grading/``, nothing of ``build/``. Nothing heavy is imported here.
"""
