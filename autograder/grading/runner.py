"""Runs package functions in their own process: the student's, and the reference's.

The same runner computes both sides of a case: the harness starts it on the
submitted package as the sandbox's package user (header ``role``
``"student"``), and on a private copy of the reference as the grader's own
user (``"reference"``: no gensim shortcuts forbidden, word vectors as plain
arrays, on the CPU), so expected and submitted outcomes are made and encoded
alike. What follows describes the student's side.

Started by :mod:`autograder.grading.harness` as ``python -I genai_hw_runner.py
PACKAGE_ROOT``, as the sandbox's unprivileged package user
(:mod:`autograder.grading.sandbox`), where PACKAGE_ROOT is a read-only folder that
holds only this file, ``genai_hw_wire.py``, a snapshot of the submitted
``genai_hw/`` taken before any student code ran, and the data the cases
load. It never sees the reference solutions or the hidden cases' code.

Protocol, request and response: the harness writes one JSON line to stdin
(the header: a fresh HMAC key, the resources to preload, and the cases
*without their inputs*: function, timeout and checks) and keeps stdin open.
The runner moves its two pipes to private descriptors and points fd 0, 1
and 2 at /dev/null (submitted code that reads input gets nothing, and what it
prints is discarded), loads the homework's libraries and resources, reports
its memory then (``baseline``: what the memory limit does not count), caps
its data size, imports every module of the package, and writes ``ready``.
Then the harness sends one request per call (``{"case": i, "call": j,
"args": ..., "kwargs": ...}``) and the runner answers each with one
``outcome`` line: the call's status, value and checks, or the
``import_error`` of the case's function. The harness sends the next request
only once it has this outcome (or has given up on the call), so no input is
in this process before its call, and it times every call on its own clock:
nothing written here can lengthen a call. Every line carries an HMAC of its
JSON, so lines that another process writes into the pipe (the notebook's
kernel, a child left behind) are ignored; the key never touches the disk.
Submitted code in *this* process can find the key (in this process's
memory): all it could sign is outcomes of its own calls, which the grader
checks and times itself, and the expected outputs never leave the grader's
process.

What the mutation check proves: the runner writes each positional argument
as plain data before and after the call and reports the ones that differ
(``mutated``). That catches honest code that changes its inputs in place
(appends to a list, ``add_`` on a tensor). It does not prove that the inputs
were left alone: only this process sees those objects, so code running here
can forge the report (sign its own outcome, or patch this module). The
grader fails a call whose report is missing or malformed, so a broken runner
never passes it by silence.
"""

import hashlib
import hmac
import importlib
import json
import os
import pkgutil
import signal
import sys
import traceback

TEXT_LIMIT = 300
"""Characters kept of a text that describes a failure (an exception's message, each of its class names, where
it was raised): the outcome line stays far below the grader's bound whatever the exception holds."""


def _clipped(text):
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 3] + "..."


class CallTimeout(BaseException):
    """Raised inside a submitted function that ran past its time limit."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _exception_info(err):
    names = [cls.__name__[:TEXT_LIMIT] for cls in type(err).__mro__][:TEXT_LIMIT]
    message = _clipped(str(err))
    tb = traceback.extract_tb(err.__traceback__)
    student_frames = [f for f in tb if "genai_hw" in f.filename]
    where = ""
    if student_frames:
        last = student_frames[-1]
        where = _clipped(f"{last.filename.split('genai_hw')[-1].lstrip('/')}, line {last.lineno}")
    return {"status": "raised", "types": names, "message": message, "where": where}


def seed_globals(seed=0):
    """Seed the global random generators before each call, so code that (against the
    instructions) uses them still behaves the same at every grading run."""
    import random

    import numpy

    random.seed(seed)
    numpy.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _free_gpu_memory():
    """After every call: what a call left in PyTorch's CUDA cache (a CUDA out-of-memory error included)
    must not cost the next case."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


def _plain(wire, value, limit):
    """``value`` as plain data; what cannot be written, or would take more than ``limit`` characters of JSON,
    comes back as an ``unsupported`` stand-in that says why (so an outcome line always fits the grader's bound)."""
    try:
        encoded = wire.encode(value)
        if len(json.dumps(encoded, separators=(",", ":"))) <= limit:
            return encoded
        return {"t": "unsupported", "type": f"output over {limit // 1024} KB", "repr": ""}
    except Exception as err:  # noqa: BLE001 - e.g. an int too long to write, a recursive container
        return {"t": "unsupported", "type": type(value).__name__[:TEXT_LIMIT],
                "repr": f"could not be sent back ({type(err).__name__})"}


def _run_call(function, wire, call, timeout, check_mutation, value_limit):
    try:
        args = wire.decode(call["args"])
        kwargs = wire.decode(call["kwargs"])
        before = None
        if check_mutation:
            before = [None if wire.is_resource(a) else wire.dumps(a) for a in args]
        real_args = wire.realize_args(args)
        real_kwargs = wire.realize(kwargs)
    except Exception as err:  # the grader's side of the call failed, not the submitted code
        return {"status": "setup_error", "message": _clipped(f"{type(err).__name__}: {err}")}
    seed_globals()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        value = function(*real_args, **real_kwargs)
    except CallTimeout:
        return {"status": "timeout"}
    except BaseException as err:  # noqa: BLE001 - any failure of submitted code costs the call only
        signal.setitimer(signal.ITIMER_REAL, 0)
        return _exception_info(err)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _free_gpu_memory()
    mutated = []
    if check_mutation:
        for i, (old, arg) in enumerate(zip(before, real_args)):
            try:
                changed = old is not None and wire.dumps(arg) != old
            except Exception:  # noqa: BLE001 - changed into something that cannot even be written
                changed = True
            if changed:
                mutated.append(i)
    outcome = {"status": "ok", "value": _plain(wire, value, value_limit), "mutated": mutated}
    try:
        state = wire.observe(args, real_args)
        if state is not None:
            outcome["state"] = _plain(wire, state, value_limit)
    except Exception as err:  # noqa: BLE001 - e.g. the models were replaced by something else
        outcome["state"] = {"t": "unsupported", "type": type(err).__name__, "repr": "could not be read"}
    return outcome


def _answer(wire, case, request, value_limit):
    """The outcome of one requested call of ``case``: its function's ``import_error``, or how the call went."""
    module_name, *attributes = case["function"].split(".")
    try:
        function = importlib.import_module(f"genai_hw.{module_name}")
        for attribute in attributes:  # "attention.TinyGPT.forward": a method, called with the model first
            function = getattr(function, attribute)
    except BaseException as err:  # noqa: BLE001
        info = _exception_info(err)
        return {"import_error": f"{info['types'][0]}: {info['message']}"}
    wire.torch_attention_guard(bool(case.get("forbid_torch_attention")))
    try:
        return _run_call(function, wire, request, case["timeout"], case["check_mutation"], value_limit)
    finally:
        wire.torch_attention_guard(False)


def _deterministic_cuda(wire):
    """On a GPU grader (``GENAI_HW_DEVICE=auto``, set only where the grader sees a GPU): no TF32 and
    deterministic kernels, so the student's float32 results differ from the CPU reference only by float32
    rounding (cases.GPU_FLOAT32_RTOL), the same at every grading."""
    if os.environ.get("GENAI_HW_DEVICE") not in ("auto", "cuda"):
        return
    try:
        if wire.tensor_device() != "cuda":
            return
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:  # noqa: BLE001 - without torch there is nothing to set
        pass


def _settle(emit, data_mib):
    """Report this process's memory now (its baseline: Python and the homework's libraries, no submitted
    code yet), then cap its data size at that plus ``data_mib`` (RLIMIT_DATA, hard too: no way back up)."""
    status = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()[0] if value.split() else "0"
    kib = int(status.get("RssAnon", status.get("VmRSS", "0"))) + int(status.get("RssShmem", "0"))
    emit({"event": "baseline", "kib": kib})
    if data_mib:
        import resource

        limit = int(status.get("VmData", "0")) * 1024 + int(data_mib) * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _channel():
    """The grader's two pipes, moved to private descriptors (requests in, signed lines out); fd 0, 1 and 2
    then point at /dev/null, so submitted code that reads input gets nothing and what it prints is discarded."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    return requests, replies


def _emitter(out, key):
    def emit(record):
        text = json.dumps(record, separators=(",", ":"))
        mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        out.write(f"{text}\t{mac}\n")

    return emit


def main():
    package_root = sys.argv[1]
    requests, replies = _channel()
    job = json.loads(requests.readline())
    emit = _emitter(replies, bytes.fromhex(job.pop("key")))
    sys.path.insert(0, package_root)
    # Only the snapshot provides genai_hw: no installed copy (an editable install's finder would
    # hand a module the upload lacks from the course checkout).
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("_frozen_importlib")]
    import genai_hw_wire as wire

    wire.REAL_TENSORS = True
    wire.STUDENT_SIDE = job.get("role", "student") == "student"
    signal.signal(signal.SIGALRM, _on_alarm)
    _deterministic_cuda(wire)
    # The homework's libraries and resources, loaded before any submitted code runs: what the process
    # holds then is its baseline, which the memory limit does not count (sandbox.MEMORY_MIB).
    for name in job.get("stack", []):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a library the grading image lacks: the cases say so
            pass
    if any(case.get("forbid_torch_attention") for case in job["cases"]):
        # Before the package is imported, so that a module that imports torch's softmax or attention
        # by name gets the guarded function.
        wire.forbid_torch_attention()
    if job.get("forbid_gensim"):
        wire.forbid_gensim_answers()
    for resource in job.get("preload", []):
        try:
            wire.realize(wire.decode(resource))
        except Exception:  # noqa: BLE001 - reported by the calls that need it
            pass
    _settle(emit, job.get("data_mib"))
    # Import the whole package now, before any case runs.
    for info in pkgutil.iter_modules([os.path.join(package_root, "genai_hw")]):
        try:
            importlib.import_module(f"genai_hw.{info.name}")
        except BaseException:  # noqa: BLE001 - reported again by the cases that need the module
            pass
    emit({"event": "ready"})
    cases = {case["index"]: case for case in job["cases"]}
    for line in requests:  # one call at a time, each sent once the grader has the previous one's outcome
        request = json.loads(line)
        outcome = _answer(wire, cases[request["case"]], request, job["value_limit"])
        emit({"event": "outcome", "case": request["case"], "call": request["call"], **outcome})

if __name__ == "__main__":
    main()
