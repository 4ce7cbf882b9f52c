"""The vocabulary of checks.

A check has two halves:

* the **probe** runs where the target lives (its worker process; the
  reference's in the controller). It calls the target through a
  :class:`~conformance.worker.TargetView` and returns what it observed:
  :class:`Outcome` objects inside plain containers, converted to plain data
  before they leave the worker;
* the **judge** runs in the controller, on plain data only. It compares what
  the target did with the reference's observation (the same probe, or
  ``ref_probe``, run on the reference) or with a value written from the docs,
  and raises a one-sentence :class:`Divergence`.

``prepare`` (controller side) turns a drawn example into the one sent to the
probe, and decides whether the target's form can take it at all.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from .compare import EXACT, Tolerance, diff
from .plain import Outcome, Raised, qualified_name, short


FAULT_SHRINKS = 6  # faults of the target's processes a check shrinks over before it stops at the last one
UPSTREAM_TESTS = "vllm tests/models/test_vision.py"  # where vLLM's own fixed cases come from


class Divergence(AssertionError):
    """A target departs from the contract on one input.

    ``what`` is the one-sentence difference, ``call`` the input, formatted.
    """

    def __init__(self, what: str, call: str | None = None, target: str | None = None) -> None:
        super().__init__(f"{what} [{call}] target={target}" if call else what)
        self.what, self.call = what, call


class NotApplicable(Exception):
    """The target's form of the function cannot express this input."""


class Unsupported(Exception):
    """The check cannot run on this target at all (the reason says why): skipped."""


class HarnessError(Exception):
    """The harness itself failed on this input: the check is an error, not a verdict."""


@dataclasses.dataclass
class Check:
    """One check of one documented function.

    A *property* has a ``strategy`` (Hypothesis draws the input); a *case*
    has one fixed ``example`` (a dict, or a function returning one).
    ``needs_reference``: it compares with the reference, so it is not run on
    the reference target itself. ``examples``: explicit edge inputs a property
    always tries first. ``group``: for data-parallel checks, the group they
    run under ("sim" in-process, "gloo" real processes; see ``--dp-group``).
    ``ref_probe``: the probe whose result on the reference the judge needs
    (``None``: the judge needs none).
    """

    id: str
    doc: str
    probe: Callable[[Any, dict], Any]
    judge: Callable[["Ctx", dict, Any, Any], None]
    strategy: Any = None
    example: Any = None
    needs_reference: bool = False
    examples: tuple = ()
    group: str | None = None  # data-parallel checks: "sim" or "gloo"
    ref_probe: Callable[[Any, dict], Any] | None = None
    prepare: Callable[["Ctx", dict], dict] | None = None

    @property
    def kind(self) -> str:
        return "property" if self.strategy is not None else "case"

    def case_input(self) -> dict:
        return self.example() if callable(self.example) else dict(self.example or {})


# ---- formatting (our own values only) -------------------------------------------

def _fmt(value: Any, limit: int = 120) -> str:
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        inner = ", ".join(_fmt(v, 40) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        text = f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    elif isinstance(value, torch.Tensor) or type(value) in (int, float, bool, str, type(None)):
        return short(value, limit)
    elif isinstance(value, torch.nn.Module) and not hasattr(value, "spec"):
        text = type(value).__name__ + "(...)"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_call(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={_fmt(v)}' for k, v in kwargs.items())})"


def fresh(value: Any) -> Any:
    """A copy of the arguments that a call may mutate without harm."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list):
        return [fresh(v) for v in value]
    if isinstance(value, tuple):
        return tuple(fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    return value


# ---- exceptions by name -------------------------------------------------------------

def exc_name(exc: Any) -> str:
    """How an exception's class is shown: its name, qualified where a builtin's name is borrowed."""
    if isinstance(exc, Raised):
        name = exc.short_name
        plain_name = name.rpartition(".")[2]
        return plain_name if "." in name and not hasattr(builtins, plain_name) else name
    return type(exc).__name__


def _type_of(exc: Any) -> str:
    return exc.type_name if isinstance(exc, Raised) else qualified_name(type(exc))


def is_a(exc: Any, wanted: Any) -> bool:
    """``exc`` (a Raised record) is an instance of the class of ``wanted`` (an exception or a record)."""
    name = _type_of(wanted)
    if isinstance(exc, Raised):
        return name in exc.mro
    return name in {qualified_name(c) for c in type(exc).__mro__}


def describe(outcome: Outcome) -> str:
    if outcome.exc is not None:
        message = outcome.exc.message if isinstance(outcome.exc, Raised) else str(outcome.exc)
        first = message.splitlines()[0] if message else ""
        return f"raised {exc_name(outcome.exc)}: {first}"
    return f"returned {_fmt(outcome.value)}"


@dataclasses.dataclass
class Ctx:
    """What a judge sees: the target (by name and facts), the function, the example."""

    target: Any
    function: str
    timeout: float = 30.0
    examples: int = 0
    not_applicable: int = 0
    current: str | None = None  # the example being run, formatted
    stop: bool = False  # set by a judge whose divergence ends the check at once (a group that hung)
    faults: int = 0  # faults of the target's processes so far in this check

    def diverge(self, what: str, kwargs: dict | None = None) -> Divergence:
        call = format_call(self.function, kwargs) if kwargs is not None else self.current
        return Divergence(what, call, self.target.name)


def compare_outcomes(ctx: Ctx, expected: Outcome, actual: Outcome, kwargs: dict, tol: Tolerance = EXACT,
                     path: str = "result") -> None:
    if not isinstance(actual, Outcome):
        raise ctx.diverge(f"{path}: no outcome was reported", kwargs)
    if expected.exc is not None:
        contract = expected.exc.message if isinstance(expected.exc, Raised) else str(expected.exc)
        should = f"should raise {exc_name(expected.exc)} (contract: {contract})"
        if actual.exc is None or not is_a(actual.exc, expected.exc):
            raise ctx.diverge(f"{describe(actual)}, but {should}", kwargs)
        return
    if actual.exc is not None:
        raise ctx.diverge(f"{describe(actual)}, but should return {_fmt(expected.value)}", kwargs)
    found = diff(expected.value, actual.value, path, tol)
    if found:
        raise ctx.diverge(found, kwargs)


def both_returned(ctx: Ctx, want: Outcome, got: Outcome, kwargs: dict, returned: str) -> bool:
    """For a call whose result is an object the probe examines further (a selector,
    an encoder info): True when both returned one; False when both raised alike;
    a divergence otherwise. ``returned`` says what the result is ("a selector")."""
    if want.exc is None and got.exc is None:
        return True
    if want.exc is None:
        raise ctx.diverge(f"{describe(got)}, but should return {returned}", kwargs)
    if got.exc is None:
        raise ctx.diverge(f"returned {returned}, but should raise {exc_name(want.exc)} "
                          f"(contract: {want.exc.message})", kwargs)
    compare_outcomes(ctx, want, got, kwargs)
    return False


# ---- generic probes and check builders ------------------------------------------------

def call_probe(view, ex: dict) -> Outcome:
    """The target-side half of most checks: call the function with the example."""
    return view.call(view.function, ex)


def agrees(check_id: str, doc: str, strategy, tol: Tolerance = EXACT, examples: tuple = ()) -> Check:
    """Property: the target's outcome equals the reference's on drawn input."""

    def judge(ctx: Ctx, ex: dict, got: Outcome, want: Outcome) -> None:
        compare_outcomes(ctx, want, got, ex, tol)

    return Check(check_id, doc, call_probe, judge, strategy=strategy, needs_reference=True, examples=examples,
                 ref_probe=call_probe)


def returns(check_id: str, doc: str, example, expected, tol: Tolerance = EXACT) -> Check:
    """Case: the target returns ``expected`` (written from the docs, not computed)."""

    def judge(ctx: Ctx, ex: dict, got: Outcome, _: Any) -> None:
        want = expected() if callable(expected) else expected
        compare_outcomes(ctx, Outcome(value=want), got, ex, tol)

    return Check(check_id, doc, call_probe, judge, example=example)


def raises(check_id: str, doc: str, example, exc_type: type[BaseException]) -> Check:
    """Case: input outside the contract raises ``exc_type`` (or a subclass)."""

    def judge(ctx: Ctx, ex: dict, got: Outcome, _: Any) -> None:
        compare_outcomes(ctx, Outcome(exc=exc_type(doc)), got, ex)

    return Check(check_id, doc, call_probe, judge, example=example)



@dataclasses.dataclass
class FunctionSpec:
    """The record of one documented name: its checks (``conformance/records/<family>.py``)."""

    name: str
    summary: str
    checks: list[Check]

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)
