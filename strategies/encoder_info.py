"""Strategies for ``get_vision_encoder_info``: CLIP, SigLIP and Pixtral configs
(the transformers classes) and image sizes."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import strategies as st

PATCH_SIZES = (8, 14, 16, 32)


@st.composite
def vision_configs(draw, family: str | None = None):
    """A transformers vision config of ``family`` ("clip", "siglip",
    "pixtral"; drawn when None). CLIP image sizes are multiples of the patch
    size (the encoder's precondition); SigLIP and Pixtral ones need not be."""
    from transformers import CLIPVisionConfig, PixtralVisionConfig, SiglipVisionConfig

    family = family or draw(st.sampled_from(["clip", "siglip", "pixtral"]))
    patch = draw(st.sampled_from(PATCH_SIZES))
    if family == "clip":
        return CLIPVisionConfig(image_size=patch * draw(st.integers(1, 48)), patch_size=patch)
    if family == "siglip":
        return SiglipVisionConfig(image_size=draw(st.integers(patch, 1024)), patch_size=patch)
    return PixtralVisionConfig(image_size=draw(st.integers(patch, 2048)), patch_size=patch)


@st.composite
def hf_configs(draw, family: str | None = None):
    """A top-level config: ``vision_config`` and, for Pixtral sometimes, a
    ``spatial_merge_size`` (as Mistral3 has)."""
    vision = draw(vision_configs(family))
    top = SimpleNamespace(vision_config=vision)
    if type(vision).__name__ == "PixtralVisionConfig" and draw(st.booleans()):
        top.spatial_merge_size = draw(st.integers(1, 3))
    return top


def image_dims() -> st.SearchStrategy[tuple[int, int]]:
    """``(width, height)`` from 1 pixel to well above any encoder's image size."""
    return st.tuples(st.integers(1, 5000), st.integers(1, 5000))


@st.composite
def encoder_info_problems(draw) -> dict:
    width, height = draw(image_dims())
    return {"hf_config": draw(hf_configs()), "image_width": width, "image_height": height}
