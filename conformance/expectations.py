"""Known divergences: one plain-text file per target kind, entries by release range.

vLLM's are in ``expectations/vllm.txt``, every release in one file; a candidate
family's file has the same format. One entry a line, with the reason in the
comment lines (``# ...``) directly above it (consecutive entries share it; a
blank line ends a reason)::

    [RELEASES] [scope=GROUP] FUNCTION CHECK [TEXT | rule=NAME]

Example::

    # vLLM returns -1 tokens instead of refusing a count without a class token.
    >=0.11.1 get_num_selected_vision_tokens error-zero-tokens-default returned -1,

RELEASES, optional, is a PEP 440 version specifier written without spaces
(``>=0.11.1,<0.28``, ``==0.27.0``; any operator of ``packaging.specifiers``).
It is the first word when that word starts with an operator (``<``, ``>``,
``=``, ``!``, ``~``); a function name never does. The entry holds for the
releases the specifier contains. A pre-, dev- or local build counts as the
release it names (``0.33.0+empty`` is 0.33.0, ``0.28.0rc1`` and
``0.28.0.dev3`` are 0.28.0: PEP 440 alone would put them below ``>=0.28.0``
and outside ``<0.28.0`` both). An entry without RELEASES holds for every
release, so a file in the format of before (no ranges) still works as it
did (but see the twins below). The shipped files were
converted from one file per release (``conformance/convert_expectations.py``);
a release between or above the tested ones gets the entries whose ranges
contain it (an entry that holds up to the newest tested release is written
open upwards, ``>=X``).

scope=GROUP, optional, only for the data-parallel checks that run twice, as
``X`` under the simulated group and as ``X-gloo`` under a real gloo group: an
entry naming ``X`` covers both twins unless ``scope=sim`` or ``scope=gloo``
restricts it to one. An entry covering both is two entries in the run, one
per twin, each matched (and stale) on its own: if only the simulated twin
diverged, the gloo half is reported stale, named by the gloo check's id
(``X-gloo``), when that twin ran (not under ``--dp-group sim``), and fails
``--strict-expectations`` as a separate per-twin entry did before. Spelling
the gloo twin's id (``X-gloo``, as files did before) means ``scope=gloo``;
and in a file that spells ``X-gloo``, the unscoped entries of that
function's ``X`` keep their old meaning, the simulated twin only, so an old
file with its twin entries written out behaves as before. An old file's
``X`` entry without an ``X-gloo`` one does now cover both twins: where only
the simulated twin diverges, it needs ``scope=sim`` (the gloo half's stale
line says so, and fails ``--strict-expectations`` until then).

The optional TEXT must appear in the divergence's message for the entry to
match, so that a *different* divergence of the same check is still reported.
A check may have several entries, one for each kind of divergence it records.
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

An entry without a reason is refused, and so is a malformed RELEASES or an
unknown scope (BadExpectations, one line naming file:line). An entry that
holds for the run's release and matched no divergence in a check that ran is
reported as stale, with its file:line and the release.

Which release: ``--expectations NAME=SPEC`` with SPEC a path (``FILE``, or
``FILE@RELEASE``) or a shipped name ``KIND-RELEASE`` (``vllm-0.33.0``: the
entries of ``vllm.txt`` that hold for 0.33.0, for any target). A path without
``@RELEASE`` selects by the target's release when the target is vLLM itself;
for another target a file with ranges needs ``@RELEASE`` (refused otherwise:
the candidate's release is not known). Without ``--expectations`` vLLM gets
``default_for_release(its release)``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from importlib import resources

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

BUILTIN_DIR = "expectations"
SCOPES = ("sim", "gloo")
GLOO = "-gloo"


class BadExpectations(Exception):
    pass


@dataclasses.dataclass
class Entry:
    """One entry as the run applies it: for one check (one twin of a data-parallel check)."""

    function: str
    check: str
    reason: str
    source: str  # "file:line"
    text: str = ""  # must appear in the divergence message, when given
    rule: str = ""  # the name of the release's rule in reference.departures, when given
    matched: bool = False
    release: str | None = None  # the release the entries were selected for, when known
    half: str = ""  # "sim" / "gloo": this is one twin's half of an entry that covers both

    def describes(self, message: str) -> bool:
        """The entry's TEXT covers this divergence message (a rule entry covers none by text)."""
        return not self.rule and (not self.text or self.text in message)


@dataclasses.dataclass
class Expectations:
    path: str | None = None
    # (function, check) -> its entries: a check may have several, one per kind of divergence
    entries: dict[tuple[str, str], list[Entry]] = dataclasses.field(default_factory=dict)
    release: str | None = None

    def of(self, function: str, check: str) -> list[Entry]:
        return self.entries.get((function, check), [])

    def lookup(self, function: str, check: str, message: str = "") -> Entry | None:
        return next((e for e in self.of(function, check) if e.describes(message)), None)

    def stale(self) -> list[Entry]:
        return [e for group in self.entries.values() for e in group if not e.matched]

    def all(self) -> list[Entry]:
        return [e for group in self.entries.values() for e in group]


@dataclasses.dataclass(frozen=True)
class Line:
    """One entry as written in the file."""

    function: str
    check: str  # as written: X (a data-parallel check: its simulated twin's id) or X-gloo
    checks: tuple[str, ...]  # the checks it covers: (check,), or (X, X-gloo) for both twins
    reason: str
    source: str
    text: str = ""
    rule: str = ""
    releases: SpecifierSet | None = None
    scope: str = ""  # "", "sim" or "gloo", as written (or implied by an X-gloo spelling)
    comment: tuple[str, ...] = ()  # the reason's comment lines, as written (without '#')

    def holds_for(self, release: Version | None) -> bool:
        if self.releases is None:
            return True
        # the release a build names: 0.28.0rc1, 0.28.0.dev3 and 0.28.0+empty are 0.28.0
        return release is not None and self.releases.contains(Version(release.base_version), prereleases=True)


@dataclasses.dataclass
class File:
    path: str
    lines: list[Line]

    @property
    def ranged(self) -> bool:
        return any(line.releases is not None for line in self.lines)

    def select(self, release: str | None) -> Expectations:
        """The entries that hold for ``release`` (None: a target of unknown release, which
        gets the entries without a range, and a file with ranges is refused)."""
        version = None
        if release is not None:
            version = parse_release(release, f"{self.path}: release")
        elif self.ranged:
            first = next(line for line in self.lines if line.releases is not None)
            raise BadExpectations(
                f"{first.source}: entries with a release range, but the target's release is not known "
                f"(accepted: NAME={self.path}@RELEASE, or a shipped name such as vllm-0.33.0)")
        result = Expectations(path=self.path, release=release)
        for line in self.lines:
            if not line.holds_for(version):
                continue
            for check in line.checks:
                half = ("gloo" if check.endswith(GLOO) else "sim") if len(line.checks) > 1 else ""
                result.entries.setdefault((line.function, check), []).append(
                    Entry(line.function, check, line.reason, line.source, line.text, line.rule,
                          release=release, half=half))
        return result


def parse_release(release: str, where: str) -> Version:
    try:
        return Version(release)
    except InvalidVersion:
        raise BadExpectations(f"{where} {release!r} is not a PEP 440 version (accepted: e.g. 0.33.0, "
                              "0.33.0+empty, 0.34.0.dev3)") from None


def dp_twins() -> frozenset[tuple[str, str]]:
    """(function, X) of every data-parallel check that also runs as X-gloo (conformance.registry)."""
    from .registry import REGISTRY

    return frozenset((spec.name, check.id) for spec in REGISTRY for check in spec.checks
                     if check.group == "sim" and any(c.id == check.id + GLOO for c in spec.checks))


_OPERATOR = re.compile(r"[<>=!~]")


def parse_file(text: str, source: str, twins: frozenset[tuple[str, str]] | None = None) -> File:
    """Every entry of a file, validated. ``twins``: the checks with a gloo twin
    (default: the registry's; an empty set reads a file as the one-file-per-release
    format of before, each check id on its own)."""
    if twins is None:
        twins = dp_twins()
    raw_lines: list[tuple[int, str, list[str]]] = []  # (number, line, its reason lines)
    reason: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            reason = []
        elif line.startswith("#"):
            reason.append(line.lstrip("#").strip())
        else:
            raw_lines.append((number, line, list(reason)))
    parsed = [_parse_line(number, line, reason, source, twins) for number, line, reason in raw_lines]
    # A function whose gloo twin is spelled out (X-gloo) keeps the old meaning of its X entries.
    spelled = {(p.function, p.check[:-len(GLOO)]) for p in parsed if p.scope == "gloo" and p.check.endswith(GLOO)}
    lines = []
    for p in parsed:
        if len(p.checks) > 1 and (p.function, p.check) in spelled:
            p = dataclasses.replace(p, checks=(p.check,))
        lines.append(p)
    return File(source, lines)


def _parse_line(number: int, line: str, reason: list[str], source: str, twins) -> Line:
    where = f"{source}:{number}"
    words = line.split()
    releases, scope = None, ""
    if words and _OPERATOR.match(words[0]):
        try:
            releases = SpecifierSet(words[0])
        except InvalidSpecifier:
            raise BadExpectations(
                f"{where}: {words[0]!r} is not a PEP 440 release range (accepted: specifiers such as "
                "'>=0.11.1,<0.28' or '==0.27.0', comma-separated, without spaces)") from None
        line = line[len(words[0]):].strip()
        words = words[1:]
    if words and words[0].startswith("scope="):
        scope = words[0][len("scope="):]
        if scope not in SCOPES:
            raise BadExpectations(f"{where}: unknown scope {words[0]!r} (accepted: scope=sim, scope=gloo, or none "
                                  "for both groups)")
        line = line[len(words[0]):].strip()
        words = words[1:]
    if words and (_OPERATOR.match(words[0]) or words[0].startswith("scope=")):
        raise BadExpectations(f"{where}: {words[0]!r} where FUNCTION belongs (accepted: "
                              "'[RELEASES] [scope=GROUP] FUNCTION CHECK [TEXT | rule=NAME]', the release range "
                              "first and without spaces, at most one scope)")
    fields = line.split(None, 2)
    if len(fields) < 2:
        raise BadExpectations(
            f"{where}: {line!r} is not '[RELEASES] [scope=GROUP] FUNCTION CHECK [TEXT | rule=NAME]'"
        )
    if not any(reason):
        raise BadExpectations(
            f"{where}: entry {line!r} has no reason (a '# ...' comment directly above it)"
        )
    function, check = fields[0], fields[1]
    text = fields[2].strip() if len(fields) == 3 else ""
    rule = ""
    if text.startswith("rule="):
        rule, text = text[len("rule="):].strip(), ""
        for name in rule.split(","):
            _check_rule(function, name, where)
    elif not text and check.startswith("property-"):
        raise BadExpectations(
            f"{where}: entry {line!r} of a property check names no divergence: add the TEXT its "
            "message contains, or rule=NAME (a rule in reference.departures); an entry that matches any "
            "divergence would hide new ones"
        )
    base = check[:-len(GLOO)] if check.endswith(GLOO) and (function, check[:-len(GLOO)]) in twins else None
    if base is not None:  # the gloo twin spelled out
        if scope == "sim":
            raise BadExpectations(f"{where}: scope=sim on {check}, the gloo twin (accepted: {base} scope=sim, "
                                  f"or {check} without a scope)")
        checks, scope = (check,), "gloo"
    elif (function, check) in twins:
        checks = {"": (check, check + GLOO), "sim": (check,), "gloo": (check + GLOO,)}[scope]
    else:
        if scope:
            raise BadExpectations(f"{where}: scope={scope} on {function} {check}, which does not run under both "
                                  "groups (accepted: scope only on a data-parallel check X that also runs as "
                                  "X-gloo)")
        checks = (check,)
    return Line(function, check, checks, " ".join(r for r in reason if r), where, text, rule, releases, scope,
                tuple(reason))


def parse(text: str, source: str, release: str | None = None,
          twins: frozenset[tuple[str, str]] | None = None) -> Expectations:
    """The entries of a file's text that hold for ``release``."""
    return parse_file(text, source, twins).select(release)


def _check_rule(function: str, rule: str, where: str) -> None:
    from ..reference import departures

    if departures.get(function, rule) is None:
        known = ", ".join(departures.names(function)) or "none"
        raise BadExpectations(f"{where}: no rule {rule!r} for {function} in reference.departures (known: {known})")


CHECKED_ON = "# Checked with --strict-expectations on:"


def checked_on(text: str) -> list[str]:
    """The releases a file says its entries were checked on (its ``# Checked with
    --strict-expectations on: X, Y`` line; none when it has no such line)."""
    line = next((raw for raw in text.splitlines() if raw.startswith(CHECKED_ON)), "")
    return [r.strip() for r in line[len(CHECKED_ON):].split(",") if r.strip()]


def builtin_path(kind: str) -> str | None:
    """The shipped file of a target kind (``vllm``: ``expectations/vllm.txt``), if there is one."""
    if not re.fullmatch(r"\w[\w.-]*", kind):
        return None
    candidate = resources.files(__package__).joinpath(BUILTIN_DIR, f"{kind}.txt")
    return str(candidate) if candidate.is_file() else None


def shipped(name: str) -> tuple[str, str] | None:
    """(path, release) of a shipped name ``KIND-RELEASE`` (``vllm-0.33.0``), None if it names no
    shipped file. The release is checked by :func:`load`."""
    for at in (i for i, c in enumerate(name) if c == "-"):  # a kind may have a '-' of its own
        path = builtin_path(name[:at])
        if path and name[at + 1:]:
            return path, name[at + 1:]
    return None


def default_for_release(release: str) -> str | None:
    """The shipped name a vLLM release gets without ``--expectations``: ``vllm-0.33.0``
    for 0.33.0 (the entries of ``vllm.txt`` that hold for it), the same for a local
    build of it (``0.33.0+empty``, a source tree built without kernels); a release
    between or above the tested ones gets the entries whose ranges contain it. None
    for a release that is no PEP 440 version."""
    try:
        version = Version(release)
    except InvalidVersion:
        return None
    return f"vllm-{version.public}" if builtin_path("vllm") else None


def load(spec: str, release: str | None = None) -> Expectations:
    """``spec``: a path, ``PATH@RELEASE``, or a shipped name (``vllm-0.33.0``). ``release``:
    the target's release, for a path without ``@RELEASE`` (None: not known)."""
    path = spec if os.path.isfile(spec) else None
    if path is None and "@" in spec and os.path.isfile(spec.rpartition("@")[0]):
        path, _, release = spec.rpartition("@")
        if not release:
            raise BadExpectations(f"expectations {spec!r}: no release after '@' (accepted: FILE@0.33.0)")
    elif path is None:
        found = shipped(spec)
        if found is None:
            raise BadExpectations(
                f"expectations {spec!r}: no such file, and no shipped file of that name "
                "(accepted: a path, PATH@RELEASE, or a shipped name such as vllm-0.33.0)"
            )
        path, release = found
        parse_release(release, f"expectations {spec!r}: release")
        with open(path, encoding="utf-8") as handle:
            return parse_file(handle.read(), _shown(path, absolute=False)).select(release)
    if release is not None:
        parse_release(release, f"expectations {spec!r}: release")
    with open(path, encoding="utf-8") as handle:
        return parse_file(handle.read(), _shown(path, absolute=os.path.isabs(path))).select(release)


def _shown(path: str, absolute: bool) -> str:
    return path if absolute else os.path.relpath(path)
