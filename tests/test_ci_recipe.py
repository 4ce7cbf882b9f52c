"""The example CI workflow (examples/vllm-vision-conformance.yml) calls the suite's
commands with options they accept. GitHub-only parts (actions, caches, uploads) are
not run here; the suite's own command lines are checked against the real parsers,
so renaming or dropping an option the recipe uses fails this test."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

yaml = pytest.importorskip("yaml")

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "vllm-vision-conformance.yml"
COMMANDS = ("vllm-vision-conformance", "vllm-vision-matrix")
# pytest's and Hypothesis's own options the recipe passes through the CLI
SUBCOMMANDS = ("run", "render", "gate")
PASSTHROUGH = {"--junitxml", "--hypothesis-profile"}


def _command_lines(script: str) -> list[list[str]]:
    script = re.sub(r"\\\n\s*", " ", script)
    found = []
    for line in script.splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("#"):
            continue
        first = line.split()[:2]
        if len(first) < 2 or first[0] not in COMMANDS or not (first[1].startswith("-") or first[1] in SUBCOMMANDS):
            continue  # prose that names a command
        line = line.replace('"${gate[@]}"', "--baseline base-report.json")
        found.append([w for w in shlex.split(re.split(r"\s+(\|\||&&|;)\s+", line)[0]) if w != "..."])
    return found


def _workflow_commands() -> list[list[str]]:
    flow = yaml.safe_load(WORKFLOW.read_text())
    scripts = [step["run"] for job in flow["jobs"].values() for step in job["steps"] if "run" in step]
    # the commented alternatives in the file are part of the recipe too
    scripts.append("\n".join(line.strip().lstrip("#").strip() for line in WORKFLOW.read_text().splitlines()
                             if line.strip().startswith("#")))
    return [words for script in scripts for words in _command_lines(script)]


def _plugin_options() -> set[str]:
    from vllm_vision_conformance.conformance import plugin

    names: set[str] = set()

    class Group:
        def addoption(self, *opts, **kw):
            names.update(opts)

    class Parser:
        def getgroup(self, *a, **kw):
            return Group()

    plugin.pytest_addoption(Parser())
    return names


def test_the_workflow_uses_both_commands_and_the_gate():
    commands = _workflow_commands()
    assert {c[0] for c in commands} == set(COMMANDS), commands
    assert any("--baseline" in c for c in commands), "the recipe gates with --baseline"
    assert any(c[:2] == ["vllm-vision-matrix", "gate"] for c in commands)


@pytest.mark.parametrize("words", [c for c in _workflow_commands() if c[0] == "vllm-vision-conformance"],
                         ids=lambda w: " ".join(w[1:4]))
def test_suite_command_lines_use_known_options(words):
    known = _plugin_options() | PASSTHROUGH
    used = {w.split("=")[0] for w in words[1:] if w.startswith("--")}
    assert used <= known, f"unknown options {sorted(used - known)} in: {' '.join(words)}"


@pytest.mark.parametrize("words", [c for c in _workflow_commands() if c[0] == "vllm-vision-matrix"],
                         ids=lambda w: " ".join(w[1:3]))
def test_matrix_command_lines_parse(words):
    from vllm_vision_conformance.conformance.matrix import parser

    parser().parse_args(words[1:])  # SystemExit(2) on an unknown option or a missing argument


def test_the_files_the_workflow_fetches_exist():
    for rel in re.findall(r"vllm-vision-conformance/[^/\s]+/(requirements/[\w.-]+)", WORKFLOW.read_text()):
        assert (ROOT / rel).is_file(), rel
