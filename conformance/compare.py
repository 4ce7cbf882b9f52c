"""Structural comparison of results: exact for integral and structural parts,
a stated tolerance only where float arithmetic may legitimately differ."""

from __future__ import annotations

import re

import enum
from dataclasses import dataclass

import torch

from .plain import EnumValue, Foreign


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def exact(self) -> bool:
        return self.rtol == 0 and self.atol == 0


EXACT = Tolerance()


def backend_name(value: object) -> object:
    """Backends compare by name: vLLM returns an enum member, the reference a str."""
    if isinstance(value, (enum.Enum, EnumValue)):
        return value.name
    return value


def _short(value: object, limit: int = 160) -> str:
    """repr() on one line (a tensor's repr spans several), at most ``limit`` characters."""
    text = re.sub(r"\s*\n\s*", " ", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff(expected: object, actual: object, path: str = "result", tol: Tolerance = EXACT) -> str | None:
    """The first difference between ``actual`` and ``expected``, as one sentence.

    ``None`` when they agree. Types are compared exactly (a tuple is not a
    list, an int is not a bool), tensors by shape, dtype, device, then values.
    A :class:`Foreign` value (an object whose type is not plain, as a worker
    described it) never equals anything.
    """
    if isinstance(actual, Foreign):
        return f"{path} is {actual.description}, but should be {_kind(expected)}"
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            return f"{path} is {type(actual).__name__}, but should be a torch.Tensor"
        if tuple(actual.shape) != tuple(expected.shape):
            return f"{path}.shape={tuple(actual.shape)}, but should be {tuple(expected.shape)}"
        if actual.dtype != expected.dtype:
            return f"{path}.dtype={actual.dtype}, but should be {expected.dtype}"
        if actual.device != expected.device:
            return f"{path}.device={actual.device}, but should be {expected.device}"
        a, e = actual.detach().cpu(), expected.detach().cpu()
        if tol.exact or not e.is_floating_point():
            same = torch.equal(a, e) or (
                e.is_floating_point() and bool(((a == e) | (a.isnan() & e.isnan())).all())
            )
        else:
            same = torch.allclose(a.double(), e.double(), rtol=tol.rtol, atol=tol.atol, equal_nan=True)
        if not same:
            bad = (a != e).nonzero()
            where = tuple(bad[0].tolist()) if len(bad) else ()
            how = "exactly" if tol.exact else f"within rtol={tol.rtol}, atol={tol.atol}"
            return (
                f"{path}{list(where)}={a[where].item() if where else _short(a)}, but should be "
                f"{e[where].item() if where else _short(e)} ({how}; {len(bad)} of {e.numel()} elements differ)"
            )
        return None
    if isinstance(expected, (list, tuple)):
        if type(actual) is not type(expected):
            return f"{path} is {type(actual).__name__}, but should be {type(expected).__name__}"
        if len(actual) != len(expected):
            return f"len({path})={len(actual)}, but should be {len(expected)}: {_short(actual)} vs {_short(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = diff(e, a, f"{path}[{i}]", tol)
            if found:
                return found
        return None
    if isinstance(expected, (enum.Enum, EnumValue)) or isinstance(actual, (enum.Enum, EnumValue)):
        expected, actual = backend_name(expected), backend_name(actual)
    if isinstance(expected, bool) or isinstance(expected, int):
        if type(actual) is not type(expected) and not (
            type(expected) is int and isinstance(actual, int) and not isinstance(actual, bool)
        ):
            return f"{path}={_short(actual)} ({type(actual).__name__}), but should be {expected!r} ({type(expected).__name__})"
    if actual != expected:
        return f"{path}={_short(actual)}, but should be {_short(expected)}"
    return None


def _kind(expected: object) -> str:
    if isinstance(expected, torch.Tensor):
        return "a torch.Tensor"
    if isinstance(expected, (enum.Enum, EnumValue)) or type(expected) is str:
        return repr(backend_name(expected)) if not isinstance(expected, str) else repr(expected)
    return f"{_short(expected)} ({type(expected).__name__})"
