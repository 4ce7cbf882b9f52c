"""The stored input corpus (conformance/corpus.py, conformance/corpus/*.pickle): the files
load and cover every check of every function; answers are short and canonical; the
matrix's "what changed between releases" view from hand-made reports (no vLLM needed).

The stored inputs do not follow the strategies on purpose (stored: the same inputs on
every release until someone regenerates them), so nothing here fails when a strategy
changes; what fails is a check without stored inputs, or an input that no longer loads.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from pathlib import Path

import pytest
import torch

from vllm_vision_conformance.conformance import corpus, matrix, results
from vllm_vision_conformance.conformance.plain import EnumValue, Foreign, Outcome, Raised
from vllm_vision_conformance.conformance.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.name)
def test_the_stored_corpus_loads_and_covers_every_check(spec):
    stored = corpus.load(spec.name)
    assert stored is not None, f"no {corpus.path_of(spec.name)}; write it: {corpus.COMMAND}"
    assert stored["format"] == corpus.FORMAT and stored["command"].startswith(corpus.COMMAND)
    ids = [e["id"] for e in stored["inputs"]]
    assert len(ids) == len(set(ids)), "input ids are not unique"
    by_check: dict[str, list] = {}
    for entry in stored["inputs"]:
        by_check.setdefault(entry["check"], []).append(entry)
        corpus.load_input(entry["data"])  # every input loads here (and its call is shown)
        assert entry["call"].startswith(spec.name + "(")
    for check in spec.checks:
        if check.group == "gloo":  # real-group twins reuse the simulated twin's inputs
            assert check.id not in by_check
            continue
        mine = by_check.get(check.id, [])
        assert mine, f"{spec.name}.{check.id} has no stored input; regenerate: {corpus.COMMAND}"
        if check.kind == "property":
            labels = {e["id"].split("/", 1)[1] for e in mine}
            assert {f"edge-{i}" for i in range(len(check.examples))} <= labels, f"{check.id}: an edge is missing"
            assert any(label.startswith("draw-") for label in labels), f"{check.id}: no draw stored"
    unknown = set(by_check) - {c.id for c in spec.checks}
    assert not unknown, f"stored inputs of checks that no longer exist: {sorted(unknown)}; regenerate"


def test_the_corpus_is_small_and_packaged():
    total = sum(os.path.getsize(corpus.path_of(spec.name)) for spec in REGISTRY)
    assert total < 600_000, f"the stored corpus is {total} bytes"
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "corpus/*.pickle" in data["vllm_vision_conformance.conformance"]


def test_the_grid_cases_store_one_labelled_point_per_answer():
    from vllm_vision_conformance.conformance.records import backend

    stored = corpus.load("get_vit_attn_backend")
    for entry in stored["inputs"]:
        if entry["check"] in ("case-cuda-grid", "case-cuda-grid-unknown-capability"):
            value = corpus.load_input(entry["data"])
            assert len(entry["points"]) == len(backend._grid_points(value["known"])) > 10
            assert all(p.startswith("get_vit_attn_backend(facts=PlatformFacts('cuda'") for p in entry["points"])


def test_inputs_survive_their_encoding():
    from types import SimpleNamespace

    from transformers import CLIPVisionConfig

    value = {"t": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3), "d": torch.float16,
             "hf": SimpleNamespace(vision_config=CLIPVisionConfig(image_size=336, patch_size=14))}
    back = corpus.load_input(corpus.dump_input(value))
    assert torch.equal(back["t"], value["t"]) and back["t"].dtype == torch.bfloat16 and back["d"] is torch.float16
    assert (back["hf"].vision_config.image_size, back["hf"].vision_config.patch_size) == (336, 14)
    # the config is stored by class name and changed fields only (transformers differs between the envs)
    assert b"transformers_version" not in corpus.dump_input(value["hf"])


def test_answers_are_short_and_canonical():
    raised = Outcome(exc=Raised("builtins.ValueError", ("builtins.ValueError", "builtins.Exception"), "no: 0x7f12"))
    assert corpus.render(raised) == ("raised ValueError", "raised ValueError")
    enum = Outcome(value=EnumValue("vllm.AttentionBackendEnum", "FLASH_ATTN", "x"))
    assert corpus.render({"got": enum, "direct": enum}) == ("FLASH_ATTN", "FLASH_ATTN")  # the views agree
    assert corpus.render({"got": enum, "direct": None}) == ("FLASH_ATTN", "FLASH_ATTN")
    assert corpus.render(Outcome(value=576)) == ("576", "int")
    assert corpus.render({"mismatch": "a collective mismatch"}) == ("{mismatch: 'a collective mismatch'}",
                                                                   "{mismatch: str}")
    a, kind = corpus.render(Outcome(value=torch.zeros(2, 3)))
    b, _ = corpus.render(Outcome(value=torch.ones(2, 3)))
    assert a.startswith("tensor float32[2, 3] #") and kind == "tensor float32" and a != b
    assert corpus.render(Outcome(value=Foreign("an object of type m.Yes (a subclass of int)")))[1] == \
        "an object of another type"
    long, _ = corpus.render(Outcome(value=list(range(500))))
    assert len(long) <= corpus.MAX_ANSWER and "#" in long
    assert corpus.canonical_fault("the worker process exited with code 3 during the call (last output: x)") == \
        "the worker process exited with code 3 during the call"


# ------------------------------------------------------------------ the view

FUNCTION = "get_load_balance_assignment"


def _report(release, answers, digest=None, absent=False):
    digest = digest or corpus.load(FUNCTION)["hash"]
    data = {"answers": answers} if not absent else {"absent": True}
    return {"tool": "vllm-vision-conformance", "schema": results.SCHEMA, "exit_status": 0, "complete": True,
            "targets": [{"name": "vllm", "kind": "vllm", "spec": "vllm", "release": release}],
            "table": {FUNCTION: {"vllm": {"status": "conforms", "detail": ""}}}, "checks": [],
            "corpus": {"format": corpus.FORMAT, "functions": {FUNCTION: digest},
                       "targets": {"vllm": {FUNCTION: data}}}}


def _answers():
    stored = corpus.load(FUNCTION)
    return {e["id"]: ["([0], [1], [5])", "([int])"] for e in stored["inputs"]}


def test_one_changed_answer_is_exactly_that_change():
    old = _answers()
    new = copy.deepcopy(old)
    new["property-agrees/edge-3"] = ["raised ValueError", "raised ValueError"]
    new["case-no-images/case"] = ["([], [0, 0], [0, 0])", "([], [int])"]
    rows = [matrix.row_from_report(_report("0.27.0", new)), matrix.row_from_report(_report("0.11.2", old))]
    m = matrix.build(rows)
    (pair,) = m["changes"][FUNCTION]["pairs"]
    assert (pair["from"], pair["to"], pair["compared"], pair["changed"]) == ("0.11.2", "0.27.0", True, 2)
    kinds = {k["kind"]: k for k in pair["kinds"]}
    assert set(kinds) == {"([int]) -> raised ValueError", "([int]) -> ([], [int])"}
    assert kinds["([int]) -> raised ValueError"]["example"] == \
        "get_load_balance_assignment(sizes=[7, 7, 7, 7], num_gpus=3): ([0], [1], [5]) in 0.11.2, " \
        "raised ValueError in 0.27.0"
    md = matrix.render_markdown(m)
    assert "### `get_load_balance_assignment`" in md and "- 0.11.2 -> 0.27.0: 2 of" in md
    assert "get_load_balance_assignment(sizes=[7, 7, 7, 7], num_gpus=3)" in matrix.render_html(m)
    assert json.loads(json.dumps(m))["changes"][FUNCTION]["pairs"][0]["changed"] == 2


def test_the_smallest_example_of_a_kind_is_kept():
    old = _answers()
    new = {k: ["raised ValueError", "raised ValueError"] for k in old}
    m = matrix.build([matrix.row_from_report(_report("0.11.2", old)), matrix.row_from_report(_report("0.13.0", new))])
    (kind,) = m["changes"][FUNCTION]["pairs"][0]["kinds"]
    assert kind["count"] == len(old)
    calls = corpus.calls_of(FUNCTION, None)
    shortest = min((f"{calls[k]}: ([0], [1], [5]) in 0.11.2, raised ValueError in 0.13.0" for k in old),
                   key=lambda s: (len(s), s))
    assert kind["example"] == shortest


def test_releases_with_different_corpora_are_not_compared_and_no_change_is_said():
    same = _answers()
    rows = [matrix.row_from_report(_report("0.11.2", same)), matrix.row_from_report(_report("0.13.0", same)),
            matrix.row_from_report(_report("0.14.1", same, digest="0" * 16))]
    pairs = matrix.build(rows)["changes"][FUNCTION]["pairs"]
    assert pairs[0]["compared"] and pairs[0]["changed"] == 0
    assert not pairs[1]["compared"] and "different corpus files" in pairs[1]["why"]
    md = matrix.render_markdown(matrix.build(rows))
    assert "0.11.2 -> 0.13.0: no change" in md and "0.13.0 -> 0.14.1: not compared" in md


def test_an_old_report_without_corpus_answers_still_renders():
    from .test_matrix import MID, NEW, OLD

    for data in (OLD, MID, NEW):
        assert "corpus" not in data
        assert results.Report.from_dict(data).corpus == {}
    m = matrix.build([matrix.row_from_report(r) for r in (OLD, MID, NEW)])
    assert m["changes"] == {}
    md, page = matrix.render_markdown(m), matrix.render_html(m)
    assert "What changed between releases" not in md and "</html>" in page
    # and a report with answers beside old ones: the old rows are left out of the comparison
    rows = [matrix.row_from_report(r) for r in (OLD, MID)] + [matrix.row_from_report(_report("0.33.0", _answers()))]
    assert matrix.build(rows)["changes"][FUNCTION]["pairs"] == []
    assert "fewer than two releases" in matrix.render_markdown(matrix.build(rows))


def test_a_report_keeps_its_corpus_section_through_save_and_load(tmp_path):
    data = _report("0.33.0", _answers())
    report = results.Report.from_dict(data)
    path = tmp_path / "r.json"
    report.save(str(path))
    assert results.load(str(path)).corpus == data["corpus"]


def test_the_draws_come_from_the_suites_own_property_function():
    """corpus.first_draws gets the suite's draws by rebuilding session._run's ``prop``
    (Hypothesis seeds a derandomized run from its source); a change there must fail here."""
    import inspect

    from hypothesis.internal.reflection import function_digest

    from vllm_vision_conformance.conformance import session

    prop = corpus.property_of(object(), "f", "c")
    assert inspect.getsource(prop) in inspect.getsource(session._run)
    assert function_digest(prop) == function_digest(corpus.property_of(None, "f", "c"))
    assert function_digest(prop) != function_digest(corpus.property_of(None, "f", "d"))


def test_the_view_reads_the_stored_calls_without_torch():
    """The matrix renders where torch is not installed (vllm-vision-matrix beside tox): the
    examples must still be the inputs as calls, not bare input ids."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch fails
            "from vllm_vision_conformance.conformance import corpus\n"
            "c = corpus.load('get_vit_attn_backend')\n"
            "calls = corpus.calls_of('get_vit_attn_backend', c['hash'])\n"
            "print(len(calls), sum(v.startswith('get_vit_attn_backend(') for v in calls.values()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr[-2000:]
    total, as_calls = map(int, out.stdout.split())
    assert total > 300 and as_calls == total, out.stdout
