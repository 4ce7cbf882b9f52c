"""The report: a table function x target, then every divergence with its
minimal input and the one command that replays it; the same as JSON."""

from __future__ import annotations

import importlib.metadata
import platform
import time

from .registry import REGISTRY

ORDER = ("diverges", "error", "expected", "conforms", "not provided", "skipped")


def cell(results) -> tuple[str, str]:
    """The status of one function on one target, and a short detail."""
    if not results:
        return "-", ""
    statuses = {r.status for r in results}
    examples = sum(r.examples for r in results if r.kind == "property")
    props = sum(1 for r in results if r.kind == "property" and r.status in ("conforms", "expected", "diverges"))
    counts = f"{props} prop/{examples} ex" if props else f"{len(results)} case"
    for status in ("diverges", "error"):
        if status in statuses:
            bad = [r.check for r in results if r.status == status]
            return status, ", ".join(bad)
    if statuses == {"not provided"}:
        return "not provided", ""
    if statuses <= {"skipped", "not provided"}:
        return "skipped", results[0].message
    if "expected" in statuses:
        return "expected divergence", ", ".join(r.check for r in results if r.status == "expected")
    skipped = sum(1 for r in results if r.status == "skipped")
    return "conforms", counts + (f", {skipped} skipped" if skipped else "")


def _grid(sess):
    names = [t.name for t in sess.checked]
    rows = []
    for spec in REGISTRY:
        row = [spec.name]
        for target in sess.checked:
            if target.load_error:
                row.append(("error", "bad input"))
            elif target.skip_reason:
                row.append(("skipped", target.skip_reason))
            else:
                row.append(cell([r for r in sess.results if r.target == target.name and r.function == spec.name]))
        rows.append(row)
    return names, rows


def render_text(sess, config) -> str:
    names, rows = _grid(sess)
    lines = []
    for target in sess.checked:
        what = target.spec + (f" (vLLM {target.release})" if target.release else "")
        state = target.load_error or target.skip_reason or "checked"
        lines.append(f"target {target.name}: {what}: {state}")
    profile = getattr(config.option, "hypothesis_profile", None) or "default"
    lines.append(f"hypothesis profile: {profile}; torch {_version('torch')}")
    lines.append("")
    header = ["function"] + names
    table = [header] + [[row[0]] + [status for status, _ in row[1:]] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    diverging = [r for r in sess.results if r.status == "diverges"]
    if diverging:
        lines.append(f"{len(diverging)} divergence(s):")
        for r in diverging:
            lines.append(f"- {r.target}.{r.function}.{r.check}: {r.message}")
            lines.append(f"    minimal input: {r.example}")
            lines.append(f"    replay: {r.repro}")
    errors = [r for r in sess.results if r.status == "error"]
    for r in errors:
        lines.append(f"- ERROR {r.target}.{r.function}.{r.check}: {r.message}")
    expected = [r for r in sess.results if r.status == "expected"]
    if expected:
        lines.append(f"{len(expected)} expected divergence(s) (recorded with a reason):")
        for r in expected:
            lines.append(f"- {r.target}.{r.function}.{r.check}: {r.message}")
            lines.append(f"    reason: {r.reason}")
    strict = config.getoption("strict_expectations")
    for name, entry in sess.stale_entries():
        lines.append(f"- {'STALE (strict: fails)' if strict else 'stale'} expectation ({entry.source}): {name} "
                     f"{entry.function} {entry.check} matched no divergence in this run")
    for line in sess.bad_input:
        lines.append(f"- bad input: {line}")
    return "\n".join(lines) + "\n"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def to_json(sess, config, exit_status: int) -> dict:
    names, rows = _grid(sess)
    return {
        "tool": "vllm-vision-conformance",
        "version": _version("vllm-vision-conformance"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        # wall time of the suite run (collection to the end), without env setup
        "seconds": round(time.monotonic() - getattr(config, "_vvc_started", time.monotonic()), 1),
        "hypothesis_profile": getattr(config.option, "hypothesis_profile", None),
        "exit_status": exit_status,
        "targets": [
            {"name": t.name, "kind": t.kind, "spec": t.spec, "release": t.release,
             "skipped": t.skip_reason, "error": t.load_error} for t in sess.checked
        ],
        "table": {row[0]: {name: {"status": s, "detail": d} for name, (s, d) in zip(names, row[1:])} for row in rows},
        "checks": [r.__dict__ for r in sess.results],
        "stale_expectations": [
            {"target": name, "function": e.function, "check": e.check, "source": e.source}
            for name, e in sess.stale_entries()
        ],
        "bad_input": list(sess.bad_input),
    }
