"""The results model: the status words, the result of one check, the report,
and the exit statuses. The plugin, the text and JSON reports, the baseline gate
and the matrix all read and write these, so each word exists here only.

A report is saved as JSON (``Report.save``) with a schema version; ``load``
reads it back and refuses what is not a report. ``complete`` is False while a
run is still going (the file is rewritten after every check), and stays False
when the run was interrupted or ended before every requested check ran.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import tempfile
from typing import Any, Iterable

SCHEMA = 2
TOOL = "vllm-vision-conformance"


class Status(str, enum.Enum):
    """The status of one check of one target."""

    CONFORMS = "conforms"
    DIVERGES = "diverges"  # beyond the recorded expectations
    EXPECTED = "expected"  # a divergence recorded, with its reason, in an expectations file
    NOT_PROVIDED = "not provided"  # the target does not have the documented name
    SKIPPED = "skipped"  # not applicable to the target's form (a reason is given)
    ERROR = "error"  # the harness could not judge the check: the run is incomplete
    NOT_RUN = "not run"  # requested, but the run ended before it ran: the run is incomplete

    def __str__(self) -> str:
        return self.value


# The word of a function's cell (report table, matrix) when its divergences are all recorded.
CELL_EXPECTED = "expected divergence"

DIVERGENT = (Status.DIVERGES, Status.EXPECTED, Status.ERROR)  # what a baseline compares
FAILING = (Status.DIVERGES,)
INCOMPLETE = (Status.ERROR, Status.NOT_RUN)
RAN = (Status.CONFORMS, Status.DIVERGES, Status.EXPECTED, Status.ERROR)


class Exit(enum.IntEnum):
    """The exit status of a run (``vllm-vision-conformance`` and the plugin)."""

    OK = 0  # every requested check ran and conformed, or diverged only as recorded
    DIVERGES = 1  # a divergence beyond the expectations (or a stale entry under --strict-expectations)
    BAD_INPUT = 2  # bad input: an option, a target that does not load, a selection that selects nothing
    INCOMPLETE = 3  # interrupted, or a requested check did not run or could not be judged


def worst(codes: Iterable[int]) -> int:
    """The exit status of several: bad input, then incomplete, then divergence."""
    codes = set(codes)
    for code in (Exit.BAD_INPUT, Exit.INCOMPLETE, Exit.DIVERGES):
        if code in codes:
            return int(code)
    return int(Exit.OK) if codes <= {0} else max(codes)


@dataclasses.dataclass
class CheckResult:
    """The result of one check of one documented function on one target."""

    target: str
    function: str
    check: str
    kind: str  # "property" | "case"
    status: Status = Status.NOT_RUN
    message: str = ""
    example: str | None = None  # the minimal input, formatted
    examples: int = 0
    reason: str | None = None  # an expected divergence's recorded reason
    repro: str | None = None  # the command that replays it
    # How many of the drawn inputs fell in each boundary class the strategies
    # announce with hypothesis.event() (properties only).
    events: dict[str, int] = dataclasses.field(default_factory=dict)
    # the minimal input itself (base64 of conformance.corpus.dump_input), for the stored corpus
    input: str | None = None

    @property
    def id(self) -> str:
        return f"{self.target}.{self.function}.{self.check}"

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "CheckResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["status"] = Status(values.get("status", Status.NOT_RUN))
        return cls(**values)


@dataclasses.dataclass
class TargetInfo:
    name: str
    kind: str  # "reference" | "vllm" | "candidate"
    spec: str
    release: str | None = None
    skipped: str | None = None
    error: str | None = None  # bad input: the target does not load

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TargetInfo":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class BadReport(Exception):
    """A file that is not a report this tool can read."""


@dataclasses.dataclass
class Report:
    targets: list[TargetInfo] = dataclasses.field(default_factory=list)
    checks: list[CheckResult] = dataclasses.field(default_factory=list)
    table: dict = dataclasses.field(default_factory=dict)  # function -> target -> {"status", "detail"}
    stale_expectations: list[dict] = dataclasses.field(default_factory=list)
    bad_input: list[str] = dataclasses.field(default_factory=list)
    incomplete: list[str] = dataclasses.field(default_factory=list)  # why the run is incomplete
    complete: bool = False
    exit_status: int | None = None
    meta: dict = dataclasses.field(default_factory=dict)  # versions, profile, seconds
    # the corpus pass (conformance.corpus): {"functions": {function: file hash}, "targets": {target:
    # {function: {"answers": {input id: [answer, kind]}} or {"absent": true}}}, "seconds"}; {} in older reports
    corpus: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "tool": TOOL,
            "schema": SCHEMA,
            **self.meta,
            "complete": self.complete,
            "exit_status": self.exit_status,
            "targets": [t.to_dict() for t in self.targets],
            "table": self.table,
            "checks": [c.to_dict() for c in self.checks],
            "stale_expectations": list(self.stale_expectations),
            "bad_input": list(self.bad_input),
            "incomplete": list(self.incomplete),
            **({"corpus": self.corpus} if self.corpus else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "Report":
        if not isinstance(data, dict) or "checks" not in data or "targets" not in data:
            raise BadReport("not a vllm-vision-conformance JSON report (no 'checks'/'targets')")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise BadReport(f"report schema {schema!r} is newer than this tool's ({SCHEMA}); upgrade the tool")
        known = {"tool", "schema", "complete", "exit_status", "targets", "table", "checks",
                 "stale_expectations", "bad_input", "incomplete", "corpus"}
        try:
            return cls(
                targets=[TargetInfo.from_dict(t) for t in data["targets"]],
                checks=[CheckResult.from_dict(c) for c in data["checks"]],
                table=data.get("table", {}),
                stale_expectations=data.get("stale_expectations", []),
                bad_input=data.get("bad_input", []),
                incomplete=data.get("incomplete", []),
                # schema 1 reports were written once, at the end of a finished run
                complete=data.get("complete", schema == 1),
                exit_status=data.get("exit_status"),
                corpus=data.get("corpus") or {},
                meta={k: v for k, v in data.items() if k not in known},
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise BadReport(f"malformed report: {type(exc).__name__}: {exc}") from None

    def save(self, path: str) -> None:
        """Write atomically: a reader never sees half a file."""
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=2)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def load(path: str) -> Report:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BadReport(f"cannot read a JSON report ({exc})") from None
    return Report.from_dict(data)


def check_writable(path: str) -> str | None:
    """Why a report cannot be written to ``path`` (None: it can), checked before a run."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        return f"{path} is a folder"
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return None
