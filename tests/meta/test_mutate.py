"""vllm-vision-mutate: the mutator makes valid single-point mutants of the
documented functions only, and the kill logic tells a broken copy from the
unmutated one (one short suite run)."""

import ast
import dataclasses
import json
import re
import sys

import pytest

from vllm_vision_conformance.conformance import mutate
from vllm_vision_conformance.conformance.expectations import default_for_release
from vllm_vision_conformance.conformance.mutate import CONTROL, KILLED, NOT_JUDGED, SURVIVED

from ..conftest import vllm_vision_source

SMALL = '''
import torch

VisionFeatureSelectStrategyStr = Literal["class", "default", "full"]


def _helper(x):
    """docstring, not mutated"""
    return x[1:] if x else x


def get_num_selected_vision_tokens(n, strategy):
    if strategy == "default":
        return _helper(list(range(n))).__len__()
    raise ValueError(f"bad {strategy!r}")


def unrelated(a, b):
    return a + b
'''


def _steps(path: str) -> list:
    return [int(i) if i else name for name, i in re.findall(r"\.(\w+)|\[(\d+)\]", path)]


def _at(tree, steps):
    node = tree
    for step in steps:
        node = node[step] if isinstance(step, int) else getattr(node, step)
    return node


def _changed_place(original, mutated):
    """The smallest subtree of ``original`` holding every difference from ``mutated``:
    (its steps from the module, the node, or the statement list that lost one)."""
    paths = [_steps(p) for p in mutate.differences(original, mutated)]
    assert paths, "the mutant equals the original"
    common = paths[0]
    for p in paths[1:]:
        n = 0
        while n < min(len(common), len(p)) and common[n] == p[n]:
            n += 1
        common = common[:n]
    node = _at(original, common)
    # a changed operator token or plain value (Add, Eq, an int) belongs to the node holding it
    while not (isinstance(node, (ast.expr, ast.stmt)) or (
            isinstance(node, list) and common[-1] in ("body", "orelse", "finalbody"))):
        common = common[:-1]
        node = _at(original, common)
    return common, node


def _check_single_point(source: str, **kw):
    control, mutants = mutate.generate(source, **kw)
    original = ast.parse(control)
    assert ast.dump(original) == ast.dump(ast.parse(source)), "the control is the original, written back"
    scopes = mutate.scopes(ast.parse(source), kw.get("documented") or mutate.documented_names())
    seen = set()
    for m in mutants:
        tree = ast.parse(m.source)  # each parses
        compile(m.source, m.id, "exec")
        steps, node = _changed_place(original, tree)
        # every difference lies in one place, and that place is the one the mutant names
        top = original.body[steps[1]]
        assert (getattr(top, "name", None) or mutate._alias_nodes(original).get(m.scope)) and m.scope in scopes
        assert top is mutate._module_functions(original).get(m.scope, mutate._alias_nodes(original).get(m.scope))
        if isinstance(node, list):  # a statement removed: the list lost exactly that one
            assert m.operator == "statement: removed" and len(_at(tree, steps)) == len(node) - 1, m.describe()
            kept = [ast.dump(s) for s in _at(tree, steps)]
            assert any([ast.dump(s) for i, s in enumerate(node) if i != j] == kept
                       and mutate._header(node[j]) == m.before for j in range(len(node))), m.describe()
        else:
            parent = _at(original, steps[:-1]) if not isinstance(steps[-1], int) else _at(original, steps[:-2])
            shown = {mutate._header(node)} | ({mutate._header(parent)} if isinstance(parent, ast.AST) else set())
            assert m.before in shown, (m.describe(), shown)
        assert m.functions == scopes[m.scope]
        assert ast.dump(tree) not in seen, m.describe()  # no duplicates, none equal to the original
        seen.add(ast.dump(tree))
    assert ast.dump(original) not in seen
    return control, mutants


def test_small_module_mutants_are_single_point_and_attributed():
    documented = ("VisionFeatureSelectStrategyStr", "get_num_selected_vision_tokens")
    _, mutants = _check_single_point(SMALL, documented=documented)
    scopes = {m.scope for m in mutants}
    assert scopes == {"VisionFeatureSelectStrategyStr", "_helper", "get_num_selected_vision_tokens"}
    assert all(m.functions == ["get_num_selected_vision_tokens"] for m in mutants if m.scope == "_helper")
    ops = {m.operator.split(":")[0] for m in mutants}
    assert {"compare", "constant", "slice", "return", "statement", "negate", "call"} - ops == {"call"}
    shown = [m.describe() for m in mutants]
    assert any("'default' -> 'XXdefaultXX'" in s for s in shown)
    assert not any("docstring" in m.after or "bad " in m.after for m in mutants)  # docstring, raise message kept
    assert all(m.scope != "unrelated" for m in mutants)


@pytest.mark.slow
def test_installed_vision_mutants_are_single_point():
    source = vllm_vision_source()
    _, mutants = _check_single_point(source)
    assert len(mutants) > 100
    by = {m.function for m in mutants}
    assert {"get_load_balance_assignment", "run_dp_sharded_mrope_vision_model", "get_vit_attn_backend"} <= by
    helpers = {m.scope: m.functions for m in mutants if m.scope != m.function}
    if "get_multimodal_config" in helpers:  # 0.21+: the override's source, a helper of get_vit_attn_backend
        assert helpers["get_multimodal_config"] == ["get_vit_attn_backend"]
    _, only = mutate.generate(source, functions=["get_load_balance_assignment"])
    assert only and {m.function for m in only} == {"get_load_balance_assignment"}


def _report(results, error=None):
    targets = [{"name": CONTROL}, {"name": "m1", "error": error}]
    return {"targets": targets, "checks": [
        {"target": t, "function": "f", "check": c, "status": s, "message": msg} for t, c, s, msg in results]}


def test_judge_compares_status_and_message_with_the_control():
    checks = {"f": ["a", "b"]}
    same = [(CONTROL, "a", "conforms", ""), ("m1", "a", "conforms", ""),
            (CONTROL, "b", "expected", "control.f did not return"), ("m1", "b", "expected", "m1.f did not return")]
    assert mutate.judge(_report(same), "m1", ["f"], checks).status == SURVIVED  # own name normalised
    other = same[:3] + [("m1", "b", "expected", "m1.f raised ValueError")]
    verdict = mutate.judge(_report(other), "m1", ["f"], checks)
    assert verdict.status == KILLED and verdict.check == "f.b"
    assert mutate.judge(_report(same, error="does not import"), "m1", ["f"], checks).status == KILLED
    assert mutate.judge(_report(same[:2]), "m1", ["f"], checks).status == NOT_JUDGED


def test_bad_arguments_are_one_line_and_exit_2(capsys, tmp_path):
    cases = [(["--batch", "0"], "--batch"), (["--max-mutants", "x"], "--max-mutants"),
             (["--vision", str(tmp_path / "none.py")], "no such file"),
             (["--vision", str(tmp_path / "v.py"), "--functions", "nope"], "not a documented name"),
             (["--vision", str(tmp_path / "v.py"), "--functions", "get_vit_attn_backend"], "does not define it"),
             (["--vision", __file__], "defines none of the documented names"),
             (["--release", "vllm-0.33.x", "--vision", str(tmp_path / "v.py")], "--release"),
             (["--vision", str(tmp_path / "v.py"), "--report", str(tmp_path / "no" / "r.json")], "--report"),
             (["--no-such-option"], "unrecognized")]
    (tmp_path / "v.py").write_text(SMALL)
    for argv, says in cases:
        assert mutate.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vllm-vision-mutate: error:") and says in err[0], (argv, err)


@pytest.mark.slow
def test_kill_logic_on_hand_picked_mutants(tmp_path, monkeypatch):
    """One suite run: a changed accumulation in get_load_balance_assignment is killed,
    a copy that does not load is killed, the unmutated copy survives."""
    source = vllm_vision_source()
    control, mutants = mutate.generate(source, functions=["get_load_balance_assignment"])
    arith = next(m for m in mutants if m.operator == "augassign: += -> -=")
    unmutated = dataclasses.replace(arith, id="m2", operator="none", source=control)
    broken = dataclasses.replace(arith, id="m3", operator="none", source=control + "\nraise RuntimeError('x')\n")
    arith = dataclasses.replace(arith, id="m1")
    # three checks keep the run short; the judge looks at these only
    only = ["property-agrees", "case-docstring-example", "error-zero-gpus"]
    original = mutate.checks_of
    monkeypatch.setattr(mutate, "checks_of", lambda f, group: [c for c in original(f, group) if c in only])
    release = default_for_release(mutate._installed_release())
    opts = mutate.Options(python=sys.executable, release=release, profile="ci", dp_group="sim",
                          example_timeout=10.0, workdir=tmp_path)
    batch = [arith, unmutated, broken]
    report, record = mutate.run_batch(control, batch, opts, 1)
    assert report is not None, record
    checks = {"get_load_balance_assignment": mutate.checks_of("get_load_balance_assignment", "sim")}
    verdicts = {m.id: mutate.judge(report, m.id, m.functions, checks) for m in batch}
    assert verdicts["m1"].status == KILLED, verdicts["m1"]
    assert verdicts["m1"].check == "get_load_balance_assignment.property-agrees"
    assert verdicts["m2"].status == SURVIVED, verdicts["m2"]
    assert verdicts["m3"].status == KILLED and "does not load" in verdicts["m3"].reason, verdicts["m3"]
    assert record["exit_status"] == 2  # a candidate that does not load is bad input; the others still ran
    summary = mutate.summarise(batch, verdicts, ["get_load_balance_assignment"])
    assert summary["overall"] == {"mutants": 3, "killed": 2, "survived": 1, "not_judged": 0,
                                  "kill_rate": round(2 / 3, 4)}
    text = mutate.render(summary, batch, verdicts)
    assert "1 survivor(s):" in text and "m2 get_load_balance_assignment" in text
    json.dumps(summary)
