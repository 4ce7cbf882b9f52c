"""The harness' own parts: comparison, expectations, the simulated group."""

import pytest
import torch

from vllm_vision_conformance.conformance.compare import Tolerance, diff
from vllm_vision_conformance.conformance.expectations import BadExpectations, default_for_release, parse
from vllm_vision_conformance.conformance.simgroup import CollectiveMismatch, SimulationUnsupported, run_simulated


def test_diff_is_exact_on_structure():
    assert diff(([1], [2]), ([1], [2])) is None
    assert "should be tuple" in diff(([1],), [[1]])
    assert "dtype" in diff(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    assert "shape" in diff(torch.zeros(2), torch.zeros(3))
    assert diff(torch.tensor([1.0]), torch.tensor([1.0 + 1e-7])) is not None
    assert diff(torch.tensor([1.0]), torch.tensor([1.0 + 1e-7]), tol=Tolerance(rtol=1e-5)) is None
    assert "bool" in diff(1, True)


def test_expectations_need_reasons_and_match_text():
    exp = parse("# why\nf c returned -1\n\n# other\ng d\n", "x")
    assert exp.lookup("f", "c", "it returned -1, but") is not None
    assert exp.lookup("f", "c", "raised ValueError") is None
    assert exp.lookup("g", "d", "anything") is not None
    with pytest.raises(BadExpectations, match="no reason"):
        parse("f c\n", "x")
    with pytest.raises(BadExpectations, match="FUNCTION CHECK"):
        parse("# why\nonlyone\n", "x")


def _module_fn(body):
    namespace = {
        "get_tensor_model_parallel_world_size": None,
        "get_tensor_model_parallel_rank": None,
        "tensor_model_parallel_all_gather": None,
        "torch": torch,
    }
    exec(body, namespace)
    return namespace["f"]


def test_simulation_gathers_in_rank_order():
    f = _module_fn(
        "def f():\n"
        "    r = get_tensor_model_parallel_rank()\n"
        "    return tensor_model_parallel_all_gather(torch.tensor([r]), dim=0)\n"
    )
    results = run_simulated(f, lambda fn: fn(), 3)
    assert [r.tolist() for r in results] == [[0, 1, 2]] * 3


def test_simulation_catches_mismatched_gather_and_skipped_collective():
    mismatch = _module_fn(
        "def f():\n"
        "    r = get_tensor_model_parallel_rank()\n"
        "    return tensor_model_parallel_all_gather(torch.zeros(r + 1), dim=0)\n"
    )
    with pytest.raises(CollectiveMismatch, match="rank 1"):
        run_simulated(mismatch, lambda fn: fn(), 2)
    skips = _module_fn(
        "def f():\n"
        "    if get_tensor_model_parallel_rank() == 1:\n"
        "        return None\n"
        "    return tensor_model_parallel_all_gather(torch.zeros(1), dim=0)\n"
    )
    with pytest.raises(CollectiveMismatch, match="without joining"):
        run_simulated(skips, lambda fn: fn(), 2)


def test_simulation_refuses_a_non_contiguous_gather_as_nccl_does():
    """NCCL's all_gather_into_tensor refuses non-contiguous input (vLLM's base communicator hands it
    the tensor as it is); the simulated group does too, and gathers the same values made contiguous."""
    body = ("def f():\n"
            "    x = torch.arange(6.0).reshape(3, 2).t()\n"
            "    return tensor_model_parallel_all_gather(x{}, dim=0)\n")
    with pytest.raises(CollectiveMismatch, match="non-contiguous"):
        run_simulated(_module_fn(body.format("")), lambda fn: fn(), 2)
    results = run_simulated(_module_fn(body.format(".contiguous()")), lambda fn: fn(), 2)
    assert results[0].tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]] * 2


def test_simulation_refuses_functions_without_the_group_names():
    with pytest.raises(SimulationUnsupported):
        run_simulated(lambda: 1, lambda fn: fn(), 2)


def test_default_expectations_of_a_release_and_of_a_local_build_of_it():
    assert default_for_release("0.33.0") == "vllm-0.33.0"
    assert default_for_release("0.33.0+empty") == "vllm-0.33.0"  # a source tree built without kernels
    assert default_for_release("0.11.2+cpu") == "vllm-0.11.2"
    # Not a row (equal to 0.21.0, docs/release-code.md): the entries of vllm.txt whose ranges contain it
    # (tests/unit/test_expectations.py)
    assert default_for_release("0.22.0") == "vllm-0.22.0"
    assert default_for_release("0.34.0.dev3+gabc") == "vllm-0.34.0.dev3"
    assert default_for_release("not-a-version") is None


def test_the_report_table_fits_the_width():
    from vllm_vision_conformance.conformance.report import LEGEND, table_lines

    functions = ["run_dp_sharded_mrope_vision_model", "get_vit_attn_backend"]
    small = table_lines(["reference", "vllm"], [[f, "conforms", "conforms"] for f in functions], 80)
    assert LEGEND not in small and "conforms" in small[2]  # fits: the cells in full
    cells = ["conforms", "expected divergence", "diverges"]
    one = table_lines(["reference", "vllm", "my-plugin-impl"], [[f, *cells] for f in functions], 80)
    assert max(map(len, one)) <= 80 and one[-1] == LEGEND and "expected" in one[2] and "DIVERGES" in one[2]
    many = [f"candidate-{i}" for i in range(7)]
    wide = table_lines(many, [[f, *(["expected divergence"] * 7)] for f in functions], 80)
    assert max(map(len, wide)) <= 80
    assert all(any(name in line for line in wide) for name in many)  # every target, in some block
    assert sum(line.startswith("run_dp_sharded_mrope_vision_model") for line in wide) > 1  # several blocks
    assert max(map(len, table_lines(many, [[f, *(["expected divergence"] * 7)] for f in functions], 200))) > 80


def test_cli_spellings_become_the_plugins_prefixed_options():
    from vllm_vision_conformance.conformance.cli import translate

    assert translate(["--impl", "a=b", "--only=x", "-q", "-n", "2", "--junitxml", "j.xml", "-k", "--targets"]) == \
        ["--vvc-impl", "a=b", "--vvc-only=x", "--vvc-quiet", "-n", "2", "--junitxml", "j.xml", "-k", "--vvc-targets"]
