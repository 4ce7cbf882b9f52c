"""Ground truth for the vision helpers, computed by transformers itself.

Nothing here is derived from the reference or from vLLM: every expected value
comes from running transformers' own code (image processors, tiny randomly
initialised vision models, Mistral3's patch merger, the Qwen2-VL / Qwen2.5-VL /
Qwen2.5-Omni position code) and counting what it really produces. Both the
reference and, where it imports, vLLM are then compared with that.

Known disagreements are ``xfail(strict=True)`` with the exact reason, so a fix
(or a regression) on either side turns them into failures that ask for the
marker to be updated.

Models are tiny (hidden 16, one layer, two heads) and built once per process
(``functools.lru_cache``), so the file runs the same under ``-n 2``.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vllm_vision_conformance import reference

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    CLIPVisionConfig,
    CLIPVisionModel,
    Mistral3Config,
    PixtralVisionConfig,
    PixtralVisionModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)
from transformers.models.mistral3.modeling_mistral3 import Mistral3PatchMerger  # noqa: E402

TINY = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is many times faster than two on a busy 2-core machine
    (no spinning workers). Restored after each test of this module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- #
# implementations under comparison
# --------------------------------------------------------------------------- #

IMPLS = ("reference", "vllm")


class ImplRaised(Exception):
    """The implementation under test raised (kept apart from a failed comparison)."""


def _vllm_vision():
    pytest.importorskip("vllm")
    from vllm.model_executor.models import vision

    return vision


def _encoder_info_fn(impl):
    if impl == "reference":
        return reference.get_vision_encoder_info
    return _vllm_vision().get_vision_encoder_info


def _pos_ids_fn(impl):
    if impl == "reference":
        return reference.get_llm_pos_ids_for_vision
    vision = _vllm_vision()
    fn = getattr(vision, "get_llm_pos_ids_for_vision", None)
    if fn is None:
        import vllm

        pytest.skip(f"vLLM {vllm.__version__} has no get_llm_pos_ids_for_vision in vision.py "
                    "(present in 0.11.1-0.27.0)")
    return fn


def _answers(impl, hf_config, sizes=()):
    """(image_size, patch_size, grid_length, {(w, h): tokens}) from ``impl``; what it raises comes
    out as ImplRaised."""
    try:
        info = _encoder_info_fn(impl)(hf_config)
        geometry = (info.get_image_size(), info.get_patch_size(), info.get_patch_grid_length())
        tokens = {(w, h): info.get_num_image_tokens(image_width=w, image_height=h)
                  for w, h in sizes}
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        raise ImplRaised(f"{impl} raised {type(exc).__name__}: {exc}") from exc
    return (*geometry, tokens)


def _params(cases, ids, xfails=None):
    """Cross ``cases`` with IMPLS; ``xfails[(impl, id)] = (reason, raises)`` marks known
    divergences (strict)."""
    xfails = xfails or {}
    out = []
    for impl in IMPLS:
        for case, cid in zip(cases, ids):
            marks = []
            if (impl, cid) in xfails:
                reason, raises = xfails[(impl, cid)]
                marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=raises))
            out.append(pytest.param(impl, *case, id=f"{impl}-{cid}", marks=marks))
    return out


# --------------------------------------------------------------------------- #
# ground truth: transformers' processors and tiny models
# --------------------------------------------------------------------------- #


def _image(width, height):
    """A deterministic uint8 HWC image (passed with input_data_format='channels_last')."""
    y, x = np.ogrid[:height, :width]
    img = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):
        img[..., c] = (x * (3 + c) + y * (5 + 2 * c)) % 251
    return img


def _processor_classes(base):
    """{class: name} of transformers' distinct image processors for ``base``: in transformers 5
    the torchvision one (``base``) and the PIL one (``basePil``); before, the slow one and
    ``baseFast``."""
    seen = {}
    for name in (base, base + "Pil", base + "Fast"):
        if len(seen) == 2:
            break  # in 5.x "...Fast" is a deprecated alias of ``base``
        cls = getattr(transformers, name, None)
        if cls is not None:
            seen.setdefault(cls, name)
    return seen


CLIP_PROCS = _processor_classes("CLIPImageProcessor")
SIGLIP_PROCS = _processor_classes("SiglipImageProcessor")
PIXTRAL_PROCS = _processor_classes("PixtralImageProcessor")
PIXTRAL_BACKENDS = sorted(PIXTRAL_PROCS.values())


def _proc(name):
    return getattr(transformers, name)


@functools.lru_cache(maxsize=None)
def _model(kind, image_size, patch_size):
    torch.manual_seed(0)
    cfg_cls, model_cls = {
        "clip": (CLIPVisionConfig, CLIPVisionModel),
        "siglip": (SiglipVisionConfig, SiglipVisionModel),
        "pixtral": (PixtralVisionConfig, PixtralVisionModel),
    }[kind]
    cfg = cfg_cls(image_size=image_size, patch_size=patch_size, **TINY)
    cfg._attn_implementation = "eager"
    return model_cls(cfg).eval()


@functools.lru_cache(maxsize=None)
def _merger(image_size, patch_size, merge):
    torch.manual_seed(0)
    return Mistral3PatchMerger(_mistral3_config(image_size, patch_size, merge)).eval()


def _mistral3_config(image_size, patch_size, merge, **vision):
    vc = PixtralVisionConfig(image_size=image_size, patch_size=patch_size, **{**TINY, **vision})
    return Mistral3Config(vision_config=vc, spatial_merge_size=merge)


@functools.lru_cache(maxsize=None)
def _fixed_size_rows(kind, proc_name, image_size, patch_size, sizes):
    """{(w, h): (pixel side fed to the model, rows of last_hidden_state)} for CLIP / SigLIP; the
    processed images (all image_size square) go through the model as one batch."""
    if kind == "clip":
        proc = _proc(proc_name)(size={"shortest_edge": image_size},
                                crop_size={"height": image_size, "width": image_size})
    else:
        proc = _proc(proc_name)(size={"height": image_size, "width": image_size})
    pixels = [proc(images=_image(w, h), return_tensors="pt",
                   input_data_format="channels_last")["pixel_values"] for w, h in sizes]
    side = pixels[0].shape[-1]
    assert all(p.shape[0] == 1 and p.shape[-1] == p.shape[-2] == side for p in pixels)
    with torch.no_grad():
        out = _model(kind, image_size, patch_size)(pixel_values=torch.cat(pixels))
    rows = out.last_hidden_state.shape[1]
    return {size: (pixels[0].shape[-1], rows) for size in sizes}


def _pixtral_processed(proc_name, image_size, token_side, width, height):
    """PixtralImageProcessor's output: pixel_values and image_sizes (rows, cols in pixels)."""
    proc = _proc(proc_name)(size={"longest_edge": image_size},
                            patch_size={"height": token_side, "width": token_side})
    out = proc(images=_image(width, height), return_tensors="pt", input_data_format="channels_last")
    h, w = (int(v) for v in out["image_sizes"][0])
    assert tuple(out["pixel_values"].shape[-2:]) == (h, w)
    return out["pixel_values"], out["image_sizes"], (h, w)


@functools.lru_cache(maxsize=None)
def _pixtral_processor_tokens(proc_name, image_size, patch_size, merge, width, height):
    """Tokens from the processor's output size alone: (H / p) * (W / p), p = patch * merge."""
    p = patch_size * merge
    _, _, (h, w) = _pixtral_processed(proc_name, image_size, p, width, height)
    assert h % p == 0 and w % p == 0
    return (h // p) * (w // p)


@functools.lru_cache(maxsize=None)
def _pixtral_rows(proc_name, image_size, patch_size, merge, width, height):
    """Real rows: PixtralVisionModel's last_hidden_state, then Mistral3PatchMerger when merge > 1.

    None where this transformers' model cannot encode the processed image at all: up to 5.16
    its rotary table holds image_size // patch_size positions a side, and for an image_size that
    is not a multiple of the token side the processor pads a full-size image past it (IndexError).
    """
    token_side = patch_size * merge
    pixels, sizes, (h, w) = _pixtral_processed(proc_name, image_size, token_side, width, height)
    model = _model("pixtral", image_size, patch_size)
    with torch.no_grad():
        try:
            feats = model(pixel_values=pixels, image_sizes=sizes)
        except IndexError:
            if max(h, w) // patch_size > image_size // patch_size:
                return None
            raise
        feats = feats.last_hidden_state
        if merge > 1:
            feats = _merger(image_size, patch_size, merge)(feats.squeeze(0), sizes).unsqueeze(0)
    return feats.shape[1]


def _pixtral_truth(proc_name, image_size, patch_size, merge, width, height, model=True):
    """The processor's (H / p) * (W / p); with ``model``, checked against the real rows too."""
    tokens = _pixtral_processor_tokens(proc_name, image_size, patch_size, merge, width, height)
    if model:
        rows = _pixtral_rows(proc_name, image_size, patch_size, merge, width, height)
        assert rows is None or rows == tokens, (rows, tokens)
    return tokens


def _root(vision_config):
    """An hf_config: any object with .vision_config (merge > 1 uses a real Mistral3Config)."""
    return SimpleNamespace(vision_config=vision_config)


# --------------------------------------------------------------------------- #
# CLIP and SigLIP
# --------------------------------------------------------------------------- #

# (kind, image_size, patch_size, tokens transformers' model returns - written here only as a
# cross-check of the harness; the comparison itself uses the counted rows)
FIXED = [
    ("clip", 30, 7, 17),     # not a multiple: 4 x 4 grid + class token
    ("clip", 32, 8, 17),
    ("clip", 24, 4, 37),
    ("clip", 33, 8, 17),     # not a multiple
    ("clip", 336, 14, 577),  # CLIP-L/336
    ("siglip", 30, 7, 16),   # not a multiple
    ("siglip", 32, 4, 64),
    ("siglip", 27, 5, 25),   # not a multiple
    ("siglip", 384, 14, 729),  # SigLIP-so400m/384 (384 = 27 * 14 + 6)
]
FIXED_IDS = [f"{k}-{s}-{p}" for k, s, p, _ in FIXED]
IMAGE_SIZES = [(1, 1), (7, 50), (80, 50), (30, 30), (333, 31)]

_VLLM_CLIP_ASSERT = (
    "vLLM CLIPEncoderInfo.get_patch_grid_length asserts image_size % patch_size == 0 (bare "
    "AssertionError, so get_num_image_tokens fails too), where transformers' CLIPVisionModel "
    "floors the grid and runs: {s}/{p} gives {n} rows"
)
FIXED_XFAILS = {
    ("vllm", f"clip-{s}-{p}"): (_VLLM_CLIP_ASSERT.format(s=s, p=p, n=n), ImplRaised)
    for k, s, p, n in FIXED if k == "clip" and s % p
}


@pytest.mark.parametrize("impl,kind,image_size,patch_size,expected_rows",
                         _params(FIXED, FIXED_IDS, FIXED_XFAILS))
def test_clip_siglip_against_model_rows(impl, kind, image_size, patch_size, expected_rows):
    """Ground truth: transformers' CLIPImageProcessor / SiglipImageProcessor (both backends where
    there are two) resize the image to image_size, and CLIPVisionModel / SiglipVisionModel return
    ``last_hidden_state.shape[1]`` rows (CLIP with its class token); the grid is the side of the
    patch-embedding convolution's output, the patch size its stride."""
    procs = CLIP_PROCS if kind == "clip" else SIGLIP_PROCS
    counted = {}
    for proc_name in procs.values():
        for size, (side, rows) in _fixed_size_rows(kind, proc_name, image_size, patch_size,
                                                   tuple(IMAGE_SIZES)).items():
            assert side == image_size
            counted.setdefault(size, set()).add(rows)
    assert all(len(r) == 1 for r in counted.values()), counted
    counted = {k: r.pop() for k, r in counted.items()}
    assert set(counted.values()) == {expected_rows}  # same for every input size

    model = _model(kind, image_size, patch_size)
    conv = getattr(model, "vision_model", model).embeddings.patch_embedding
    with torch.no_grad():
        grid = conv(torch.zeros(1, 3, image_size, image_size)).shape[-1]
    assert expected_rows == grid * grid + (kind == "clip")

    vc = model.config
    got_size, got_patch, got_grid, got_tokens = _answers(impl, _root(vc), IMAGE_SIZES)
    assert (got_size, got_patch, got_grid) == (image_size, conv.stride[0], grid)
    assert got_tokens == counted


# --------------------------------------------------------------------------- #
# Pixtral (merge 1) and Mistral3 (Pixtral encoder + patch merger)
# --------------------------------------------------------------------------- #


def _pixtral_sizes(s):
    """Image sizes (width, height) around the limit s."""
    return [
        (s // 2 - 1, s // 3),   # below
        (s, s // 2),            # larger side exactly s
        (s // 3, s + 1),        # larger side s + 1
        (2 * s + 3, s + 5),     # above on both sides
        (s, s),                 # full size
        (4 * s, 4),             # extreme aspect ratio (smaller side 1 after downscaling)
        (5, 3 * s),             # extreme aspect ratio (smaller side 1 after downscaling)
    ]


# (image_size, patch_size, merge, extra (width, height) sizes)
# The extra sizes are ones where transformers' float downscale (ratio = max(w/S, h/S),
# floor(side/ratio)) and exact integer scaling (side * S // larger) give different counts.
PIXTRAL_MODEL_SETTINGS = [
    (64, 4, 1, [(7, 1), (1, 7)]),
    (40, 4, 1, [(55, 88), (88, 55)]),        # float 60 tokens, exact 70
    (56, 8, 1, [(63, 72)]),                  # float 42, exact 49
    (30, 7, 1, [(23, 46), (35, 70)]),        # not a multiple; float 10, exact 15
    (48, 4, 2, [(1, 1), (9, 8)]),
    (40, 2, 2, [(55, 88)]),                  # merge 2, token side 4: float 60, exact 70
    (512, 16, 1, [(2, 692), (692, 2)]),      # extreme aspect ratio 2 x 692 -> 1 x 512 pixels
]
PIXTRAL_MODEL_IDS = [f"{s}-{p}-m{m}" for s, p, m, _ in PIXTRAL_MODEL_SETTINGS]


def _pixtral_hf_config(image_size, patch_size, merge):
    if merge == 1:
        return _root(PixtralVisionConfig(image_size=image_size, patch_size=patch_size, **TINY))
    return _mistral3_config(image_size, patch_size, merge)  # spatial_merge_size at the top level


@pytest.mark.parametrize("impl,image_size,patch_size,merge,extra",
                         _params([c[:4] for c in PIXTRAL_MODEL_SETTINGS], PIXTRAL_MODEL_IDS))
@pytest.mark.parametrize("backend", PIXTRAL_BACKENDS)
def test_pixtral_tokens_against_model_rows(backend, impl, image_size, patch_size, merge, extra):
    """Ground truth: transformers' PixtralImageProcessor (``backend``; patch_size = patch * merge,
    size={"longest_edge": image_size}) prepares the pixels, PixtralVisionModel's
    ``last_hidden_state.shape[1]`` counts the rows, and for merge > 1 transformers'
    ``Mistral3PatchMerger`` (transformers/models/mistral3) merges them; each count must also equal
    the processor's (H / p) * (W / p)."""
    sizes = _pixtral_sizes(image_size) + list(extra)
    truth = {}
    for w, h in sizes:
        truth[(w, h)] = _pixtral_truth(backend, image_size, patch_size, merge, w, h)
    *_, got = _answers(impl, _pixtral_hf_config(image_size, patch_size, merge), sizes)
    assert got == truth


def test_pixtral_harness_sees_the_float_downscale():
    """Ground truth: transformers' PixtralImageProcessor (each backend). Pins the inputs chosen
    above as float-vs-exact cases: 55x88 at 40/4 is processed to 24x40 pixels (ratio 88/40 = 2.2,
    55 / 2.2 = 24.999..., floored to 24), i.e. 6 x 10 = 60 tokens, not the 7 x 10 = 70 of exact
    integer scaling (55 * 40 // 88 = 25)."""
    for backend in PIXTRAL_BACKENDS:
        _, _, hw = _pixtral_processed(backend, 40, 4, 55, 88)
        assert hw == (40, 24)
        assert _pixtral_rows(backend, 40, 4, 1, 55, 88) == 60


# Real geometries, processor-only (the models are too big to run here), every backend.
# (image_size, patch_size, merge, width, height, expected tokens written for the record)
PIXTRAL_REAL = [
    (1540, 14, 2, 1971, 2044, 2915),  # Mistral-Small-3.1: processed to 1540 x 1484 -> 55 x 53
    (1540, 14, 2, 1540, 1540, 3025),
    (1540, 14, 2, 800, 600, 29 * 22),
    (1024, 16, 1, 1024, 1024, 4096),  # Pixtral-12B
    (1024, 16, 1, 1500, 800, 64 * 35),
    (1024, 16, 1, 1025, 77, 64 * 5),
]
PIXTRAL_REAL_IDS = [f"{s}-{p}-m{m}-{w}x{h}" for s, p, m, w, h, _ in PIXTRAL_REAL]


@pytest.mark.parametrize("impl,image_size,patch_size,merge,width,height,expected",
                         _params(PIXTRAL_REAL, PIXTRAL_REAL_IDS))
def test_pixtral_real_geometries(impl, image_size, patch_size, merge, width, height, expected):
    """Ground truth: transformers' PixtralImageProcessor output size, (H / p) * (W / p) with
    p = patch * merge, for each backend; for Mistral-Small-3.1 (1540/14, merge 2) the rows of
    transformers' Mistral3PatchMerger run on features of the processed grid."""
    truth = {_pixtral_processor_tokens(b, image_size, patch_size, merge, width, height)
             for b in PIXTRAL_BACKENDS}
    assert truth == {expected}
    if merge > 1:
        p = patch_size * merge
        _, sizes, (h, w) = _pixtral_processed(PIXTRAL_BACKENDS[0], image_size, p, width, height)
        feats = torch.zeros((h // patch_size) * (w // patch_size), TINY["hidden_size"])
        with torch.no_grad():
            assert _merger(image_size, patch_size, merge)(feats, sizes).shape[0] == expected
    *_, got = _answers(impl, _pixtral_hf_config(image_size, patch_size, merge), [(width, height)])
    assert got == {(width, height): expected}


# (image_size, patch_size, merge): geometry of a full-size (image_size x image_size) image.
PIXTRAL_GEOMETRY = [(64, 4, 1), (1024, 16, 1), (1540, 14, 2), (48, 4, 2), (30, 7, 1), (40, 4, 3)]
PIXTRAL_GEOMETRY_IDS = [f"{s}-{p}-m{m}" for s, p, m in PIXTRAL_GEOMETRY]
_GRID_REASON = (
    "get_patch_grid_length() floors image_size / (patch * merge) ({s} // {t} = {f}), but "
    "transformers' PixtralImageProcessor pads a full-size {s}x{s} image up to {c} tokens a side "
    "(ceil) and PixtralVisionModel (transformers >= 5.17) returns {c}x{c} rows, so the grid "
    "length disagrees with get_num_image_tokens(image_width={s}, image_height={s}) = {c2}"
)
PIXTRAL_GEOMETRY_XFAILS = {
    (impl, f"{s}-{p}-m{m}"): (
        _GRID_REASON.format(s=s, t=p * m, f=s // (p * m), c=-(-s // (p * m)),
                            c2=(-(-s // (p * m))) ** 2),
        AssertionError,
    )
    for impl in IMPLS if impl != "reference" for s, p, m in PIXTRAL_GEOMETRY if s % (p * m)
}


@pytest.mark.parametrize("impl,image_size,patch_size,merge",
                         _params(PIXTRAL_GEOMETRY, PIXTRAL_GEOMETRY_IDS, PIXTRAL_GEOMETRY_XFAILS))
def test_pixtral_geometry(impl, image_size, patch_size, merge):
    """Ground truth: transformers' PixtralImageProcessor (each backend) on square images. The
    token side is the largest square that still gives one token (p x p -> 1, (p+1) x (p+1) -> 4);
    the image size is the processed side of a square image one pixel larger (downscaled); the
    grid length is the tokens per side of a full-size image. Small settings also count
    PixtralVisionModel (+ Mistral3PatchMerger) rows."""
    small = image_size <= 64
    for backend in PIXTRAL_BACKENDS:
        def tokens(side):
            return _pixtral_truth(backend, image_size, patch_size, merge, side, side, model=small)

        token_side = patch_size * merge
        assert tokens(token_side) == 1 and tokens(token_side + 1) == 4
        per_side = math.isqrt(tokens(image_size))
        assert per_side ** 2 == tokens(image_size)
        _, _, (h, w) = _pixtral_processed(backend, image_size, token_side,
                                          image_size + 1, image_size + 1)
        assert h == w == per_side * token_side
    got_size, got_patch, got_grid, got = _answers(
        impl, _pixtral_hf_config(image_size, patch_size, merge), [(image_size, image_size)])
    if image_size % token_side == 0:
        assert got_size == h
    assert got_patch == token_side
    assert got == {(image_size, image_size): per_side ** 2}
    assert got_grid == per_side


# How transformers' Pixtral processor refuses a side that floors to 0: ValueError in transformers 5,
# RuntimeError (from torch's interpolate) in 4.57.
REFUSED = (ValueError, RuntimeError)
_ZERO_REASON = (
    "an image whose smaller side floors to 0 when downscaled (692x2 at 64/4: ratio 10.8125, "
    "floor(2 / 10.8125) = 0) cannot be encoded: transformers' PixtralImageProcessor raises "
    "ValueError; {impl} instead returns 0 tokens"
)


@pytest.mark.parametrize("impl", [
    pytest.param(impl, marks=() if impl == "reference" else pytest.mark.xfail(
        strict=True, raises=AssertionError, reason=_ZERO_REASON.format(impl=impl)))
    for impl in IMPLS
])
def test_pixtral_degenerate_downscale(impl):
    """Ground truth: transformers' PixtralImageProcessor (each backend) refuses a 692x2 image at
    image_size 64 / patch 4 with ValueError (RuntimeError before transformers 5): the downscaled
    height is 0. The implementation should
    not report a token count for it either."""
    for backend in PIXTRAL_BACKENDS:
        with pytest.raises(REFUSED):
            _pixtral_processed(backend, 64, 4, 692, 2)
    try:
        *_, got = _answers(impl, _pixtral_hf_config(64, 4, 1), [(692, 2)])
    except ImplRaised:
        return
    assert False, f"{impl} counts {got[(692, 2)]} tokens for an image transformers cannot encode"


# A sweep: processor-only counts for a few hundred sizes, model rows for a sample.
SWEEP_SETTINGS = [(64, 4, 1), (40, 4, 1), (30, 7, 1), (56, 4, 2)]


@functools.lru_cache(maxsize=None)
def _sweep_sizes(image_size, n=110):
    rng = np.random.RandomState(image_size)
    sizes = {(int(w), int(h)) for w, h in rng.randint(1, 4 * image_size, size=(n, 2))}
    # plus the sizes where float and exact integer downscaling disagree
    for w in range(1, 4 * image_size):
        for h in range(1, 4 * image_size):
            r = max(w / image_size, h / image_size)
            exact = (w * image_size // max(w, h), h * image_size // max(w, h))
            if r > 1 and min(exact) > 0:
                fw, fh = math.floor(w / r), math.floor(h / r)
                if (fw, fh) != exact and min(fw, fh):
                    sizes.add((w, h))
                    if len(sizes) >= n + 20:
                        return sorted(sizes)
    return sorted(sizes)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("image_size,patch_size,merge", SWEEP_SETTINGS,
                         ids=[f"{s}-{p}-m{m}" for s, p, m in SWEEP_SETTINGS])
def test_pixtral_sweep(impl, image_size, patch_size, merge):
    """Ground truth: transformers' PixtralImageProcessor (torchvision backend) output size for every
    processable size of the sweep, (H / p) * (W / p); PixtralVisionModel (+ Mistral3PatchMerger)
    rows for every 15th. All must agree with the implementation."""
    backend = PIXTRAL_BACKENDS[0]
    truth = {}
    for i, (w, h) in enumerate(_sweep_sizes(image_size)):
        try:
            truth[(w, h)] = _pixtral_truth(backend, image_size, patch_size, merge, w, h,
                                           model=i % 15 == 0)
        except REFUSED:
            continue  # a side floors to 0: see test_pixtral_degenerate_downscale
    assert len(truth) >= 100
    *_, got = _answers(impl, _pixtral_hf_config(image_size, patch_size, merge), list(truth))
    wrong = {k: (got[k], v) for k, v in truth.items() if got[k] != v}
    assert not wrong, f"{len(wrong)}/{len(truth)} sizes differ (got, transformers): {wrong}"


# --------------------------------------------------------------------------- #
# get_llm_pos_ids_for_vision
# --------------------------------------------------------------------------- #


def _omni_pos_ids(start_idx, vision_idx, merge, t_index, grid_hs, grid_ws):
    """transformers' Qwen2_5OmniPreTrainedModelForConditionalGeneration.get_llm_pos_ids_for_vision
    (its ``self`` is unused)."""
    omni = pytest.importorskip("transformers.models.qwen2_5_omni.modeling_qwen2_5_omni")
    cls = omni.Qwen2_5OmniPreTrainedModelForConditionalGeneration
    return cls.get_llm_pos_ids_for_vision(None, start_idx, vision_idx, merge, t_index,
                                          grid_hs, grid_ws)


# (start_idx, vision_idx, merge, t_index, grid_hs, grid_ws)
POS_CASES = [
    (0, 0, 1, [0], [1], [1]),
    (0, 0, 1, [0], [3], [5]),
    (7, 0, 2, [0], [4], [6]),
    (7, 0, 2, [0], [5], [7]),                  # h, w not multiples of merge
    (3, 1, 2, [0, 1, 2], [4, 6, 2], [8, 2, 2]),
    (0, 2, 2, [0, 25], [4, 6, 3], [8, 2, 9]),   # non-contiguous t (second_per_grid 1, 25 tokens/s)
    (100, 0, 1, [0, 12, 25], [2], [3]),         # second_per_grid 0.5
    (11, 0, 2, [0, 50, 100], [6], [4]),
    (5, 1, 1, [4, 4, 9], [1, 2], [3, 1]),
    (0, 0, 2, [0], [1], [1]),                   # a grid smaller than the merge: no tokens
    (2 ** 40, 0, 2, [0, 1], [2], [4]),          # a large start_idx stays exact
    (0, 0, 1, [], [2], [2]),                    # no frames
    (9, 0, 2, [0, 2 ** 24 + 1], [2], [2]),      # t beyond float32's exact integers
]
POS_IDS = [f"s{s}-v{v}-m{m}-t{len(t)}-{'x'.join(map(str, h))}-{'x'.join(map(str, w))}"
           + ("-bigt" if t and max(t) > 2 ** 24 else "")
           for s, v, m, t, h, w in POS_CASES]
_BIG_T = next(i for i in POS_IDS if i.endswith("-bigt"))
_FLOAT_T_REASON = (
    "with t_index as a Python list, transformers' Qwen2.5-Omni get_llm_pos_ids_for_vision builds t "
    "via torch.Tensor(t_index) (float32), so t = 2**24 + 1 becomes 2**24 (id 16777225 with "
    "start_idx 9); the reference's contract keeps integers exact (16777226), which is what Omni "
    "itself gives for the int64 tensor its own get_rope_index passes"
)
POS_XFAILS = {("reference", _BIG_T): (_FLOAT_T_REASON, AssertionError)}


def _as_tensors(grid_hs, grid_ws):
    return torch.tensor(grid_hs, dtype=torch.int64), torch.tensor(grid_ws, dtype=torch.int64)


def _t_arg(t_form, t_index):
    return list(t_index) if t_form == "list" else torch.tensor(t_index, dtype=torch.int64)


def _agrees_with_omni(impl, start_idx, vision_idx, merge, t_index, grid_hs, grid_ws, t_form):
    """``impl`` and Qwen2.5-Omni's function give the same int64 ids, t_index passed as ``t_form``."""
    fn = _pos_ids_fn(impl)
    hs, ws = _as_tensors(grid_hs, grid_ws)
    expected = _omni_pos_ids(start_idx, vision_idx, merge, _t_arg(t_form, t_index), hs, ws)
    n = len(t_index) * (grid_hs[vision_idx] // merge) * (grid_ws[vision_idx] // merge)
    assert expected.dtype == torch.int64 and expected.shape == (3, n)
    got = fn(start_idx, vision_idx, merge, _t_arg(t_form, t_index), hs, ws)
    assert got.dtype == torch.int64
    assert got.shape == expected.shape
    assert torch.equal(got, expected), (got, expected)


@pytest.mark.parametrize("impl,start_idx,vision_idx,merge,t_index,grid_hs,grid_ws",
                         _params(POS_CASES, POS_IDS))
def test_pos_ids_against_qwen2_5_omni_tensor_t(impl, start_idx, vision_idx, merge, t_index,
                                                grid_hs, grid_ws):
    """Ground truth: transformers' Qwen2_5OmniPreTrainedModelForConditionalGeneration.
    get_llm_pos_ids_for_vision (transformers/models/qwen2_5_omni), called with the same arguments,
    t_index as the int64 tensor Omni's own get_rope_index passes (``(arange(t) * ...).long()``)."""
    _agrees_with_omni(impl, start_idx, vision_idx, merge, t_index, grid_hs, grid_ws, "tensor")


@pytest.mark.parametrize("impl,start_idx,vision_idx,merge,t_index,grid_hs,grid_ws",
                         _params(POS_CASES, POS_IDS, POS_XFAILS))
def test_pos_ids_against_qwen2_5_omni_list_t(impl, start_idx, vision_idx, merge, t_index,
                                              grid_hs, grid_ws):
    """Ground truth: transformers' Qwen2_5OmniPreTrainedModelForConditionalGeneration.
    get_llm_pos_ids_for_vision (transformers/models/qwen2_5_omni), called with the same arguments,
    t_index as a Python list (the documented ``list[int]``)."""
    _agrees_with_omni(impl, start_idx, vision_idx, merge, t_index, grid_hs, grid_ws, "list")


def test_omni_ground_truth_on_large_t():
    """Ground truth: transformers' Qwen2.5-Omni get_llm_pos_ids_for_vision. Pins the facts behind
    the xfail above: a list t_index goes through float32 (2**24 + 1 -> 2**24), an int64 tensor
    does not."""
    hs, ws = _as_tensors([2], [2])
    t_index = [0, 2 ** 24 + 1]
    as_list = _omni_pos_ids(9, 0, 2, _t_arg("list", t_index), hs, ws)
    as_tensor = _omni_pos_ids(9, 0, 2, _t_arg("tensor", t_index), hs, ws)
    assert as_list[0].tolist() == [9, 9 + 2 ** 24]
    assert as_tensor[0].tolist() == [9, 10 + 2 ** 24]


def _qwen_shim(module_name, class_name, merge, tokens_per_second=None):
    """An object carrying transformers' own get_rope_index / get_vision_position_ids and the one
    config field they read (vision_config.spatial_merge_size [, tokens_per_second])."""
    mod = pytest.importorskip(module_name)
    cls = getattr(mod, class_name)
    import inspect

    if "mm_token_type_ids" not in inspect.signature(cls.get_rope_index).parameters:
        pytest.skip(f"{class_name}.get_rope_index of transformers {transformers.__version__} "
                    "predates mm_token_type_ids")
    shim_cls = type("Shim", (), {"get_rope_index": cls.get_rope_index,
                                 "get_vision_position_ids": cls.get_vision_position_ids})
    shim = shim_cls()
    shim.config = SimpleNamespace(vision_config=SimpleNamespace(
        spatial_merge_size=merge, tokens_per_second=tokens_per_second))
    return shim


# (prefix length, modality 1 image / 2 video, (t, h, w) grid, merge, second_per_grid or None,
#  tokens_per_second) -- one vision item after a text prefix, then 3 text tokens.
ROPE_CASES = [
    (0, 1, (1, 4, 6), 2, None, None),
    (5, 1, (1, 4, 6), 2, None, None),
    (3, 1, (1, 5, 7), 2, None, None),        # not multiples of the merge
    (4, 1, (1, 3, 2), 1, None, None),
    (2, 2, (3, 4, 4), 2, None, None),        # Qwen2-VL video: t = 0, 1, 2
    (6, 2, (2, 6, 2), 1, None, None),
    # Qwen2.5-VL videos: t = arange(t) * tokens_per_second * second_per_grid. Whole seconds only:
    # transformers 5.17 and earlier truncate second_per_grid with int() (0.5 s gives t = 0, 0, 0).
    (1, 2, (3, 4, 2), 2, 1.0, 25),           # t = 0, 25, 50
    (8, 2, (3, 2, 6), 2, 2.0, 25),           # t = 0, 50, 100
    (0, 2, (2, 5, 5), 2, 3.0, 2),            # t = 0, 6
]
ROPE_IDS = [f"p{p}-{'img' if m == 1 else 'vid'}-{'x'.join(map(str, g))}-m{mg}-s{s}"
            for p, m, g, mg, s, _ in ROPE_CASES]


@pytest.mark.parametrize("impl,prefix,modality,grid,merge,second_per_grid,tokens_per_second",
                         _params(ROPE_CASES, ROPE_IDS))
def test_pos_ids_against_qwen_vl_get_rope_index(impl, prefix, modality, grid, merge,
                                                 second_per_grid, tokens_per_second):
    """Ground truth: transformers' Qwen2VLModel.get_rope_index (transformers/models/qwen2_vl) or,
    for videos with second_per_grid_ts, Qwen2_5_VLModel.get_rope_index (models/qwen2_5_vl), with
    their own get_vision_position_ids, on a text prefix + one image/video + 3 text tokens; the
    vision slice of its position_ids is the expectation for start_idx = prefix length."""
    fn = _pos_ids_fn(impl)
    t, h, w = grid
    if second_per_grid is None:
        shim = _qwen_shim("transformers.models.qwen2_vl.modeling_qwen2_vl", "Qwen2VLModel", merge)
        extra = {}
        t_index = list(range(t))
    else:
        shim = _qwen_shim("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLModel",
                          merge, tokens_per_second)
        extra = {"second_per_grid_ts": torch.tensor([second_per_grid])}
        step = second_per_grid * tokens_per_second   # exact in binary floating point here
        t_index = [int(i * step) for i in range(t)]
    n = t * (h // merge) * (w // merge)
    types = torch.tensor([[0] * prefix + [modality] * n + [0] * 3])
    thw = torch.tensor([grid])
    grids = {"image_grid_thw": thw} if modality == 1 else {"video_grid_thw": thw}
    position_ids, _ = shim.get_rope_index(torch.zeros_like(types), types, **grids, **extra)
    expected = position_ids[:, 0, prefix:prefix + n]
    assert torch.equal(position_ids[:, 0, :prefix], torch.arange(prefix).expand(3, -1))

    got = fn(prefix, 0, merge, t_index, *_as_tensors([h], [w]))
    assert got.dtype == torch.int64
    assert torch.equal(got, expected), (got, expected)


# --------------------------------------------------------------------------- #
# the real Qwen grid geometries that strategies/dp.py draws for the mrope helper
# --------------------------------------------------------------------------- #


def _qwen_processor_grid(model: str, height: int, width: int, frames: int) -> list[int]:
    """The grid transformers' processors give, set up as each model's preprocessor config is."""
    qwen2 = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    video = pytest.importorskip("transformers.models.qwen2_vl.video_processing_qwen2_vl")
    patch = {"Qwen2.5-VL": 14, "Qwen3-VL": 16}[model]
    # Qwen2.5-VL-7B-Instruct: min_pixels 3136, max_pixels 12845056; Qwen3-VL: shortest 65536, longest 16777216
    # (images); videos: the video processors' own defaults, scaled to the patch size (Qwen3-VL's is its own class).
    if frames == 1:
        size = ({"shortest_edge": 3136, "longest_edge": 12845056} if model == "Qwen2.5-VL"
                else {"shortest_edge": 65536, "longest_edge": 16777216})
        proc = qwen2.Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
        return proc(images=[np.zeros((height, width, 3), dtype=np.uint8)], return_tensors="pt")["image_grid_thw"][0].tolist()
    if model == "Qwen3-VL":
        proc = pytest.importorskip("transformers.models.qwen3_vl.video_processing_qwen3_vl").Qwen3VLVideoProcessor()
        kw = {}
    else:
        proc, kw = video.Qwen2VLVideoProcessor(), {"cap_pixels_per_frame": False}
    clip = np.zeros((frames, height, width, 3), dtype=np.uint8)
    return proc(videos=[clip], return_tensors="pt", do_sample_frames=False, **kw)["video_grid_thw"][0].tolist()


def test_the_drawn_qwen_grids_are_the_processors_grids():
    """Ground truth for the 'real geometry Qwen2.5-VL / Qwen3-VL' class of strategies/dp.py: every
    grid it draws is what transformers' Qwen-VL processors make of that image or video."""
    from vllm_vision_conformance.strategies.dp import QWEN_GEOMETRIES

    wrong = {(model, size): (grid, _qwen_processor_grid(model, *size))
             for model, table in QWEN_GEOMETRIES.items() for size, grid in table.items()
             if _qwen_processor_grid(model, *size) != grid}
    assert not wrong, f"(drawn, transformers): {wrong}"
