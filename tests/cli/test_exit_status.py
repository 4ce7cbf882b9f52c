"""The exit status a gate relies on: bad input is exit 2 with one line that
says what was wrong and what is accepted (and changes nothing else); an
interrupted run is exit 3 and still writes its report, marked incomplete."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import CANDIDATES, run_cli

ONE = "reference.get_load_balance_assignment.case-docstring-example"



def _sigint_default():
    """The suite as a user's foreground run gets it: a run started in the background of a
    non-interactive shell (`pytest ... &`) inherits SIGINT ignored, and so would the suite."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)

def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("vllm-vision-conformance: error:")]


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (["--only", "reference.get_load_balance_assignment.case-nope"], "no such check"),
    (["--only", "nobody.get_load_balance_assignment.case-docstring-example"], "no such target 'nobody'"),
    (["--only", "reference.run_dp_sharded_vision_model.property-matches-unsharded-gloo", "--dp-group", "sim"],
     "--dp-group sim leaves out"),
    (["--only", ONE, "-k", "no_such_keyword"], "no check is selected (by -k"),
    (["--impl", f"x={CANDIDATES / 'hostile' / 'empty.py'}", "--targets", "reference,x", "--only", ONE],
     "provides none of the documented names"),
    (["--only", ONE, "--example-timeout", "0"], "--example-timeout '0': not a time bound"),
    (["--only", ONE, "--example-timeout", "-1"], "accepted: a finite number of seconds > 0"),
    (["--only", ONE, "--example-timeout", "nan"], "not a time bound"),
    (["--only", ONE, "--example-timeout", "inf"], "not a time bound"),
    (["--only", ONE, "--example-timeout", "abc"], "not a time bound"),
    (["--only", ONE, "--load-timeout", "0"], "--load-timeout '0': not a time bound"),
    (["--only", ONE, "--hypothesis-profile", "nosuch"], "--hypothesis-profile 'nosuch': no such profile; accepted: dev, ci"),
    (["--only", ONE, "--report-json", "/no/such/folder/r.json"], "the folder /no/such/folder does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, says):
    status, report, output = cli("--targets", "reference", *args) if "--targets" not in args else cli(*args)
    assert status == 2, output[-3000:]
    lines = _error_lines(output)
    assert len(lines) == 1 and says in lines[0], output[-3000:]
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize("args, says", [
    (["--dp-group", "nosuch"], "invalid choice: 'nosuch' (choose from 'sim', 'gloo', 'both')"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_pytest_usage_errors_are_exit_2(cli, args, says):
    status, _, output = cli("--targets", "reference", "--only", ONE, *args)
    assert status == 2, output[-3000:]
    assert says in output, output[-3000:]


@pytest.mark.slow
def test_a_report_path_that_cannot_be_written_keeps_the_text_report(cli):
    status, _, output = cli("--targets", "reference", "--only", ONE, "--report-json", "/no/such/folder/r.json")
    assert status == 2
    assert "vllm-vision-conformance report" in output and "bad input: --report-json" in output


@pytest.mark.slow
def test_a_reused_impl_name_changes_nothing_else(cli, tmp_path):
    """--impl vllm=... and a name given twice are refused; the first 'x' and
    vLLM keep their targets and their expectations."""
    exp = tmp_path / "x.txt"
    exp.write_text("# the candidate raises here, on purpose\nget_num_selected_vision_tokens case-default-576 raised\n")
    only = ",".join(["x.get_num_selected_vision_tokens.case-default-576",
                     "vllm.get_load_balance_assignment.error-zero-gpus"])
    status, report, output = cli("--impl", f"x={CANDIDATES / 'misbehaves.py'}", "--expectations", f"x={exp}",
                                 "--impl", "vllm=os", "--impl", f"x={CANDIDATES / 'partial.py'}",
                                 "--targets", "x,vllm", "--only", only)
    assert report is not None, output[-3000:]
    if any("vLLM not importable" in line for line in report["bad_input"]):
        pytest.skip("vLLM is not importable here; the tox env 'tests' installs it")
    assert status == 2, output[-3000:]
    lines = _error_lines(output)
    assert len(lines) == 2, lines
    assert any("'vllm' are taken" in line for line in lines) and any("given twice" in line for line in lines)
    checks = {(c["target"], c["function"], c["check"]): c["status"] for c in report["checks"]}
    assert checks[("x", "get_num_selected_vision_tokens", "case-default-576")] == "expected"  # x is still misbehaves.py
    assert checks[("vllm", "get_load_balance_assignment", "error-zero-gpus")] == "expected"  # vLLM's own file


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_writes_its_report_and_exits_3(tmp_path, sig):
    report = tmp_path / "r.json"
    env = dict(os.environ, VLLM_LOGGING_LEVEL="ERROR")
    proc = subprocess.Popen([sys.executable, "-m", "vllm_vision_conformance", "--targets", "reference", "--report-json",
                             str(report), "--profile=ci"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_sigint_default)
    deadline = time.monotonic() + 120
    while not report.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, output[-3000:]
    data = json.loads(report.read_text())
    assert data["complete"] is False and data["exit_status"] == 3, data["incomplete"]
    assert any("interrupted" in line for line in data["incomplete"]), data["incomplete"]
    statuses = {c["status"] for c in data["checks"]}
    assert "conforms" in statuses and "not run" in statuses, statuses  # what ran is kept; the rest is listed
    assert "vllm-vision-conformance report" in output and "incomplete" in output, output[-3000:]
