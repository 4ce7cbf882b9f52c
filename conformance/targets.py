"""The implementations under test: the reference, vLLM's installed module, and
candidates named by dotted module, ``.py`` path or installed entry point."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import types
from typing import Any

from .adapter import documented_names

VLLM_MODULE = "vllm.model_executor.models.vision"
ENTRY_POINT_GROUP = "vllm_vision_conformance.implementations"
SPEC_HELP = (
    "accepted: NAME=dotted.module, NAME=path/to/file.py or NAME=ep:ENTRY_POINT "
    f"(an entry point in group {ENTRY_POINT_GROUP!r})"
)


class BadSpec(Exception):
    """An --impl/--targets/--expectations value that cannot be used (exit status 2)."""


@dataclasses.dataclass
class Target:
    name: str
    kind: str  # "reference" | "vllm" | "candidate"
    spec: str
    names: dict[str, Any] = dataclasses.field(default_factory=dict)
    module: types.ModuleType | None = None
    release: str | None = None
    skip_reason: str | None = None  # the whole target is skipped (e.g. vLLM missing)
    load_error: str | None = None  # bad input: reported, exit status 2

    def get(self, name: str) -> Any | None:
        return self.names.get(name)

    @property
    def usable(self) -> bool:
        return self.skip_reason is None and self.load_error is None


def load_reference() -> Target:
    import reference

    return Target("reference", "reference", "reference", documented_names(reference), reference)


def _import_vllm_vision() -> types.ModuleType:
    try:  # 0.11.1 - 0.11.2: importing vision.py first is a circular import
        importlib.import_module("vllm.attention")
    except Exception:
        pass
    return importlib.import_module(VLLM_MODULE)


def vllm_release() -> str | None:
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def load_vllm() -> Target:
    target = Target("vllm", "vllm", VLLM_MODULE, release=vllm_release())
    try:
        module = _import_vllm_vision()
    except BaseException as exc:  # noqa: BLE001 - any import failure means "skipped"
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        target.skip_reason = f"vLLM not importable: {why}"
        return target
    target.module = module
    target.names = documented_names(module)
    return target


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _load_file(name: str, path: str) -> types.ModuleType:
    source = open(path, encoding="utf-8").read()
    vllm_shaped = re.search(r"^\s*from \.|^\s*(from|import) vllm\b", source, re.M)
    safe = re.sub(r"\W", "_", name)
    if vllm_shaped:
        # A copy of vLLM's vision.py: load it inside vLLM's package so that its
        # relative imports (``from .clip import ...``) resolve as upstream.
        _import_vllm_vision()
        module_name = f"vllm.model_executor.models._vvc_candidate_{safe}"
    else:
        module_name = f"_vvc_candidate_{safe}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def load_candidate(name: str, spec: str) -> Target:
    target = Target(name, "candidate", spec)
    try:
        if spec.startswith("ep:"):
            wanted = spec[3:]
            found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == wanted]
            if not found:
                raise BadSpec(f"no installed entry point {wanted!r} in group {ENTRY_POINT_GROUP!r}")
            module = found[0].load()
        elif spec.endswith(".py") or os.sep in spec or "/" in spec:
            if not os.path.isfile(spec):
                raise BadSpec(f"file not found: {spec}")
            module = _load_file(name, os.path.abspath(spec))
        elif re.fullmatch(r"[A-Za-z_][\w.]*", spec):
            module = importlib.import_module(spec)
        else:
            raise BadSpec(f"cannot read implementation spec {spec!r}")
    except BadSpec as exc:
        target.load_error = f"--impl {name}={spec}: {exc}; {SPEC_HELP}"
        return target
    except BaseException as exc:  # noqa: BLE001 - a broken candidate must not take the run down
        why = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        target.load_error = f"--impl {name}={spec}: does not import: {why}"
        return target
    target.module = module if isinstance(module, types.ModuleType) else None
    target.names = documented_names(module)
    if isinstance(module, types.ModuleType) and module.__name__.startswith("vllm."):
        target.release = vllm_release()
    return target


def parse_impl(value: str) -> tuple[str, str]:
    name, sep, spec = value.partition("=")
    if not sep or not name or not spec:
        raise BadSpec(f"--impl {value!r} is not NAME=SPEC; {SPEC_HELP}")
    if not _NAME.match(name) or name in ("reference", "vllm"):
        raise BadSpec(
            f"--impl name {name!r} is not usable: a name is letters, digits, '_' or '-', "
            "and 'reference' and 'vllm' are taken"
        )
    return name, spec


def load_targets(impls: list[str], wanted: set[str] | None = None) -> list[Target]:
    """Every target: reference, vllm, then the candidates in the order given.

    A bad ``--impl`` becomes a target with ``load_error`` set; the others load.
    vLLM is not imported when ``wanted`` (the ``--targets`` names) leaves it out.
    """
    if wanted is not None and "vllm" not in wanted:
        vllm = Target("vllm", "vllm", VLLM_MODULE, skip_reason="not checked (--targets)")
    else:
        vllm = load_vllm()
    targets = [load_reference(), vllm]
    seen = {"reference", "vllm"}
    for value in impls:
        try:
            name, spec = parse_impl(value)
            if name in seen:
                raise BadSpec(f"--impl name {name!r} given twice")
        except BadSpec as exc:
            targets.append(Target(value.partition("=")[0] or "?", "candidate", value, load_error=str(exc)))
            continue
        seen.add(name)
        targets.append(load_candidate(name, spec))
    return targets
