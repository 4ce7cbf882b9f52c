"""Expectations by release range: the line syntax, the twin scope, per-release
selection, stale entries per release and per twin, and the converter that made
conformance/expectations/vllm.txt from the per-release files."""

import io

import pytest

from vllm_vision_conformance.conformance import convert_expectations as conv
from vllm_vision_conformance.conformance.expectations import (BadExpectations, builtin_path, default_for_release,
                                                              dp_twins, load, parse, parse_file)
from vllm_vision_conformance.conformance.report import _half, _where

TWINS = frozenset({("f", "x"), ("f", "y")})  # f's checks x and y also run as x-gloo, y-gloo


def keys(exp):
    return sorted((e.function, e.check, e.text) for e in exp.all())


# ---- the line syntax ----------------------------------------------------------------

RANGED = """\
# reason a
>=0.11.1,<0.28 g c1 returned -1
# reason b
==0.27.0 g c2
# reason c
g c3 raised
"""


@pytest.mark.parametrize("release, held", [
    ("0.10.2", ["c3"]), ("0.11.1", ["c1", "c3"]), ("0.27.0", ["c1", "c2", "c3"]), ("0.28.0", ["c3"]),
    ("0.27.0+empty", ["c1", "c2", "c3"]),  # a local build is the release it names
    ("0.28.0.dev3", ["c3"]), ("0.28.0rc1", ["c3"]), ("0.27.0rc1", ["c1", "c2", "c3"]),  # the release it names
    ("0.27.1.dev12+gabc", ["c1", "c3"]),  # a checkout after 0.27.0 (setuptools-scm guesses the next patch)
    ("0.19.0", ["c1", "c3"]),  # an untested release: the entries whose ranges contain it
])
def test_an_entry_holds_for_the_releases_its_specifier_contains(release, held):
    exp = parse(RANGED, "x.txt", release, TWINS)
    assert [e.check for e in exp.all()] == held
    assert all(e.release == release for e in exp.all())


def test_an_entry_without_a_range_holds_for_every_release_and_the_old_format_still_reads():
    old = "# why\nf c returned -1\n\n# other\ng d\n"
    for release in ("0.10.2", "0.33.0", None):
        exp = parse(old, "x.txt", release, TWINS)
        assert keys(exp) == [("f", "c", "returned -1"), ("g", "d", "")]
        assert exp.lookup("f", "c", "it returned -1, but") is not None


def test_text_and_rule_keep_their_meaning_after_the_range():
    exp = parse("# r\n>=0.15 resolve_visual_encoder_outputs property-last-hs-proc-layers "
                "rule=last-entry-max-minus-one-or-minus-one\n# s\n>=0.1 g c   two words of text\n", "x", "0.33.0")
    rule, text = exp.all()
    assert rule.rule == "last-entry-max-minus-one-or-minus-one" and rule.text == ""
    assert text.text == "two words of text" and text.source == "x:4"


def test_a_file_with_ranges_needs_a_release():
    with pytest.raises(BadExpectations, match=r"x.txt:2: entries with a release range.*FILE@RELEASE|x.txt@RELEASE"):
        parse(RANGED, "x.txt", None, TWINS)


@pytest.mark.parametrize("line, says", [
    (">=0.11.1,<<0.28 g c", "x.txt:2: '>=0.11.1,<<0.28' is not a PEP 440 release range"),
    ("=0.27 g c", "is not a PEP 440 release range (accepted: specifiers such as"),
    (">=0.11.1, <0.28 g c", "x.txt:2: '<0.28' where FUNCTION belongs"),  # a space in the range
    ("scope=sim >=0.11 f x", "'>=0.11' where FUNCTION belongs"),  # the range comes first
    ("scope=both f x", "x.txt:2: unknown scope 'scope=both' (accepted: scope=sim, scope=gloo"),
    ("scope=gloo g c", "scope=gloo on g c, which does not run under both groups"),
    ("scope=sim f x-gloo", "x.txt:2: scope=sim on x-gloo, the gloo twin"),
    (">=0.11 g", "is not '[RELEASES] [scope=GROUP] FUNCTION CHECK [TEXT | rule=NAME]'"),
    (">=0.11 g property-p", "names no divergence"),
])
def test_bad_lines_are_one_clear_line_naming_file_and_line(line, says):
    with pytest.raises(BadExpectations) as info:
        parse_file(f"# why\n{line}\n", "x.txt", TWINS)
    message = str(info.value)
    assert says in message and "\n" not in message and message.startswith("x.txt:2: "), message


def test_an_entry_needs_its_reason_with_a_range_too():
    with pytest.raises(BadExpectations, match="x.txt:1: .* has no reason"):
        parse_file(">=0.11 g c\n", "x.txt", TWINS)


# ---- the twin scope ------------------------------------------------------------------

def test_an_unscoped_entry_covers_both_twins_each_on_its_own():
    exp = parse("# both\n>=0.1 f x collective mismatch\n", "x.txt", "0.2", TWINS)
    sim, gloo = exp.of("f", "x"), exp.of("f", "x-gloo")
    assert len(sim) == len(gloo) == 1 and sim[0] is not gloo[0]
    assert (sim[0].half, gloo[0].half) == ("sim", "gloo") and sim[0].source == gloo[0].source == "x.txt:2"
    sim[0].matched = True  # only the simulated twin diverged
    assert exp.stale() == gloo  # the gloo half is stale, named by the gloo check's id


@pytest.mark.parametrize("line, checks", [
    ("scope=sim f x T", ["x"]), ("scope=gloo f x T", ["x-gloo"]), ("f x-gloo T", ["x-gloo"]),
    ("scope=gloo f x-gloo T", ["x-gloo"]), ("f x T", ["x", "x-gloo"]), ("g x T", ["x"]),
])
def test_a_scope_limits_an_entry_to_one_twin(line, checks):
    assert [e.check for e in parse(f"# r\n{line}\n", "x", None, TWINS).all()] == checks


def test_an_old_file_with_its_twins_spelled_out_keeps_their_meaning():
    old = "# r\nf x raised StopIteration\nf x-gloo StopIteration\n"
    exp = parse(old, "x", None, TWINS)
    assert keys(exp) == [("f", "x", "raised StopIteration"), ("f", "x-gloo", "StopIteration")]
    assert [e.half for e in exp.all()] == ["", ""]


def test_the_registry_names_the_twins():
    twins = dp_twins()
    assert ("run_dp_sharded_mrope_vision_model", "property-parameterless-model") in twins
    assert ("run_dp_sharded_vision_model", "property-matches-unsharded") in twins
    assert not any(check.endswith("-gloo") for _, check in twins)
    assert ("get_load_balance_assignment", "error-zero-gpus") not in twins


# ---- loading ---------------------------------------------------------------------------

def test_shipped_names_select_the_releases_entries_for_any_target():
    exp = load("vllm-0.33.0")
    assert exp.release == "0.33.0" and exp.path.endswith("vllm.txt") and all(".txt:" in e.source for e in exp.all())
    assert exp.lookup("get_vision_encoder_info", "case-clip-indivisible", "raised AssertionError") is not None
    assert exp.of("run_dp_sharded_mrope_vision_model", "property-output-dtype-differs-gloo")  # a twin's half
    assert exp.of("get_llm_pos_ids_for_vision", "case-large-t-index") == []  # absent since 0.28.0
    assert load("vllm-0.27.0").of("get_llm_pos_ids_for_vision", "case-large-t-index")
    assert keys(load(default_for_release("0.33.0+empty"))) == keys(exp)
    assert keys(load("vllm-0.22.0")) == keys(load("vllm-0.21.0"))  # between two tested releases: the lower's
    assert keys(load("vllm-0.33")) == keys(exp)  # PEP 440: 0.33 is 0.33.0


def test_a_path_selects_by_the_release_given_or_the_targets(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(RANGED)
    assert [e.check for e in load(f"{path}@0.27.0").all()] == ["c1", "c2", "c3"]
    assert [e.check for e in load(str(path), "0.11.1").all()] == ["c1", "c3"]
    with pytest.raises(BadExpectations, match="target's release is not known"):
        load(str(path))
    with pytest.raises(BadExpectations, match="no release after '@'"):
        load(f"{path}@")
    with pytest.raises(BadExpectations, match="'0.27.x' is not a PEP 440 version"):
        load(f"{path}@0.27.x")


@pytest.mark.parametrize("spec, says", [
    ("vllm-0.33.x", "release '0.33.x' is not a PEP 440 version"),
    ("vlm-0.33.0", "no such file, and no shipped file of that name"),
    ("vllm", "no such file, and no shipped file of that name"),
    ("../vllm-0.33.0", "no such file"),
])
def test_bad_specs_are_refused(spec, says):
    with pytest.raises(BadExpectations, match=None) as info:
        load(spec)
    assert says in str(info.value)


def test_the_stale_line_names_file_line_release_and_twin():
    exp = parse("# both\n>=0.1 f x collective mismatch\n", "vllm.txt", "0.27.0", TWINS)
    gloo = exp.of("f", "x-gloo")[0]
    assert _where(gloo) == "vllm.txt:2, release 0.27.0"
    assert _half(gloo) == " (the gloo twin of an entry covering both groups; scope=sim if only the sim twin diverges)"
    plain = parse("# r\ng c\n", "mine.txt", None, TWINS).all()[0]
    assert (_where(plain), _half(plain)) == ("mine.txt:2", "")


def test_a_twin_that_did_not_run_is_not_stale_and_one_that_ran_is(cli, tmp_path):
    """An entry for both twins on a check the reference passes: under --dp-group sim only the
    simulated half ran, so only it is stale; with both groups both halves are, each named."""
    exp = tmp_path / "mine.txt"
    exp.write_text("# claimed, but the reference passes\n"
                   ">=0.1 run_dp_sharded_vision_model case-upstream-batch-1 no such text\n")
    only = "reference.run_dp_sharded_vision_model.case-upstream-batch-1"
    status, report, output = cli("--targets", "reference", "--expectations", f"reference={exp}@0.33.0",
                                 "--only", only, "--dp-group", "sim", "--strict-expectations")
    assert status == 1, output[-3000:]
    assert [(e["check"], e["release"]) for e in report["stale_expectations"]] == [("case-upstream-batch-1", "0.33.0")]
    assert f"STALE (strict: fails) expectation ({exp}:2, release 0.33.0)" in output
    status, report, output = cli("--targets", "reference", "--expectations", f"reference={exp}@0.33.0",
                                 "--only", f"{only},{only}-gloo")
    assert status == 0, output[-3000:]
    assert sorted(e["check"] for e in report["stale_expectations"]) == ["case-upstream-batch-1",
                                                                         "case-upstream-batch-1-gloo"]
    assert "case-upstream-batch-1-gloo (the gloo twin of an entry covering both groups; scope=sim if only the sim " \
        "twin diverges) matched no" in output


# ---- the converter ---------------------------------------------------------------------

OLD = {  # a reason runs on until a blank line, so the entries are apart
    "0.1.0": "# header, not a reason\n\n# ra\ng a returned\n\n# rc\ng c\n\n# rd\ng d\n\n"
             "# rt\nf x collective mismatch\nf x-gloo collective mismatch\n\n# rs\nf y raised\n",
    "0.2.0": "# ra\ng a returned\n\n# rb\ng b\n\n# rc\ng c\n\n"
             "# rt\nf x collective mismatch\nf x-gloo collective mismatch\n\n# rs\nf y raised\n",
    "0.3.0": "# ra\ng a returned\n\n# rd\ng d\n\n# re, first wording\ng e\n",
    "0.4.0": "# ra\ng a returned\n\n# re, second\n# wording\ng e\n\n# rs\nf y-gloo raised\n",
}


def _old_dir(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for release, text in OLD.items():
        (old / f"kind-{release}.txt").write_text(text)
    return old


def test_the_converter_merges_releases_and_twins_and_keeps_every_reason(tmp_path):
    old = _old_dir(tmp_path)
    text = conv.convert(str(old), TWINS)
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert sorted(entries) == sorted([
        ">=0.1.0 g a returned",  # every release, up to the newest: open upwards
        "==0.2.0 g b",  # a single release
        ">=0.1.0,<0.3.0 g c",  # consecutive: up to the next release not included
        "==0.1.0 g d", "==0.3.0 g d",  # not consecutive: one line a run
        "==0.3.0 g e", ">=0.4.0 g e",  # the same entry with two reasons: two entries
        ">=0.1.0,<0.3.0 f x collective mismatch",  # twins with the same text and reason: one, unscoped
        ">=0.1.0,<0.3.0 scope=sim f y raised",  # a twin without its partner: scoped
        ">=0.4.0 scope=gloo f y raised",
    ])
    assert "# re, second\n# wording\n>=0.4.0 g e" in text  # the reason's lines as written
    assert "# header, not a reason" not in text
    new = tmp_path / "kind.txt"
    new.write_text(text)
    out = io.StringIO()
    assert conv.check(str(old), str(new), TWINS, out)
    assert out.getvalue().splitlines()[0] == "0.1.0: same 6 entries"


def test_the_equivalence_check_sees_a_difference(tmp_path):
    old = _old_dir(tmp_path)
    new = tmp_path / "kind.txt"
    new.write_text(conv.convert(str(old), TWINS).replace(">=0.1.0,<0.3.0 g c", "==0.1.0 g c"))
    out = io.StringIO()
    assert not conv.check(str(old), str(new), TWINS, out)
    assert "0.2.0: DIFFERENT: only in the old file [('g', 'c', '', '', 'rc')]" in out.getvalue()


def test_the_shipped_file_is_the_converters_format():
    path = builtin_path("vllm")
    with open(path, encoding="utf-8") as handle:
        lines = parse_file(handle.read(), path).lines
    assert lines and all(line.releases is not None for line in lines)  # every entry says its releases
    assert not any(line.check.endswith("-gloo") for line in lines)  # twins by scope, not by id
