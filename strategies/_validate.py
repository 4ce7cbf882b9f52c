"""Argument checks for the public strategies, in the manner of Hypothesis's own.

Each check raises :class:`hypothesis.errors.InvalidArgument` (Hypothesis's
public exception) with one line naming the strategy, the argument, the value
given and what is accepted, e.g. ``grid_lists: rope_type='rope3d' is not one
of 'rope_2d', 'rope_3d'``. These are small checks of our own, not
``hypothesis.internal.validation`` (a private module this project does not
depend on); like Hypothesis's, an int argument refuses a bool.

The strategies call them eagerly, when the strategy function is called, so a
bad argument is reported where it is written, before anything is drawn.
"""

from __future__ import annotations

from hypothesis.errors import InvalidArgument

SCALED = ("MAX_ELEMENTS", "MAX_IMAGES", "MAX_SIZES")  # the caps VVC_EXAMPLE_SCALE multiplies


def fail(where: str, message: str) -> None:
    raise InvalidArgument(f"{where}: {message}")


def _accepted(accepted) -> str:
    return ", ".join(repr(a) for a in accepted)


def check_int(where: str, name: str, value, min_value: int | None = None, max_value: int | None = None,
              cap: str | None = None, why: str = "") -> None:
    """``value`` is an int (not a bool) in ``[min_value, max_value]``. ``cap``
    names the budget constant behind ``max_value`` (``MAX_IMAGES``), so that a
    value above it is reported as above the cap, not silently clamped."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a bool, not an int" if isinstance(value, bool) else f"not an int (got {type(value).__name__})"
        fail(where, f"{name}={value!r} is {kind}")
    if min_value is not None and value < min_value:
        fail(where, f"{name}={value!r} is less than {min_value}{why}")
    if max_value is not None and value > max_value:
        if cap is not None:
            scaled = "; VVC_EXAMPLE_SCALE raises it" if cap.startswith(SCALED) else ""
            fail(where, f"{name}={value!r} is above the cap {cap}={max_value} (strategies/_budget.py{scaled}){why}")
        fail(where, f"{name}={value!r} is greater than {max_value}{why}")


def check_bool(where: str, name: str, value, allow_none: bool = False) -> None:
    """``value`` is True or False (or None where ``allow_none``)."""
    if value is None and allow_none:
        return
    if not isinstance(value, bool):
        accepted = "None, True or False" if allow_none else "True or False"
        fail(where, f"{name}={value!r} is not one of {accepted}")


def check_one_of(where: str, name: str, value, accepted) -> None:
    """``value`` is one of ``accepted`` (compared by type and value: ``1`` is not ``True``)."""
    if not any(type(value) is type(a) and value == a for a in accepted):
        fail(where, f"{name}={value!r} is not one of {_accepted(accepted)}")


def check_order(where: str, low_name: str, low, high_name: str, high) -> None:
    """``low <= high``."""
    if low > high:
        fail(where, f"{low_name}={low!r} is greater than {high_name}={high!r}")


def check_strategy(where: str, name: str, value) -> None:
    """``value`` is a Hypothesis strategy."""
    from hypothesis.strategies import SearchStrategy

    if not isinstance(value, SearchStrategy):
        fail(where, f"{name}={value!r} is not a Hypothesis strategy (got {type(value).__name__})")
