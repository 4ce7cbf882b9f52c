"""The registry: every documented name's record, in the order of the one list
of names (:mod:`vllm_vision_conformance.documented`).

Each family's records live in ``conformance/records/<family>.py``, beside
``reference/<family>.py`` and ``strategies/<family>.py``. Adding a documented
function is one name in that list and one record in its family's module; the
generic tests in ``conformance.suite`` run every check of every record against
every target. Every check is a *probe* (run where the target lives, see
``conformance.worker``) and a *judge* (run in the controller on the plain data
the probe observed); see ``conformance.checks``.
"""

from __future__ import annotations

import importlib

from ..documented import FAMILIES, FAMILY, NAMES
from .checks import FunctionSpec


def gather(families=FAMILIES) -> list[FunctionSpec]:
    """The records of ``families``, one per documented name, in the names' order;
    AssertionError when a name has no record or two, or a record names no documented
    name or sits in another family's module."""
    found: dict[str, FunctionSpec] = {}
    for family in families:
        for spec in importlib.import_module(f"{__package__}.records.{family}").RECORDS:
            where = f"conformance/records/{family}.py"
            if spec.name not in FAMILY:
                raise AssertionError(f"{where}: a record for {spec.name!r}, which is not a documented name")
            if FAMILY[spec.name] != family:
                raise AssertionError(f"{where}: the record for {spec.name!r} belongs in "
                                     f"conformance/records/{FAMILY[spec.name]}.py")
            if spec.name in found:
                raise AssertionError(f"{where}: a second record for {spec.name!r}")
            found[spec.name] = spec
    missing = [name for name in NAMES if FAMILY[name] in families and name not in found]
    if missing:
        raise AssertionError(f"no record for the documented name(s) {', '.join(missing)}")
    return [found[name] for name in NAMES if name in found]


REGISTRY: list[FunctionSpec] = gather()
BY_NAME = {spec.name: spec for spec in REGISTRY}
