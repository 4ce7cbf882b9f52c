"""Meta-tests: the suite run as users run it (the command line, in a
subprocess) against deliberately broken implementations it must catch, a
faithful copy of vLLM's vision.py it must pass, and bad input it must
report without losing the other targets' results."""

import re

import pytest

from ..conftest import CANDIDATES, run_cli, vllm_vision_source

# One deliberate bug per documented function, applied to a copy of the
# installed vLLM's vision.py: (function the report must name, old, new).
MUTATIONS = {
    "VisionFeatureSelectStrategyStr": ('Literal["class", "default", "full"]', 'Literal["class", "default", "all"]'),
    "VisionFeatureSelectStrategy": (
        "VisionFeatureSelectStrategyStr | Callable[[torch.Tensor], torch.Tensor]",
        "VisionFeatureSelectStrategyStr | Callable[[torch.Tensor], int]"),
    "_get_vision_feature_selector": ("return lambda feats: feats[:, 1:, :]", "return lambda feats: feats[:, 2:, :]"),
    "get_num_selected_vision_tokens": ("return num_vision_tokens - 1", "return num_vision_tokens"),
    "resolve_visual_encoder_outputs": ("offset = max_possible_layers - num_loaded_layers", "offset = 0"),
    "get_load_balance_assignment": ("min_gpu = min(range(num_gpus)", "min_gpu = max(range(num_gpus)"),
    "run_dp_sharded_vision_model": ("vision_embeddings = vision_embeddings[:num_chunks, ...]",
                                    "vision_embeddings = vision_embeddings[-num_chunks:, ...]"),
    "run_dp_sharded_mrope_vision_model": ("if current_len < max_len_per_rank:", "if False:"),
    "get_vision_encoder_info": ("return SiglipEncoderInfo(hf_config)", "return CLIPEncoderInfo(hf_config)"),
    "get_vit_attn_backend": ("backend=attn_backend_override,", "backend=None,"),
}


# Bugs beside a recorded divergence, or in what the documented page does not
# list (last_hs_proc, the num_gpus default, the padding's dtype): (function,
# check that must diverge, old, new).
BEYOND_RECORDED = {
    "norm-one-more-layer": ("resolve_visual_encoder_outputs", "property-post-norm",
                            "uses_last_layer = select_layers[-1] in (max_possible_layers - 1, -1)",
                            "uses_last_layer = select_layers[-1] in (max_possible_layers - 2, -1)"),
    "proc-dropped": ("resolve_visual_encoder_outputs", "property-last-hs-proc-layers",
                     "hs_pool[-1] = last_hs_proc(hs_pool[-1])", "pass"),
    "proc-twice": ("resolve_visual_encoder_outputs", "property-last-hs-proc-single",
                   "encoder_outputs = last_hs_proc(encoder_outputs)",
                   "encoder_outputs = last_hs_proc(last_hs_proc(encoder_outputs))"),
    "default-3-gpus": ("get_load_balance_assignment", "property-default-num-gpus",
                       "num_gpus: int = 2,", "num_gpus: int = 3,"),
    "padding-float32": ("run_dp_sharded_mrope_vision_model", "property-matches-per-image-rope3d",
                        "(padding_size, image_embeds_local.shape[1]),\n                dtype=image_embeds_local.dtype,",
                        "(padding_size, image_embeds_local.shape[1]),"),
}


def test_one_mutation_per_documented_name_the_installed_vision_py_defines():
    from vllm_vision_conformance.documented import NAMES

    source = vllm_vision_source()
    defined = {n for n in NAMES if re.search(rf"^(def |){re.escape(n)}\b", source, re.M)}
    assert set(MUTATIONS) == defined


@pytest.mark.slow
def test_a_recorded_divergence_hides_no_new_one(tmp_path, cli):
    """Copies of 0.33.0 with one more bug, each in a check that has an
    expectations entry or in a parameter the documented page does not list:
    each check diverges (not "expected"), with the rule named where it has one."""
    source = vllm_vision_source()
    args, only = [], []
    for name, (function, check, old, new) in BEYOND_RECORDED.items():
        assert source.count(old) == 1, f"mutation {name} no longer applies"
        path = tmp_path / f"{name.replace('-', '_')}.py"
        path.write_text(source.replace(old, new))
        target = name.replace("-", "_")
        args += ["--impl", f"{target}={path}", "--expectations", f"{target}=vllm-0.33.0"]
        only.append(f"{target}.{function}.{check}")
    status, report, output = cli(*args, "--targets", ",".join(n.replace("-", "_") for n in BEYOND_RECORDED),
                                 "--dp-group", "sim", "--only", ",".join(only))
    assert report is not None, output[-3000:]
    results = {(c["target"], c["check"]): c for c in report["checks"]}
    for name, (function, check, _, _) in BEYOND_RECORDED.items():
        result = results[(name.replace("-", "_"), check)]
        assert result["status"] == "diverges", (name, result)
    assert "does not follow the recorded rule last-entry-max-minus-one-or-minus-one" in \
        results[("norm_one_more_layer", "property-post-norm")]["message"]
    assert status == 1


def _mutant(source: str, function: str) -> str:
    old, new = MUTATIONS[function]
    assert source.count(old) == 1, f"mutation for {function} no longer applies: {old!r}"
    return source.replace(old, new)


def _cells(report, target):
    return {fn: row[target]["status"] for fn, row in report["table"].items()}


@pytest.fixture(scope="module")
def vision_copies(tmp_path_factory):
    source = vllm_vision_source()
    folder = tmp_path_factory.mktemp("copies")
    (folder / "copy.py").write_text(source)
    paths = {}
    for i, function in enumerate(MUTATIONS):
        path = folder / f"m{i}.py"
        path.write_text(_mutant(source, function))
        paths[f"m{i}"] = (function, path)
    return folder / "copy.py", paths


@pytest.mark.slow
def test_copy_of_vllm_conforms_and_each_mutant_is_named(vision_copies, cli):
    """One run: the faithful copy passes (only 0.33.0's recorded divergences);
    each mutant diverges, and its cell is the mutated function."""
    from vllm_vision_conformance.conformance.registry import REGISTRY

    copy, mutants = vision_copies
    args = ["--impl", f"copy={copy}", "--expectations", "copy=vllm-0.33.0"]
    # the copy: every check; a mutant: the checks of the function it breaks (what is asserted)
    only = [f"copy.{spec.name}.{c.id}" for spec in REGISTRY for c in spec.checks if c.group != "gloo"]
    for name, (function, path) in mutants.items():
        args += ["--impl", f"{name}={path}", "--expectations", f"{name}=vllm-0.33.0"]
        only += [f"{name}.{function}.{c.id}" for spec in REGISTRY if spec.name == function for c in spec.checks
                 if c.group != "gloo"]
    args += ["--targets", ",".join(["copy", *mutants]), "--dp-group", "sim",  # real groups: test_distributed.py
             "--only", ",".join(only)]
    status, report, output = cli(*args)
    assert report is not None, output[-3000:]
    assert status == 1, output[-3000:]
    copy_cells = _cells(report, "copy")
    assert "diverges" not in copy_cells.values(), copy_cells
    dp = {c["check"]: c["status"] for c in report["checks"]
          if c["target"] == "copy" and c["function"] == "run_dp_sharded_mrope_vision_model"}
    assert dp["property-matches-per-image-rope3d"] == "conforms", dp  # really exercised, and passed
    for name, (function, _) in mutants.items():
        cells = _cells(report, name)
        assert cells[function] == "diverges", f"mutant of {function} not caught: {cells}"
        assert f"- {name}.{function}." in output, f"the report does not name {function} for {name}"


@pytest.fixture(scope="module")
def copy_alone(vision_copies, tmp_path_factory):
    """One full run of the faithful copy alone (both group kinds), as a user runs
    it: (exit status, report, output). Also the base run of the gate test."""
    copy, _ = vision_copies
    return run_cli("--impl", f"copy={copy}", "--targets", "copy", "--expectations", "copy=vllm-0.33.0",
                   tmp_path=tmp_path_factory.mktemp("copy-alone"))


@pytest.mark.slow
def test_copy_alone_exits_zero_and_one_mutant_alone_exits_one(vision_copies, copy_alone, cli):
    from vllm_vision_conformance.conformance.registry import REGISTRY

    status, report, output = copy_alone
    assert status == 0, output[-3000:]
    assert {c["status"] for c in report["checks"]} >= {"conforms", "expected"}
    _, mutants = vision_copies
    name, (function, path) = next((n, fp) for n, fp in mutants.items() if fp[0] == "get_load_balance_assignment")
    only = ",".join(f"{name}.{function}.{c.id}" for spec in REGISTRY if spec.name == function for c in spec.checks)
    status, report, output = cli("--impl", f"{name}={path}", "--targets", name, "--expectations", f"{name}=vllm-0.33.0",
                                 "--only", only)
    assert status == 1 and function in output, output[-3000:]
    replay = re.search(r"replay: (vllm-vision-conformance .*)", output).group(1)
    assert f"--only {name}.{function}." in replay


@pytest.mark.slow
def test_ignore_expectations_reports_every_divergence(vision_copies, cli):
    copy, _ = vision_copies
    status, report, _ = cli("--impl", f"copy={copy}", "--targets", "copy", "--expectations", "copy=vllm-0.33.0",
                            "--ignore-expectations", "--only", "copy.get_load_balance_assignment.error-zero-gpus")
    assert status == 1
    assert report["table"]["get_load_balance_assignment"]["copy"]["status"] == "diverges"


@pytest.mark.slow
def test_broken_reference_pos_ids_is_caught(cli):
    status, report, output = cli("--impl", f"floaty={CANDIDATES / 'float_pos_ids.py'}", "--targets", "floaty")
    assert status == 1
    assert _cells(report, "floaty")["get_llm_pos_ids_for_vision"] == "diverges"
    assert _cells(report, "floaty")["get_load_balance_assignment"] == "not provided"


@pytest.mark.slow
def test_hanging_raising_and_wrongly_typed_candidates_are_divergences(cli):
    from vllm_vision_conformance.conformance.registry import BY_NAME

    functions = ("get_load_balance_assignment", "get_num_selected_vision_tokens", "resolve_visual_encoder_outputs")
    only = [f"{t}.{f}.{c.id}" for t in ("hangs", "bad", "partial", "reference") for f in functions
            for c in BY_NAME[f].checks if not (t == "reference" and c.needs_reference)]
    status, report, output = cli(
        "--impl", f"hangs={CANDIDATES / 'hangs.py'}", "--impl", f"bad={CANDIDATES / 'misbehaves.py'}",
        "--impl", f"partial={CANDIDATES / 'partial.py'}", "--targets", "hangs,bad,partial,reference",
        "--only", ",".join(only), "--example-timeout", "2", timeout=600)
    assert status == 1, output[-3000:]
    hangs, bad, partial = _cells(report, "hangs"), _cells(report, "bad"), _cells(report, "partial")
    assert hangs["get_load_balance_assignment"] == "diverges"
    assert "did not return within 2 s" in output
    assert hangs["get_num_selected_vision_tokens"] == "conforms"  # results of the other function kept
    assert bad["get_num_selected_vision_tokens"] == "diverges" and "raised RuntimeError: boom" in output
    assert bad["get_load_balance_assignment"] == "diverges" and "is list, but should be tuple" in output
    assert partial["get_load_balance_assignment"] == "conforms"
    assert partial["resolve_visual_encoder_outputs"] == "not provided"
    assert "diverges" not in _cells(report, "reference").values()


@pytest.mark.parametrize("spec, says", [
    ("x=no_such_module_anywhere", "does not import: ModuleNotFoundError"),
    (f"x={CANDIDATES / 'broken_import.py'}", "does not import"),
    ("x=./missing/file.py", "file not found"),
    ("x=ep:nothing-registered", "no installed entry point"),
    ("just-a-name", "is not NAME=SPEC"),
    ("vllm=os", "'vllm' are taken"),
])
def test_bad_impl_is_one_line_and_exit_2_and_keeps_other_results(cli, spec, says):
    status, report, output = cli("--impl", spec, "--targets", "reference,x" if spec.startswith("x=") else "reference",
                                 "--only", "reference.get_load_balance_assignment.case-docstring-example")
    assert status == 2, output[-2000:]
    lines = [line for line in output.splitlines() if line.startswith("vllm-vision-conformance: error:")]
    assert len(lines) == 1 and says in lines[0], output[-2000:]
    assert report["table"]["get_load_balance_assignment"]["reference"]["status"] == "conforms"


def test_unknown_target_is_bad_input(cli):
    status, _, output = cli("--targets", "reference,nope", "--only", "reference.get_load_balance_assignment.case-no-images")
    assert status == 2 and "--targets 'nope': no such target" in output


def test_vllm_not_importable_is_bad_input_and_keeps_the_reference(cli):
    """A gate that asks for vLLM must not stay green when vLLM does not import."""
    prefix = ("import sys; sys.modules['vllm'] = None; from vllm_vision_conformance.conformance.cli import main; "
              "raise SystemExit(main(sys.argv[1:]))")
    status, report, output = cli("--targets", "reference,vllm", "--only",
                                 "vllm.get_load_balance_assignment.case-docstring-example,"
                                 "reference.get_load_balance_assignment.case-no-images", python_prefix=prefix)
    assert status == 2, output[-2000:]
    lines = [line for line in output.splitlines() if line.startswith("vllm-vision-conformance: error:")]
    assert len(lines) == 1 and "vLLM not importable" in lines[0], output[-2000:]
    assert report["table"]["get_load_balance_assignment"]["reference"]["status"] == "conforms"
    assert report["table"]["get_load_balance_assignment"]["vllm"]["status"] == "error"


@pytest.mark.slow
def test_stale_expectation_is_reported_and_fails_in_strict_mode(cli, tmp_path):
    stale = tmp_path / "stale.txt"
    stale.write_text("# claimed to diverge, but the reference passes this case\n"
                     "get_load_balance_assignment case-docstring-example\n"
                     "# a typo: no such check\n"
                     "get_load_balance_assignment case-no-such-check\n")
    only = "reference.get_load_balance_assignment.case-docstring-example"
    status, report, output = cli("--targets", "reference", "--expectations", f"reference={stale}", "--only", only)
    assert status == 0 and "stale expectation" in output
    assert {e["check"] for e in report["stale_expectations"]} == {"case-docstring-example", "case-no-such-check"}
    status, _, output = cli("--targets", "reference", "--expectations", f"reference={stale}", "--only", only,
                            "--strict-expectations")
    assert status == 1 and "STALE (strict: fails)" in output


def test_expected_divergence_of_another_kind_is_still_reported(cli, tmp_path):
    """An entry's TEXT must match: the same check diverging differently is a new divergence."""
    exp = tmp_path / "exp.txt"
    exp.write_text("# pretend the candidate raises here\nget_load_balance_assignment case-docstring-example raised\n")
    status, report, output = cli("--impl", f"bad={CANDIDATES / 'misbehaves.py'}", "--targets", "bad",
                                 "--expectations", f"bad={exp}",
                                 "--only", "bad.get_load_balance_assignment.case-docstring-example")
    assert status == 1 and report["table"]["get_load_balance_assignment"]["bad"]["status"] == "diverges"


def _new_section_functions(out: str) -> set[str]:
    section = out.split("NEW divergence(s)")[1].split("already in")[0].split("as in")[0]
    return {line.split(".")[0][2:] for line in section.splitlines() if line.startswith("- ")}


@pytest.mark.slow
def test_gate_fails_only_on_the_new_divergence_of_a_pr(vision_copies, copy_alone, cli, tmp_path):
    """The CI gate: a base run of vLLM's vision.py, a "PR" that breaks one
    function; the gate (the plugin's --baseline, and the separate command on the
    two reports) fails and names only what the PR broke, first."""
    import json
    import subprocess
    import sys

    copy, mutants = vision_copies
    name, (function, path) = next((n, fp) for n, fp in mutants.items() if fp[0] == "get_num_selected_vision_tokens")
    _, base, _ = copy_alone  # its recorded divergences ("expected") are divergences of the base
    assert base is not None
    base_json = tmp_path / "base.json"
    base_json.write_text(json.dumps(base))
    # The PR's run lists every divergence (--ignore-expectations): the base decides what is new.
    # It runs the broken function and three whose divergences the base already has.
    from vllm_vision_conformance.conformance.registry import BY_NAME

    functions = ("get_num_selected_vision_tokens", "get_load_balance_assignment", "resolve_visual_encoder_outputs",
                 "get_vision_encoder_info")
    only = ",".join(f"main.{f}.{c.id}" for f in functions for c in BY_NAME[f].checks)
    pr_status, pr, out = cli("--impl", f"main={path}", "--targets", "main", "--only", only,
                             "--ignore-expectations", "--baseline", str(base_json), "--baseline-target", "copy")
    assert pr_status == 1 and pr is not None, out[-3000:]
    assert _new_section_functions(out) == {"get_num_selected_vision_tokens"}, out[-3000:]
    assert out.index("NEW divergence(s)") < out.index("vllm-vision-conformance report"), out[-3000:]
    (tmp_path / "pr.json").write_text(json.dumps(pr))
    gate = subprocess.run([sys.executable, "-m", "vllm_vision_conformance.conformance.matrix", "gate", "--base", str(base_json),
                           "--current", str(tmp_path / "pr.json")], capture_output=True, text=True, timeout=120)
    out = gate.stdout + gate.stderr
    assert gate.returncode == 1, out
    assert _new_section_functions(out) == {"get_num_selected_vision_tokens"}, out
    assert out.index("NEW divergence(s)") < out.index("as in")
    same = subprocess.run([sys.executable, "-m", "vllm_vision_conformance.conformance.matrix", "gate", "--base", str(base_json),
                           "--current", str(base_json)], capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, same.stdout + same.stderr
    # A divergence the base run already has fails a plain run, not a gated one.
    known = next(c for c in base["checks"] if c["status"] == "expected" and c["kind"] != "property")
    only = f"main.{known['function']}.{known['check']}"
    plain, _, out = cli("--impl", f"main={copy}", "--targets", "main", "--ignore-expectations", "--only", only)
    assert plain == 1, out[-3000:]
    gated, _, out = cli("--impl", f"main={copy}", "--targets", "main", "--ignore-expectations", "--only", only,
                        "--baseline", str(base_json))
    assert gated == 0, out[-3000:]
    assert "0 new" in out, out[-3000:]


def test_gate_with_an_unreadable_base_is_bad_input(cli, tmp_path):
    bad = tmp_path / "base.json"
    bad.write_text("not json")
    status, report, out = cli("--targets", "reference", "--only", "reference.get_num_selected_vision_tokens.case-default-576",
                              "--baseline", str(bad))
    assert status == 2, out[-3000:]
    lines = [line for line in out.splitlines() if "--baseline" in line and "error" in line]
    assert len(lines) == 1 and "expected the --report-json file" in lines[0], out[-3000:]


def test_report_states_torch_transformers_and_its_time(cli):
    import importlib.metadata as md

    status, report, out = cli("--targets", "reference", "--only", "reference.get_num_selected_vision_tokens.case-default-576")
    assert status == 0, out[-2000:]
    assert report["torch"] == md.version("torch")
    assert report["transformers"] == md.version("transformers")
    assert isinstance(report["seconds"], float) and 0 <= report["seconds"] < 600


@pytest.mark.slow
def test_replay_of_a_random_profile_carries_its_seed(vision_copies, cli):
    """dev and thorough are not derandomized: the printed command must name the seed to replay."""
    copy, _ = vision_copies
    status, _, output = cli("--impl", f"copy={copy}", "--targets", "copy", "--ignore-expectations",
                            "--only", "copy.get_load_balance_assignment.error-zero-gpus",
                            "--hypothesis-seed", "3", profile="dev")
    assert status == 1, output[-2000:]
    replay = re.search(r"replay: (vllm-vision-conformance .*)", output).group(1)
    assert "--profile dev --hypothesis-seed 3" in replay, replay


@pytest.mark.slow
def test_every_name_gets_the_same_inputs(tmp_path, cli):
    """A byte-identical copy of vLLM's vision.py under several names: identical
    per-check results (status, message, number of inputs, boundary classes
    drawn), because the draws depend on the function and check only."""
    source = vllm_vision_source()
    names = ["m", "copy_a", "zz_candidate"]
    args, only = [], []
    for name in names:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        args += ["--impl", f"{name}={path}", "--expectations", f"{name}=vllm-0.33.0"]
        only += [f"{name}.{function}.{check}" for function, check in [
            ("get_vision_encoder_info", "property-agrees"),
            ("resolve_visual_encoder_outputs", "property-post-norm"),
            ("run_dp_sharded_mrope_vision_model", "property-matches-per-image-rope3d")]]
    status, report, output = cli(*args, "--targets", ",".join(names), "--dp-group", "sim", "--only", ",".join(only))
    assert report is not None, output[-3000:]
    seen = {}
    for c in report["checks"]:
        key = (c["function"], c["check"])
        view = (c["status"], c["message"], c["examples"], c["events"], c["example"])
        seen.setdefault(key, {})[c["target"]] = view
    assert len(seen) == 3
    for key, by_name in seen.items():
        assert len(by_name) == len(names), (key, by_name)
        assert len(set(map(repr, by_name.values()))) == 1, (key, by_name)
    assert status == 0, output[-3000:]
