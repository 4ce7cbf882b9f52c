"""Known divergences: one plain-text file per target (and vLLM release).

Format: one entry a line, ``FUNCTION CHECK [TEXT]``, with the reason in the
comment lines (``# ...``) directly above it; a blank line ends a reason. The
optional TEXT must appear in the divergence's message for the entry to match,
so that a *different* divergence of the same check is still reported. A
check may have several entries, one for each kind of divergence it records.
Example::

    # vLLM returns -1 tokens instead of refusing a count without a class token.
    get_num_selected_vision_tokens error-zero-tokens-default returned -1

Instead of TEXT, an entry may name the release's recorded rule,
``rule=NAME``: a function in :mod:`reference.departures` that states exactly
how the release departs. The check then compares the target on every input
with the contract and with the rule; an input that matches neither is a new
divergence, whatever the entry says.

An entry is applied on every input a check draws, not only to the final
shrunk one: an input whose divergence the entry describes (its TEXT appears
in the message, or the target follows its rule) counts as a recorded
departure and the check goes on; any other divergence is reported. So a
recorded bug does not hide a second one in the same check. An entry of a
property check must therefore say which divergence it means: TEXT or a
rule (an entry that matched any divergence would hide every new one).

An entry without a reason is refused. An entry that matched no divergence in a
run is reported as stale.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources

BUILTIN_DIR = "expectations"


class BadExpectations(Exception):
    pass


@dataclasses.dataclass
class Entry:
    function: str
    check: str
    reason: str
    source: str  # "file:line"
    text: str = ""  # must appear in the divergence message, when given
    rule: str = ""  # the name of the release's rule in reference.departures, when given
    matched: bool = False

    def describes(self, message: str) -> bool:
        """The entry's TEXT covers this divergence message (a rule entry covers none by text)."""
        return not self.rule and (not self.text or self.text in message)


@dataclasses.dataclass
class Expectations:
    path: str | None = None
    # (function, check) -> its entries: a check may have several, one per kind of divergence
    entries: dict[tuple[str, str], list[Entry]] = dataclasses.field(default_factory=dict)

    def of(self, function: str, check: str) -> list[Entry]:
        return self.entries.get((function, check), [])

    def lookup(self, function: str, check: str, message: str = "") -> Entry | None:
        return next((e for e in self.of(function, check) if e.describes(message)), None)

    def stale(self) -> list[Entry]:
        return [e for group in self.entries.values() for e in group if not e.matched]


def parse(text: str, source: str) -> Expectations:
    result = Expectations(path=source)
    reason: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            reason = []
            continue
        if line.startswith("#"):
            reason.append(line.lstrip("#").strip())
            continue
        fields = line.split(None, 2)
        if len(fields) < 2:
            raise BadExpectations(
                f"{source}:{number}: {line!r} is not 'FUNCTION CHECK [TEXT]'"
            )
        if not any(reason):
            raise BadExpectations(
                f"{source}:{number}: entry {line!r} has no reason (a '# ...' comment directly above it)"
            )
        key = (fields[0], fields[1])
        text = fields[2].strip() if len(fields) == 3 else ""
        rule = ""
        if text.startswith("rule="):
            rule, text = text[len("rule="):].strip(), ""
            for name in rule.split(","):
                _check_rule(fields[0], name, f"{source}:{number}")
        elif not text and fields[1].startswith("property-"):
            raise BadExpectations(
                f"{source}:{number}: entry {line!r} of a property check names no divergence: add the TEXT its "
                "message contains, or rule=NAME (a rule in reference.departures); an entry that matches any "
                "divergence would hide new ones"
            )
        result.entries.setdefault(key, []).append(Entry(fields[0], fields[1], " ".join(r for r in reason if r), f"{source}:{number}",
                                    text, rule))
    return result


def _check_rule(function: str, rule: str, where: str) -> None:
    from ..reference import departures

    if departures.get(function, rule) is None:
        known = ", ".join(departures.names(function)) or "none"
        raise BadExpectations(f"{where}: no rule {rule!r} for {function} in reference.departures (known: {known})")


def builtin_path(name: str) -> str | None:
    """The shipped file for ``name`` (e.g. ``vllm-0.33.0``), if there is one."""
    candidate = resources.files(__package__).joinpath(BUILTIN_DIR, f"{name}.txt")
    return str(candidate) if candidate.is_file() else None


def default_for_release(release: str) -> str | None:
    """The shipped file a vLLM release gets without ``--expectations``: its own
    (``vllm-0.33.0``), or for a local build of it (``0.33.0+empty``, a source tree
    built without kernels) the release's; None for a release without a file."""
    return next((f"vllm-{r}" for r in (release, release.split("+")[0]) if builtin_path(f"vllm-{r}")), None)


def load(spec: str) -> Expectations:
    """``spec`` is a path or the name of a shipped file (``vllm-0.33.0``)."""
    path = spec if os.path.isfile(spec) else builtin_path(spec)
    if path is None:
        raise BadExpectations(
            f"expectations {spec!r}: no such file, and no shipped file of that name "
            "(accepted: a path, or a shipped name such as vllm-0.33.0)"
        )
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), os.path.relpath(path) if not os.path.isabs(spec) else path)
