"""Data-parallel helpers under real gloo process groups (and the simulation).

Real groups: ranks forked from this process, joined by torch.distributed's
gloo backend, set up through vLLM's own initialisation when vLLM is
installed, so vLLM's real all-gather runs."""

import math
import os

import pytest
import torch

from vllm_vision_conformance.conformance import rankpool
from vllm_vision_conformance.strategies.dp import ModelSpec

from ..conftest import CANDIDATES, vllm_vision_source

# whole-suite runs in subprocesses: tox -e tests-slow (pytest -m slow)
pytestmark = pytest.mark.slow


def _per_image(spec, pixels, grids):
    model, out, start = spec.build(), [], 0
    for g in grids:
        n = math.prod(g)
        out.append(model(pixels[start:start + n], [g]))
        start += n
    return out


@pytest.fixture(scope="module")
def targets(pool_targets):
    return pool_targets


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("target", ["reference", "vllm"])
def test_real_group_matches_per_image_runs_on_every_rank(targets, target, world):
    if target not in targets:
        pytest.skip("vLLM is not importable here; the tox env 'tests' installs it")
    spec = ModelSpec("rope_3d", 2, 3, (2, 2), torch.float32, seed=3)
    # one big image and small ones: uneven loads, and at world 4 a rank with no image
    grids = [[1, 4, 8], [1, 2, 2], [2, 2, 2]]
    pixels = (torch.arange(sum(math.prod(g) for g in grids) * 2) % 5).reshape(-1, 2).float()
    pool = rankpool.get_pool(world)
    outcomes = pool.run({"target": target, "function": "run_dp_sharded_mrope_vision_model", "model": spec,
                         "args": ["<model>", pixels, grids], "kwargs": {"rope_type": "rope_3d"}})
    want = _per_image(spec, pixels, grids)
    assert len(outcomes) == world
    for o in outcomes:
        assert not o.raised, o.error
        value = o.decoded().value
        assert isinstance(value, tuple) and len(value) == len(grids)
        assert all(torch.equal(a, b) for a, b in zip(value, want)), f"rank {o.rank}"
        assert len(o.gathers) == 1 and o.gathers[0] == outcomes[0].gathers[0]
    ran = sorted(grid for o in outcomes for _, gs in o.calls for grid in gs)
    assert ran == sorted(grids)  # every image ran exactly once, somewhere
    if world == 4:
        assert any(o.calls == [] for o in outcomes)  # a rank without images did not run the model
    assert pool.how == ("vllm" if "vllm" in targets else "torch.distributed")


def test_pool_reports_a_mismatched_gather_without_crashing_and_stays_usable(targets):
    """Ranks that disagree on what they gather all raise CollectiveMismatch (no gloo abort, no garbage)."""
    import types
    import vllm_vision_conformance.reference.group as group_mod

    module = types.ModuleType("mismatch_candidate")
    exec(
        "from vllm_vision_conformance.reference.group import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size, "
        "tensor_model_parallel_all_gather\n"
        "import torch\n"
        "def run_dp_sharded_vision_model(image_input, vision_model):\n"
        "    r = get_tensor_model_parallel_rank()\n"
        "    return tensor_model_parallel_all_gather(torch.zeros(r + 1), dim=0)\n", module.__dict__)
    from vllm_vision_conformance.conformance.adapter import documented_names
    from vllm_vision_conformance.conformance.targets import Loaded

    rankpool.register_targets([Loaded("mm", "candidate", "mm", module, documented_names(module))])
    pool = rankpool.get_pool(2)
    outcomes = pool.run({"target": "mm", "function": "run_dp_sharded_vision_model",
                         "model": ModelSpec("rows", 1, 1), "args": [torch.zeros(2, 1), "<model>"]})
    assert all(o.raised and o.error.startswith("CollectiveMismatch: ") for o in outcomes), [o.error for o in outcomes]
    assert group_mod  # the reference's group module is what the candidate used
    ok = pool.run({"target": "reference", "function": "run_dp_sharded_vision_model",
                   "model": ModelSpec("rows", 1, 2, seed=1), "args": [torch.ones(3, 1), "<model>"]})
    assert all(not o.raised and o.decoded().value.shape == (3, 2) for o in ok)


@pytest.mark.parametrize("fault, says", [
    ("raise", "raised RuntimeError: rank 1 fails before the collective"),
    ("hang", "did not finish within 3 s"),
    ("skip", "without joining"),
])
def test_rank_faults_are_divergences_not_hangs(cli, fault, says, monkeypatch):
    monkeypatch.setenv("VVC_DP_FAULT", fault)
    status, report, output = cli("--impl", f"faulty={CANDIDATES / 'dp_faults.py'}", "--targets", "faulty",
                                 "--example-timeout", "3", "--profile=dev", timeout=900)
    assert status == 1, output[-3000:]
    checks = {c["check"]: c for c in report["checks"] if c["function"] == "run_dp_sharded_vision_model"}
    assert checks["property-matches-unsharded"]["status"] == "diverges"
    assert checks["property-matches-unsharded-gloo"]["status"] == "diverges"
    gloo = checks["property-matches-unsharded-gloo"]["message"]
    assert "real gloo group" in gloo
    if fault != "hang":
        assert says in gloo or says in checks["property-matches-unsharded"]["message"], gloo
    else:
        assert says in gloo, gloo
    # the group recovered: the correct mrope function, run afterwards, conforms under gloo
    mrope = report["table"]["run_dp_sharded_mrope_vision_model"]["faulty"]["status"]
    assert mrope == "conforms", output[-3000:]


# Broken copies of the installed vLLM's vision.py, each caught under both groups.
DP_MUTANTS = {
    "wrong-placeholder-dtype": [("dtype=embed_dtype,", "dtype=torch.float16,")],
    "padding-dropped": [("if current_len < max_len_per_rank:", "if False:")],
    "shard-order": [("original_order_embeddings[img_idx] = rank_embed[",
                     "original_order_embeddings[current_idx + rank_images.index(img_idx)] = rank_embed[")],
}


def test_dp_mutants_diverge_under_simulated_and_real_groups(cli, tmp_path):
    source = vllm_vision_source()
    args = []
    for name, edits in DP_MUTANTS.items():
        text = source
        for old, new in edits:
            assert old in text, f"{name}: {old!r} no longer in vision.py"
            text = text.replace(old, new)
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        args += ["--impl", f"{name}={path}"]
    only = [f"{name}.run_dp_sharded_mrope_vision_model.property-matches-per-image-rope3d{suffix}"
            for name in DP_MUTANTS for suffix in ("", "-gloo")]
    status, report, output = cli(*args, "--targets", ",".join(DP_MUTANTS), "--only", ",".join(only), timeout=900)
    assert status == 1, output[-3000:]
    for name in DP_MUTANTS:
        for suffix in ("", "-gloo"):
            check = next(c for c in report["checks"] if c["target"] == name
                         and c["check"] == "property-matches-per-image-rope3d" + suffix)
            assert check["status"] == "diverges", (name, suffix, check)
