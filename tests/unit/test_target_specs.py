"""The target specs (conformance/targets.py and the session's --targets): how
``--impl NAME=SPEC`` is read (a file path, a dotted module, an entry point
``ep:NAME``), the reserved names, and each refusal's one line."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest

from vllm_vision_conformance.conformance import targets
from vllm_vision_conformance.conformance.targets import (ENTRY_POINT_GROUP, SPEC_HELP, VLLM_MODULE, BadSpec, LoadError,
                                                         Target, load_in_process, parse_impl, plan)

HELP = ("accepted: NAME=dotted.module, NAME=path/to/file.py or NAME=ep:ENTRY_POINT "
        "(an entry point in group 'vllm_vision_conformance.implementations')")


def test_the_help_text_and_group():
    assert SPEC_HELP == HELP and ENTRY_POINT_GROUP == "vllm_vision_conformance.implementations"


@pytest.mark.parametrize("value, name, spec", [
    ("mine=my_pkg.vision", "mine", "my_pkg.vision"),
    ("my-impl=path/to/file.py", "my-impl", "path/to/file.py"),
    ("_x2=ep:plugin", "_x2", "ep:plugin"),
    ("a=b=c", "a", "b=c"),  # only the first '=' splits
    ("A9_-z=file.py", "A9_-z", "file.py"),
])
def test_accepted_impl_values(value, name, spec):
    assert parse_impl(value) == (name, spec)


@pytest.mark.parametrize("value", ["noequals", "=spec", "name=", "="])
def test_an_impl_that_is_not_name_eq_spec(value):
    with pytest.raises(BadSpec) as info:
        parse_impl(value)
    assert str(info.value) == f"--impl {value!r} is not NAME=SPEC; {HELP}"


@pytest.mark.parametrize("name", ["vllm", "reference", "9lives", "a.b", "a b", "ä", "-x", "a/b"])
def test_reserved_and_malformed_names(name):
    with pytest.raises(BadSpec) as info:
        parse_impl(f"{name}=mod")
    assert str(info.value) == (f"--impl name {name!r} is not usable: a name is letters, digits, '_' or '-', "
                               "and 'reference' and 'vllm' are taken")


def test_mutation_a_name_pattern_that_allows_dots_is_noticed(monkeypatch):
    """Mutation: a name with '.' would break the TARGET.FUNCTION.CHECK ids; the test above notices."""
    import re

    monkeypatch.setattr(targets, "_NAME", re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$"))
    with pytest.raises(pytest.fail.Exception):
        test_reserved_and_malformed_names("a.b")


def test_what_counts_as_a_path():
    assert targets._is_path("x.py") and targets._is_path("dir/x") and targets._is_path("./x")
    assert not targets._is_path("pkg.mod") and not targets._is_path("ep:x")


# ---- plan: the targets, in order, and the bad values ----------------------------------------

def _entry_points(monkeypatch, **eps):
    """Installed entry points of the implementations group, faked."""
    def entry_points(group=None, **kw):
        assert group == ENTRY_POINT_GROUP
        return [types.SimpleNamespace(name=n, load=(lambda v=v: v)) for n, v in eps.items()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_plan_orders_reference_vllm_then_candidates_and_collects_bad_values(tmp_path, monkeypatch):
    _entry_points(monkeypatch, present=types.SimpleNamespace())
    plain = tmp_path / "plain.py"
    plain.write_text("def get_load_balance_assignment(sizes, num_gpus=2):\n    return ([], [], [])\n")
    copy = tmp_path / "copy.py"
    copy.write_text("import torch\nfrom .clip import CLIPVisionConfig\n")
    found, errors = plan([f"p={plain}", f"c={copy}", "m=my.module", "v=vllm.model_executor.models.vision",
                          "vllm=x", "p=other", "bad", "e=ep:present"])
    assert [t.name for t in found] == ["reference", "vllm", "p", "c", "m", "v", "e"]
    assert [t.kind for t in found] == ["reference", "vllm"] + ["candidate"] * 5
    assert found[1].spec == VLLM_MODULE and found[1].needs_vllm
    assert [t.needs_vllm for t in found[2:]] == [False, True, False, True, False]  # the copy by its text
    assert all(t.usable and t.load_error is None for t in found)
    assert errors == [
        f"--impl name 'vllm' is not usable: a name is letters, digits, '_' or '-', and 'reference' and 'vllm' are taken",
        "--impl name 'p' given twice; each candidate needs a name of its own",
        f"--impl 'bad' is not NAME=SPEC; {HELP}",
    ]


@pytest.mark.parametrize("source, shaped", [
    ("from . import clip\n", True), ("  from .clip import X\n", True), ("import vllm\n", True),
    ("from vllm.platforms import current_platform\n", True), ("import vllm_other\n", False),
    ("# from vllm import x\n", False), ("x = 'import vllm'\n", False), ("import torch\n", False),
])
def test_a_copy_of_vllms_vision_py_is_told_by_its_imports(source, shaped):
    assert targets._vllm_shaped_source(source) is shaped


def test_plan_refusals_of_candidates_are_load_errors_of_one_line(tmp_path, monkeypatch):
    _entry_points(monkeypatch)
    missing = tmp_path / "nope.py"
    found, errors = plan([f"f={missing}", "g=ep:absent", "h=not-a-module", "i=a b", "j=dir/"])
    assert errors == []
    by = {t.name: t for t in found}
    assert by["f"].load_error == f"--impl f={missing}: file not found: {missing}; {HELP}"
    assert by["g"].load_error == (f"--impl g=ep:absent: no installed entry point 'absent' in group "
                                  f"'vllm_vision_conformance.implementations'; {HELP}")
    assert by["h"].load_error == f"--impl h=not-a-module: cannot read implementation spec 'not-a-module'; {HELP}"
    assert by["i"].load_error == f"--impl i=a b: cannot read implementation spec 'a b'; {HELP}"
    assert by["j"].load_error == f"--impl j=dir/: file not found: dir/; {HELP}"
    assert not any(by[n].usable for n in "fghij")
    assert all("\n" not in by[n].load_error for n in "fghij")


def test_plan_with_targets_marks_the_others_not_checked():
    found, errors = plan(["a=mod_a", "b=mod_b"], wanted={"b"})
    assert errors == []
    assert {t.name: t.skip_reason for t in found} == {"reference": "not checked (--targets)",
                                                       "vllm": "not checked (--targets)",
                                                       "a": "not checked (--targets)", "b": None}
    assert [t.usable for t in found] == [False, False, False, True]
    found, _ = plan([], wanted=None)
    assert [t.skip_reason for t in found] == [None, None]


def test_target_learns_plain_facts():
    t = Target("x", "candidate", "m")
    assert not t.provides("f") and t.usable
    t.learn({"names": ["f", "g"], "forms": {"f": "documented"}, "facts": {"dp": {}}, "release": "0.1"})
    assert t.provided == frozenset({"f", "g"}) and t.provides("g") and t.forms == {"f": "documented"}
    assert t.release == "0.1" and t.facts == {"dp": {}}
    assert targets._label(t) == "--impl x=m" and targets._label(Target("vllm", "vllm", VLLM_MODULE)) == "vllm"


# ---- loading a spec in this process (what a host does) -------------------------------------------

def test_load_a_file_candidate(tmp_path):
    path = tmp_path / "cand.py"
    path.write_text("def get_load_balance_assignment(sizes, num_gpus=2):\n    return 'mine'\nOTHER = 1\n")
    try:
        loaded = load_in_process("candidate", "my-c", str(path))
        assert loaded.module.__name__ == "_vvc_candidate_my_c" and list(loaded.names) == ["get_load_balance_assignment"]
        assert loaded.names["get_load_balance_assignment"]([]) == "mine" and loaded.release is None
        assert loaded.info()["names"] == ["get_load_balance_assignment"] and loaded.info()["forms"] == {}
    finally:
        sys.modules.pop("_vvc_candidate_my_c", None)


@pytest.mark.parametrize("body, why", [
    ("1 / 0\n", "does not import: ZeroDivisionError: division by zero"),
    ("raise RuntimeError()\n", "does not import: RuntimeError"),
    ("raise ValueError('first\\nsecond')\n", "does not import: ValueError: first"),
    ("raise SystemExit(4)\n", "does not import: SystemExit: 4"),
    ("def f(:\n", "does not import: SyntaxError: "),
])
def test_a_candidate_that_does_not_import_gives_one_line(tmp_path, body, why):
    path = tmp_path / "broken.py"
    path.write_text(body)
    with pytest.raises(LoadError) as info:
        load_in_process("candidate", "b", str(path))
    assert str(info.value).startswith(why) and "\n" not in str(info.value)
    assert "_vvc_candidate_b" not in sys.modules  # not left half-loaded


def test_load_a_module_and_an_entry_point(monkeypatch):
    fake = types.ModuleType("vvc_fake_candidate_mod")
    fake.get_vit_attn_backend = lambda head_size, dtype, *, attn_backend_override=None: "TORCH_SDPA"
    monkeypatch.setitem(sys.modules, "vvc_fake_candidate_mod", fake)
    loaded = load_in_process("candidate", "m", "vvc_fake_candidate_mod")
    assert loaded.module is fake and list(loaded.names) == ["get_vit_attn_backend"]
    instance = types.SimpleNamespace(get_load_balance_assignment=lambda sizes, num_gpus=2: None)
    _entry_points(monkeypatch, mod=fake, obj=instance)
    assert load_in_process("candidate", "e", "ep:mod").module is fake
    by_object = load_in_process("candidate", "o", "ep:obj")
    assert by_object.module is None and list(by_object.names) == ["get_load_balance_assignment"]
    with pytest.raises(LoadError) as info:
        load_in_process("candidate", "x", "ep:gone")
    assert str(info.value) == "no installed entry point 'gone' in group 'vllm_vision_conformance.implementations'"
    with pytest.raises(LoadError) as info:
        load_in_process("candidate", "y", "vvc_no_such_module_here")
    assert str(info.value) == "does not import: ModuleNotFoundError: No module named 'vvc_no_such_module_here'"


# ---- --targets and --expectations in the session ------------------------------------------------

class FakeConfig:
    def __init__(self, **options):
        self.options = {"vvc_example_timeout": "30", "vvc_load_timeout": "300", "vvc_report_json": None,
                        "vvc_targets": None, "vvc_impl": [], "vvc_only": None, "vvc_expectations": [],
                        "vvc_dp_group": "both", "vvc_ignore_expectations": False, **options}
        self.pluginmanager = types.SimpleNamespace(has_plugin=lambda name: False)
        self.option = types.SimpleNamespace()
        self._vvc_profile = "vvc-ci"

    def getoption(self, name, default=None):
        return self.options.get(name, default)


def session(monkeypatch, **options):
    from vllm_vision_conformance.conformance.session import ConformanceSession

    started = []
    monkeypatch.setattr(targets, "start", lambda found, **kw: started.append((found, kw)) or [])
    return ConformanceSession(FakeConfig(**options)), started


def test_targets_are_comma_separated_names(monkeypatch):
    sess, started = session(monkeypatch, vvc_targets=" a , reference,,", vvc_impl=["a=mod_a", "b=mod_b"])
    assert sess.bad_input == []
    assert [t.name for t in sess.checked] == ["reference", "a"]
    assert {t.name: t.skip_reason for t in sess.targets}["vllm"] == "not checked (--targets)"
    assert [t.name for t in started[0][0]] == ["reference", "vllm", "a", "b"]
    assert started[0][1] == {"load_timeout": 300.0, "warm": True}


def test_an_unknown_target_is_one_line_naming_the_known_ones(monkeypatch):
    sess, _ = session(monkeypatch, vvc_targets="vllm,nope", vvc_impl=["mine=m"])
    assert sess.bad_input == ["--targets 'nope': no such target (known: mine, reference, vllm)"]
    assert [t.name for t in sess.checked] == ["vllm"]


@pytest.mark.parametrize("given", [",", "", " , "])
def test_a_targets_value_that_names_nothing_is_bad_input_not_every_target(monkeypatch, given):
    sess, started = session(monkeypatch, vvc_targets=given)
    assert sess.bad_input == [f"--targets {given!r} names no target (accepted: target names separated by commas: "
                              "reference, vllm, or the NAME of an --impl)"]
    assert sess.fatal and started == []


def test_bad_impls_and_expectations_in_the_session(monkeypatch):
    sess, _ = session(monkeypatch, vvc_impl=["reference=x", "ok=m"],
                      vvc_expectations=["noequals", "ghost=vllm-0.33.0"])
    assert sess.bad_input == [
        "--impl name 'reference' is not usable: a name is letters, digits, '_' or '-', and 'reference' and 'vllm' "
        "are taken",
        "--expectations 'noequals' is not NAME=FILE (FILE: a path or a shipped name such as vllm-0.33.0)",
        "--expectations ghost=...: no such target",
    ]
    assert [t.name for t in sess.targets] == ["reference", "vllm", "ok"]
