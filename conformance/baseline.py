"""Baseline gating: which divergences of a run are new compared with a base run.

Both inputs are JSON reports of ``vllm-vision-conformance --report-json``. A
divergence is keyed by ``(function, check)`` only, not by target or release, so
a base run of vLLM ``main`` gates a run of a pull request's vLLM, a fork's
candidate (``--impl mine=...``) or the next release alike. The message is not part
of the key: the same check diverging with another message is "changed", not new.

Divergent statuses: ``diverges``, ``expected`` (recorded in an expectations file)
and ``error`` (the check itself could not run). A baseline does not trust
expectations files: a divergence that the base run did not have is new even if
the current run's expectations record it, unless ``allow_expected`` is set.

The pure function is :func:`new_divergences`; :func:`compare` gives the whole
picture (new, changed, fixed, persisting) and the problems that make a
comparison meaningless (the target missing or skipped in a report).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from .results import DIVERGENT as _DIVERGENT, BadReport, Status

DIVERGENT = tuple(s.value for s in _DIVERGENT)
NEW_STATUSES = (Status.DIVERGES.value, Status.ERROR.value)  # what --allow-expected still counts as new

Key = tuple[str, str]  # (function, check)


def pick_target(report: dict, target: str | None = None) -> str:
    """The target whose checks count: ``target`` if given, else ``vllm`` when it
    was checked, else the single checked candidate."""
    if not isinstance(report, dict) or "checks" not in report or "targets" not in report:
        raise BadReport("not a vllm-vision-conformance JSON report (no 'checks'/'targets')")
    targets = {t["name"]: t for t in report["targets"]}
    if target is not None:
        if target not in targets:
            raise BadReport(f"no target {target!r} in the report (targets: {', '.join(targets) or 'none'})")
        return target
    checked = [name for name, t in targets.items()
               if name != "reference" and not t.get("skipped") and not t.get("error")]
    if "vllm" in checked:
        return "vllm"
    if len(checked) == 1:
        return checked[0]
    if not checked:
        raise BadReport("no checked target besides the reference (vLLM skipped or not importable?)")
    raise BadReport(f"several checked targets ({', '.join(checked)}): name one with --target")


def target_problem(report: dict, target: str) -> str | None:
    """Why the target's results cannot be trusted in this report, or None."""
    for t in report.get("targets", []):
        if t["name"] == target:
            if t.get("error"):
                return f"target {target}: bad input: {t['error']}"
            if t.get("skipped"):
                return f"target {target}: skipped: {t['skipped']}"
            return None
    return f"no target {target!r} in the report"


def divergences(report: dict, target: str | None = None,
                statuses: Iterable[str] = DIVERGENT) -> dict[Key, dict]:
    """The divergent checks of one target, keyed by (function, check)."""
    name = pick_target(report, target)
    wanted = set(statuses)
    return {(c["function"], c["check"]): c for c in report["checks"]
            if c.get("target") == name and c.get("status") in wanted}


def new_divergences(base: dict, current: dict, *, base_target: str | None = None,
                    current_target: str | None = None, allow_expected: bool = False) -> dict[Key, dict]:
    """The divergences of ``current`` whose (function, check) does not diverge in
    ``base``: the check dicts of ``current``, in its order."""
    before = divergences(base, base_target)
    counted = NEW_STATUSES if allow_expected else DIVERGENT
    now = divergences(current, current_target, counted)
    return {key: check for key, check in now.items() if key not in before}


@dataclasses.dataclass
class Comparison:
    new: dict[Key, dict]
    changed: dict[Key, tuple[dict, dict]]  # same key, another message: (base, current)
    fixed: dict[Key, dict]  # divergent in base, conforming in current
    gone: dict[Key, dict]  # divergent in base, not run in current (absent name, skipped)
    persisting: dict[Key, dict]
    problems: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.new or self.problems)

    @property
    def exit_status(self) -> int:
        """1 a new divergence, 2 no new one but the comparison is meaningless, 0 otherwise."""
        if self.new:
            return 1
        return 2 if self.problems else 0


def compare(base: dict, current: dict, *, base_target: str | None = None,
            current_target: str | None = None, allow_expected: bool = False) -> Comparison:
    problems = []
    try:
        bt = pick_target(base, base_target)
        ct = pick_target(current, current_target)
    except BadReport as exc:
        return Comparison({}, {}, {}, {}, {}, [str(exc)])
    for report, name, which in ((base, bt, "base"), (current, ct, "current")):
        why = target_problem(report, name)
        if why:
            problems.append(f"{which} report: {why}")
        if report.get("complete", report.get("schema", 1) == 1) is not True:
            problems.append(f"{which} report: the run is incomplete ({'; '.join(report.get('incomplete', [])) or 'not finished'})")
    before = divergences(base, bt)
    now = divergences(current, ct)
    new = new_divergences(base, current, base_target=bt, current_target=ct, allow_expected=allow_expected)
    ran = {(c["function"], c["check"]): c for c in current["checks"] if c.get("target") == ct}
    changed, fixed, gone, persisting = {}, {}, {}, {}
    for key, old in before.items():
        if key in now:
            persisting[key] = now[key]
            if _core(now[key].get("message")) != _core(old.get("message")):
                changed[key] = (old, now[key])
        elif key in ran and ran[key].get("status") == Status.CONFORMS.value:
            fixed[key] = ran[key]
        else:
            gone[key] = ran.get(key, old)
    return Comparison(new, changed, fixed, gone, persisting, problems)


def _core(message: Any) -> str:
    return str(message or "").split(" (contract:")[0]


def render(result: Comparison, *, base_name: str = "base", current_name: str = "current") -> str:
    """Text for the terminal: new divergences first, then problems, then the rest."""
    lines = []
    if result.new:
        lines.append(f"{len(result.new)} NEW divergence(s) in {current_name} (not in {base_name}):")
        for (function, check), c in result.new.items():
            lines.append(f"- {function}.{check} [{c.get('status')}]: {c.get('message')}")
            if c.get("example"):
                lines.append(f"    minimal input: {c['example']}")
            if c.get("repro"):
                lines.append(f"    replay: {c['repro']}")
    for problem in result.problems:
        lines.append(f"- cannot gate: {problem}")
    if result.changed:
        lines.append(f"{len(result.changed)} divergence(s) already in {base_name}, with another message now:")
        for (function, check), (old, now) in result.changed.items():
            lines.append(f"- {function}.{check}: was: {old.get('message')}")
            lines.append(f"    now: {now.get('message')}")
    if result.fixed:
        lines.append(f"{len(result.fixed)} divergence(s) of {base_name} fixed in {current_name}:")
        lines.extend(f"- {f}.{c}" for f, c in result.fixed)
    if result.gone:
        lines.append(f"{len(result.gone)} divergence(s) of {base_name} not checked in {current_name}:")
        lines.extend(f"- {f}.{c} ({g.get('status', 'not run')})" for (f, c), g in result.gone.items())
    lines.append(f"{len(result.persisting)} divergence(s) as in {base_name}; "
                 f"{'FAIL' if result.failed else 'OK'}: {len(result.new)} new")
    return "\n".join(lines) + "\n"
