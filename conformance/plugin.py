"""The pytest plugin (entry point ``pytest11``): the suite's options, and nothing else
until the conformance suite is collected.

Installed in a vLLM development environment or a plugin's CI, this module is loaded
by every pytest run there. So it imports only the standard library and pytest, adds
options that all carry the ``--vvc-`` prefix, and registers the suite's hooks
(``conformance.session``: the targets, the checks, the report, the exit status) and
its Hypothesis profiles only in a run of the suite itself: the CLI, or
``pytest --pyargs vllm_vision_conformance.conformance.suite``. Another project's run
sees these options in ``--help`` (one group, all prefixed) and no other change.
"""

from __future__ import annotations

import argparse
import os
import re

import pytest

SUITE_PACKAGE = __name__.rsplit(".", 1)[0] + ".suite"  # vllm_vision_conformance.conformance.suite
SUITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite")
PREFIX = "--vvc-"

# (CLI spelling, help, addoption keywords); the pytest option is PREFIX + the CLI spelling.
OPTIONS = (
    ("impl", "add a candidate implementation: NAME=dotted.module, NAME=path/to/file.py or NAME=ep:ENTRY_POINT "
             "(repeatable)", dict(action="append", default=[], metavar="NAME=SPEC")),
    ("targets", "check only these targets (reference, vllm, candidate names); default: all",
     dict(default=None, metavar="NAME,...")),
    ("only", "run only these checks (the ids the report prints)",
     dict(default=None, metavar="TARGET.FUNCTION.CHECK,...")),
    ("expectations", "known divergences of target NAME: a shipped name such as vllm-0.33.0 (the "
     "entries of vllm.txt for that release), a path, or PATH@RELEASE",
     dict(action="append", default=[], metavar="NAME=FILE")),
    ("ignore-expectations", "ignore every recorded expectation and report all divergences",
     dict(action="store_true")),
    ("strict-expectations", "fail (exit 1) when an expectation entry matched no divergence (a stale entry)",
     dict(action="store_true")),
    ("report-json", "write the report as JSON (rewritten after every check; 'complete' says whether the run "
                    "finished)", dict(default=None, metavar="PATH")),
    ("example-timeout", "time bound of one call of a target, and of one job of a real group (default 30); past "
                        "it the target's process is killed", dict(default="30", metavar="SECONDS")),
    ("load-timeout", "time bound of loading a target (importing vLLM or a candidate) in its process (default "
                     "300)", dict(default="300", metavar="SECONDS")),
    ("dp-group", "groups the data-parallel checks run under: the in-process simulation, real gloo process "
                 "groups (forked ranks, vLLM's own group setup), or both (default)",
     dict(default="both", choices=("sim", "gloo", "both"))),
    ("baseline", "gate against the JSON report of a base run: exit 1 only on a divergence the base run does "
                 "not have (printed first), 0 otherwise, whatever the expectations say",
     dict(default=None, metavar="BASE.json")),
    ("baseline-target", "target in the base report (default: vllm, or its one checked candidate)",
     dict(default=None, metavar="NAME")),
    ("gate-target", "target of this run that is gated (default: vllm, or the one checked candidate)",
     dict(default=None, metavar="NAME")),
    ("allow-expected", "with --baseline: a new divergence recorded in this run's expectations does not fail",
     dict(action="store_true")),
    ("quiet", "print only the table, the new divergences and what went wrong (CLI: -q)",
     dict(action="store_true")),
    ("corpus", "answer the stored input corpus (conformance/corpus/) after the checks, every target, for the "
               "report and the matrix's 'what changed between releases': auto (default: when no --only or -k "
               "selects checks), on, off", dict(default="auto", choices=("auto", "on", "off"))),
    ("profile", "the suite's Hypothesis profile: dev, ci (default; derandomized) or thorough; "
                "--hypothesis-profile NAME picks any registered profile instead",
     dict(default=None, metavar="NAME")),
)


def pytest_addoption(parser):
    group = parser.getgroup("vllm-vision-conformance", "vllm-vision-conformance (only in a run of its suite)")
    for name, text, kw in OPTIONS:
        group.addoption(PREFIX + name, dest="vvc_" + name.replace("-", "_"), help=text, **kw)
    # set by the CLI (its messages then use its short spellings); workers of pytest-xdist get it too
    group.addoption(PREFIX + "cli", action="store_true", dest="vvc_cli", help=argparse.SUPPRESS)


def spelled(config, line: str) -> str:
    """A message that names the suite's options the way this run was given them."""
    if config.getoption("vvc_cli", False):
        return line
    return re.sub(r"(?<![\w-])--(" + "|".join(re.escape(n) for n, _, _ in OPTIONS) + r")(?![\w-])",
                  PREFIX[:-1] + r"-\1", line)


def runs_our_suite(config) -> bool:
    """Whether this pytest run collects the conformance suite (the CLI, or ``--pyargs`` of the suite)."""
    for arg in config.args:
        path = arg.split("::")[0]
        if path == SUITE_PACKAGE or path.startswith(SUITE_PACKAGE + ".") or \
                os.path.abspath(path).startswith(SUITE_DIR):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """In a run of the suite only: register its hooks (before Hypothesis's plugin reads its profile)."""
    if runs_our_suite(config) and not config.pluginmanager.has_plugin("vllm_vision_conformance.session"):
        from . import session

        config.pluginmanager.register(session, "vllm_vision_conformance.session")
