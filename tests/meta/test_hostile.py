"""Meta-tests: hostile candidates, each doing one thing the harness must
survive (hang, exit, crash, lie, patch, raise control flow). Run alone and
beside the reference, vLLM and a clean candidate, each must end within its
bound, exit 1 naming its function and the real cause, leave a complete JSON
report, and leave every other target's per-check results exactly as in a run
without it. Candidates that break at import are bad input (exit 2)."""

import time

import pytest

from ..conftest import CANDIDATES, run_cli

# whole-suite runs in subprocesses: tox -e tests-slow (pytest -m slow)
pytestmark = pytest.mark.slow

HOSTILE = CANDIDATES / "hostile"
TIMEOUT = 2  # --example-timeout of these runs

# file -> (the function it breaks, what the report must say about it)
AT_CALL = {
    "hang_catch_base": ("get_load_balance_assignment", f"did not return within {TIMEOUT} s"),
    "hang_ignore_alarm": ("get_load_balance_assignment", f"did not return within {TIMEOUT} s"),
    "hang_c_loop": ("get_load_balance_assignment", f"did not return within {TIMEOUT} s"),
    "repr_loops": ("get_load_balance_assignment", "Endless, but should be"),
    "stray_thread": ("get_load_balance_assignment", "is list, but should be tuple"),
    "exit0_call": ("get_load_balance_assignment", "the worker process exited with code 0"),
    "exit3_call": ("get_load_balance_assignment", "the worker process exited with code 3"),
    "segfault_call": ("get_load_balance_assignment", "was killed by signal 11 (SIGSEGV)"),
    "destroys_group": ("run_dp_sharded_vision_model", "left the process group destroyed"),
    "patches_all_gather": ("run_dp_sharded_vision_model", "in a real gloo group of"),
    "patches_reference": ("get_load_balance_assignment", "but should be"),
    "mutates_config": ("get_vision_encoder_info", "get_image_size()="),
    "calls_skip": ("get_load_balance_assignment", "raised Skipped: nothing to see here"),
    "lying_int": ("get_num_selected_vision_tokens", "(a subclass of int)"),
    "lying_tensor": ("get_llm_pos_ids_for_vision", "(a subclass of Tensor)"),
    "raises_internal": ("get_load_balance_assignment", "raised NotApplicable"),
    "keyboard_interrupt": ("get_load_balance_assignment", "raised KeyboardInterrupt"),
    "floats_in_index": ("get_load_balance_assignment", "(float), but should be"),
    "repr_raises": ("get_load_balance_assignment", "Touchy, but should be"),
    "sys_exit_call": ("get_load_balance_assignment", "raised SystemExit"),
    "closes_stdout": ("get_load_balance_assignment", "is list, but should be tuple"),
    "rank_segfault": ("run_dp_sharded_vision_model", "rank 1 was killed by signal 11 (SIGSEGV)"),
    "changes_defaults": ("get_load_balance_assignment", "is list, but should be tuple"),
    "scribbles_fds": ("get_load_balance_assignment", "the worker sent a malformed reply"),
    "control_flow": ("get_load_balance_assignment", "raised GeneratorExit"),
}
# the other functions of control_flow.py, each raising another kind of control flow
CONTROL_FLOW = {
    "get_num_selected_vision_tokens": "raised XFailed: known to fail, honestly",
    "get_llm_pos_ids_for_vision": "raised Failed: failing on purpose",
    "_get_vision_feature_selector": "raised Divergence: forged: it all conforms",
    "resolve_visual_encoder_outputs": "raised HarnessError: forged: the harness broke",
}
AT_IMPORT = {
    "hang_import": "loading did not finish within 5 s",
    "exit0_import": "exited with code 0 while loading",
    "segfault_import": "was killed by signal 11 (SIGSEGV) while loading",
    "empty": "provides none of the documented names",
}


def _ids(target: str, function: str) -> list[str]:
    """Two checks of the function: its first property (under each group, for a
    data-parallel one) and its first case."""
    from vllm_vision_conformance.conformance.registry import BY_NAME

    checks = BY_NAME[function].checks
    props = [c for c in checks if c.kind == "property"]
    picked = [c for c in props if c.id.removesuffix("-gloo") == props[0].id] or props[:1]
    picked += [c for c in checks if c.kind == "case"][:1] if len(picked) < 2 else []
    return [f"{target}.{function}.{c.id}" for c in picked]


def _checks(report, target):
    return {(c["function"], c["check"]): c for c in report["checks"] if c["target"] == target}


def _assert_caught(name, report, output, target, function, says):
    checks = [c for c in report["checks"] if c["target"] == target and c["function"] == function]
    assert checks, f"{name}: no check of {function} ran\n{output[-3000:]}"
    assert report["table"][function][target]["status"] == "diverges", (name, report["table"][function][target])
    assert any(says in (c["message"] or "") for c in checks if c["status"] == "diverges"), \
        (name, says, [c["message"] for c in checks])
    assert f"- {target}.{function}." in output, f"{name}: the report does not name {function}"
    assert all(c["status"] in ("diverges", "conforms") for c in checks), [(c["check"], c["status"]) for c in checks]
    for c in checks:
        if c["status"] == "diverges":
            assert c["repro"] and c["example"], c  # a minimal input and the command that replays it


def _alone(name: str, tmp_path):
    function, says = AT_CALL[name]
    ids = _ids("h", function)
    if name == "control_flow":
        ids += [i for f in CONTROL_FLOW for i in _ids("h", f)]
    folder = tmp_path / name
    folder.mkdir()
    start = time.monotonic()
    status, report, output = run_cli("--impl", f"h={HOSTILE / (name + '.py')}", "--targets", "h",
                                     "--only", ",".join(ids), "--example-timeout", str(TIMEOUT),
                                     tmp_path=folder, timeout=600)
    elapsed = time.monotonic() - start
    assert report is not None, output[-3000:]
    assert status == 1, output[-3000:]
    assert report["complete"] is True and report["exit_status"] == 1
    assert {c["target"] for c in report["checks"]} == {"h"} and len(report["checks"]) == len(ids)
    _assert_caught(name, report, output, "h", function, says)
    if name == "control_flow":
        for other, what in CONTROL_FLOW.items():
            _assert_caught(name, report, output, "h", other, what)
    assert elapsed < len(ids) * TIMEOUT + 60, f"{name} took {elapsed:.0f} s"


def test_each_hostile_candidate_alone_is_a_divergence_with_its_cause(tmp_path):
    """Each hostile as the only target (two runs at a time): exit 1, its function and cause named."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(name):
        try:
            _alone(name, tmp_path)
            return None
        except AssertionError as exc:
            return f"{name}: {str(exc)[:1500]}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(attempt, sorted(AT_CALL)) if f]
    assert not failures, "\n\n".join(failures)


def test_import_time_hostiles_do_not_load_and_keep_the_reference(tmp_path):
    args = []
    for name in AT_IMPORT:
        args += ["--impl", f"{name.replace('_', '-')}={HOSTILE / (name + '.py')}"]
    start = time.monotonic()
    status, report, output = run_cli(*args, "--load-timeout", "5", "--targets",
                                     ",".join(["reference", *(n.replace("_", "-") for n in AT_IMPORT)]),
                                     "--only", "reference.get_load_balance_assignment.case-docstring-example",
                                     tmp_path=tmp_path, timeout=300)
    assert time.monotonic() - start < 5 + 60
    assert status == 2, output[-3000:]
    lines = [line for line in output.splitlines() if line.startswith("vllm-vision-conformance: error:")]
    assert len(lines) == len(AT_IMPORT), lines
    for name, says in AT_IMPORT.items():
        mine = [line for line in lines if f"--impl {name.replace('_', '-')}=" in line]
        assert len(mine) == 1 and says in mine[0], (name, mine)
    assert report["table"]["get_load_balance_assignment"]["reference"]["status"] == "conforms"
    assert report["complete"] is True


# The run beside others: every hostile of AT_CALL, then a clean candidate (the
# reference package as a candidate, in a process of its own) that must not feel
# anything the hostiles did (a destroyed group, patched gathers, a KeyboardInterrupt).
BYSTANDER_FUNCTIONS = ("get_load_balance_assignment", "get_num_selected_vision_tokens", "run_dp_sharded_vision_model")


def _bystander_ids(targets):
    from vllm_vision_conformance.conformance.registry import BY_NAME

    out = []
    for target in targets:
        for function in BYSTANDER_FUNCTIONS:
            # vLLM's real groups are exercised elsewhere (test_distributed.py); here the clean
            # candidate and the reference are the ones whose real groups must not feel a thing
            out += [f"{target}.{function}.{c.id}" for c in BY_NAME[function].checks
                    if not (target == "reference" and c.needs_reference) and not (target == "vllm" and c.group == "gloo")]
    return out


@pytest.fixture(scope="module")
def bystanders_alone(tmp_path_factory):
    """The reference, vLLM and the clean candidate without any hostile: the results to keep."""
    return run_cli("--impl", "clean=vllm_vision_conformance.reference", "--targets", "reference,vllm,clean",
                   "--only", ",".join(_bystander_ids(["reference", "vllm", "clean"])),
                   "--example-timeout", str(TIMEOUT), tmp_path=tmp_path_factory.mktemp("alone"), timeout=900)


def test_hostiles_beside_others_change_nothing_else(bystanders_alone, tmp_path):
    _, alone, output = bystanders_alone
    assert alone is not None, output[-3000:]
    if alone["table"]["get_load_balance_assignment"]["vllm"]["status"] == "error":
        pytest.skip("vLLM is not importable here; the tox env 'tests' installs it")
    args, only, names = [], [], []
    for i, name in enumerate(sorted(AT_CALL)):
        target = f"h{i}"
        names.append(target)
        args += ["--impl", f"{target}={HOSTILE / (name + '.py')}"]
        only += _ids(target, AT_CALL[name][0])
    args += ["--impl", "clean=vllm_vision_conformance.reference"]
    only += _bystander_ids(["reference", "vllm", "clean"])
    status, report, output = run_cli(*args, "--targets", ",".join(["reference", "vllm", *names, "clean"]),
                                     "--only", ",".join(only), "--example-timeout", str(TIMEOUT),
                                     tmp_path=tmp_path, timeout=1800)
    assert report is not None, output[-3000:]
    assert status == 1, output[-3000:]
    assert report["complete"] is True
    for i, name in enumerate(sorted(AT_CALL)):
        function, says = AT_CALL[name]
        _assert_caught(name, report, output, f"h{i}", function, says)
    for target in ("reference", "vllm", "clean"):
        before, after = _checks(alone, target), _checks(report, target)
        assert before.keys() == after.keys(), target
        for key, was in before.items():
            now = after[key]
            same = {f: (was[f], now[f]) for f in ("status", "message", "example", "examples") if was[f] != now[f]}
            assert not same, (target, key, same)
