"""The report's cells (conformance/report.py): one function on one target, computed from
its checks' results (built by hand with conformance/results.py); the short cells and
the legend; the grid, the text and the JSON table."""

from __future__ import annotations

import inspect
import types

import pytest

from vllm_vision_conformance.conformance import report
from vllm_vision_conformance.conformance.registry import REGISTRY
from vllm_vision_conformance.conformance.report import LEGEND, SHORT, table_lines
from vllm_vision_conformance.conformance.results import CELL_EXPECTED, CheckResult, Status
from vllm_vision_conformance.conformance.targets import Target

S = Status


def r(check: str, status: Status, kind: str = "case", examples: int = 0, message: str = "", **kw) -> CheckResult:
    return CheckResult("t", "f", check, kind, status, message=message, examples=examples, **kw)


def test_no_results_is_a_dash():
    assert report.cell([]) == ("-", "")


PRECEDENCE = [
    # (statuses present, the cell's word, the checks named)
    ([S.CONFORMS, S.EXPECTED, S.NOT_RUN, S.ERROR, S.DIVERGES, S.SKIPPED], "diverges", "c4"),
    ([S.CONFORMS, S.EXPECTED, S.NOT_RUN, S.ERROR, S.SKIPPED], "error", "c3"),
    ([S.CONFORMS, S.EXPECTED, S.NOT_RUN, S.SKIPPED], "not run", "c2"),
    ([S.CONFORMS, S.EXPECTED, S.SKIPPED], CELL_EXPECTED, "c1"),
    ([S.NOT_PROVIDED, S.EXPECTED], CELL_EXPECTED, "c1"),
]


@pytest.mark.parametrize("statuses, word, named", PRECEDENCE)
def test_diverges_beats_error_beats_not_run_beats_expected_beats_conforms(statuses, word, named):
    results = [r(f"c{i}", s) for i, s in enumerate(statuses)]
    assert report.cell(results) == (word, named)


def test_the_detail_names_every_check_of_the_winning_status_in_order():
    results = [r("a", S.DIVERGES), r("b", S.CONFORMS), r("c", S.DIVERGES), r("d", S.EXPECTED)]
    assert report.cell(results) == ("diverges", "a, c")
    assert report.cell([r("x", S.EXPECTED), r("y", S.EXPECTED)]) == ("expected divergence", "x, y")
    assert report.cell([r("x", S.ERROR), r("y", S.NOT_RUN), r("z", S.ERROR)]) == ("error", "x, z")


def test_not_provided_and_skipped():
    assert report.cell([r("a", S.NOT_PROVIDED, message="t does not provide f")] * 3) == ("not provided", "")
    assert report.cell([r("a", S.SKIPPED, message="real process groups need the fork start method"),
                 r("b", S.SKIPPED, message="other")]) == ("skipped", "real process groups need the fork start method")


def test_conforms_counts_properties_and_their_examples_or_cases():
    props = [r("p1", S.CONFORMS, "property", 200), r("p2", S.CONFORMS, "property", 150)]
    assert report.cell(props) == ("conforms", "2 prop/350 ex")
    assert report.cell(props + [r("c", S.CONFORMS)]) == ("conforms", "2 prop/350 ex")
    assert report.cell([r("c1", S.CONFORMS), r("c2", S.CONFORMS)]) == ("conforms", "2 case")
    assert report.cell([r("c1", S.CONFORMS), r("c2", S.SKIPPED, message="why")]) == ("conforms", "2 case, 1 skipped")
    assert report.cell(props + [r("c2", S.SKIPPED), r("c3", S.SKIPPED)]) == ("conforms", "2 prop/350 ex, 2 skipped")


def test_a_skipped_propertys_examples_are_not_counted_with_the_ones_that_ran():
    results = [r("p1", S.CONFORMS, "property", 200),
               r("p2", S.SKIPPED, "property", 200, message="no drawn input is expressible in this release's form")]
    assert report.cell(results) == ("conforms", "1 prop/200 ex, 1 skipped")


def test_mutation_a_cell_with_the_precedence_reversed_is_noticed(monkeypatch):
    """Mutation: cell() with its order of bad statuses reversed; the precedence test notices."""
    source = inspect.getsource(report.cell)
    order = "(Status.DIVERGES, Status.ERROR, Status.NOT_RUN)"
    assert order in source
    namespace = dict(vars(report))
    exec(source.replace(order, "(Status.NOT_RUN, Status.ERROR, Status.DIVERGES)"), namespace)
    monkeypatch.setattr(report, "cell", namespace["cell"])
    with pytest.raises(AssertionError):
        test_diverges_beats_error_beats_not_run_beats_expected_beats_conforms(*PRECEDENCE[0])


def test_mutation_a_cell_word_changed_in_one_place_only_is_noticed(monkeypatch):
    """Mutation: the expected cell's word changed in report's copy only: the test names the word itself."""
    monkeypatch.setattr(report, "CELL_EXPECTED", "expected")
    assert report.cell([r("x", S.EXPECTED)])[0] == "expected"
    with pytest.raises(AssertionError):
        test_the_detail_names_every_check_of_the_winning_status_in_order()


# ---- short cells and the legend -----------------------------------------------------------

def test_short_cells_and_legend():
    assert SHORT == {"conforms": "ok", "expected divergence": "expected", "diverges": "DIVERGES",
                     "not provided": "n/a", "error": "ERROR", "not run": "not run"}
    assert LEGEND == "(ok: conforms; expected: a recorded divergence; n/a: not provided)"
    for word, short in SHORT.items():
        assert len(short) <= len(word)
    for abbreviation in ("ok", "expected", "n/a"):
        assert f"{abbreviation}: " in LEGEND
    # every word a cell can be has a short form or is already short
    words = {s.value for s in Status if s is not Status.EXPECTED} | {CELL_EXPECTED, "-"}
    assert all(w in SHORT or len(w) <= len("skipped") for w in words)


def test_the_table_falls_back_to_short_cells_then_to_blocks():
    functions = ["get_load_balance_assignment", "get_vit_attn_backend"]
    cells = ["conforms", "not provided", "expected divergence", "error"]
    names = ["reference", "vllm", "candidate-a", "candidate-b"]
    full = table_lines(names, [[f, *cells] for f in functions], 200)
    assert full[0].split() == ["function", *names] and set(full[1]) == {"-", " "}
    assert "expected divergence" in full[2] and LEGEND not in full
    short = table_lines(names, [[f, *cells] for f in functions], 80)
    assert short[-1] == LEGEND and short[2].split() == [functions[0], "ok", "n/a", "expected", "ERROR"]
    assert max(map(len, short)) <= 80 < max(map(len, full))
    narrow = table_lines(names, [[f, *cells] for f in functions], 40)
    assert narrow[-1] == LEGEND and "" in narrow  # blocks, separated by an empty line
    assert max(map(len, narrow[:-1])) <= 40
    blocks = [b for b in "\n".join(narrow[:-1]).split("\n\n")]
    assert len(blocks) > 1 and all(b.startswith("function") for b in blocks)
    assert sorted(n for b in blocks for n in b.splitlines()[0].split()[1:]) == sorted(names)


# ---- the grid, the text and the JSON table -------------------------------------------------

def _session(results, checked, **kw):
    return types.SimpleNamespace(results=results, checked=checked, requested=kw.get("requested", []),
                                 bad_input=kw.get("bad_input", []), incomplete=kw.get("incomplete", []),
                                 started=0.0, stale_entries=lambda: [])


class _Config:
    _vvc_profile = "vvc-ci"

    def __init__(self, **options):
        self.options = options

    def getoption(self, name, default=None):
        return self.options.get(name, default)


def test_the_grid_has_a_row_per_documented_name_and_a_load_error_is_an_error_cell():
    first, second = REGISTRY[0].name, REGISTRY[1].name
    ok = Target("good", "candidate", "m")
    bad = Target("bad", "candidate", "x.py", load_error="--impl bad=x.py: file not found")
    results = [CheckResult("good", first, "c1", "case", S.CONFORMS), CheckResult("good", first, "c2", "case", S.DIVERGES),
               CheckResult("other", second, "c", "case", S.DIVERGES)]
    names, rows = report._grid(_session(results, [ok, bad]))
    assert names == ["good", "bad"] and [row[0] for row in rows] == [s.name for s in REGISTRY]
    assert rows[0][1] == ("diverges", "c2") and rows[1][1] == ("-", "")  # another target's result is not ours
    assert all(row[2] == ("error", "bad input: does not load") for row in rows)


def test_the_text_report_lists_divergences_errors_and_expected_ones():
    first = REGISTRY[0].name
    target = Target("vllm", "vllm", "vllm.model_executor.models.vision", release="0.33.0")
    results = [CheckResult("vllm", first, "d", "case", S.DIVERGES, message="returned 1, but should return 2",
                           example="f(x=1)", repro="vllm-vision-conformance --only vllm.f.d"),
               CheckResult("vllm", first, "e", "case", S.ERROR, message="harness broke", example="f(x=2)"),
               CheckResult("vllm", first, "x", "case", S.EXPECTED, message="known", reason="issue 7")]
    sess = _session(results, [target], incomplete=["the run was interrupted"])
    text = report.render_text(sess, _Config(vvc_strict_expectations=False), 1)
    lines = text.splitlines()
    assert lines[0] == "target vllm: vllm.model_executor.models.vision (vLLM 0.33.0): checked"
    assert lines[1].startswith("hypothesis profile: vvc-ci; torch ")
    assert "1 divergence(s):" in lines
    i = lines.index("1 divergence(s):")
    assert lines[i + 1:i + 4] == [f"- vllm.{first}.d: returned 1, but should return 2", "    minimal input: f(x=1)",
                                  "    replay: vllm-vision-conformance --only vllm.f.d"]
    assert f"- ERROR vllm.{first}.e: harness broke" in lines and "    input: f(x=2)" in lines
    assert "1 expected divergence(s) (recorded with a reason):" in lines and "    reason: issue 7" in lines
    assert "- incomplete: the run was interrupted" in lines and lines[-1] == "exit status 1 (diverges)"
    quiet = report.render_text(sess, _Config(vvc_strict_expectations=False, vvc_quiet=True), None)
    assert "1 expected divergence(s), recorded with a reason (listed without -q)" in quiet
    assert "reason: issue 7" not in quiet and "exit status" not in quiet


def _pending_run():
    """A run of one target where one requested check ran and conformed, another never started."""
    spec = next(s for s in REGISTRY if len(s.checks) >= 2)
    other = next(s for s in REGISTRY if s is not spec)
    done, pending = spec.checks[0], spec.checks[1]
    results = [CheckResult("vllm", spec.name, done.id, done.kind, S.CONFORMS, examples=5)]
    sess = _session(results, [Target("vllm", "vllm", "m")],
                    requested=[f"vllm.{spec.name}.{done.id}", f"vllm.{spec.name}.{pending.id}"])
    return spec, other, done, pending, report.build(sess, _Config(), 3, complete=False)


def test_the_json_report_lists_the_checks_that_did_not_run():
    spec, other, done, pending, built = _pending_run()
    assert built.table[other.name]["vllm"] == {"status": "-", "detail": ""}
    assert [(c.check, c.status, c.kind) for c in built.checks] == [(done.id, S.CONFORMS, done.kind),
                                                                   (pending.id, S.NOT_RUN, pending.kind)]
    assert built.incomplete == ["1 requested check(s) did not run"] and built.exit_status == 3
    assert not built.complete and built.meta["hypothesis_profile"] == "vvc-ci"
    assert [t.name for t in built.targets] == ["vllm"]


def test_the_table_agrees_with_the_checks_that_did_not_run():
    spec, other, done, pending, built = _pending_run()
    assert built.table[spec.name]["vllm"] == {"status": "not run", "detail": pending.id}
