"""The vocabulary of checks: calling a target with a time bound, comparing
its outcome with the reference's or with a value written from the docs, and
turning any disagreement into a one-sentence :class:`Divergence`."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from .adapter import NotInThisForm
from .compare import EXACT, Tolerance, diff
from .targets import Target
from .timebound import ExampleTimeout, time_bound


class Divergence(AssertionError):
    """A target departs from the contract on one input.

    ``what`` is the one-sentence difference, ``call`` the input, formatted.
    """

    def __init__(self, what: str, call: str | None = None, target: str | None = None) -> None:
        super().__init__(f"{what} [{call}] target={target}" if call else what)
        self.what, self.call = what, call


class NotApplicable(Exception):
    """The target's form of the function cannot express this input."""


@dataclasses.dataclass
class Check:
    """One check of one documented function.

    A *property* has a ``strategy`` (Hypothesis draws the input); a *case*
    has one fixed ``example`` (a dict, or a function returning one).
    ``needs_reference``: it compares with the reference, so it is not run on
    the reference target itself. ``examples``: explicit edge inputs a property
    always tries first. ``group``: for data-parallel checks, the group they
    run under ("sim" in-process, "gloo" real processes; see ``--dp-group``).
    """

    id: str
    doc: str
    run: Callable[["Ctx", dict], None]
    strategy: Any = None
    example: Any = None
    needs_reference: bool = False
    examples: tuple = ()
    group: str | None = None  # data-parallel checks: "sim" or "gloo"

    @property
    def kind(self) -> str:
        return "property" if self.strategy is not None else "case"

    def case_input(self) -> dict:
        return self.example() if callable(self.example) else dict(self.example or {})


@dataclasses.dataclass
class Outcome:
    value: Any = None
    exc: BaseException | None = None

    def describe(self) -> str:
        if self.exc is not None:
            return f"raised {type(self.exc).__name__}: {str(self.exc).splitlines()[0] if str(self.exc) else ''}"
        return f"returned {_fmt(self.value)}"


def _fmt(value: Any, limit: int = 120) -> str:
    if isinstance(value, torch.Tensor):
        body = ""
        if value.numel() <= 12:
            body = f", values={value.tolist()}"
        return f"tensor(shape={tuple(value.shape)}, dtype={str(value.dtype).replace('torch.', '')}{body})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_fmt(v, 40) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        text = f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
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
    if isinstance(value, (int, float, str, bool, type(None))):
        return copy.copy(value)
    return value


@dataclasses.dataclass
class Ctx:
    """What a check sees: the target under test, the reference, the time bound."""

    target: Target
    reference: Target
    function: str
    timeout: float = 30.0
    examples: int = 0
    not_applicable: int = 0
    current: str | None = None  # the example being run, formatted
    hung: str | None = None

    def impl(self, name: str | None = None, target: Target | None = None):
        return (target or self.target).get(name or self.function)

    def invoke(self, fn: Callable, *args, **kwargs) -> Outcome:
        """Call a target's function under the time bound, catching what it raises."""
        if self.hung:
            return Outcome(exc=ExampleTimeout(f"not run: the target hung earlier in this check ({self.hung})"))
        try:
            with time_bound(self.timeout, f"{self.target.name}.{getattr(fn, '__name__', 'call')}"):
                return Outcome(value=fn(*args, **kwargs))
        except NotInThisForm as exc:
            raise NotApplicable(str(exc)) from None
        except ExampleTimeout as exc:
            self.hung = f"{exc} on {self.current}"
            return Outcome(exc=exc)
        except Exception as exc:  # noqa: BLE001 - a raising candidate is a divergence, not a crash
            return Outcome(exc=exc)

    def call(self, kwargs: dict, name: str | None = None) -> Outcome:
        fn = self.impl(name)
        if fn is None:
            raise Divergence(f"{name or self.function} is not provided by {self.target.name}")
        args = fresh(kwargs)
        return self.invoke(fn, **args)

    def ref(self, kwargs: dict, name: str | None = None) -> Outcome:
        fn = self.reference.get(name or self.function)
        try:
            return Outcome(value=fn(**fresh(kwargs)))
        except Exception as exc:  # noqa: BLE001
            return Outcome(exc=exc)

    def diverge(self, what: str, kwargs: dict | None = None) -> Divergence:
        call = format_call(self.function, kwargs) if kwargs is not None else self.current
        return Divergence(what, call, self.target.name)


def compare_outcomes(ctx: Ctx, expected: Outcome, actual: Outcome, kwargs: dict, tol: Tolerance = EXACT,
                     path: str = "result") -> None:
    if isinstance(actual.exc, ExampleTimeout):
        raise ctx.diverge(str(actual.exc), kwargs)
    if expected.exc is not None:
        if actual.exc is None:
            raise ctx.diverge(f"{actual.describe()}, but should raise {type(expected.exc).__name__} "
                              f"(contract: {expected.exc})", kwargs)
        if not isinstance(actual.exc, type(expected.exc)):
            raise ctx.diverge(f"{actual.describe()}, but should raise {type(expected.exc).__name__} "
                              f"(contract: {expected.exc})", kwargs)
        return
    if actual.exc is not None:
        raise ctx.diverge(f"{actual.describe()}, but should return {_fmt(expected.value)}", kwargs)
    found = diff(expected.value, actual.value, path, tol)
    if found:
        raise ctx.diverge(found, kwargs)


# ---- generic check builders -------------------------------------------------

def agrees(check_id: str, doc: str, strategy, tol: Tolerance = EXACT, examples: tuple = ()) -> Check:
    """Property: the target's outcome equals the reference's on drawn input."""

    def run(ctx: Ctx, kwargs: dict) -> None:
        compare_outcomes(ctx, ctx.ref(kwargs), ctx.call(kwargs), kwargs, tol)

    return Check(check_id, doc, run, strategy=strategy, needs_reference=True, examples=examples)


def returns(check_id: str, doc: str, example, expected, tol: Tolerance = EXACT) -> Check:
    """Case: the target returns ``expected`` (written from the docs, not computed)."""

    def run(ctx: Ctx, kwargs: dict) -> None:
        want = expected() if callable(expected) else expected
        compare_outcomes(ctx, Outcome(value=want), ctx.call(kwargs), kwargs, tol)

    return Check(check_id, doc, run, example=example)


def raises(check_id: str, doc: str, example, exc_type: type[BaseException]) -> Check:
    """Case: input outside the contract raises ``exc_type`` (or a subclass)."""

    def run(ctx: Ctx, kwargs: dict) -> None:
        compare_outcomes(ctx, Outcome(exc=exc_type(doc)), ctx.call(kwargs), kwargs)

    return Check(check_id, doc, run, example=example)
