"""The report: a table function x target, then every divergence with its
minimal input and the one command that replays it; the same as JSON
(``conformance.results.Report``)."""

from __future__ import annotations

import importlib.metadata
import platform
import time

from .registry import REGISTRY
from .results import CELL_EXPECTED, Exit, Report, Status, TargetInfo


def cell(results) -> tuple[str, str]:
    """The status of one function on one target, and a short detail."""
    if not results:
        return "-", ""
    statuses = {r.status for r in results}
    ran = [r for r in results if r.kind == "property" and r.status in (Status.CONFORMS, Status.EXPECTED,
                                                                         Status.DIVERGES)]
    examples, props = sum(r.examples for r in ran), len(ran)
    counts = f"{props} prop/{examples} ex" if props else f"{len(results)} case"
    for status in (Status.DIVERGES, Status.ERROR, Status.NOT_RUN):
        if status in statuses:
            bad = [r.check for r in results if r.status is status]
            return status.value, ", ".join(bad)
    if statuses == {Status.NOT_PROVIDED}:
        return Status.NOT_PROVIDED.value, ""
    if statuses <= {Status.SKIPPED, Status.NOT_PROVIDED}:
        return Status.SKIPPED.value, results[0].message
    if Status.EXPECTED in statuses:
        return CELL_EXPECTED, ", ".join(r.check for r in results if r.status is Status.EXPECTED)
    skipped = sum(1 for r in results if r.status is Status.SKIPPED)
    return Status.CONFORMS.value, counts + (f", {skipped} skipped" if skipped else "")


def _pending(sess) -> list:
    """A result (status "not run") for every requested check that did not run."""
    from .registry import BY_NAME
    from .results import CheckResult

    out = []
    for case_id in _not_run(sess):
        target, function, check = case_id.split(".", 2)
        out.append(CheckResult(target, function, check, BY_NAME[function].check(check).kind))
    return out


def _grid(sess):
    """The table, from the results and the requested checks that did not run (a cell never
    says "conforms" while one of its checks is still to run)."""
    names = [t.name for t in sess.checked]
    results = list(sess.results) + _pending(sess)
    rows = []
    for spec in REGISTRY:
        row = [spec.name]
        for target in sess.checked:
            if target.load_error:
                row.append((Status.ERROR.value, "bad input: does not load"))
            else:
                row.append(cell([r for r in results if r.target == target.name and r.function == spec.name]))
        rows.append(row)
    return names, rows


def _not_run(sess):
    done = {r.id for r in sess.results}
    return [c for c in sess.requested if c not in done]


# the cells' short forms, for a table that would not fit in full
SHORT = {Status.CONFORMS.value: "ok", CELL_EXPECTED: "expected", Status.DIVERGES.value: "DIVERGES",
         Status.NOT_PROVIDED.value: "n/a", Status.ERROR.value: "ERROR", Status.NOT_RUN.value: "not run"}
LEGEND = "(ok: conforms; expected: a recorded divergence; n/a: not provided)"


def _width() -> int:
    """The terminal's width where there is one (COLUMNS too), else 80."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def table_lines(names: list[str], rows: list[list[str]], width: int = 80) -> list[str]:
    """The function x target table in ``width`` columns: full cells if they fit, else
    short ones with a legend, else the targets in several blocks."""

    def render(names, rows):
        table = [["function"] + names] + rows
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        out = []
        for i, row in enumerate(table):
            out.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        return out

    full = render(names, rows)
    if max(map(len, full)) <= width:
        return full
    rows = [[row[0]] + [SHORT.get(c, c) for c in row[1:]] for row in rows]
    short = render(names, rows)
    if max(map(len, short)) <= width:
        return short + [LEGEND]
    blocks, start = [], 0  # a block of targets at a time, each with the function column
    while start < len(names):
        end = start + 1
        while end < len(names) and max(map(len, render(names[start:end + 1], [[r[0]] + r[1 + start:2 + end]
                                                                              for r in rows]))) <= width:
            end += 1
        blocks += render(names[start:end], [[r[0]] + r[1 + start:1 + end] for r in rows]) + [""]
        start = end
    return blocks[:-1] + [LEGEND]


def render_text(sess, config, exit_status: int | None = None) -> str:
    names, rows = _grid(sess)
    lines = []
    for target in sess.checked:
        what = target.spec + (f" (vLLM {target.release})" if target.release else "")
        state = target.load_error or "checked"
        lines.append(f"target {target.name}: {what}: {state}")
    lines.append(f"hypothesis profile: {config._vvc_profile}; torch {_version('torch')}")
    lines.append("")
    lines += table_lines(names, [[row[0]] + [status for status, _ in row[1:]] for row in rows], _width())
    lines.append("")
    diverging = [r for r in sess.results if r.status is Status.DIVERGES]
    if diverging:
        lines.append(f"{len(diverging)} divergence(s):")
        for r in diverging:
            lines.append(f"- {r.id}: {r.message}")
            lines.append(f"    minimal input: {r.example}")
            lines.append(f"    replay: {r.repro}")
    for r in sess.results:
        if r.status is Status.ERROR:
            lines.append(f"- ERROR {r.id}: {r.message}")
            if r.example:
                lines.append(f"    input: {r.example}")
            if r.repro:
                lines.append(f"    replay: {r.repro}")
    expected = [r for r in sess.results if r.status is Status.EXPECTED]
    quiet = config.getoption("vvc_quiet", False)
    if expected and quiet:
        lines.append(f"{len(expected)} expected divergence(s), recorded with a reason (listed without -q)")
    elif expected:
        lines.append(f"{len(expected)} expected divergence(s) (recorded with a reason):")
        for r in expected:
            lines.append(f"- {r.id}: {r.message}")
            lines.append(f"    reason: {r.reason}")
    strict = config.getoption("vvc_strict_expectations")
    for name, entry in sess.stale_entries():
        lines.append(f"- {'STALE (strict: fails)' if strict else 'stale'} expectation ({_where(entry)}): {name} "
                     f"{entry.function} {entry.check}{_half(entry)} matched no divergence in this run")
    from .plugin import spelled

    for line in sess.bad_input:
        lines.append(f"- bad input: {spelled(config, line)}")
    not_run = _not_run(sess)
    if not_run:
        lines.append(f"- INCOMPLETE: {len(not_run)} requested check(s) did not run (first: {not_run[0]})")
    for line in sess.incomplete:
        lines.append(f"- incomplete: {line}")
    corpus = getattr(sess, "corpus", {})
    if corpus.get("targets"):
        counts = ", ".join(f"{name} {sum(len(f.get('answers', {})) for f in fs.values())}"
                           for name, fs in corpus["targets"].items())
        lines.append(f"stored corpus: {len(corpus['functions'])} functions, answers per target: {counts} "
                     f"({corpus.get('seconds', 0):.1f} s; in the JSON report)")
    for line in corpus.get("errors", ()):
        lines.append(f"- corpus: {line}")
    if exit_status is not None:
        lines.append(f"exit status {exit_status} ({Exit(exit_status).name.lower().replace('_', ' ')})"
                     if exit_status in tuple(Exit) else f"exit status {exit_status}")
    return "\n".join(lines) + "\n"


def _where(entry) -> str:
    """file:line of a stale entry, and the release its entries were selected for."""
    release = getattr(entry, "release", None)
    return f"{entry.source}, release {release}" if release else entry.source


def _half(entry) -> str:
    half = getattr(entry, "half", "")
    other = "sim" if half == "gloo" else "gloo"
    return (f" (the {half} twin of an entry covering both groups; scope={other} if only the {other} twin "
            "diverges)") if half else ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def build(sess, config, exit_status: int | None, complete: bool) -> Report:
    names, rows = _grid(sess)
    pending = _pending(sess)
    not_run = [r.id for r in pending]
    return Report(
        targets=[TargetInfo(t.name, t.kind, t.spec, t.release, t.skip_reason, t.load_error) for t in sess.checked],
        checks=list(sess.results) + pending,
        table={row[0]: {name: {"status": s, "detail": d} for name, (s, d) in zip(names, row[1:])} for row in rows},
        stale_expectations=[{"target": name, "function": e.function, "check": e.check, "source": e.source,
                             "release": e.release} for name, e in sess.stale_entries()],
        bad_input=list(sess.bad_input),
        incomplete=list(sess.incomplete) + ([f"{len(not_run)} requested check(s) did not run"] if not_run and
                                            not sess.incomplete else []),
        complete=complete,
        exit_status=exit_status,
        corpus=dict(getattr(sess, "corpus", {})),
        meta={
            "version": _version("vllm-vision-conformance"),
            "python": platform.python_version(),
            "torch": _version("torch"),
            "transformers": _version("transformers"),
            # wall time of the suite run (collection to the end), without env setup
            "seconds": round(time.monotonic() - sess.started, 1),
            "hypothesis_profile": config._vvc_profile,
        },
    )
