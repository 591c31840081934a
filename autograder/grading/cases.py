"""How a hidden test case is written.

A homework's ``hidden_cases.py`` defines ``CASES``, a list of :class:`Case`.
A case names one package function, makes its inputs from a seeded
``numpy.random.Generator`` (fresh random inputs at every grading run, plus
fixed edge cases), and says how to compare the submitted output with the
reference output. A case is worth its ``points`` only when every one of its
calls passes, which gives partial credit per case within a question.

Example::

    Case("q2", "normalize_random_text", 1, "ngrams.normalize",
         inputs=lambda rng: [call(random_text(rng)) for _ in range(20)],
         what="normalize on random mixed-case text with punctuation")
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .wire import ModuleState, RngSpec, Tensor, Unsupported


@dataclass(frozen=True)
class Call:
    """One call of the function under test: ``function(*args, **kwargs)``."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def describe(self, limit: int = 160) -> str:
        parts = [short(a, 60) for a in self.args] + [f"{k}={short(v, 60)}" for k, v in self.kwargs.items()]
        text = f"({', '.join(parts)})"
        return text if len(text) <= limit else text[: limit - 3] + "..."


def call(*args: Any, **kwargs: Any) -> Call:
    return Call(tuple(args), dict(kwargs))


Comparator = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class Case:
    """One hidden test case (one Otter test case, with its own points).

    Attributes:
        question: the Otter question it belongs to, e.g. ``"q2"``.
        name: unique name, shown to the student, e.g. ``"normalize_random_text"``.
        points: what the case is worth.
        function: ``"module.function"`` inside ``genai_hw``.
        inputs: makes the list of calls from a seeded Generator.
        what: one line saying what is checked, shown in failure messages.
        compare: returns None when ``got`` is right, else a short reason.
        timeout: seconds allowed for each call of the submitted function.
        check_mutation: fail if the submitted function changes its arguments.
        forbid_torch_attention: while the submitted function runs, torch's softmax, log_softmax and
            attention raise (:func:`wire.forbid_torch_attention`): the exercise is to build them.

    ``function`` may name a method, ``"attention.TinyGPT.forward"``: its first argument is then the
    model (a ``wire.ModelSpec``), built afresh in each process.
    """

    question: str
    name: str
    points: float
    function: str
    inputs: Callable[[np.random.Generator], list[Call]]
    what: str
    compare: Comparator = field(default=None)  # type: ignore[assignment]
    timeout: float = 5.0
    check_mutation: bool = True
    forbid_torch_attention: bool = False

    def __post_init__(self) -> None:
        if self.compare is None:
            object.__setattr__(self, "compare", exact)


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) or (type(value).__module__ == "torch"
                                          and type(value).__name__ in ("Tensor", "Parameter"))


def _tensor_parts(value: Any) -> tuple[str, np.ndarray]:
    """A tensor's dtype name (``"float32"``) and values, for a :class:`wire.Tensor` or a torch tensor."""
    if isinstance(value, Tensor):
        return value.dtype, value.array
    return str(value.dtype).removeprefix("torch."), value.detach().cpu().numpy()


def tensor(values: Any, dtype: str = "float32") -> Tensor:
    """A tensor argument for the function under test, written without torch: ``tensor([0.0, 1.0])``.

    The grader's process never imports torch; the processes that run package code get
    ``torch.tensor(values, dtype=getattr(torch, dtype))``.
    """
    return Tensor(np.asarray(values), dtype)


def short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception as err:  # noqa: BLE001 - e.g. an int too long to print
        text = f"<{type(value).__name__} that cannot be shown: {type(err).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with `` ...`` where it was cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 4)]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " ..."


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    """``float(value)``; an integer too large for a float is +-inf (so it compares as different)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _type_label(value: Any) -> str:
    if isinstance(value, Unsupported):
        return value.type_name
    if isinstance(value, ModuleState):
        return f"torch.nn.Module ({value.type_name})"
    if _is_tensor(value):
        return "torch.Tensor"
    return type(value).__name__


def exact(expected: Any, got: Any) -> str | None:
    """Equal values of the same kind (a Counter must be a Counter, a tuple a tuple)."""
    return approx(0.0, 0.0)(expected, got)


GPU_FLOAT32_RTOL = 1e-5
GPU_FLOAT32_ATOL = 1e-6
"""Where the student's code ran on CUDA (``STUDENT_DEVICE``), float32 and float16 tensors may differ from the
CPU reference by this much more than the case allows: float32 sums in another order. TF32 is switched off
in the runner, so nothing looser is needed; exact comparisons and float64 stay as they are."""
FLOAT16_RTOL = 2e-3
FLOAT16_ATOL = 2**-22
"""A float16 tensor (a case's input of that dtype, returned in it) may differ from the reference by float16
rounding whatever the case allows for float32: a rounding is up to 2**-11 = 4.9e-4 relative (4 subnormal
steps, 2.4e-7, near 0), and a formula of a few operations (softmax: exp, sum, divide) carries about four."""
STUDENT_DEVICE = "cpu"
"""Where the submitted functions ran; the harness sets it (``"cuda"`` on a GPU grader)."""


def approx(rtol: float = 1e-7, atol: float = 1e-10) -> Comparator:
    """Like :func:`exact`, but floats (also inside containers) may differ by rounding."""

    def compare(expected: Any, got: Any) -> str | None:
        return _compare(expected, got, rtol, atol, "")

    return compare


def _g(x: float) -> str:
    return f"{x:.2g}" if x else "0"


def _allowed(rtol: float, atol: float) -> str:
    """The tolerance, as a student reads it: ``allowed 1e-06 + 1e-05 * |expected|``."""
    return f"allowed {_g(atol)} + {_g(rtol)} * |expected|" if rtol else f"allowed {_g(atol)}"


def _compare_arrays(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float, at: str) -> str | None:
    """None when every value is within ``atol + rtol * |expected|`` (NaN where NaN is expected), else the
    worst value: where, how far off, and what was allowed."""
    try:
        with np.errstate(all="ignore"):
            e, g = np.asarray(expected), np.asarray(got)
            if e.dtype.kind not in "biuf" or g.dtype.kind not in "biuf":
                raise TypeError
            e, g = e.astype(np.float64), g.astype(np.float64)
            close = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
            if close.all():
                return None
            difference = np.abs(g - e)
            difference = np.where(close, -1.0, np.where(np.isfinite(difference), difference, np.inf))
            index = np.unravel_index(int(np.argmax(difference)), e.shape)
    except (TypeError, ValueError):  # not numbers: compared as values
        if np.array_equal(got, expected):
            return None
        return f"array values differ{at}: expected {short(expected)}, got {short(got)}"
    where_in = tuple(int(i) for i in index)
    position = "" if not where_in else f" at index {where_in if len(where_in) > 1 else where_in[0]}"
    values = f"(expected {str(np.asarray(expected)[index])}, got {str(np.asarray(got)[index])})"
    if np.isfinite(difference[index]) and (rtol or atol):
        return (f"array values differ{at}: largest difference {_g(float(difference[index]))}{position} {values}; "
                f"{_allowed(rtol, atol)}")
    return f"array values differ{at}{position}: {values[1:-1]}"


def _compare(expected: Any, got: Any, rtol: float, atol: float, where: str) -> str | None:
    at = f" at {where}" if where else ""
    if isinstance(got, Unsupported):
        return f"returned a {got.type_name}{at}, expected a {_type_label(expected)}"
    if _is_tensor(expected):
        if not _is_tensor(got):
            return f"expected a torch.Tensor{at}, got {_type_label(got)}"
        (expected_dtype, expected_values), (got_dtype, got_values) = _tensor_parts(expected), _tensor_parts(got)
        if got_dtype != expected_dtype:
            return f"expected dtype torch.{expected_dtype}{at}, got torch.{got_dtype}"
        if STUDENT_DEVICE == "cuda" and expected_dtype in ("float32", "float16"):
            rtol, atol = max(rtol, GPU_FLOAT32_RTOL), max(atol, GPU_FLOAT32_ATOL)
        if expected_dtype == "float16" and (rtol or atol):
            rtol, atol = max(rtol, FLOAT16_RTOL), max(atol, FLOAT16_ATOL)
        return _compare(expected_values, got_values, rtol, atol, where)
    if isinstance(expected, ModuleState):
        if not isinstance(got, ModuleState):
            return f"expected a torch.nn.Module ({expected.type_name}){at}, got {_type_label(got)}"
        if got.type_name != expected.type_name:
            return f"expected a {expected.type_name}{at}, got a {got.type_name}"
        problem = _compare(expected.parameters, got.parameters, rtol, atol, f"{where}.parameters")
        if problem:
            return problem
        if sorted(got.trainable) != sorted(expected.trainable):
            return (f"the parameters that train (requires_grad){at}: expected {short(sorted(expected.trainable))}, "
                    f"got {short(sorted(got.trainable))}")
        return None
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(got) is not type(expected) or got != expected:
            return f"expected {short(expected)}{at}, got {short(got)}"
        return None
    if isinstance(expected, (int, float, np.integer, np.floating)):
        if isinstance(got, (bool, str)) or not isinstance(got, (int, float, np.integer, np.floating)):
            return f"expected a number {short(expected)}{at}, got {_type_label(got)} {short(got)}"
        if _is_integer(expected) and _is_integer(got) and int(expected) == int(got):
            return None
        e, g = _as_float(expected), _as_float(got)
        if math.isnan(e) and math.isnan(g):
            return None
        if e == g or (math.isfinite(e) and math.isfinite(g) and abs(e - g) <= atol + rtol * abs(e)):
            return None
        difference = f" (difference {_g(abs(e - g))}; {_allowed(rtol, atol)})" if (
            (rtol or atol) and math.isfinite(e) and math.isfinite(g)) else ""
        return f"expected {short(expected)}{at}, got {short(got)}{difference}"
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"expected a numpy array{at}, got {_type_label(got)}"
        if got.shape != expected.shape:
            return f"expected shape {expected.shape}{at}, got shape {got.shape}"
        return _compare_arrays(expected, got, rtol, atol, at)
    if isinstance(expected, (list, tuple)):
        if type(got) is not type(expected):
            return f"expected a {type(expected).__name__}{at}, got {_type_label(got)} {short(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items{at}, got {len(got)}: {short(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = _compare(e, g, rtol, atol, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if isinstance(expected, Counter) and not isinstance(got, Counter):
            return f"expected a collections.Counter{at}, got {_type_label(got)}"
        if not isinstance(got, dict):
            return f"expected a dict{at}, got {_type_label(got)} {short(got)}"
        missing = [k for k in expected if k not in got and expected[k] != 0]
        extra = [k for k in got if k not in expected and got[k] != 0]
        if missing or extra:
            detail = f"missing keys {short(missing[:5])}" if missing else ""
            if extra:
                detail += ("; " if detail else "") + f"unexpected keys {short(extra[:5])}"
            return f"{detail}{at} ({len(expected)} entries expected, {len(got)} returned)"
        for key in expected:
            if key in got:
                problem = _compare(expected[key], got[key], rtol, atol, f"{where}[{key!r}]")
                if problem:
                    return problem
        return None
    if isinstance(expected, (set, frozenset)):
        if not isinstance(got, (set, frozenset)) or set(got) != set(expected):
            return f"expected {short(expected)}{at}, got {short(got)}"
        return None
    return f"cannot compare a {_type_label(expected)}{at}"  # a spec error, reported as a failure


# Input generators shared by homework specs.

LETTERS = string.ascii_letters


def random_text(rng: np.random.Generator, length: int, alphabet: str) -> str:
    """A random string of ``length`` symbols drawn from ``alphabet``."""
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=length))


def seed_from(rng: np.random.Generator) -> RngSpec:
    """A Generator argument for the function under test, seeded from ``rng``."""
    return RngSpec(int(rng.integers(0, 2**31 - 1)))
