"""Token counts and patch geometry of the CLIP, SigLIP and Pixtral encoders."""

from __future__ import annotations

import math
from typing import Any, Protocol


class VisionLanguageConfig(Protocol):
    """Anything with a ``vision_config`` (a transformers vision config)."""

    @property
    def vision_config(self) -> Any: ...


class VisionEncoderInfo:
    """The four answers a multimodal processor needs from an encoder config."""

    def __init__(self, hf_config: VisionLanguageConfig) -> None:
        self.hf_config = hf_config
        self.vision_config = hf_config.vision_config

    def get_image_size(self) -> int:
        """The encoder's square input side, in pixels (``vision_config.image_size``)."""
        return self.vision_config.image_size

    def get_patch_size(self) -> int:
        """The side, in pixels, of the square that becomes one token."""
        return self.vision_config.patch_size

    def get_patch_grid_length(self) -> int:
        """Patches along one side of a full-size image."""
        return self.get_image_size() // self.get_patch_size()

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        raise NotImplementedError


class CLIPEncoderInfo(VisionEncoderInfo):
    """CLIP resizes every image to ``image_size``: ``grid ** 2`` patches plus
    the class token, whatever the image's size, with
    ``grid = image_size // patch_size``.

    When ``image_size`` is not a multiple of ``patch_size`` the grid is
    floored, as in SigLIP: transformers' ``CLIPVisionEmbeddings`` builds
    ``(image_size // patch_size) ** 2 + 1`` position embeddings and its
    stride-``patch_size`` convolution returns that many rows (a 30/7 model
    gives 17 tokens), so that is the number of tokens the encoder really
    yields. Refusing such a config would reject a model transformers runs."""

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        return self.get_patch_grid_length() ** 2 + 1


class SiglipEncoderInfo(VisionEncoderInfo):
    """SigLIP resizes every image to ``image_size``: ``grid ** 2`` patches, no
    class token (``grid = image_size // patch_size``)."""

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        return self.get_patch_grid_length() ** 2


class PixtralHFEncoderInfo(VisionEncoderInfo):
    """Pixtral keeps the aspect ratio. The token side is
    ``patch_size * spatial_merge_size`` (``spatial_merge_size`` read from the
    top-level config, 1 when absent). An image whose larger side exceeds
    ``image_size`` is first scaled down, in floating point as transformers'
    ``PixtralImageProcessor`` does: ``ratio = max(width / image_size,
    height / image_size)`` (Python floats) and, when ``ratio > 1``, each side
    becomes ``floor(side / ratio)``. Then it takes
    ``ceil(height / p) * ceil(width / p)`` tokens.

    The float arithmetic is the contract on purpose: it is what the processor
    that prepares the pixels computes, so it is the number of rows the encoder
    really returns. Exact integer scaling (``side * image_size // larger``)
    differs on some sizes (e.g. 1540/14 with merge 2 and a 1971x2044 image:
    2915 tokens in transformers, 2970 exactly), because ``larger / ratio`` can
    fall just below ``image_size``."""

    def get_patch_size(self) -> int:
        merge = getattr(self.hf_config, "spatial_merge_size", 1)
        return self.vision_config.patch_size * merge

    def get_patch_grid_length(self) -> int:
        """Tokens along one side of a full-size image: ``ceil(image_size / p)``.
        The processor pads an image to whole tokens, so a full-size image
        whose side is not a multiple of ``p`` has one more, partial, token a
        side (30/7: 5 a side, as ``PixtralVisionModel`` returns 25 rows)."""
        return -(-self.get_image_size() // self.get_patch_size())

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        limit, patch = self.get_image_size(), self.get_patch_size()
        ratio = max(image_width / limit, image_height / limit)
        if ratio > 1:
            width, height = math.floor(image_width / ratio), math.floor(image_height / ratio)
            if not (width and height):
                raise ValueError(
                    f"a {image_width}x{image_height} image downscales to {width}x{height} for "
                    f"image_size={limit}: a side of 0 pixels cannot be encoded"
                )
            image_width, image_height = width, height
        return -(-image_height // patch) * -(-image_width // patch)


def get_vision_encoder_info(hf_config: VisionLanguageConfig) -> VisionEncoderInfo:
    """The encoder-info object for ``hf_config.vision_config``.

    Contract: a ``transformers`` ``CLIPVisionConfig`` gives
    :class:`CLIPEncoderInfo`, a ``SiglipVisionConfig``
    :class:`SiglipEncoderInfo`, a ``PixtralVisionConfig``
    :class:`PixtralHFEncoderInfo` (subclasses included); any other vision
    config raises ``NotImplementedError`` naming its type.
    """
    from transformers import CLIPVisionConfig, PixtralVisionConfig, SiglipVisionConfig

    vision_config = hf_config.vision_config
    for config_cls, info_cls in (
        (CLIPVisionConfig, CLIPEncoderInfo),
        (PixtralVisionConfig, PixtralHFEncoderInfo),
        (SiglipVisionConfig, SiglipEncoderInfo),
    ):
        if isinstance(vision_config, config_cls):
            return info_cls(hf_config)
    raise NotImplementedError(f"Unsupported vision config: {type(vision_config)}")
