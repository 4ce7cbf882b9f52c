"""Token counts and patch geometry of the CLIP, SigLIP and Pixtral encoders."""

from __future__ import annotations

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
    the class token, whatever the image's size. ``image_size`` must be a
    multiple of ``patch_size`` (else ``ValueError``)."""

    def get_patch_grid_length(self) -> int:
        image, patch = self.get_image_size(), self.get_patch_size()
        if image % patch:
            raise ValueError(
                f"CLIP image_size={image} is not a multiple of patch_size={patch}"
            )
        return image // patch

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
    ``image_size`` is first scaled down so that side equals ``image_size``
    (each side ``floor(side * image_size / larger_side)``); then it takes
    ``ceil(height / p) * ceil(width / p)`` tokens."""

    def get_patch_size(self) -> int:
        merge = getattr(self.hf_config, "spatial_merge_size", 1)
        return self.vision_config.patch_size * merge

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        limit, patch = self.get_image_size(), self.get_patch_size()
        larger = max(image_width, image_height)
        if larger > limit:
            image_width = image_width * limit // larger
            image_height = image_height * limit // larger
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
