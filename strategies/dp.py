"""Strategies for the data-parallel functions (``run_dp_sharded_vision_model``,
``run_dp_sharded_mrope_vision_model``): model descriptions, inputs, grid
lists, and world sizes.

Models are described by a picklable :class:`ModelSpec` and built with
``spec.build()``, so the same description can be sent to real ranks. Their
weights and inputs are small integers, so every result is exact in float32
and float64 whatever the order of summation: a sharded run must equal the
unsharded one bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from hypothesis import event, strategies as st
from ._budget import MAX_ELEMENTS, MAX_IMAGES, MAX_RANKS, MAX_SIZES
from ._validate import check_bool, check_int, check_one_of, fail

DTYPES = (torch.float32, torch.float64)
ROPE_TYPES = ("rope_2d", "rope_3d")
MAX_PATCHES = MAX_ELEMENTS // 4  # pixels are [patches, channels] with up to 4 channels


@dataclass(frozen=True)
class ModelSpec:
    """A per-sample vision model.

    * ``kind="rows"``: ``[N, *row] -> [N, out_dim]``, each row independently.
    * ``kind="rope_3d"``: ``(pixels [P, C], grids list) -> [P / m**2, out_dim]``
      with ``spatial_merge_size = m``; each output token sees its ``m**2``
      patches plus its position inside its own image.
    * ``kind="rope_2d"``: ``(pixels [P, C], grids int64 tensor) ->
      [P / (kh*kw), kh*kw, out_dim]`` with ``merge_kernel_size = (kh, kw)`` and
      ``config.hidden_size = out_dim``; a list per image when ``returns_list``.

    ``parameterless``: the model has no parameters and computes in its
    input's dtype (an edge some implementations trip on). ``output_dtype``:
    the output is cast to it, so it differs from the parameters' dtype.
    ``noncontiguous`` (``rows``): the output is a transposed view, the same
    values but not contiguous, as NCCL would refuse to gather. Every call is
    recorded in ``model.calls`` as ``(rows, grids)`` (instrumentation).
    """

    kind: str
    in_dim: int
    out_dim: int
    merge: tuple[int, int] = (1, 1)
    dtype: torch.dtype = torch.float32
    seed: int = 0
    returns_list: bool = False
    parameterless: bool = False
    output_dtype: torch.dtype | None = None  # cast the output to this (differs from the parameters)
    noncontiguous: bool = False  # "rows": the output is a transposed view (same values, not contiguous)

    @property
    def reduction(self) -> int:
        return self.merge[0] * self.merge[1]

    def build(self) -> torch.nn.Module:
        return _SpecModel(self)


class _SpecModel(torch.nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        fan_in = spec.in_dim * (spec.reduction if spec.kind == "rope_3d" else 1)
        if spec.parameterless:
            self.proj = _ParameterlessProjection(spec.out_dim, spec.seed)
        else:
            self.proj = torch.nn.Linear(fan_in, spec.out_dim, dtype=spec.dtype)
            generator = torch.Generator().manual_seed(spec.seed)
            with torch.no_grad():
                self.proj.weight.copy_(torch.randint(-2, 3, self.proj.weight.shape, generator=generator))
                self.proj.bias.copy_(torch.randint(-3, 4, self.proj.bias.shape, generator=generator))
        self.calls: list[tuple] = []  # (rows, grids) of each call (instrumentation)
        if spec.kind == "rope_3d":
            self.spatial_merge_size = spec.merge[0]
            self.out_hidden_size = spec.out_dim
        elif spec.kind == "rope_2d":
            self.merge_kernel_size = spec.merge
            self.config = SimpleNamespace(hidden_size=spec.out_dim)

    def _positions(self, grids) -> torch.Tensor:
        rows = [math.prod(int(v) for v in grid) // self.spec.reduction for grid in grids]
        return torch.cat([torch.arange(n) for n in rows]) if rows else torch.zeros(0)

    def _merged_patches(self, x: torch.Tensor, grid_list) -> torch.Tensor:
        """Each image's patches, its last ``patches % r`` dropped, as vLLM's
        own test model does (``patches // r`` tokens an image)."""
        r, start, kept = self.spec.reduction, 0, []
        for grid in grid_list:
            n = math.prod(int(v) for v in grid)
            kept.append(x[start : start + n // r * r])
            start += n
        return torch.cat(kept) if kept else x[:0]

    def forward(self, pixels: torch.Tensor, grids=None):
        out = self._forward(pixels, grids)
        if self.spec.output_dtype is None:
            return out
        if isinstance(out, list):
            return [o.to(self.spec.output_dtype) for o in out]
        return out.to(self.spec.output_dtype)

    def _forward(self, pixels: torch.Tensor, grids=None):
        spec = self.spec
        grid_record = None if grids is None else [list(map(int, g)) for g in (grids.tolist() if isinstance(grids, torch.Tensor) else grids)]
        self.calls.append((int(pixels.shape[0]), grid_record))
        x = pixels if spec.parameterless else pixels.to(spec.dtype)
        if spec.kind == "rows":
            out = self.proj(x.reshape(x.shape[0], spec.in_dim))
            return out.t().contiguous().t() if spec.noncontiguous else out
        grid_list = grids.tolist() if isinstance(grids, torch.Tensor) else list(grids)
        pos = self._positions(grid_list).to(x.dtype)
        x = self._merged_patches(x, grid_list)
        if spec.kind == "rope_3d":
            out = self.proj(x.reshape(-1, spec.in_dim * spec.reduction))
            return out + pos[:, None]
        out = self.proj(x.reshape(-1, spec.reduction, spec.in_dim)) + pos[:, None, None]
        if spec.returns_list:
            sizes = [math.prod(g) // spec.reduction for g in grid_list]
            return list(out.split(sizes))
        return out


class _ParameterlessProjection(torch.nn.Module):
    """``x @ W`` with a fixed integer ``W`` kept as a plain attribute (no parameter, no buffer)."""

    def __init__(self, out_dim: int, seed: int) -> None:
        super().__init__()
        self.out_dim, self.seed = out_dim, seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        weight = torch.randint(-2, 3, (x.shape[-1], self.out_dim), generator=generator).to(x.dtype)
        return x @ weight


def world_sizes(max_ranks: int = MAX_RANKS) -> st.SearchStrategy[int]:
    """Simulated group sizes, 1 (one rank) to ``max_ranks``, an int from 1 to ``MAX_RANKS``."""
    check_int("world_sizes", "max_ranks", max_ranks, 1, MAX_RANKS, cap="MAX_RANKS")
    return st.integers(1, max_ranks)


def _ints(shape, seed: int, dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-4, 5, shape, generator=generator).to(dtype)


def plain_dp_problems(max_ranks: int = MAX_RANKS) -> st.SearchStrategy[dict]:
    """``image_input``, a ``rows`` model spec and a world size: 0 to
    ``MAX_SIZES`` images (rows of 1 to 16 elements), often fewer images than
    ranks. ``max_ranks``: an int from 1 to ``MAX_RANKS``."""
    check_int("plain_dp_problems", "max_ranks", max_ranks, 1, MAX_RANKS, cap="MAX_RANKS")
    return _plain_dp_problems(max_ranks)


@st.composite
def _plain_dp_problems(draw, max_ranks: int) -> dict:
    world = draw(world_sizes(max_ranks))
    n = draw(st.integers(0, MAX_SIZES))
    row_shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))) or (1,)
    dtype = draw(st.sampled_from(DTYPES))
    spec = ModelSpec("rows", math.prod(row_shape), draw(st.integers(1, 6)), dtype=dtype, seed=draw(st.integers(0, 999)))
    image_input = _ints((n, *row_shape), draw(st.integers(0, 999)), dtype)
    if draw(st.booleans()):  # a model whose output is a non-contiguous view (NCCL would refuse to gather it)
        spec = dataclasses.replace(spec, noncontiguous=True)
        if n > world and spec.out_dim > 1:
            event("plain DP: a model with non-contiguous output")
    return {"image_input": image_input, "model": spec, "world_size": world}


# Real Qwen geometries: the ``[t, h, w]`` grids that the models' processors
# give for these (height, width, frames) inputs (frames > 1: a video), sizes
# whose grid fits the example budget. tests/oracle/test_ground_truth.py checks every
# grid against transformers' Qwen2-VL image and video processors, set up as
# each model's preprocessor config is (Qwen2.5-VL: patch 14; Qwen3-VL: patch
# 16; both merge 2, temporal patch 2).
QWEN_GEOMETRIES = {
    "Qwen2.5-VL": {(224, 224, 1): [1, 16, 16], (252, 448, 1): [1, 18, 32], (56, 56, 1): [1, 4, 4],
                   (480, 270, 1): [1, 34, 20], (100, 700, 1): [1, 8, 50], (224, 448, 4): [2, 16, 32]},
    "Qwen3-VL": {(256, 256, 1): [1, 16, 16], (288, 512, 1): [1, 18, 32], (500, 300, 1): [1, 32, 18],
                 (256, 256, 4): [2, 16, 16]},
}


def grid_lists(rope_type: str = "rope_3d", merge: tuple[int, int] = (2, 2), max_images: int = MAX_IMAGES,
               max_patches: int = MAX_PATCHES) -> st.SearchStrategy[list[list[int]]]:
    """Grid lists: ``[t, h, w]`` (``rope_3d``) or ``[h, w]`` (``rope_2d``);
    empty lists, one image, equal sizes and mixed sizes. Sides are mostly
    multiples of the merge size (or kernel); with ``uneven`` lists (drawn
    about one time in four) any side from 1, so that an image's patch count
    need not be a multiple of the merge factor (even smaller than it: no
    token at all). With ``rope_3d`` and merge 2, about one list in four is
    real Qwen2.5-VL / Qwen3-VL grids (``QWEN_GEOMETRIES``).

    ``rope_type``: ``"rope_2d"`` or ``"rope_3d"``. ``merge``: a tuple of two
    ints from 1, ``(kh, kw)`` (equal for ``rope_3d``, whose merge size is one
    int). ``max_images``: an int from 0 to ``MAX_IMAGES``. ``max_patches``
    (the patches of all images together): an int from 0 to ``MAX_PATCHES``
    (``MAX_ELEMENTS // 4``).
    """
    where = "grid_lists"
    check_one_of(where, "rope_type", rope_type, ROPE_TYPES)
    if type(merge) is not tuple or len(merge) != 2:
        fail(where, f"merge={merge!r} is not a tuple of two ints (kh, kw)")
    check_int(where, "merge[0]", merge[0], 1)
    check_int(where, "merge[1]", merge[1], 1)
    if rope_type == "rope_3d" and merge[0] != merge[1]:
        fail(where, f"merge={merge!r} is not square, as rope_3d needs (one spatial_merge_size)")
    check_int(where, "max_images", max_images, 0, MAX_IMAGES, cap="MAX_IMAGES")
    check_int(where, "max_patches", max_patches, 0, MAX_PATCHES, cap="MAX_ELEMENTS // 4")
    return _grid_lists(rope_type, merge, max_images, max_patches)


@st.composite
def _grid_lists(draw, rope_type: str, merge: tuple[int, int], max_images: int, max_patches: int) -> list[list[int]]:
    kh, kw = merge
    # max_images >= 3 (the default among them) draws as it always has; fewer keeps the real grids within it
    if rope_type == "rope_3d" and merge == (2, 2) and max_images > 0 and draw(st.integers(0, 3)) == 0:
        model = draw(st.sampled_from(sorted(QWEN_GEOMETRIES)))
        grids = []
        for size in draw(st.lists(st.sampled_from(sorted(QWEN_GEOMETRIES[model])), min_size=1,
                                  max_size=min(3, max_images))):
            grid = list(QWEN_GEOMETRIES[model][size])
            if sum(math.prod(g) for g in grids) + math.prod(grid) <= max_patches:
                grids.append(grid)
        if grids:
            event(f"grid: real geometry {model}")
            return grids
    count = draw(st.integers(0, max_images))
    equal = draw(st.booleans())
    uneven = draw(st.integers(0, 3)) == 0
    grids: list[list[int]] = []
    total = 0
    for _ in range(count):
        if equal and grids:
            grid = list(grids[0])
        else:
            if uneven:
                h, w = draw(st.integers(1, 4 * kh)), draw(st.integers(1, 4 * kw))
            else:
                h, w = kh * draw(st.integers(1, 4)), kw * draw(st.integers(1, 4))
            grid = [draw(st.integers(1, 2)), h, w] if rope_type == "rope_3d" else [h, w]
        if total + math.prod(grid) > max_patches:
            break
        total += math.prod(grid)
        grids.append(grid)
    if any(math.prod(g) % (kh * kw) for g in grids):
        event("grid: a patch count not a multiple of the merge factor")
    return grids


def mrope_problems(rope_type: str = "rope_3d", parameterless: bool = False, max_ranks: int = MAX_RANKS,
                   mixed_dtypes: bool = False, output_dtype_differs: bool = False) -> st.SearchStrategy[dict]:
    """``pixel_values``, ``grid_thw_list``, a model spec, ``rope_type`` and a world size.

    ``rope_type``: ``"rope_2d"`` or ``"rope_3d"`` (merge 1 or 2; ``rope_2d``
    kernels may be non-square). ``max_ranks``: an int from 1 to
    ``MAX_RANKS``. The flags, each True or False: ``mixed_dtypes``, the
    pixels' dtype differs from the model's parameter dtype (the model
    casts), so a rank without images must still hand the all-gather the
    model's dtype; ``parameterless`` draws models without parameters;
    ``output_dtype_differs``, the model casts its output to float16.
    """
    where = "mrope_problems"
    check_one_of(where, "rope_type", rope_type, ROPE_TYPES)
    check_bool(where, "parameterless", parameterless)
    check_int(where, "max_ranks", max_ranks, 1, MAX_RANKS, cap="MAX_RANKS")
    check_bool(where, "mixed_dtypes", mixed_dtypes)
    check_bool(where, "output_dtype_differs", output_dtype_differs)
    return _mrope_problems(rope_type, parameterless, max_ranks, mixed_dtypes, output_dtype_differs)


@st.composite
def _mrope_problems(draw, rope_type: str, parameterless: bool, max_ranks: int, mixed_dtypes: bool,
                    output_dtype_differs: bool) -> dict:
    if rope_type == "rope_3d":
        m = draw(st.integers(1, 2))
        merge = (m, m)
    else:
        merge = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    grids = draw(_grid_lists(rope_type, merge, MAX_IMAGES, MAX_PATCHES))
    # half precision too (exact here: every value is a small integer), so that
    # padding or placeholders of another dtype show in the result's dtype
    dtype = draw(st.sampled_from(DTYPES + (torch.float16,)))
    if dtype == torch.float16:
        event("mrope: a half-precision model")
    pixel_dtype = next(d for d in DTYPES if d != dtype) if mixed_dtypes else dtype
    channels = draw(st.integers(1, 4))
    spec = ModelSpec(rope_type, channels, draw(st.integers(1, 5)), merge, dtype, draw(st.integers(0, 999)),
                     returns_list=rope_type == "rope_2d" and draw(st.booleans()), parameterless=parameterless,
                     output_dtype=torch.float16 if output_dtype_differs else None)
    patches = sum(math.prod(g) for g in grids)
    pixel_values = _ints((patches, channels), draw(st.integers(0, 999)), pixel_dtype)
    world = draw(world_sizes(max_ranks))
    if len(grids) < world:
        event(f"mrope: a rank without images ({'half' if dtype == torch.float16 else 'float'} model)")
    return {"pixel_values": pixel_values, "grid_thw_list": grids, "model": spec, "rope_type": rope_type,
            "world_size": world}
