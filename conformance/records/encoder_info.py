"""Records of get_vision_encoder_info (reference/encoder_info.py, strategies/encoder_info.py)."""

from __future__ import annotations

from types import SimpleNamespace

from ...strategies import encoder_info as s_info
from ..checks import Check, Ctx, FunctionSpec, both_returned, compare_outcomes, describe, raises
from ..plain import Outcome


ANSWERS = ("get_image_size()", "get_patch_size()", "get_patch_grid_length()", "get_num_image_tokens(...)")


def _info_probe(view, ex: dict) -> dict:
    got = view.call(view.function, {"hf_config": ex["hf_config"]})
    if got.exc is not None:
        return {"info": got}
    info = got.value
    size = {"image_width": ex["image_width"], "image_height": ex["image_height"]}
    return {"info": Outcome(value=None), "answers": [
        view.invoke(lambda: info.get_image_size()),
        view.invoke(lambda: info.get_patch_size()),
        view.invoke(lambda: info.get_patch_grid_length()),
        view.invoke(lambda: info.get_num_image_tokens(**size)),
    ]}


def _info_agrees(ctx: Ctx, ex: dict, got: dict, want: dict) -> None:
    if not both_returned(ctx, want["info"], got["info"], ex, "an encoder info"):
        return
    for label, w, g in zip(ANSWERS, want["answers"], got["answers"]):
        compare_outcomes(ctx, w, g, ex, path=label)


def _info_case(answers):
    def judge(ctx: Ctx, ex: dict, got: dict, _) -> None:
        if got["info"].exc is not None:
            raise ctx.diverge(describe(got["info"]), ex)
        for label, want, outcome in zip(ANSWERS, answers, got["answers"]):
            compare_outcomes(ctx, Outcome(value=want), outcome, ex, path=label)
    return judge


def _hf(config_name, **kw):
    def build():
        import transformers
        top = {k: kw[k] for k in kw if k == "spatial_merge_size"}
        vision = {k: v for k, v in kw.items() if k != "spatial_merge_size"}
        return SimpleNamespace(vision_config=getattr(transformers, config_name)(**vision), **top)
    return build


ENCODER_INFO = FunctionSpec("get_vision_encoder_info", "CLIP / SigLIP / Pixtral token geometry", [
    Check("property-agrees", "the four answers equal the reference's for drawn configs and image sizes",
          _info_probe, _info_agrees, strategy=s_info.encoder_info_problems(), needs_reference=True,
          ref_probe=_info_probe),
    Check("case-clip-336", "CLIP 336/14: 24 patches a side, 577 tokens",
          _info_probe, _info_case([336, 14, 24, 577]),
          example=lambda: {"hf_config": _hf("CLIPVisionConfig", image_size=336, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
    Check("case-siglip-384", "SigLIP 384/14: 27 a side, 729 tokens",
          _info_probe, _info_case([384, 14, 27, 729]),
          example=lambda: {"hf_config": _hf("SiglipVisionConfig", image_size=384, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
    Check("case-pixtral-wide", "Pixtral 1024/16, a 2000x500 image scales to 1024x256: 64 x 16 tokens",
          _info_probe, _info_case([1024, 16, 64, 1024]),
          example=lambda: {"hf_config": _hf("PixtralVisionConfig", image_size=1024, patch_size=16)(),
                           "image_width": 2000, "image_height": 500}),
    Check("case-pixtral-merge", "Pixtral with spatial_merge_size 2: 32-pixel tokens; 100x50 -> 4 x 2 tokens",
          _info_probe, _info_case([1024, 32, 32, 8]),
          example=lambda: {"hf_config": _hf("PixtralVisionConfig", image_size=1024, patch_size=16,
                                            spatial_merge_size=2)(),
                           "image_width": 100, "image_height": 50}),
    raises("error-unsupported-config", "a ViT config is not supported: NotImplementedError",
           lambda: {"hf_config": _hf("ViTConfig")()}, NotImplementedError),
    Check("case-clip-indivisible", "CLIP 225/14 (not a multiple): the grid floors to 16, 257 tokens, as in "
          "transformers' CLIPVisionEmbeddings",
          _info_probe, _info_case([225, 14, 16, 257]),
          example=lambda: {"hf_config": _hf("CLIPVisionConfig", image_size=225, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
])

RECORDS = [ENCODER_INFO]
