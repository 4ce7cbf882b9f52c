"""The matrix and the baseline gate on small hand-written reports (no vLLM needed)."""

from __future__ import annotations

import copy
import json
import re

import pytest

from vllm_vision_conformance.conformance import baseline, matrix


def _check(function, check, status, message="", target="vllm", example=None, reason=None):
    return {"target": target, "function": function, "check": check, "kind": "case", "status": status,
            "message": message, "example": example, "examples": 1, "reason": reason,
            "repro": f"vllm-vision-conformance --targets {target} --only {target}.{function}.{check} --hypothesis-profile ci"}


def report(release, table, checks, exit_status=0, stale=(), torch="2.13.0+cpu", skipped=None):
    return {
        "tool": "vllm-vision-conformance", "python": "3.11.7", "torch": torch, "hypothesis_profile": "ci",
        "exit_status": exit_status,
        "targets": [
            {"name": "reference", "kind": "reference", "spec": "reference", "release": None, "skipped": None, "error": None},
            {"name": "vllm", "kind": "vllm", "spec": "vllm.model_executor.models.vision", "release": release,
             "skipped": skipped, "error": None},
        ],
        "table": {f: {"reference": {"status": "conforms", "detail": ""}, "vllm": {"status": s, "detail": ""}}
                  for f, s in table.items()},
        "checks": checks,
        "stale_expectations": [{"target": "vllm", "function": f, "check": c, "source": "x.txt:3"} for f, c in stale],
        "bad_input": [],
    }


OLD = report("0.11.0", {"resolve": "expected divergence", "pos_ids": "not provided", "balance": "conforms"}, [
    _check("resolve", "error-empty", "expected", "raised IndexError", reason="bare index"),
    _check("resolve", "case-a", "conforms"),
    _check("pos_ids", "case-two-frames", "not provided"),
    _check("balance", "case-doc", "conforms"),
])
MID = report("0.11.2", {"resolve": "expected divergence", "pos_ids": "conforms", "balance": "diverges"}, [
    _check("resolve", "error-empty", "expected", "raised IndexError", reason="bare index"),
    _check("pos_ids", "case-two-frames", "conforms"),
    _check("balance", "case-doc", "diverges", "returned ([1], [1]), but should be ([0], [1])",
           example="get_load_balance_assignment(sizes=[3], num_gpus=1)"),
], exit_status=1)
NEW = report("0.28.0", {"resolve": "conforms", "pos_ids": "not provided", "balance": "conforms"}, [
    _check("resolve", "error-empty", "conforms"),
    _check("pos_ids", "case-two-frames", "not provided"),
    _check("balance", "case-doc", "conforms"),
], stale=[("resolve", "error-empty")])


# ------------------------------------------------------------------ baseline

def test_new_divergences_keyed_by_function_and_check_only():
    new = baseline.new_divergences(OLD, MID)
    assert list(new) == [("balance", "case-doc")]
    assert new[("balance", "case-doc")]["status"] == "diverges"


def test_same_key_with_another_target_name_is_not_new():
    cand = copy.deepcopy(MID)
    cand["targets"][1] = {**cand["targets"][1], "name": "mine", "kind": "candidate"}
    for c in cand["checks"]:
        c["target"] = "mine"
    assert list(baseline.new_divergences(MID, cand)) == []
    assert list(baseline.new_divergences(OLD, cand)) == [("balance", "case-doc")]


def test_expected_counts_as_new_unless_allowed():
    assert list(baseline.new_divergences(NEW, OLD)) == [("resolve", "error-empty")]
    assert list(baseline.new_divergences(NEW, OLD, allow_expected=True)) == []


def test_compare_reports_fixed_changed_and_gone():
    result = baseline.compare(MID, NEW)
    assert not result.new and not result.failed
    assert set(result.fixed) == {("resolve", "error-empty"), ("balance", "case-doc")}
    changed = copy.deepcopy(MID)
    changed["checks"][2]["message"] = "returned ([2], [1]), but should be ([0], [1])"
    result = baseline.compare(MID, changed)
    assert set(result.changed) == {("balance", "case-doc")} and not result.new
    gone = copy.deepcopy(MID)
    gone["checks"] = [c for c in gone["checks"] if c["function"] != "balance"]
    assert set(baseline.compare(MID, gone).gone) == {("balance", "case-doc")}


def test_skipped_target_cannot_gate():
    skipped = report("0.99.0", {}, [], skipped="vLLM not importable: ImportError: x")
    result = baseline.compare(OLD, skipped)
    assert result.failed and result.problems and "not importable" in result.problems[0]


def test_render_prints_new_first():
    text = baseline.render(baseline.compare(OLD, MID))
    assert text.splitlines()[0].startswith("1 NEW divergence")
    assert "get_load_balance_assignment(sizes=[3], num_gpus=1)" in text
    assert text.rstrip().endswith("FAIL: 1 new")


def test_gate_cli_exit_status(tmp_path, capsys):
    paths = {}
    for name, rep in (("old", OLD), ("mid", MID), ("new", NEW)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(rep))
    assert matrix.main(["gate", "--base", str(paths["old"]), "--current", str(paths["mid"])]) == 1
    out = capsys.readouterr().out
    assert out.index("NEW") < out.index("balance.case-doc") and "resolve.error-empty" not in out.split("\n")[1]
    assert matrix.main(["gate", "--base", str(paths["mid"]), "--current", str(paths["new"])]) == 0
    (tmp_path / "bad.json").write_text("{")
    assert matrix.main(["gate", "--base", str(tmp_path / "bad.json"), "--current", str(paths["new"])]) == 2


# ------------------------------------------------------------------ matrix

def _matrix(*reports, strict=False):
    return matrix.build([matrix.row_from_report(r) for r in reports], strict)


def test_rows_sorted_by_release_and_absent_since_until():
    m = _matrix(NEW, OLD, MID)
    assert [r["release"] for r in m["releases"]] == ["0.11.0", "0.11.2", "0.28.0"]
    by = {r["release"]: r["cells"] for r in m["releases"]}
    assert matrix.cell_text(by["0.11.0"]["pos_ids"]) == "absent until 0.11.2"
    assert matrix.cell_text(by["0.28.0"]["pos_ids"]) == "absent since 0.28.0"
    assert matrix.cell_text(by["0.11.2"]["balance"]) == "diverges (1)"
    assert matrix.cell_text(by["0.11.0"]["resolve"]) == "expected divergence (1)"
    mixed = {"status": "diverges", "divergences": [{"status": "diverges"}, {"status": "expected"}, {"status": "expected"}]}
    assert matrix.cell_text(mixed) == "diverges (1) + 2 expected"


def test_version_key_orders_numerically():
    assert sorted(["0.9.2", "0.11.0", "0.10.2", "0.11.0.dev5+g1"], key=matrix.version_key) == \
        ["0.9.2", "0.10.2", "0.11.0.dev5+g1", "0.11.0"]


def test_exit_status_and_strict():
    assert _matrix(OLD)["exit_status"] == 0
    assert _matrix(OLD, MID)["exit_status"] == 1
    assert _matrix(NEW)["exit_status"] == 0
    assert _matrix(NEW, strict=True)["exit_status"] == 1
    m = matrix.build([matrix.row_from_report(OLD), matrix.failed_row("vllm-0.9.0", "no report")])
    assert m["exit_status"] == 2


def test_markdown_lists_every_release_and_function():
    md = matrix.render_markdown(_matrix(OLD, MID, NEW))
    lines = md.splitlines()
    assert lines[0].count("|") == 3 + 3 + 1 and "`balance`" in lines[0]
    assert lines[3].startswith("| 0.11.2 | 2.13.0+cpu |") and "diverges (1)" in lines[3]
    assert "stale expectation resolve error-empty" in md


def test_html_links_cells_to_divergences_with_input_and_replay():
    m = _matrix(OLD, MID)
    m["releases"][1]["env"] = "vllm-0.11.2"
    page = matrix.render_html(m)
    anchor = "0.11.2--balance"
    assert f"href='#{anchor}'" in page and f"id='{anchor}'" in page
    assert "get_load_balance_assignment(sizes=[3], num_gpus=1)" in page
    assert "tox -e vllm-0.11.2 -- --targets vllm --only vllm.balance.case-doc" in page
    assert "bare index" in page  # the recorded reason of an expected divergence
    assert "<script" not in page and "http" not in page  # self-contained


def test_render_command_writes_three_files(tmp_path, capsys):
    for name, rep in (("report-vllm-0.11.0.json", OLD), ("report-vllm-0.11.2.json", MID)):
        (tmp_path / name).write_text(json.dumps(rep))
    out = tmp_path / "out"
    rc = matrix.main(["render", str(tmp_path / "report-vllm-0.11.0.json"), str(tmp_path / "report-vllm-0.11.2.json"),
                      "--out", str(out)])
    assert rc == 1
    data = json.loads((out / "matrix.json").read_text())
    assert [r["env"] for r in data["releases"]] == ["vllm-0.11.0", "vllm-0.11.2"]
    assert (out / "matrix.html").read_text().startswith("<!doctype html>")
    assert "| 0.11.0 |" in (out / "matrix.md").read_text()
    assert "| 0.11.0 |" in capsys.readouterr().out


def test_tox_label_envs(tmp_path):
    ini = tmp_path / "tox.ini"
    ini.write_text("[tox]\nlabels =\n    conformance = vllm-0.11.2\n    matrix = vllm-0.10.2, vllm-0.33.0\n")
    assert matrix.tox_envs(str(ini)) == ["vllm-0.11.2"]
    assert matrix.tox_envs(str(ini), "matrix") == ["vllm-0.10.2", "vllm-0.33.0"]
    with pytest.raises(SystemExit):
        matrix.tox_envs(str(ini), "nope")


def test_run_runs_the_release_envs_of_this_tox_ini_only():
    """The default envs of `vllm-vision-matrix run`: every release env, and not
    matrix-report (the last env of `tox -m matrix`, which writes no suite report)."""
    import pathlib

    envs = matrix.tox_envs(str(pathlib.Path(__file__).resolve().parents[2] / "tox.ini"))
    assert len(envs) >= 14 and all(re.fullmatch(r"vllm-\d+\.\d+\.\d+", e) for e in envs), envs


def test_divergence_of_another_target_is_noted_and_fails():
    broken = copy.deepcopy(OLD)
    broken["exit_status"] = 1
    broken["checks"].append(_check("balance", "case-doc-gloo", "diverges", "rank 0 could not join the group",
                                   target="reference"))
    m = _matrix(broken)
    assert m["exit_status"] == 1
    assert "1 divergence(s) of another target, e.g. reference.balance.case-doc-gloo" in matrix.render_markdown(m)


def test_render_merges_matrix_json_of_earlier_runs(tmp_path):
    first = _matrix(NEW)  # alone: pos_ids has no "since"
    first["releases"][0]["seconds"] = 12.0
    (tmp_path / "m.json").write_text(json.dumps(first))
    (tmp_path / "report-vllm-0.11.2.json").write_text(json.dumps(MID))
    rc = matrix.main(["render", str(tmp_path / "m.json"), str(tmp_path / "report-vllm-0.11.2.json"),
                      "--out", str(tmp_path / "out")])
    data = json.loads((tmp_path / "out" / "matrix.json").read_text())
    assert rc == 1 and [r["release"] for r in data["releases"]] == ["0.11.2", "0.28.0"]
    assert data["releases"][1]["seconds"] == 12.0
    assert data["releases"][1]["cells"]["pos_ids"]["since"] == "0.28.0"
