"""The implementations under test: the reference, vLLM's installed module, and
candidates named by dotted module, ``.py`` path or installed entry point.

Two views of a target:

* :class:`Loaded`: the module itself, in the process that loaded it (the
  reference in the controller; anything else in its host process, see
  ``conformance.worker``);
* :class:`Target`: the controller's view of any target: its name, kind and
  spec, the documented names it provides, their forms and a few facts, all
  as plain data reported by the process that loaded it; and the handle on
  that process.

The controller never imports vLLM or a candidate itself: :func:`plan` reads
the ``--impl`` specs (and a candidate file's text, to tell whether it is a
copy of vLLM's ``vision.py``), :func:`start` has each target loaded in a host
process of its own, with a deadline.
"""

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

from .adapter import documented_names, forms

VLLM_MODULE = "vllm.model_executor.models.vision"
ENTRY_POINT_GROUP = "vllm_vision_conformance.implementations"
SPEC_HELP = (
    "accepted: NAME=dotted.module, NAME=path/to/file.py or NAME=ep:ENTRY_POINT "
    f"(an entry point in group {ENTRY_POINT_GROUP!r})"
)
DP_NAMES = ("run_dp_sharded_vision_model", "run_dp_sharded_mrope_vision_model")


class BadSpec(Exception):
    """An --impl/--targets/--expectations value that cannot be used (exit status 2)."""


class LoadError(Exception):
    """The target does not load (one line: why)."""


# ---- a target loaded in this process ------------------------------------------

@dataclasses.dataclass
class Loaded:
    name: str
    kind: str  # "reference" | "vllm" | "candidate"
    spec: str
    module: Any
    names: dict[str, Any]  # documented name -> the (adapted) object
    release: str | None = None

    def info(self) -> dict:
        """What the controller learns about the target: plain data only."""
        from .simgroup import SimulationUnsupported, function_globals

        dp = {}
        for name in DP_NAMES:
            if name in self.names:
                try:
                    function_globals(self.names[name])
                    dp[name] = None
                except SimulationUnsupported as exc:
                    dp[name] = str(exc)
        module = self.module
        return {
            "names": sorted(self.names),
            "forms": forms(module, self.names),
            "release": self.release,
            "facts": {
                "current_platform": isinstance(module, types.ModuleType) and hasattr(module, "current_platform"),
                "private_backend": getattr(module, "_get_vit_attn_backend", None) is not None,
                "tpu_selection": _tpu_selection(module),
                "dp": dp,
            },
        }


def _tpu_selection(module) -> str | None:
    """Why the target's simulated TPU checks cannot run (None: they can)."""
    if not (isinstance(module, types.ModuleType) and hasattr(module, "current_platform")):
        return None  # the current_platform fact already says why not
    from .platforms import tpu_selection

    try:
        return tpu_selection()
    except Exception as exc:  # noqa: BLE001
        return f"vLLM's platforms cannot be read: {type(exc).__name__}: {exc}"


def import_vllm_vision() -> types.ModuleType:
    try:  # 0.11.1 - 0.11.2: importing vision.py first is a circular import
        importlib.import_module("vllm.attention")
    except Exception:  # noqa: BLE001
        pass
    try:
        return importlib.import_module(VLLM_MODULE)
    except BaseException as exc:  # noqa: BLE001 - any failure means "does not load"
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise LoadError(f"vLLM not importable: {why}") from None


def vllm_release() -> str | None:
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def load_reference() -> Loaded:
    from .. import reference

    return Loaded("reference", "reference", "reference", reference, documented_names(reference))


def _vllm_shaped_source(source: str) -> bool:
    return bool(re.search(r"^\s*from \.|^\s*(from|import) vllm\b", source, re.M))


def _load_file(name: str, path: str) -> types.ModuleType:
    source = open(path, encoding="utf-8").read()
    safe = re.sub(r"\W", "_", name)
    if _vllm_shaped_source(source):
        # A copy of vLLM's vision.py: load it inside vLLM's package so that its
        # relative imports (``from .clip import ...``) resolve as upstream.
        import_vllm_vision()
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


def load_in_process(kind: str, name: str, spec: str) -> Loaded:
    """Load a target here (in its host process); raises LoadError with the one-line reason."""
    if kind == "reference":
        return load_reference()
    if kind == "vllm":
        module = import_vllm_vision()
        return Loaded(name, kind, spec, module, documented_names(module), vllm_release())
    try:
        if spec.startswith("ep:"):
            found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec[3:]]
            if not found:
                raise LoadError(f"no installed entry point {spec[3:]!r} in group {ENTRY_POINT_GROUP!r}")
            module = found[0].load()
        elif _is_path(spec):
            module = _load_file(name, os.path.abspath(spec))
        else:
            module = importlib.import_module(spec)
    except LoadError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken candidate does not load; it does not take the run down
        why = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"does not import: {why}") from None
    names = documented_names(module)
    release = vllm_release() if isinstance(module, types.ModuleType) and module.__name__.startswith("vllm.") else None
    return Loaded(name, kind, spec, module if isinstance(module, types.ModuleType) else None, names, release)


# ---- the controller's view -----------------------------------------------------------

@dataclasses.dataclass
class Target:
    name: str
    kind: str  # "reference" | "vllm" | "candidate"
    spec: str
    provided: frozenset = frozenset()
    forms: dict = dataclasses.field(default_factory=dict)
    facts: dict = dataclasses.field(default_factory=dict)
    release: str | None = None
    skip_reason: str | None = None  # not checked in this run (--targets)
    load_error: str | None = None  # bad input: reported, exit status 2
    local: Loaded | None = None  # the reference, loaded in the controller
    process: Any = None  # a conformance.worker.TargetProcess for anything else
    needs_vllm: bool = False

    def provides(self, name: str) -> bool:
        return name in self.provided

    @property
    def usable(self) -> bool:
        return self.skip_reason is None and self.load_error is None

    def learn(self, info: dict) -> None:
        self.provided = frozenset(info.get("names", ()))
        self.forms = dict(info.get("forms", {}))
        self.facts = dict(info.get("facts", {}))
        self.release = info.get("release", self.release)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or "/" in spec


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


def _candidate(name: str, spec: str) -> Target:
    target = Target(name, "candidate", spec)
    if spec.startswith("ep:"):
        if not any(ep.name == spec[3:] for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)):
            target.load_error = f"--impl {name}={spec}: no installed entry point {spec[3:]!r} in group " \
                                f"{ENTRY_POINT_GROUP!r}; {SPEC_HELP}"
    elif _is_path(spec):
        if not os.path.isfile(spec):
            target.load_error = f"--impl {name}={spec}: file not found: {spec}; {SPEC_HELP}"
        else:
            try:
                target.needs_vllm = _vllm_shaped_source(open(spec, encoding="utf-8", errors="replace").read())
            except OSError as exc:
                target.load_error = f"--impl {name}={spec}: cannot read the file: {exc}"
    elif not re.fullmatch(r"[A-Za-z_][\w.]*", spec):
        target.load_error = f"--impl {name}={spec}: cannot read implementation spec {spec!r}; {SPEC_HELP}"
    else:
        target.needs_vllm = spec.startswith("vllm.")
    return target


def plan(impls: list[str], wanted: set[str] | None = None) -> tuple[list[Target], list[str]]:
    """Every target (reference, vllm, then the candidates in the order given) and
    the bad ``--impl`` values, one line each. Nothing is loaded yet.

    A bad ``--impl`` name (``vllm``, ``reference``, one given twice) adds no
    target at all, so it changes nothing about the others. vLLM is not
    loaded when ``wanted`` (the ``--targets`` names) leaves it out.
    """
    reference = Target("reference", "reference", "reference")
    vllm = Target("vllm", "vllm", VLLM_MODULE, needs_vllm=True)
    for target in (reference, vllm):
        if wanted is not None and target.name not in wanted:
            target.skip_reason = "not checked (--targets)"  # the reference is still loaded: it is the oracle
    targets, errors, seen = [reference, vllm], [], {"reference", "vllm"}
    for value in impls:
        try:
            name, spec = parse_impl(value)
            if name in seen:
                raise BadSpec(f"--impl name {name!r} given twice; each candidate needs a name of its own")
        except BadSpec as exc:
            errors.append(str(exc))
            continue
        seen.add(name)
        target = _candidate(name, spec)
        if wanted is not None and name not in wanted:
            target.skip_reason = "not checked (--targets)"
        targets.append(target)
    return targets, errors


def start(targets: list[Target], *, load_timeout: float, warm: bool = True) -> list:
    """Load every target that is checked: the reference here, the others each in a host of its own.

    Hosts load in parallel; a target whose host fails, hangs past
    ``load_timeout``, exits or crashes gets ``load_error`` (its one line).
    Returns the shared hosts (the vLLM base host), to be closed with the targets.
    ``warm``: import transformers' vision configs here first (the encoder-info
    checks need them on both sides), so that every host starts with them."""
    from . import rankpool
    from .worker import Host, LoadFailed, TargetProcess

    for target in targets:
        if target.kind == "reference":
            target.local = load_reference()
            target.learn(target.local.info())
            rankpool.register_targets([target.local])
    pending = [t for t in targets if t.kind != "reference" and t.usable]
    base = None
    if any(t.needs_vllm for t in pending):
        base = Host("vllm-base", {"preload": "vllm"})
        base.start()
        if warm:
            _warm_up()  # while vLLM imports in the base host
        try:
            base.wait_loaded(load_timeout)
        except LoadFailed as exc:
            for t in pending:
                if t.needs_vllm:
                    t.load_error = f"{_label(t)}: does not load: {exc}" + (
                        "; install vLLM, or leave it out with --targets" if t.kind == "vllm" else "")
            base = None
    if warm and base is None:
        _warm_up()
    for target in pending:
        if target.load_error:
            continue
        payload = {"kind": target.kind, "name": target.name, "spec": target.spec}
        target.process = TargetProcess(target.name, payload, base if target.needs_vllm else None,
                                       load_timeout=load_timeout)
        target.process.start()
    for target in pending:
        if target.process is None:
            continue
        try:
            target.learn(target.process.wait_loaded())
        except LoadFailed as exc:
            target.load_error = f"{_label(target)}: does not load: {exc}"
            target.process.close()
            target.process = None
            continue
        if not target.provided:
            target.load_error = (f"{_label(target)}: provides none of the documented names "
                                 f"(expected at least one of: {', '.join(_documented())})")
    return [base] if base is not None else []


def _warm_up() -> None:
    """Import here what the controller's own strategies and reference will need
    (transformers' vision configs), while the hosts load."""
    try:
        import transformers

        for name in ("CLIPVisionConfig", "SiglipVisionConfig", "PixtralVisionConfig"):
            getattr(transformers, name)
    except Exception:  # noqa: BLE001 - the checks that need it say so themselves
        pass


def _label(target: Target) -> str:
    return "vllm" if target.kind == "vllm" else f"--impl {target.name}={target.spec}"


def _documented() -> tuple[str, ...]:
    from .adapter import DOCUMENTED

    return DOCUMENTED


def close(targets: list[Target], hosts: list = ()) -> None:
    for target in targets:
        if target.process is not None:
            target.process.close()
            target.process = None
    for host in hosts:
        host.close()
