"""``vllm-vision-conformance``: the suite as a command.

Runs pytest on the shipped suite. The suite's own options keep their short
spellings here (``--impl``, ``--targets``, ``--only``, ``--expectations``,
``--report-json``, ...; under plain pytest they are ``--vvc-impl`` and so on),
and everything else goes to pytest as it is: ``-n auto`` (pytest-xdist), ``-x``,
``-k``, ``--junitxml``, ``--hypothesis-seed``, ``--hypothesis-show-statistics``.
The default Hypothesis profile is the suite's ``ci`` (``vvc-ci``); ``--profile``
or ``VVC_PROFILE`` picks ``dev`` or ``thorough``. ``-q`` prints only the table,
the new divergences and what went wrong.

Exit status: 0 every requested check of every requested target ran and
conforms (or diverges only as recorded), 1 a divergence beyond the recorded
expectations, 2 bad input (one line each: an unknown ``--impl`` spec or a
reused name, a target that does not load or provides no documented name, a
selection that selects nothing, a bad option value, an unreadable
expectations file or ``--baseline`` report, a pytest usage error such as an
unknown option), 3 the run is incomplete (interrupted, or a requested check
did not run or could not be judged); the JSON report says which, with
``complete`` false. With ``--baseline BASE.json`` (a report of an earlier
run) the gate decides: 0 no divergence that the base run lacks, 1 a new one
(printed first).
"""

from __future__ import annotations

import os
import sys

from .plugin import OPTIONS, PREFIX

PROG = "vllm-vision-conformance"
_NAMES = {name for name, _, _ in OPTIONS}


def translate(args: list[str]) -> list[str]:
    """The CLI's short spellings (``--impl X``, ``--only=Y``, ``-q``) as the plugin's prefixed options."""
    out = []
    for arg in args:
        if arg == "-q":  # pytest is already quiet here: -q is the suite's short report
            arg = "--quiet"
        name, sep, value = arg[2:].partition("=")
        out.append(f"{PREFIX}{name}{sep}{value}" if arg.startswith("--") and name in _NAMES else arg)
    return out


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    def v(dist):
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            return "not installed"

    return (f"{PROG} {v('vllm-vision-conformance')} (vllm {v('vllm')}, torch {v('torch')}, "
            f"pytest {v('pytest')}, hypothesis {v('hypothesis')}, pytest-xdist {v('pytest-xdist')})")


def usage() -> str:
    import textwrap

    lines = [f"usage: {PROG} [OPTIONS] [PYTEST OPTIONS]", "",
             "Runs the conformance suite of vLLM's vision helpers and prints its report.", "", "options:"]
    for name, text, kw in OPTIONS:
        meta = kw.get("metavar") or ("{" + ",".join(kw["choices"]) + "}" if "choices" in kw else None)
        spell = f"--{name}" + (f" {meta}" if meta and kw.get("action") != "store_true" else "")
        lines.append(f"  {spell}")
        lines.extend(textwrap.wrap(text, 72, initial_indent="        ", subsequent_indent="        "))
    for spell, text in (
            ("-n N, -n auto", "run the checks in N pytest-xdist workers (the same report, JSON and exit status)"),
            ("--version", "print the versions of this suite, vLLM, torch, pytest, Hypothesis and pytest-xdist"),
            ("--pytest-help", "pytest's own help (every other option is passed to pytest)")):
        lines.append(f"  {spell}")
        lines.extend(textwrap.wrap(text, 72, initial_indent="        ", subsequent_indent="        "))
    lines += [
        "",
        "exit status: 0 conforms (or diverges only as recorded), 1 a new divergence,",
        "2 bad input (one line each), 3 incomplete (interrupted, or a check did not run).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        sys.stdout.write(usage())
        return 0
    if "--version" in args:
        sys.stdout.write(version() + "\n")
        return 0
    import pytest

    from . import plugin as plugin_module

    args = ["--help" if a == "--pytest-help" else a for a in translate(args)]
    suite = os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite")
    defaults = ["-c", os.path.join(suite, "pytest.ini"), "--rootdir", suite, "-q", "-p", "no:cacheprovider",
                "--tb=line", "-W", "ignore::DeprecationWarning", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    defaults.append(PREFIX + "cli")
    # When the package is installed the pytest11 entry point loads the plugin; from a
    # source tree, name it (as an argument, so that pytest-xdist's workers load it too).
    if not _entry_point_registered(plugin_module.__name__):
        defaults += ["-p", plugin_module.__name__]
    status = int(pytest.main([suite, *defaults, *args]))
    # pytest's usage error (an unknown option, a bad choice) is bad input here
    return 2 if status == int(pytest.ExitCode.USAGE_ERROR) else status


def _entry_point_registered(module: str) -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == module for ep in entry_points(group="pytest11"))


if __name__ == "__main__":
    raise SystemExit(main())
