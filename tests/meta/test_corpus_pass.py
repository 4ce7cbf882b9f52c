"""The corpus pass (conformance/corpus.py) through the real machinery: a candidate answers
every stored input in its own worker; one changed answer is exactly one change in the
matrix's view; a crash and a hang on two inputs are those inputs' answers and lose
none of the others; two pytest-xdist workers give the serial answers.

Each run checks one case and answers the whole corpus (``--corpus on``): about 15 s."""

from __future__ import annotations

import pytest

from vllm_vision_conformance.conformance import matrix

from ..conftest import CANDIDATES, run_cli

FUNCTION = "get_load_balance_assignment"
ONE = f"good.{FUNCTION}.case-no-images"


def _run(tmp_path, spec, *extra):
    status, report, output = run_cli("--impl", f"good={spec}", "--targets", "good", "--only", ONE, "--corpus", "on",
                                     *extra, tmp_path=tmp_path)
    assert report is not None and report["complete"], output[-3000:]
    return status, report, output


def _answers(report) -> dict:
    return report["corpus"]["targets"]["good"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    status, report, output = _run(tmp_path_factory.mktemp("clean"), "vllm_vision_conformance.reference")
    assert status == 0, output[-3000:]
    return report


def _row(report, release):
    row = matrix.row_from_report(report, target="good")
    row["release"] = release
    return row


def test_the_candidate_answers_every_stored_input(clean):
    from vllm_vision_conformance.conformance import corpus
    from vllm_vision_conformance.conformance.registry import REGISTRY

    answers = _answers(clean)
    assert set(clean["corpus"]["functions"]) == {spec.name for spec in REGISTRY}
    for spec in REGISTRY:
        stored = corpus.load(spec.name)
        assert clean["corpus"]["functions"][spec.name] == stored["hash"]
        got = answers[spec.name]["answers"]
        for entry in stored["inputs"]:
            keys = [f"{entry['id']}@{i}" for i in range(len(entry["points"]))] if entry.get("points") else [entry["id"]]
            for key in keys:
                assert key in got, f"{spec.name}: no answer for {key}"
                assert not got[key][0].startswith(("harness error", "input does not load", "fault")), (key, got[key])


def test_one_changed_answer_is_exactly_that_change_in_the_view(clean, tmp_path):
    status, changed, output = _run(tmp_path, CANDIDATES / "one_answer.py")
    assert status == 0, output[-3000:]
    view = matrix.build([_row(clean, "0.1.0"), _row(changed, "0.2.0")])["changes"]
    for function, data in view.items():
        (pair,) = data["pairs"]
        assert pair["compared"], pair
        if function != FUNCTION:
            assert pair["changed"] == 0, (function, pair["kinds"])
    (pair,) = view[FUNCTION]["pairs"]
    assert pair["changed"] == 1, pair
    (kind,) = pair["kinds"]
    assert kind["input"] == "property-agrees/edge-3"
    assert kind["example"] == (f"{FUNCTION}(sizes=[7, 7, 7, 7], num_gpus=3): ([0, 3, 1, 2], [2, 1, 1], [14, 7, 7]) "
                               "in 0.1.0, ([0, 1, 2, 3], [4, 0, 0], [28, 0, 0]) in 0.2.0")


def test_a_crash_and_a_hang_are_their_inputs_answers_and_lose_no_other(clean, tmp_path):
    status, faulty, output = _run(tmp_path, CANDIDATES / "corpus_faults.py", "--example-timeout", "10")
    assert status == 0, output[-3000:]
    want, got = _answers(clean), _answers(faulty)
    assert got[FUNCTION]["answers"].pop("property-agrees/edge-3")[0] == \
        "fault: the worker process exited with code 3 during the call"
    assert got[FUNCTION]["answers"].pop("property-agrees/edge-1")[0] == \
        f"fault: good.{FUNCTION} did not return within 10 s (its process was killed)"
    for function in want:
        mine = dict(want[function].get("answers", {}))
        if function == FUNCTION:
            del mine["property-agrees/edge-3"], mine["property-agrees/edge-1"]
        assert got[function].get("answers", {}) == mine, function


def test_two_workers_give_the_serial_answers(clean, tmp_path):
    status, report, output = _run(tmp_path, "vllm_vision_conformance.reference", "-n", "2")
    assert status == 0, output[-3000:]
    strip = lambda r: {f: d.get("answers") for f, d in _answers(r).items()}  # noqa: E731 - not the timings
    assert strip(report) == strip(clean)
    assert report["corpus"]["functions"] == clean["corpus"]["functions"]


def test_a_selected_run_skips_the_pass_unless_asked(tmp_path):
    status, report, output = run_cli("--targets", "reference", "--only", f"reference.{FUNCTION}.case-no-images",
                                     tmp_path=tmp_path)
    assert status == 0 and "corpus" not in report, output[-3000:]
    assert "stored corpus:" not in output
