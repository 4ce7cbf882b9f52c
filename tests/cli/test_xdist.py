"""Under pytest-xdist (``-n 2``) the suite gives the same report, JSON and exit status
as a serial run, on every exit path: 0, 1, 2, 3, ``--strict-expectations`` and
``--baseline``. Each scenario runs twice, serially and with two workers, and the
two runs are compared field by field (only the timing may differ)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from vllm_vision_conformance.conformance.registry import BY_NAME

from ..conftest import CANDIDATES

# whole-suite runs in subprocesses: tox -e tests-slow (pytest -m slow)
pytestmark = pytest.mark.slow

ONE = "reference.get_load_balance_assignment.case-docstring-example"



def _sigint_default():
    """The suite as a user's foreground run gets it: a run started in the background of a
    non-interactive shell (`pytest ... &`) inherits SIGINT ignored, and so would the suite."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)

def _ids(target: str, *functions: str) -> str:
    return ",".join(f"{target}.{f}.{c.id}" for f in functions for c in BY_NAME[f].checks
                    if not (target == "reference" and c.needs_reference))


REF = _ids("reference", "get_load_balance_assignment", "get_num_selected_vision_tokens")
BAD = f"bad={CANDIDATES / 'misbehaves.py'}"


def _section(output: str) -> str:
    """Our text report (with the gate's section before it), without pytest's own lines."""
    start = re.search(r"^=+ vllm-vision-conformance (gate|report)", output, re.M).start()
    end = output.index("\n", output.index("\nexit status ", start) + 1)
    return re.sub(r"=+", "=", output[start:end])


def _same(serial: tuple, parallel: tuple) -> None:
    (s_status, s_json, s_out), (p_status, p_json, p_out) = serial, parallel
    assert "bringing up nodes" in p_out and "bringing up nodes" not in s_out, p_out[-2000:]
    assert p_status == s_status, (s_out[-3000:], p_out[-3000:])
    assert _section(p_out) == _section(s_out), (s_out[-3000:], p_out[-3000:])
    errors = [line for line in s_out.splitlines() if line.startswith("vllm-vision-conformance: ")]
    assert [line for line in p_out.splitlines() if line.startswith("vllm-vision-conformance: ")] == errors
    assert s_json is not None and p_json is not None
    for key in ("complete", "exit_status", "targets", "table", "checks", "stale_expectations", "bad_input",
                "incomplete", "hypothesis_profile"):
        assert p_json[key] == s_json[key], key
    assert p_json["checks"], "nothing ran"


SCENARIOS = {
    "conforms-0": (0, ["--targets", "reference", "--only", REF]),
    "diverges-1": (1, ["--impl", BAD, "--targets", "bad,reference",
                       "--only", REF + "," + _ids("bad", "get_load_balance_assignment", "get_num_selected_vision_tokens")]),
    "bad-impl-2": (2, ["--impl", "x=./missing/file.py", "--targets", "reference,x", "--only", REF]),
    "bad-only-2": (2, ["--targets", "reference", "--only", REF + ",reference.get_load_balance_assignment.case-nope"]),
    "usage-2": (2, ["--targets", "reference", "--only", ONE, "--no-such-option"]),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_two_workers_give_the_serial_report_and_exit_status(cli, name):
    want, args = SCENARIOS[name]
    serial = cli(*args)
    assert serial[0] == want, serial[2][-3000:]
    if name == "usage-2":  # pytest stops before any report: only the status and the line compare
        parallel = cli(*args, "-n", "2")
        assert parallel[0] == 2 and "unrecognized arguments: --no-such-option" in parallel[2]
        return
    _same(serial, cli(*args, "-n", "2"))


def test_strict_expectations_fail_alike_under_two_workers(cli, tmp_path):
    stale = tmp_path / "stale.txt"
    stale.write_text("# claimed to diverge, but the reference passes this case\n"
                     "get_load_balance_assignment case-docstring-example\n"
                     "# an entry the run matches: the candidate returns a list\n"
                     "get_load_balance_assignment case-docstring-example is list\n")
    args = ["--impl", BAD, "--targets", "bad,reference", "--expectations", f"reference={stale}",
            "--expectations", f"bad={stale}", "--only", REF + "," + _ids("bad", "get_load_balance_assignment"),
            "--strict-expectations"]
    serial = cli(*args)
    assert serial[0] == 1 and "STALE (strict: fails)" in serial[2], serial[2][-3000:]
    _same(serial, cli(*args, "-n", "2"))
    # Without it the run passes: the entry that matched `bad` on its worker is not stale on the
    # controller (it travelled with the result); the others are listed, in both runs alike.
    lenient = ["--impl", BAD, "--targets", "bad,reference", "--expectations", f"reference={stale}",
               "--expectations", f"bad={stale}", "--only", REF + ",bad.get_load_balance_assignment.case-docstring-example"]
    serial = cli(*lenient)
    assert serial[0] == 0, serial[2][-3000:]
    parallel = cli(*lenient, "-n", "2")
    _same(serial, parallel)
    stale_of = {(e["target"], e["source"]) for e in parallel[1]["stale_expectations"]}
    assert stale_of == {("reference", f"{stale}:2"), ("reference", f"{stale}:4"), ("bad", f"{stale}:4")}, stale_of
    assert parallel[1]["table"]["get_load_balance_assignment"]["bad"]["status"] == "expected divergence"


def test_the_baseline_gate_decides_alike_under_two_workers(cli, tmp_path):
    base_args = ["--impl", BAD, "--targets", "bad", "--ignore-expectations",
                 "--only", _ids("bad", "get_load_balance_assignment")]
    status, base, out = cli(*base_args)
    assert status == 1 and base is not None, out[-3000:]
    base_json = tmp_path / "base.json"
    base_json.write_text(json.dumps(base))
    # the same checks: nothing new (0); one more function that diverges: new (1)
    same = [*base_args, "--baseline", str(base_json)]
    new = ["--impl", BAD, "--targets", "bad", "--ignore-expectations", "--baseline", str(base_json),
           "--only", _ids("bad", "get_load_balance_assignment", "get_num_selected_vision_tokens")]
    for args, want in ((same, 0), (new, 1)):
        serial = cli(*args)
        assert serial[0] == want, serial[2][-3000:]
        _same(serial, cli(*args, "-n", "2"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_under_two_workers_writes_its_report_and_exits_3(tmp_path, sig):
    report = tmp_path / "r.json"
    env = dict(os.environ, VLLM_LOGGING_LEVEL="ERROR")
    proc = subprocess.Popen([sys.executable, "-m", "vllm_vision_conformance", "--targets", "reference",
                             "--report-json", str(report), "-n", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_sigint_default)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # until the controller has results
        if report.exists() and any(c["status"] == "conforms" for c in json.loads(report.read_text())["checks"]):
            break
        time.sleep(0.3)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 3, output[-3000:]
    data = json.loads(report.read_text())
    assert data["complete"] is False and data["exit_status"] == 3, data["incomplete"]
    assert any("interrupted" in line for line in data["incomplete"]), data["incomplete"]
    statuses = {c["status"] for c in data["checks"]}
    assert "conforms" in statuses and "not run" in statuses, statuses  # the workers' results are kept
    assert "vllm-vision-conformance report" in output and "incomplete" in output, output[-3000:]
