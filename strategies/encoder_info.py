"""Strategies for ``get_vision_encoder_info``: CLIP, SigLIP and Pixtral configs
(the transformers classes) and image sizes.

Boundary classes, each drawn on purpose and announced with
:func:`hypothesis.event` (``--hypothesis-show-statistics`` lists them):

* the geometries of real models (CLIP-L/336, SigLIP-so400m/384, Pixtral-12B,
  Mistral-Small-3.1);
* CLIP image sizes that are not a multiple of the patch size;
* Pixtral images whose larger side is exactly ``image_size`` or one above;
* Pixtral sizes where the processor's floating-point downscale and exact
  integer scaling part (in the resized size, and in the token count);
* Pixtral images whose smaller side downscales to 0 pixels, and image sizes
  that are not a multiple of the token side.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from hypothesis import event, strategies as st

from ._validate import check_one_of

PATCH_SIZES = (8, 14, 16, 32)
FAMILIES = ("clip", "siglip", "pixtral")
_FAMILY_ARGS = (None, *sorted(FAMILIES))  # what ``family`` accepts, as messages list it
MAX_SIDE = 5000

# name: (family, image_size, patch_size, spatial_merge_size or None)
REAL_GEOMETRIES = {
    "Mistral-Small-3.1": ("pixtral", 1540, 14, 2),
    "Pixtral-12B": ("pixtral", 1024, 16, None),
    "SigLIP-so400m/384": ("siglip", 384, 14, None),
    "CLIP-L/336": ("clip", 336, 14, None),
}


def _config(family: str, image_size: int, patch_size: int):
    from transformers import CLIPVisionConfig, PixtralVisionConfig, SiglipVisionConfig

    cls = {"clip": CLIPVisionConfig, "siglip": SiglipVisionConfig, "pixtral": PixtralVisionConfig}[family]
    return cls(image_size=image_size, patch_size=patch_size)


def vision_configs(family: str | None = None) -> st.SearchStrategy:
    """A transformers vision config of ``family`` (None, ``"clip"``,
    ``"pixtral"`` or ``"siglip"``; drawn when None). CLIP image sizes are
    mostly multiples of the patch size, and sometimes not (the grid floors);
    SigLIP and Pixtral ones are any size from one patch."""
    check_one_of("vision_configs", "family", family, _FAMILY_ARGS)
    return _vision_configs(family)


@st.composite
def _vision_configs(draw, family: str | None):
    family = family or draw(st.sampled_from(FAMILIES))
    patch = draw(st.sampled_from(PATCH_SIZES))
    if family == "clip":
        size = patch * draw(st.integers(1, 48))
        if draw(st.integers(0, 3)) == 0:
            size += draw(st.integers(1, patch - 1))
            event("encoder: CLIP image_size not a multiple of patch_size")
        return _config("clip", size, patch)
    if family == "siglip":
        return _config("siglip", draw(st.integers(patch, 1024)), patch)
    return _config("pixtral", draw(st.integers(patch, 2048)), patch)


def hf_configs(family: str | None = None) -> st.SearchStrategy:
    """A top-level config: ``vision_config`` and, for Pixtral sometimes, a
    ``spatial_merge_size`` (as Mistral3 has); now and then a real model's
    geometry (``REAL_GEOMETRIES``). ``family``: None (any), ``"clip"``,
    ``"pixtral"`` or ``"siglip"``."""
    check_one_of("hf_configs", "family", family, _FAMILY_ARGS)
    return _hf_configs(family)


@st.composite
def _hf_configs(draw, family: str | None):
    real = [name for name, geometry in REAL_GEOMETRIES.items() if family in (None, geometry[0])]
    if draw(st.integers(0, 3)) == 0:
        name = draw(st.sampled_from(real))
        fam, size, patch, merge = REAL_GEOMETRIES[name]
        event(f"encoder: real geometry {name}")
        top = SimpleNamespace(vision_config=_config(fam, size, patch))
        if merge is not None:
            top.spatial_merge_size = merge
        return top
    vision = draw(_vision_configs(family))
    top = SimpleNamespace(vision_config=vision)
    # three in four Pixtral problems at its downscale boundaries (the rarer classes need the draws)
    if type(vision).__name__ == "PixtralVisionConfig" and draw(st.integers(0, 3)) > 0:
        top.spatial_merge_size = draw(st.integers(1, 3))
    return top


def image_dims() -> st.SearchStrategy[tuple[int, int]]:
    """``(width, height)`` from 1 pixel to ``MAX_SIDE`` (5000), well above any
    encoder's image size. No arguments."""
    return st.tuples(st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE))


def exact_downscale(width: int, height: int, limit: int) -> tuple[int, int]:
    """Exact integer scaling of the larger side to ``limit`` (not the contract:
    the strategy's foil, to find where float arithmetic differs from it)."""
    larger = max(width, height)
    return (width * limit // larger, height * limit // larger) if larger > limit else (width, height)


def float_downscale(width: int, height: int, limit: int) -> tuple[int, int]:
    """transformers' ``PixtralImageProcessor`` downscale (ground truth)."""
    ratio = max(width / limit, height / limit)
    return (math.floor(width / ratio), math.floor(height / ratio)) if ratio > 1 else (width, height)


def _tokens(size: tuple[int, int], patch: int) -> int:
    return -(-size[0] // patch) * -(-size[1] // patch)


def _token_parting(limit: int, patch: int, start: int, wide: bool) -> tuple[int, int] | None:
    """The first size from larger side ``start`` on where float and exact
    downscale give other token counts. They part when ``other * limit /
    larger`` is an exact integer that the float division lands just below;
    the token count changes with it when that integer is one above a multiple
    of the patch. So only the sides ``other = t * larger / limit`` with
    ``t = k * patch + 1`` are tried."""
    targets = range(1, limit + 1, patch)
    span = MAX_SIDE - limit
    for step in range(min(span, 4000)):
        larger = limit + 1 + (start - limit - 1 + step) % span
        for t in targets:
            if t * larger % limit == 0:
                other = t * larger // limit
                dims = (larger, other) if wide else (other, larger)
                if _tokens(exact_downscale(*dims, limit), patch) != _tokens(float_downscale(*dims, limit), patch):
                    return dims
    return None


@st.composite
def _pixtral_dims(draw, limit: int, patch: int) -> tuple[int, int]:
    """Sizes at Pixtral's downscale boundaries: larger side ``limit`` or
    ``limit + 1``, or sizes where the float downscale parts from exact scaling
    (in tokens where such a size exists, else in size)."""
    kind = draw(st.sampled_from(["at-limit", "above-limit", "float-parts", "float-parts-tokens"]))
    if kind == "float-parts-tokens" and limit + 1 <= MAX_SIDE:
        found = _token_parting(limit, patch, draw(st.integers(limit + 1, MAX_SIDE)), draw(st.booleans()))
        if found is not None:
            event("encoder: Pixtral float and exact downscale differ in tokens")
            return found
        kind = "float-parts"
    if kind != "float-parts" or limit + 1 > MAX_SIDE:
        larger = limit if kind == "at-limit" else min(limit + 1, MAX_SIDE)
        other = draw(st.integers(1, larger))
        event("encoder: Pixtral larger side == image_size" + ("" if larger == limit else " + 1"))
        return (larger, other) if draw(st.booleans()) else (other, larger)
    larger = draw(st.integers(limit + 1, MAX_SIDE))
    start = draw(st.integers(1, larger))
    wide = draw(st.booleans())
    size_only = None
    for step in range(larger):  # the first size at or after `start` where they part
        other = (start - 1 + step) % larger + 1
        dims = (larger, other) if wide else (other, larger)
        exact, ieee = exact_downscale(*dims, limit), float_downscale(*dims, limit)
        if exact != ieee:
            if _tokens(exact, patch) != _tokens(ieee, patch):
                event("encoder: Pixtral float and exact downscale differ in tokens")
                return dims
            size_only = size_only or dims
            if step > 256:
                break
    if size_only is not None:
        event("encoder: Pixtral float and exact downscale differ in size only")
        return size_only
    return (larger, start) if wide else (start, larger)


@st.composite
def encoder_info_problems(draw) -> dict:
    """Keyword arguments ``hf_config``, ``image_width``, ``image_height`` for
    an encoder info: any family (three in four Pixtral problems at its
    downscale boundaries), sizes from :func:`image_dims`. No arguments."""
    hf_config = draw(hf_configs())
    vision = hf_config.vision_config
    # three in four Pixtral problems at its downscale boundaries (the rarer classes need the draws)
    if type(vision).__name__ == "PixtralVisionConfig" and draw(st.integers(0, 3)) > 0:
        patch = vision.patch_size * getattr(hf_config, "spatial_merge_size", 1)
        width, height = draw(_pixtral_dims(vision.image_size, patch))
    else:
        width, height = draw(image_dims())
    if type(vision).__name__ == "PixtralVisionConfig":
        if 0 in float_downscale(width, height, vision.image_size):
            event("encoder: Pixtral side downscales to 0 pixels")
        if vision.image_size % (vision.patch_size * getattr(hf_config, "spatial_merge_size", 1)):
            event("encoder: Pixtral image_size not a multiple of the token side")
    return {"hf_config": hf_config, "image_width": width, "image_height": height}
