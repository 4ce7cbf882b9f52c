"""Installing the suite changes nothing in another project's pytest runs: one
distinctive top-level package, prefixed options, no heavy import, Hypothesis's
profiles and settings left alone. And plain ``pytest --pyargs`` of the suite is the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from vllm_vision_conformance.conformance import plugin

PROJECT = {
    # a module whose name the suite's reference package once took
    "reference.py": "def double(x):\n    return 2 * x\n",
    "strategies.py": "from hypothesis import strategies as st\nsmall = st.integers(-5, 5)\n",
    "conftest.py": textwrap.dedent("""
        import json, os, sys
        from hypothesis import settings
        settings.register_profile("ci", max_examples=7)  # the project's own ci profile
        def pytest_addoption(parser):
            parser.addoption("--baseline", default=None)  # an option the suite also has (prefixed)
        def pytest_sessionfinish(session):
            facts = {"torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                     "max_examples": settings.default.max_examples, "baseline": session.config.getoption("baseline"),
                     "ours_loaded": session.config.pluginmanager.has_plugin("vllm_vision_conformance"),
                     "ours_active": session.config.pluginmanager.has_plugin("vllm_vision_conformance.session")}
            with open(os.environ["FACTS"], "w") as f:
                json.dump(facts, f)
        """),
    "test_project.py": textwrap.dedent("""
        from hypothesis import given
        import reference, strategies
        SEEN = []
        @given(strategies.small)
        def test_double(x):
            SEEN.append(x)
            assert reference.double(x) == x + x
        def test_examples_ran():
            print("examples:", len(SEEN))
            assert SEEN
        """),
}


# what makes Hypothesis load its ci profile by itself (tox sets the second one)
CI_VARS = ("CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "BUILDKITE", "CIRCLECI", "CIRRUS_CI",
           "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI", "HEROKU_TEST_RUN_ID", "TEAMCITY_VERSION")


def _run_project(tmp_path, *args, ci: bool):
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    facts = tmp_path / "facts.json"
    env = {k: v for k, v in os.environ.items() if k not in (*CI_VARS, "PYTHONPATH", "VVC_PROFILE")}
    env.update(FACTS=str(facts), **({"CI": "true"} if ci else {}))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-q", "--baseline", "b",
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    examples = re.findall(r"examples: \d+", out)
    return proc.returncode, json.loads(facts.read_text()), examples, out


def test_the_package_installs_under_one_distinctive_name():
    dist = importlib.metadata.distribution("vllm-vision-conformance")
    assert (dist.read_text("top_level.txt") or "").split() == ["vllm_vision_conformance"]
    assert [ep.value for ep in dist.entry_points if ep.group == "pytest11"] == [plugin.__name__]


def test_every_pytest_option_of_the_plugin_is_prefixed():
    names = []

    class Group:
        def addoption(self, *opts, **kw):
            names.extend(opts)

    class Parser:
        def getgroup(self, *a, **kw):
            return Group()

    plugin.pytest_addoption(Parser())
    assert names and all(n.startswith("--vvc-") for n in names), names


@pytest.mark.parametrize("ci", [False, True], ids=["plain", "CI=true"])
def test_an_unrelated_project_runs_exactly_as_without_the_plugin(tmp_path, ci):
    """Its own reference.py and strategies.py import, its --baseline option works, its own ci
    profile is the one Hypothesis loads under CI=true (7 examples), and nothing heavy is imported."""
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    with_status, with_facts, with_examples, out = _run_project(tmp_path / "with", ci=ci)
    without = _run_project(tmp_path / "without", "-p", "no:vllm_vision_conformance", ci=ci)
    assert with_status == 0, out[-3000:]
    assert with_facts.pop("ours_loaded") is True and without[1].pop("ours_loaded") is False  # not vacuous
    assert (with_status, with_facts, with_examples) == without[:3], (out[-2000:], without[3][-2000:])
    assert with_facts == {"torch": False, "transformers": False, "max_examples": 7 if ci else 100,
                          "baseline": "b", "ours_active": False}
    assert with_examples == [f"examples: {7 if ci else 11}"]  # 11: every integer in -5..5 (Hypothesis stops early)


def test_the_project_sees_only_prefixed_options_in_help(tmp_path):
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "FACTS": str(tmp_path / "f.json")}, timeout=120).stdout
    assert "--vvc-impl" in out and "--vvc-report-json" in out
    for bare in ("--impl", "--targets", "--only", "--expectations", "--report-json", "--dp-group"):
        assert f"  {bare} " not in out and f"  {bare}=" not in out, bare


SUITE_CHECKS = ",".join([
    "reference.get_load_balance_assignment.case-docstring-example",
    "reference.get_num_selected_vision_tokens.property-matches-selector",
    # gloo checks: Hypothesis's 200 ms default deadline failed them under plain pytest
    "reference.run_dp_sharded_vision_model.property-matches-unsharded-gloo",
])


@pytest.mark.slow
def test_plain_pytest_of_the_suite_is_the_cli(cli, tmp_path):
    status, report, out = cli("--targets", "reference", "--only", SUITE_CHECKS)
    assert status == 0, out[-3000:]
    plain_json = tmp_path / "plain.json"
    env = {k: v for k, v in os.environ.items() if k not in (*CI_VARS, "VVC_PROFILE")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs",
                           "vllm_vision_conformance.conformance.suite", "--vvc-targets", "reference",
                           "--vvc-only", SUITE_CHECKS, "--vvc-report-json", str(plain_json)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    plain = json.loads(plain_json.read_text())
    assert plain["hypothesis_profile"] == report["hypothesis_profile"] == "vvc-ci"
    for key in ("checks", "table", "complete", "exit_status"):
        assert plain[key] == report[key], key
    assert {c["status"] for c in plain["checks"]} == {"conforms"}
    assert max(c["examples"] for c in plain["checks"]) == 200  # the suite's ci profile, not Hypothesis's default


def test_the_cli_has_its_own_help_and_version():
    from vllm_vision_conformance.conformance import cli as cli_module

    for flag in ("--help", "-h"):
        proc = subprocess.run([sys.executable, "-m", "vllm_vision_conformance", flag], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: vllm-vision-conformance"), proc.stdout
        for option in ("--impl NAME=SPEC", "--only", "--report-json PATH", "--profile", "-n N", "--pytest-help"):
            assert option in proc.stdout, option
        assert "--vvc-" not in proc.stdout and "general:" not in proc.stdout  # ours, not pytest's
        assert max(map(len, proc.stdout.splitlines())) <= 80
    proc = subprocess.run([sys.executable, "-m", "vllm_vision_conformance", "--version"], capture_output=True,
                          text=True, timeout=120)
    version = importlib.metadata.version("vllm-vision-conformance")
    assert proc.returncode == 0 and proc.stdout.startswith(f"vllm-vision-conformance {version} (vllm "), proc.stdout
    assert cli_module.version() == proc.stdout.strip()


@pytest.mark.slow
def test_quiet_prints_the_table_and_only_the_new_divergences(cli, tmp_path):
    from ..conftest import CANDIDATES

    exp = tmp_path / "exp.txt"
    exp.write_text("# the candidate returns a list here (a recorded divergence)\n"
                   "get_load_balance_assignment case-docstring-example is list\n")
    args = ["--impl", f"bad={CANDIDATES / 'misbehaves.py'}", "--targets", "bad", "--expectations", f"bad={exp}",
            "--only", "bad.get_load_balance_assignment.case-docstring-example,"
                      "bad.get_num_selected_vision_tokens.case-default-576"]
    full, quiet = cli(*args), cli(*args, "-q")
    assert full[0] == quiet[0] == 1
    assert full[1]["checks"] == quiet[1]["checks"]  # the same run, a shorter text
    assert "reason: the candidate returns a list here" in full[2]
    assert "reason:" not in quiet[2] and "1 expected divergence(s), recorded with a reason (listed without -q)" in quiet[2]
    for out in (full[2], quiet[2]):
        assert "- bad.get_num_selected_vision_tokens.case-default-576: raised RuntimeError: boom" in out
        assert "get_load_balance_assignment        expected divergence" in out


@pytest.mark.slow
def test_hypothesis_statistics_are_printed(cli):
    check = "reference.get_load_balance_assignment.property-valid-partition"
    for extra in ((), ("-n", "2")):
        status, _, out = cli("--targets", "reference", "--only", check, "--hypothesis-show-statistics", *extra)
        assert status == 0, out[-3000:]
        stats = out.split("Hypothesis Statistics", 1)[1]
        assert f"test_conformance[{check}]" in stats and "200 passing" in stats, out[-3000:]
