"""``vllm-vision-matrix``: the suite against every vLLM release, as one matrix.

Subcommands::

    vllm-vision-matrix run [--envs vllm-0.11.0,...] [--jobs 2] [--out matrix] [--strict] [-- SUITE-ARGS]
    vllm-vision-matrix render REPORT.json ... [--out matrix] [--strict]
    vllm-vision-matrix gate --base BASE.json --current CURRENT.json [--allow-expected]

``run`` runs ``tox -e ENV`` for every env of the ``conformance`` label in tox.ini
(or ``--envs``), ``--jobs`` at a time, prints the wall time per release, and
writes the matrix release x function from the JSON reports the envs leave in
``.tox/report-ENV.json``: ``matrix.md`` (also printed), ``matrix.json`` and a
self-contained ``matrix.html`` whose cells link to their divergences with the
minimal input and the replay command. ``render`` does the same from reports
already on disk. ``gate`` compares two reports (see ``conformance.baseline``)
and exits 1 on a divergence that the base run does not have, printing those
first.

Cells: ``conforms``, ``diverges`` (beyond the release's expectations file),
``expected divergence`` (recorded, with a reason), ``absent`` (the release does
not have the name: "absent since X" when a former release had it, "absent until
X" when a later one adds it), ``skipped``/``error``. A release whose vLLM did not
import is one row saying so.

Exit status of ``run``/``render``: 0 every release conforms or diverges only as
recorded; 1 a divergence beyond the expectations (or, with ``--strict``, a stale
expectations entry); 2 a release without a report (the env failed to build or
the suite could not start).
"""

from __future__ import annotations

import argparse
import configparser
import concurrent.futures
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any

from . import baseline, corpus, results
from .results import CELL_EXPECTED, Status

# the report's cell words -> the matrix's ("not provided" by a release is "absent" there)
STATUS_WORD = {Status.NOT_PROVIDED.value: "absent"}
FAILING = (Status.DIVERGES.value, Status.ERROR.value, Status.NOT_RUN.value)


# ---------------------------------------------------------------- releases

def version_key(release: str | None) -> tuple:
    """Sort key of a vLLM release string ("0.11.2", "0.19.1.dev3+gabc"); None last."""
    if not release:
        return (1,)
    nums = [int(n) for n in re.findall(r"\d+", release.split("+")[0].split(".dev")[0])[:4]]
    dev = ".dev" in release or "+" in release
    return (0, *nums, 0 if dev else 1, release)


def tox_envs(tox_ini: str = "tox.ini", label: str = "conformance") -> list[str]:
    """The envs of a tox label (``[tox] labels``)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tox_ini)
    labels = parser.get("tox", "labels", fallback="")
    for line in labels.splitlines():
        name, sep, envs = line.partition("=")
        if sep and name.strip() == label:
            return [e.strip() for e in envs.split(",") if e.strip()]
    raise SystemExit(f"vllm-vision-matrix: error: no label {label!r} in {tox_ini}")


# ---------------------------------------------------------------- the matrix model

def _vllm_target(report: dict) -> dict | None:
    for t in report.get("targets", []):
        if t.get("kind") == "vllm" or t.get("name") == "vllm":
            return t
    return None


def row_from_report(report: dict, *, env: str | None = None, seconds: float | None = None,
                    extra: dict | None = None, target: str = "vllm") -> dict:
    """One matrix row: a release and the status of every function there."""
    vt = _vllm_target(report) or {}
    release = vt.get("release")
    checks = [c for c in report.get("checks", []) if c.get("target") == target]
    cells = {}
    for function, by_target in report.get("table", {}).items():
        entry = by_target.get(target, {"status": "-", "detail": ""})
        divs = [c for c in checks if c["function"] == function and c["status"] in baseline.DIVERGENT]
        cells[function] = {
            "status": STATUS_WORD.get(entry["status"], entry["status"]),  # the report's words, but "absent"
            "detail": entry.get("detail", ""),
            "divergences": [
                {k: c.get(k) for k in ("check", "kind", "status", "message", "example", "reason", "repro")}
                for c in divs
            ],
        }
    row = {
        "env": env or (f"vllm-{release}" if release else None),
        "release": release,
        "torch": report.get("torch"),
        "transformers": report.get("transformers"),
        "python": report.get("python"),
        "hypothesis_profile": report.get("hypothesis_profile"),
        "exit_status": report.get("exit_status"),
        "complete": report.get("complete", report.get("schema", 1) == 1),
        "skipped": vt.get("skipped"),
        "error": vt.get("error"),
        "seconds": seconds,
        "suite_seconds": report.get("seconds"),
        "stale_expectations": [e for e in report.get("stale_expectations", []) if e.get("target") == target],
        # divergences of the other targets (the reference, candidates): they fail the run too
        "other_divergences": [f"{c['target']}.{c['function']}.{c['check']}: {c.get('message')}"
                              for c in report.get("checks", [])
                              if c.get("target") != target and c.get("status") in FAILING],
        "cells": cells,
        "corpus": _corpus_of(report, target),
    }
    row.update(extra or {})
    return row


def _corpus_of(report: dict, target: str) -> dict:
    """The target's answers on the stored corpus, per function, with the file's hash
    (conformance.corpus; {} for a report without them)."""
    section = report.get("corpus") or {}
    hashes = section.get("functions", {})
    out = {}
    for function, data in (section.get("targets", {}).get(target) or {}).items():
        if data.get("absent"):
            out[function] = {"absent": True}
        elif function in hashes:
            out[function] = {"hash": hashes[function], "answers": data.get("answers", {})}
    return out


def failed_row(env: str, why: str, seconds: float | None = None, release: str | None = None) -> dict:
    return {"env": env, "release": release, "torch": None, "exit_status": None, "skipped": None,
            "error": why, "seconds": seconds, "stale_expectations": [], "cells": {}}


def annotate_absent(rows: list[dict]) -> None:
    """Give every "absent" cell its ``since`` (removed after a former release had
    it) or ``until`` (added by a later release), from the rows themselves."""
    ordered = [r for r in rows if r.get("cells")]
    ordered.sort(key=lambda r: version_key(r.get("release")))
    functions = {f for r in ordered for f in r["cells"]}
    for function in functions:
        present = [r["cells"].get(function, {}).get("status") not in ("absent", "-", None) for r in ordered]
        for i, r in enumerate(ordered):
            cell = r["cells"].get(function)
            if not cell or cell["status"] != "absent":
                continue
            earlier = [j for j in range(i) if present[j]]
            later = [j for j in range(i + 1, len(ordered)) if present[j]]
            if earlier:
                first_absent = next(j for j in range(earlier[-1] + 1, len(ordered)) if not present[j])
                cell["since"] = ordered[first_absent]["release"]
            elif later:
                cell["until"] = ordered[later[0]]["release"]


def cell_text(cell: dict | None) -> str:
    if not cell:
        return "-"
    status = cell["status"]
    if status == "absent":
        if cell.get("since"):
            return f"absent since {cell['since']}"
        if cell.get("until"):
            return f"absent until {cell['until']}"
        return "absent"
    divs = cell.get("divergences", [])
    n_new = sum(1 for d in divs if d.get("status") in baseline.NEW_STATUSES)
    n_exp = sum(1 for d in divs if d.get("status") == Status.EXPECTED.value)
    if status == Status.DIVERGES.value and n_new:
        return f"diverges ({n_new})" + (f" + {n_exp} expected" if n_exp else "")
    if status == CELL_EXPECTED and n_exp:
        return f"{CELL_EXPECTED} ({n_exp})"
    return status


def functions_of(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        for f in r.get("cells", {}):
            if f not in seen:
                seen.append(f)
    return seen


def exit_status(rows: list[dict], strict: bool = False) -> int:
    """2 a release without a report; else the worst of the releases' own exit statuses
    (results.worst: bad input, incomplete, divergence); 1 also for a divergent cell,
    or with ``strict`` a stale expectations entry; 0 otherwise."""
    if any(not r.get("cells") and r.get("error") for r in rows):
        return 2
    codes = [r.get("exit_status") for r in rows if r.get("exit_status") is not None]
    codes += [int(results.Exit.INCOMPLETE) for r in rows if r.get("complete") is False]
    if any(c["status"] in FAILING for r in rows for c in r.get("cells", {}).values()):
        codes.append(int(results.Exit.DIVERGES))
    if strict and any(r.get("stale_expectations") for r in rows):
        codes.append(int(results.Exit.DIVERGES))
    return results.worst(codes)


def build(rows: list[dict], strict: bool = False) -> dict:
    rows = sorted(rows, key=lambda r: version_key(r.get("release") or _env_release(r.get("env"))))
    annotate_absent(rows)
    functions = functions_of(rows)
    return {
        "tool": "vllm-vision-matrix",
        "functions": functions,
        "releases": rows,
        "changes": corpus.changes(rows, functions),  # what changed between releases, on the stored corpus
        "strict": strict,
        "exit_status": exit_status(rows, strict),
    }


def _env_release(env: str | None) -> str | None:
    m = re.fullmatch(r"vllm-(\d[\w.+-]*)", env or "")
    return m.group(1) if m else None


# ---------------------------------------------------------------- rendering

def _label(row: dict) -> str:
    return row.get("release") or row.get("env") or "?"


def render_markdown(matrix: dict) -> str:
    functions = matrix["functions"]
    lines = ["| release | torch | transformers | " + " | ".join(f"`{f}`" for f in functions) + " |",
             "|---|---|---|" + "---|" * len(functions)]
    notes = []
    for row in matrix["releases"]:
        head = f"| {_label(row)} | {row.get('torch') or '-'} | {row.get('transformers') or '-'} | "
        if not row.get("cells"):
            lines.append(head + " | ".join(["not run"] * len(functions)) + " |")
            notes.append(f"- {_label(row)}: not in the matrix: {row.get('error')}")
            continue
        if row.get("skipped") or row.get("error"):
            notes.append(f"- {_label(row)}: vLLM {row.get('skipped') or row.get('error')}")
        lines.append(head + " | ".join(cell_text(row["cells"].get(f)) for f in functions) + " |")
        for e in row.get("stale_expectations", []):
            notes.append(f"- {_label(row)}: stale expectation {e['function']} {e['check']} ({e['source']})")
        other = row.get("other_divergences", [])
        if other:
            notes.append(f"- {_label(row)}: {len(other)} divergence(s) of another target, e.g. {other[0][:200]}")
    lines.append("")
    lines.append("Cells: conforms; diverges (n) beyond the release's expectations file; expected divergence (n) "
                 "recorded with a reason; absent since X (removed in X) / absent until X (added in X).")
    timed = [r for r in matrix["releases"] if r.get("seconds") is not None]
    if timed:
        lines.append("Wall time per release: " + ", ".join(f"{_label(r)} {r['seconds']:.0f} s" for r in timed)
                     + (f"; total {matrix['wall_seconds']:.0f} s" if matrix.get("wall_seconds") else ""))
    suite_timed = [r for r in matrix["releases"] if r.get("suite_seconds") is not None]
    if suite_timed:
        lines.append("Suite time per release (the run itself, without env setup): "
                     + ", ".join(f"{_label(r)} {r['suite_seconds']:.0f} s" for r in suite_timed))
    if notes:
        lines.append("")
        lines.extend(notes)
    if matrix.get("changes"):
        lines.append("")
        lines.extend(corpus.render_markdown(matrix["changes"]))
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(row: dict, function: str) -> str:
    return re.sub(r"[^\w.-]", "_", f"{_label(row)}--{function}")


def replay_command(row: dict, repro: str | None) -> str | None:
    if not repro:
        return None
    args = repro.split(" ", 1)[1] if repro.startswith("vllm-vision-conformance ") else repro
    env = row.get("env")
    return f"tox -e {env} -- {args}" if env else repro


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:center}
th{background:#f3f3f3;position:sticky;top:0}
td.conforms{background:#e6f4ea}
td.diverges,td.error{background:#fce8e6;font-weight:bold}
td.expected{background:#fef7e0}
td.absent,td.skipped,td.none{background:#f1f3f4;color:#666}
a{color:inherit}
pre{background:#f6f8fa;padding:6px;white-space:pre-wrap;word-break:break-all;margin:2px 0}
section{border-top:1px solid #ddd;margin-top:1em;padding-top:.5em}
.k{color:#666;font-size:12px}
"""


def _css_class(status: str) -> str:
    return {"conforms": "conforms", "diverges": "diverges", "error": "error",
            "expected divergence": "expected", "absent": "absent", "skipped": "skipped"}.get(status, "none")


def render_html(matrix: dict) -> str:
    e = html.escape
    functions = matrix["functions"]
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>vLLM vision helpers: conformance matrix</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>vLLM vision helpers: conformance matrix</h1>",
           f"<p>exit status {matrix['exit_status']}"
           + (f"; wall time {matrix['wall_seconds']:.0f} s" if matrix.get("wall_seconds") else "")
           + ". Each cell links to its divergences: message, minimal input, replay command.</p>",
           "<table><tr><th>release</th><th>torch</th><th>transformers</th><th>time</th>"
           + "".join(f"<th>{e(f)}</th>" for f in functions) + "</tr>"]
    sections = []
    for row in matrix["releases"]:
        took = row.get("seconds") if row.get("seconds") is not None else row.get("suite_seconds")
        secs = f"{took:.0f} s" if took is not None else ""
        out.append(f"<tr><th>{e(_label(row))}</th><td>{e(row.get('torch') or '-')}</td>"
                   f"<td>{e(row.get('transformers') or '-')}</td><td>{secs}</td>")
        if not row.get("cells"):
            out.append(f"<td class='error' colspan='{len(functions)}'>not run: {e(str(row.get('error')))}</td></tr>")
            continue
        for f in functions:
            cell = row["cells"].get(f)
            text = e(cell_text(cell))
            status = cell["status"] if cell else "-"
            if cell and cell.get("divergences"):
                text = f"<a href='#{_anchor(row, f)}'>{text}</a>"
                sections.append(_html_section(row, f, cell))
            title = e(cell.get("detail") or "") if cell else ""
            out.append(f"<td class='{_css_class(status)}' title='{title}'>{text}</td>")
        out.append("</tr>")
    out.append("</table>")
    stale = [(row, s) for row in matrix["releases"] for s in row.get("stale_expectations", [])]
    if stale:
        out.append("<h2>Stale expectations</h2><ul>")
        out.extend(f"<li>{e(_label(r))}: {e(s['function'])} {e(s['check'])} ({e(s['source'])})</li>" for r, s in stale)
        out.append("</ul>")
    out.append("<h2>Divergences</h2>")
    out.extend(sections or ["<p>none</p>"])
    if matrix.get("changes"):
        out.extend(corpus.render_html(matrix["changes"]))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_section(row: dict, function: str, cell: dict) -> str:
    e = html.escape
    parts = [f"<section id='{_anchor(row, function)}'><h3>vLLM {e(_label(row))}: {e(function)} "
             f"({e(cell_text(cell))})</h3>"]
    for d in cell["divergences"]:
        parts.append(f"<h4>{e(d['check'])} <span class='k'>{e(d.get('kind') or '')}, {e(d['status'])}</span></h4>")
        parts.append(f"<div class='k'>divergence</div><pre>{e(str(d.get('message')))}</pre>")
        if d.get("example"):
            parts.append(f"<div class='k'>minimal input</div><pre>{e(d['example'])}</pre>")
        replay = replay_command(row, d.get("repro"))
        if replay:
            parts.append(f"<div class='k'>replay</div><pre>{e(replay)}</pre>")
        if d.get("reason"):
            parts.append(f"<div class='k'>recorded reason</div><pre>{e(d['reason'])}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def write_outputs(matrix: dict, out: str) -> dict[str, str]:
    os.makedirs(out, exist_ok=True)
    paths = {"md": os.path.join(out, "matrix.md"), "json": os.path.join(out, "matrix.json"),
             "html": os.path.join(out, "matrix.html")}
    with open(paths["md"], "w", encoding="utf-8") as fh:
        fh.write(render_markdown(matrix))
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(matrix, fh, indent=1)
    with open(paths["html"], "w", encoding="utf-8") as fh:
        fh.write(render_html(matrix))
    return paths


# ---------------------------------------------------------------- running

def run_env(env: str, *, workdir: str, out: str, suite_args: list[str], tox: list[str]) -> dict:
    report_path = os.path.join(workdir, f"report-{env}.json")
    if os.path.exists(report_path):
        os.remove(report_path)
    log_path = os.path.join(out, "logs", f"{env}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    junit_src = os.path.join(workdir, f"junit-{env}.xml")
    junit = os.path.abspath(os.path.join(out, "junit", f"{env}.xml"))
    os.makedirs(os.path.dirname(junit), exist_ok=True)
    for stale in (junit_src, junit):
        if os.path.exists(stale):
            os.remove(stale)
    cmd = [*tox, "-e", env, *(["--", *suite_args] if suite_args else [])]
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if os.path.exists(junit_src):
        shutil.copy(junit_src, junit)
    extra = {"log": log_path,
             "junit": junit if os.path.exists(junit) else None, "tox_exit_status": rc}
    if not os.path.exists(report_path):
        return failed_row(env, f"no report (tox exit status {rc}; log: {log_path})", seconds,
                          _env_release(env)) | extra
    try:
        report = results.load(report_path).to_dict()
    except results.BadReport as exc:
        return failed_row(env, f"unreadable report {report_path}: {exc}", seconds, _env_release(env)) | extra
    os.makedirs(os.path.join(out, "reports"), exist_ok=True)
    shutil.copy(report_path, os.path.join(out, "reports", f"{env}.json"))
    return row_from_report(report, env=env, seconds=seconds, extra=extra)


def cmd_run(args: argparse.Namespace, suite_args: list[str]) -> int:
    envs = [e.strip() for e in args.envs.split(",") if e.strip()] if args.envs else tox_envs(args.tox_ini, args.label)
    tox = shlex.split(args.tox)
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(args.tox_ini)), ".tox")
    print(f"vllm-vision-matrix: {len(envs)} env(s), {args.jobs} at a time: {', '.join(envs)}", flush=True)
    rows, start = [], time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_env, env, workdir=workdir, out=args.out, suite_args=suite_args, tox=tox): env
                   for env in envs}
        for future in concurrent.futures.as_completed(futures):
            row = future.result()
            rows.append(row)
            what = "not run: " + row["error"] if not row.get("cells") else f"exit status {row['exit_status']}"
            print(f"  {futures[future]}: {row['seconds']:.1f} s, {what}", flush=True)
    matrix = build(rows, args.strict)
    matrix["wall_seconds"] = time.monotonic() - start
    return _finish(matrix, args.out)


def cmd_render(args: argparse.Namespace) -> int:
    rows = []
    for path in args.reports:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict) and data.get("tool") == "vllm-vision-matrix":  # a matrix.json: its rows
                rows.extend(data.get("releases", []))
                continue
            report = results.Report.from_dict(data).to_dict()
        except (OSError, ValueError, results.BadReport) as exc:
            rows.append(failed_row(os.path.basename(path), f"unreadable report {path}: {exc}"))
            continue
        m = re.search(r"(vllm-[\w.+-]+?)\.json$", os.path.basename(path))
        rows.append(row_from_report(report, env=m.group(1) if m else None))
    by_env: dict = {}
    for row in rows:  # a later file wins for the same env
        by_env[row.get("env") or id(row)] = row
    rows = list(by_env.values())
    for row in rows:  # recomputed over the merged rows
        for cell in row.get("cells", {}).values():
            cell.pop("since", None)
            cell.pop("until", None)
    matrix = build(rows, args.strict)
    return _finish(matrix, args.out)


def _finish(matrix: dict, out: str) -> int:
    paths = write_outputs(matrix, out)
    print()
    print(render_markdown(matrix), end="")
    print(f"\nwritten: {paths['md']}, {paths['json']}, {paths['html']}")
    return matrix["exit_status"]


def cmd_gate(args: argparse.Namespace) -> int:
    try:
        base = results.load(args.base).to_dict()
        current = results.load(args.current).to_dict()
    except results.BadReport as exc:
        print(f"vllm-vision-matrix gate: error: {exc}", file=sys.stderr)
        return 2
    result = baseline.compare(base, current, base_target=args.base_target, current_target=args.current_target,
                              allow_expected=args.allow_expected)
    sys.stdout.write(baseline.render(result, base_name=args.base, current_name=args.current))
    return result.exit_status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm-vision-matrix", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the tox envs and write the matrix (suite options after --)")
    run.add_argument("--envs", help="comma-separated tox envs (default: the tox label)")
    run.add_argument("--label", default="conformance", help="tox label whose release envs run (default: conformance)")
    run.add_argument("--jobs", "-j", type=int, default=max(1, min(4, (os.cpu_count() or 2))),
                     help="envs run at once (default: CPUs, at most 4)")
    run.add_argument("--tox-ini", default="tox.ini")
    run.add_argument("--tox", default=f"{sys.executable} -m tox", help="how to call tox")
    run.add_argument("--workdir", help="tox work dir holding report-ENV.json (default: .tox beside tox.ini)")
    run.add_argument("--out", default="matrix", help="output folder (default: matrix)")
    run.add_argument("--strict", action="store_true", help="a stale expectations entry fails")
    render = sub.add_parser("render", help="write the matrix from JSON reports (or matrix.json files) on disk")
    render.add_argument("reports", nargs="+", help="suite reports, or matrix.json files of earlier runs (merged)")
    render.add_argument("--out", default="matrix")
    render.add_argument("--strict", action="store_true", help="a stale expectations entry fails")
    gate = sub.add_parser("gate", help="exit 1 on divergences that the base report does not have")
    gate.add_argument("--base", required=True, help="JSON report of the base run")
    gate.add_argument("--current", required=True, help="JSON report of this run")
    gate.add_argument("--base-target", help="target in the base report (default: vllm, or the one candidate)")
    gate.add_argument("--current-target", help="target in the current report (default: vllm, or the one candidate)")
    gate.add_argument("--allow-expected", action="store_true",
                      help="a new divergence recorded in the current run's expectations does not fail")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    suite_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, suite_args = argv[:i], argv[i + 1:]
    args = parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args, suite_args)
    if args.command == "render":
        return cmd_render(args)
    return cmd_gate(args)


if __name__ == "__main__":
    raise SystemExit(main())
