"""``vllm-vision-conformance``: the suite as a command.

Runs pytest on the shipped suite with the plugin's options; everything on the
command line is passed to pytest, so ``--impl``, ``--targets``, ``--only``,
``--expectations``, ``--ignore-expectations``, ``--report-json`` and any pytest
or Hypothesis option (``--hypothesis-profile``, ``-x``, ``-v``) work alike.
The default Hypothesis profile here is ``ci``.

Exit status: 0 every requested check of every requested target ran and
conforms (or diverges only as recorded), 1 a divergence beyond the recorded
expectations, 2 bad input (one line each: an unknown ``--impl`` spec or a
reused name, a target that does not load or provides no documented name, a
selection that selects nothing, a bad option value, an unreadable
expectations file or ``--baseline`` report, a pytest usage error), 3 the run
is incomplete (interrupted, or a requested check did not run or could not be
judged); the JSON report says which, with ``complete`` false.
With ``--baseline BASE.json`` (a report of an earlier run) the gate decides:
0 no divergence that the base run lacks, 1 a new one (printed first).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    import pytest

    args = list(sys.argv[1:] if argv is None else argv)
    suite = os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite")
    defaults = ["-c", os.path.join(suite, "pytest.ini"), "--rootdir", suite, "-q", "-p", "no:cacheprovider",
                "--tb=line", "-W", "ignore::DeprecationWarning", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not any(a.startswith("--hypothesis-profile") for a in args):
        defaults.append("--hypothesis-profile=" + os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    plugins = []
    import conformance.plugin as plugin_module

    # When the package is installed the pytest11 entry point loads the plugin;
    # from a source tree, hand it over explicitly.
    if not _entry_point_registered():
        plugins.append(plugin_module)
    status = int(pytest.main([suite, *defaults, *args], plugins=plugins))
    # pytest's usage error (an unknown option, a bad choice) is bad input here
    return 2 if status == int(pytest.ExitCode.USAGE_ERROR) else status


def _entry_point_registered() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value.startswith("conformance.plugin") for ep in entry_points(group="pytest11"))


if __name__ == "__main__":
    raise SystemExit(main())
