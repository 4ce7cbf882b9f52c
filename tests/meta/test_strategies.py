"""Meta-tests of strategies/: each documented boundary class is really drawn
in the ``ci`` profile (read from Hypothesis's own statistics of ``event()``),
and bad strategy arguments are refused like Hypothesis's own."""

import pytest
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument
from hypothesis.statistics import collector

from vllm_vision_conformance.conformance import profiles

profiles.register()
from vllm_vision_conformance.conformance.session import _events as report_events
from vllm_vision_conformance.strategies import dp as s_dp, encoder_info as s_info, encoder_outputs as s_enc, feature_select as s_fs


def _events(strategy) -> dict[str, int]:
    """How many generated inputs of ``strategy`` fell in each event, under the ``ci`` profile."""
    counts: dict[str, int] = {}

    def note(stats):
        counts.update(report_events(stats))  # the count every report carries

    @settings(settings.get_profile("vvc-ci"))
    @given(strategy)
    def draw(_):
        pass

    with collector.with_value(note):
        draw()
    return counts


BOUNDARY_CLASSES = {
    "encoder info": (s_info.encoder_info_problems(), [
        "encoder: real geometry CLIP-L/336", "encoder: real geometry SigLIP-so400m/384",
        "encoder: real geometry Pixtral-12B", "encoder: real geometry Mistral-Small-3.1",
        "encoder: CLIP image_size not a multiple of patch_size",
        "encoder: Pixtral larger side == image_size", "encoder: Pixtral larger side == image_size + 1",
        "encoder: Pixtral float and exact downscale differ in tokens",
        "encoder: Pixtral side downscales to 0 pixels", "encoder: Pixtral image_size not a multiple of the token side",
    ]),
    "mrope rope_3d": (s_dp.mrope_problems("rope_3d"), [
        "grid: a patch count not a multiple of the merge factor", "mrope: a half-precision model",
        "mrope: a rank without images (half model)", "mrope: a rank without images (float model)",
        "grid: real geometry Qwen2.5-VL", "grid: real geometry Qwen3-VL",
    ]),
    "plain DP": (s_dp.plain_dp_problems(), ["plain DP: a model with non-contiguous output"]),
    "feature select": (s_fs.feature_select_strategies(), [
        "feature select: a callable whose count depends on the batch size",
    ]),
    "mrope rope_2d": (s_dp.mrope_problems("rope_2d"), ["grid: a patch count not a multiple of the merge factor"]),
    "encoder outputs": (s_enc.encoder_output_problems(), [
        "resolve: the final layer selected", "resolve: the final layer selected more than once",
        "resolve: the final layer selected, not last",
        "resolve: layer max_possible_layers - 1 selected (the penultimate), written positively",
        "resolve: a truncated encoder",
    ]),
}


@pytest.mark.parametrize("family", sorted(BOUNDARY_CLASSES))
def test_each_boundary_class_is_drawn_in_the_ci_profile(family):
    strategy, classes = BOUNDARY_CLASSES[family]
    seen = _events(strategy)
    missing = [c for c in classes if not seen.get(c)]
    assert not missing, f"{family}: never drawn in the ci profile: {missing} (drawn: {seen})"


def test_pixtral_parting_sizes_really_part():
    """The class is what it says: float and exact downscale give other token counts."""
    from vllm_vision_conformance.reference.encoder_info import PixtralHFEncoderInfo
    from types import SimpleNamespace

    limit, patch = 1540, 28
    dims = s_info._pixtral_dims(limit, patch)
    found = []

    @settings(settings.get_profile("vvc-ci"), max_examples=60)
    @given(dims)
    def collect(d):
        exact, ieee = s_info.exact_downscale(*d, limit), s_info.float_downscale(*d, limit)
        if s_info._tokens(exact, patch) != s_info._tokens(ieee, patch):
            found.append(d)

    collect()
    assert found
    info = PixtralHFEncoderInfo(SimpleNamespace(vision_config=SimpleNamespace(image_size=limit, patch_size=14),
                                                spatial_merge_size=2))
    w, h = found[0]
    assert info.get_num_image_tokens(image_width=w, image_height=h) == s_info._tokens(
        s_info.float_downscale(w, h, limit), patch)


@pytest.mark.parametrize("make", [
    lambda: s_dp.grid_lists(rope_type="rope3d"),
    lambda: s_info.vision_configs(family="vit"),
    lambda: s_info.hf_configs(family="CLIP"),
])
def test_bad_strategy_arguments_are_refused(make):
    with pytest.raises(InvalidArgument, match="is not one of"):
        make().example()
