"""The reference against facts written by hand from the documentation."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vllm_vision_conformance.reference as R
from vllm_vision_conformance.reference.group import use_group
from vllm_vision_conformance.strategies import dp as s_dp
from vllm_vision_conformance.strategies import load_balance as s_lb


def test_docstring_example_of_load_balance():
    assert R.get_load_balance_assignment([1000, 100, 200, 50], 2) == ([0, 2, 1, 3], [1, 3], [1000, 350])


def test_load_balance_refuses_bad_input():
    for sizes, gpus in (([], 0), ([1], -1), ([3, -2], 2)):
        try:
            R.get_load_balance_assignment(sizes, gpus)
        except ValueError:
            continue
        raise AssertionError(f"{sizes}, {gpus} accepted")


@settings(max_examples=150, deadline=None)
@given(s_lb.load_balance_inputs())
def test_load_balance_greedy_bound(kw):
    order, counts, loads = R.get_load_balance_assignment(**kw)
    assert sorted(order) == list(range(len(kw["sizes"])))
    assert sum(counts) == len(kw["sizes"]) and len(loads) == kw["num_gpus"]
    if kw["sizes"]:
        assert max(loads) - min(loads) <= max(kw["sizes"])


def test_selectors_and_counts():
    feats = torch.arange(2 * 4 * 3).reshape(2, 4, 3)
    assert R._get_vision_feature_selector("class")(feats).tolist() == feats[:, :1].tolist()
    assert R._get_vision_feature_selector("default")(feats).shape == (2, 3, 3)
    assert R.get_num_selected_vision_tokens(577, "default") == 576
    assert R.get_num_selected_vision_tokens(577, "class") == 1
    for bad in ("cls", None):
        try:
            R._get_vision_feature_selector(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_resolve_upstream_cases_and_post_norm():
    states = [torch.full((1, 1, 1), float(k)) for k in range(11)]  # 10 of 20 layers loaded
    out = R.resolve_visual_encoder_outputs(states, None, select_layers=[-20, -11], max_possible_layers=20)
    assert out.flatten().tolist() == [1.0, 10.0]
    plus = lambda x: x + 0.5  # noqa: E731
    full = [torch.full((1, 1, 1), float(k)) for k in range(5)]
    for last in (4, -1):
        out = R.resolve_visual_encoder_outputs(full, plus, select_layers=[1, last], max_possible_layers=4)
        assert out.flatten().tolist() == [1.0, 4.5]
    out = R.resolve_visual_encoder_outputs(full, plus, select_layers=[1, 3], max_possible_layers=4)
    assert out.flatten().tolist() == [1.0, 3.0]
    try:
        R.resolve_visual_encoder_outputs(states, None, select_layers=[-1], max_possible_layers=20)
    except IndexError:
        pass
    else:
        raise AssertionError("an unloaded layer was accepted")


def test_pos_ids_by_hand():
    ids = R.get_llm_pos_ids_for_vision(3, 0, 2, [7], torch.tensor([4]), torch.tensor([2]))
    assert ids.tolist() == [[10, 10], [3, 4], [3, 3]]
    assert ids.dtype == torch.int64
    big = R.get_llm_pos_ids_for_vision(0, 0, 1, [2**24 + 1], torch.tensor([1]), torch.tensor([1]))
    assert big[0, 0].item() == 2**24 + 1


class _Gather:
    def __init__(self, world, rank, parts):
        self.world_size, self.rank, self.parts = world, rank, parts

    def all_gather(self, tensor, dim=-1):
        return torch.cat(self.parts, dim)


@settings(max_examples=60, deadline=None)
@given(s_dp.mrope_problems("rope_3d"))
def test_reference_mrope_under_a_hand_made_group(ex):
    """Two passes by hand (not the harness' simulator): every rank equals per-image runs."""
    model = ex["model"].build()
    world, grids, pixels = ex["world_size"], ex["grid_thw_list"], ex["pixel_values"]
    inputs = []

    class Recorder:
        world_size = world

        def __init__(self, rank):
            self.rank = rank

        def all_gather(self, tensor, dim=-1):
            inputs.append(tensor)
            return torch.cat([tensor] * world, dim)

    for r in range(world):
        with use_group(Recorder(r)):
            R.run_dp_sharded_mrope_vision_model(model, pixels, grids, rope_type="rope_3d")
    assert len({(t.shape, t.dtype) for t in inputs}) <= 1
    start, want = 0, []
    for g in grids:
        n = g[0] * g[1] * g[2]
        want.append(model(pixels[start:start + n], [g]))
        start += n
    for r in range(world):
        with use_group(_Gather(world, r, inputs)):
            got = R.run_dp_sharded_mrope_vision_model(model, pixels, grids, rope_type="rope_3d")
        assert len(got) == len(want)
        assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_encoder_info_by_hand():
    from types import SimpleNamespace
    from transformers import CLIPVisionConfig, PixtralVisionConfig, SiglipVisionConfig, ViTConfig

    clip = R.get_vision_encoder_info(SimpleNamespace(vision_config=CLIPVisionConfig(image_size=336, patch_size=14)))
    assert clip.get_num_image_tokens(image_width=1, image_height=1) == 577
    sig = R.get_vision_encoder_info(SimpleNamespace(vision_config=SiglipVisionConfig(image_size=384, patch_size=14)))
    assert sig.get_num_image_tokens(image_width=1, image_height=1) == 729
    pix = R.get_vision_encoder_info(SimpleNamespace(vision_config=PixtralVisionConfig(image_size=1024, patch_size=16)))
    assert pix.get_num_image_tokens(image_width=2000, image_height=500) == 64 * 16
    assert pix.get_num_image_tokens(image_width=17, image_height=16) == 2
    try:
        R.get_vision_encoder_info(SimpleNamespace(vision_config=ViTConfig()))
    except NotImplementedError:
        pass
    else:
        raise AssertionError("ViT accepted")


def test_backend_on_this_cpu():
    assert R.get_vit_attn_backend(64, torch.float16) == "TORCH_SDPA"
    assert R.get_vit_attn_backend(64, torch.float16, attn_backend_override="TORCH_SDPA") == "TORCH_SDPA"
    try:
        R.get_vit_attn_backend(64, torch.float16, attn_backend_override="FLASH_ATTN")
    except ValueError as exc:
        assert "TORCH_SDPA" in str(exc)
    else:
        raise AssertionError("unsupported override accepted")
