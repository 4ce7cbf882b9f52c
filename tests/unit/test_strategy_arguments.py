"""Every public strategy function refuses a bad argument like Hypothesis's own
strategies do: :class:`hypothesis.errors.InvalidArgument`, one line naming the
function, the argument, the value given and what is accepted.

One table row per (function, argument, bad value); ``test_every_argument_has_a_row``
keeps the table complete (every parameter of every public function in
strategies/ has a row, every function without parameters a draw row), and
``test_a_correct_call_still_draws`` shows the good calls draw."""

from __future__ import annotations

import inspect
import types

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import InvalidArgument

from vllm_vision_conformance.strategies import _budget as B
from vllm_vision_conformance.strategies import backend as s_backend
from vllm_vision_conformance.strategies import dp as s_dp
from vllm_vision_conformance.strategies import encoder_info as s_info
from vllm_vision_conformance.strategies import encoder_outputs as s_enc
from vllm_vision_conformance.strategies import feature_select as s_fs
from vllm_vision_conformance.strategies import load_balance as s_lb
from vllm_vision_conformance.strategies import pos_ids as s_pos

MODULES = (s_fs, s_enc, s_pos, s_lb, s_dp, s_info, s_backend)
# Public functions that are no strategies and take no strategy arguments: plain arithmetic helpers
# (the Pixtral downscale foil and ground truth, used by the reference's own tests).
NOT_STRATEGIES = {"encoder_info.exact_downscale", "encoder_info.float_downscale"}

BUDGET = "(strategies/_budget.py; VVC_EXAMPLE_SCALE raises it)"
FIXED = "(strategies/_budget.py)"  # caps the scale leaves alone (ranks, layers)
FAMILIES = "None, 'clip', 'pixtral', 'siglip'"
BOOL = "is not one of True or False"
OPT_BOOL = "is not one of None, True or False"

# (function, argument, call, the whole message)
ROWS = [
    # feature_select
    ("feature_select.callable_strategies", "include_folds", lambda: s_fs.callable_strategies(include_folds=1),
     f"callable_strategies: include_folds=1 {BOOL}"),
    ("feature_select.feature_select_strategies", "include_callables",
     lambda: s_fs.feature_select_strategies(include_callables="yes"),
     f"feature_select_strategies: include_callables='yes' {BOOL}"),
    ("feature_select.feature_select_strategies", "include_folds",
     lambda: s_fs.feature_select_strategies(include_folds=None),
     f"feature_select_strategies: include_folds=None {BOOL}"),
    ("feature_select.token_counts", "min_value", lambda: s_fs.token_counts(True),
     "token_counts: min_value=True is a bool, not an int"),
    ("feature_select.token_counts", "min_value", lambda: s_fs.token_counts(1.0),
     "token_counts: min_value=1.0 is not an int (got float)"),
    ("feature_select.token_counts", "min_value", lambda: s_fs.token_counts(-1),
     "token_counts: min_value=-1 is less than 0"),
    ("feature_select.token_counts", "min_value", lambda: s_fs.token_counts(601),
     "token_counts: min_value=601 is greater than 600"),
    ("feature_select.vision_features", "min_tokens", lambda: s_fs.vision_features(min_tokens=50, max_tokens=10),
     "vision_features: min_tokens=50 is greater than max_tokens=10"),
    ("feature_select.vision_features", "min_tokens", lambda: s_fs.vision_features(min_tokens=-1),
     "vision_features: min_tokens=-1 is less than 0"),
    ("feature_select.vision_features", "min_tokens", lambda: s_fs.vision_features(min_tokens=False),
     "vision_features: min_tokens=False is a bool, not an int"),
    ("feature_select.vision_features", "min_tokens",
     lambda: s_fs.vision_features(min_tokens=B.MAX_ELEMENTS + 1, max_tokens=B.MAX_ELEMENTS + 1),
     f"vision_features: min_tokens={B.MAX_ELEMENTS + 1} is above the cap MAX_ELEMENTS={B.MAX_ELEMENTS} {BUDGET}"),
    ("feature_select.vision_features", "max_tokens", lambda: s_fs.vision_features(max_tokens=B.MAX_ELEMENTS + 1),
     f"vision_features: max_tokens={B.MAX_ELEMENTS + 1} is above the cap MAX_ELEMENTS={B.MAX_ELEMENTS} {BUDGET}"),
    ("feature_select.vision_features", "max_tokens", lambda: s_fs.vision_features(max_tokens="40"),
     "vision_features: max_tokens='40' is not an int (got str)"),
    # encoder_outputs
    ("encoder_outputs.hidden_states", "num_loaded", lambda: s_enc.hidden_states(B.MAX_LAYERS + 1, 1, 1, 1),
     f"hidden_states: num_loaded={B.MAX_LAYERS + 1} is above the cap MAX_LAYERS={B.MAX_LAYERS} {FIXED}"),
    ("encoder_outputs.hidden_states", "batch", lambda: s_enc.hidden_states(2, -1, 2, 3),
     "hidden_states: batch=-1 is less than 0"),
    ("encoder_outputs.hidden_states", "tokens", lambda: s_enc.hidden_states(2, 1, "2", 3),
     "hidden_states: tokens='2' is not an int (got str)"),
    ("encoder_outputs.hidden_states", "dim", lambda: s_enc.hidden_states(2, 1, 2, True),
     "hidden_states: dim=True is a bool, not an int"),
    ("encoder_outputs.hidden_states", "dim", lambda: s_enc.hidden_states(3, 2, 32, B.MAX_ELEMENTS // 256 + 1),
     f"hidden_states: (num_loaded + 1) * batch * tokens * dim = {256 * (B.MAX_ELEMENTS // 256 + 1)} elements is "
     f"above the cap MAX_ELEMENTS={B.MAX_ELEMENTS} {BUDGET}"),
    ("encoder_outputs.hidden_states", "dtype", lambda: s_enc.hidden_states(2, 1, 2, 3, dtype="float32"),
     "hidden_states: dtype='float32' is not a torch.dtype"),
    ("encoder_outputs.layer_selections", "max_possible_layers", lambda: s_enc.layer_selections(0, 0),
     "layer_selections: max_possible_layers=0 is less than 1"),
    ("encoder_outputs.layer_selections", "max_possible_layers",
     lambda: s_enc.layer_selections(B.MAX_LAYERS + 1, 1),
     f"layer_selections: max_possible_layers={B.MAX_LAYERS + 1} is above the cap MAX_LAYERS={B.MAX_LAYERS} {FIXED}"),
    ("encoder_outputs.layer_selections", "num_loaded", lambda: s_enc.layer_selections(8, 9),
     "layer_selections: num_loaded=9 is greater than max_possible_layers=8"),
    ("encoder_outputs.layer_selections", "num_loaded", lambda: s_enc.layer_selections(8, -1),
     "layer_selections: num_loaded=-1 is less than 0"),
    ("encoder_outputs.layer_selections", "include_final", lambda: s_enc.layer_selections(8, 8, include_final=1),
     f"layer_selections: include_final=1 {OPT_BOOL}"),
    ("encoder_outputs.layer_selections", "include_final", lambda: s_enc.layer_selections(8, 5, include_final=True),
     "layer_selections: include_final=True needs every layer loaded, but num_loaded=5 is less than "
     "max_possible_layers=8"),
    ("encoder_outputs.layer_selections", "final_as",
     lambda: s_enc.layer_selections(8, 8, include_final=True, final_as="neg"),
     "layer_selections: final_as='neg' is not one of None, 'negative'"),
    ("encoder_outputs.layer_selections", "final_as", lambda: s_enc.layer_selections(8, 8, final_as="negative"),
     "layer_selections: final_as='negative' needs include_final=True (got include_final=None)"),
    ("encoder_outputs.post_norms", "dim", lambda: s_enc.post_norms(0), "post_norms: dim=0 is less than 1"),
    ("encoder_outputs.post_norms", "dim", lambda: s_enc.post_norms(4.0),
     "post_norms: dim=4.0 is not an int (got float)"),
    ("encoder_outputs.encoder_output_problems", "select", lambda: s_enc.encoder_output_problems(select=None),
     f"encoder_output_problems: select=None {BOOL}"),
    ("encoder_outputs.encoder_output_problems", "with_norm", lambda: s_enc.encoder_output_problems(with_norm="yes"),
     f"encoder_output_problems: with_norm='yes' {OPT_BOOL}"),
    ("encoder_outputs.encoder_output_problems", "include_final",
     lambda: s_enc.encoder_output_problems(include_final=0),
     f"encoder_output_problems: include_final=0 {OPT_BOOL}"),
    ("encoder_outputs.encoder_output_problems", "include_final",
     lambda: s_enc.encoder_output_problems(select=False, include_final=True),
     "encoder_output_problems: include_final=True needs select=True (a single tensor has no layer selection)"),
    ("encoder_outputs.encoder_output_problems", "final_as",
     lambda: s_enc.encoder_output_problems(include_final=True, final_as="last"),
     "encoder_output_problems: final_as='last' is not one of None, 'negative'"),
    ("encoder_outputs.encoder_output_problems", "final_as",
     lambda: s_enc.encoder_output_problems(include_final=False, final_as="negative"),
     "encoder_output_problems: final_as='negative' needs include_final=True (got include_final=False)"),
    ("encoder_outputs.encoder_output_problems", "with_proc", lambda: s_enc.encoder_output_problems(with_proc=1),
     f"encoder_output_problems: with_proc=1 {BOOL}"),
    # pos_ids
    ("pos_ids.t_indices", "max_frames", lambda: s_pos.t_indices(0), "t_indices: max_frames=0 is less than 1"),
    ("pos_ids.t_indices", "max_frames", lambda: s_pos.t_indices(True),
     "t_indices: max_frames=True is a bool, not an int"),
    ("pos_ids.t_indices", "max_frames", lambda: s_pos.t_indices(B.MAX_ELEMENTS // 3 + 1),
     f"t_indices: max_frames={B.MAX_ELEMENTS // 3 + 1} is above the cap MAX_ELEMENTS // 3={B.MAX_ELEMENTS // 3} "
     f"{BUDGET}"),
    # load_balance
    ("load_balance.image_size_lists", "max_images", lambda: s_lb.image_size_lists(0),
     "image_size_lists: max_images=0 is less than 1"),
    ("load_balance.image_size_lists", "max_images", lambda: s_lb.image_size_lists(B.MAX_SIZES + 1),
     f"image_size_lists: max_images={B.MAX_SIZES + 1} is above the cap MAX_SIZES={B.MAX_SIZES} {BUDGET}"),
    ("load_balance.image_size_lists", "max_images", lambda: s_lb.image_size_lists("3"),
     "image_size_lists: max_images='3' is not an int (got str)"),
    ("load_balance.rank_counts", "max_ranks", lambda: s_lb.rank_counts(0), "rank_counts: max_ranks=0 is less than 1"),
    ("load_balance.rank_counts", "max_ranks", lambda: s_lb.rank_counts(B.MAX_BALANCE_RANKS + 1),
     f"rank_counts: max_ranks={B.MAX_BALANCE_RANKS + 1} is above the cap MAX_BALANCE_RANKS={B.MAX_BALANCE_RANKS} "
     f"{FIXED}"),
    ("load_balance.rank_counts", "max_ranks", lambda: s_lb.rank_counts(2.0),
     "rank_counts: max_ranks=2.0 is not an int (got float)"),
    # dp
    ("dp.world_sizes", "max_ranks", lambda: s_dp.world_sizes(B.MAX_RANKS + 1),
     f"world_sizes: max_ranks={B.MAX_RANKS + 1} is above the cap MAX_RANKS={B.MAX_RANKS} {FIXED}"),
    ("dp.world_sizes", "max_ranks", lambda: s_dp.world_sizes(0), "world_sizes: max_ranks=0 is less than 1"),
    ("dp.world_sizes", "max_ranks", lambda: s_dp.world_sizes(True), "world_sizes: max_ranks=True is a bool, not an int"),
    ("dp.plain_dp_problems", "max_ranks", lambda: s_dp.plain_dp_problems(max_ranks=B.MAX_RANKS + 1),
     f"plain_dp_problems: max_ranks={B.MAX_RANKS + 1} is above the cap MAX_RANKS={B.MAX_RANKS} {FIXED}"),
    ("dp.plain_dp_problems", "max_ranks", lambda: s_dp.plain_dp_problems(max_ranks=0),
     "plain_dp_problems: max_ranks=0 is less than 1"),
    ("dp.grid_lists", "rope_type", lambda: s_dp.grid_lists(rope_type="rope3d"),
     "grid_lists: rope_type='rope3d' is not one of 'rope_2d', 'rope_3d'"),
    ("dp.grid_lists", "rope_type", lambda: s_dp.grid_lists(rope_type=None),
     "grid_lists: rope_type=None is not one of 'rope_2d', 'rope_3d'"),
    ("dp.grid_lists", "merge", lambda: s_dp.grid_lists(merge=[2, 2]),
     "grid_lists: merge=[2, 2] is not a tuple of two ints (kh, kw)"),
    ("dp.grid_lists", "merge", lambda: s_dp.grid_lists(merge=(2,)),
     "grid_lists: merge=(2,) is not a tuple of two ints (kh, kw)"),
    ("dp.grid_lists", "merge", lambda: s_dp.grid_lists("rope_2d", merge=(0, 2)),
     "grid_lists: merge[0]=0 is less than 1"),
    ("dp.grid_lists", "merge", lambda: s_dp.grid_lists("rope_2d", merge=(2, True)),
     "grid_lists: merge[1]=True is a bool, not an int"),
    ("dp.grid_lists", "merge", lambda: s_dp.grid_lists("rope_3d", merge=(1, 2)),
     "grid_lists: merge=(1, 2) is not square, as rope_3d needs (one spatial_merge_size)"),
    ("dp.grid_lists", "max_images", lambda: s_dp.grid_lists(max_images=B.MAX_IMAGES + 1),
     f"grid_lists: max_images={B.MAX_IMAGES + 1} is above the cap MAX_IMAGES={B.MAX_IMAGES} {BUDGET}"),
    ("dp.grid_lists", "max_images", lambda: s_dp.grid_lists(max_images=-1),
     "grid_lists: max_images=-1 is less than 0"),
    ("dp.grid_lists", "max_patches", lambda: s_dp.grid_lists(max_patches=B.MAX_ELEMENTS // 4 + 1),
     f"grid_lists: max_patches={B.MAX_ELEMENTS // 4 + 1} is above the cap MAX_ELEMENTS // 4={B.MAX_ELEMENTS // 4} "
     f"{BUDGET}"),
    ("dp.grid_lists", "max_patches", lambda: s_dp.grid_lists(max_patches=10.5),
     "grid_lists: max_patches=10.5 is not an int (got float)"),
    ("dp.mrope_problems", "rope_type", lambda: s_dp.mrope_problems("ROPE_3D"),
     "mrope_problems: rope_type='ROPE_3D' is not one of 'rope_2d', 'rope_3d'"),
    ("dp.mrope_problems", "parameterless", lambda: s_dp.mrope_problems(parameterless="no"),
     f"mrope_problems: parameterless='no' {BOOL}"),
    ("dp.mrope_problems", "max_ranks", lambda: s_dp.mrope_problems(max_ranks=B.MAX_RANKS + 1),
     f"mrope_problems: max_ranks={B.MAX_RANKS + 1} is above the cap MAX_RANKS={B.MAX_RANKS} {FIXED}"),
    ("dp.mrope_problems", "max_ranks", lambda: s_dp.mrope_problems(max_ranks=True),
     "mrope_problems: max_ranks=True is a bool, not an int"),
    ("dp.mrope_problems", "mixed_dtypes", lambda: s_dp.mrope_problems(mixed_dtypes=None),
     f"mrope_problems: mixed_dtypes=None {BOOL}"),
    ("dp.mrope_problems", "output_dtype_differs", lambda: s_dp.mrope_problems(output_dtype_differs=torch.float16),
     f"mrope_problems: output_dtype_differs=torch.float16 {BOOL}"),
    # encoder_info
    ("encoder_info.vision_configs", "family", lambda: s_info.vision_configs(family="vit"),
     f"vision_configs: family='vit' is not one of {FAMILIES}"),
    ("encoder_info.vision_configs", "family", lambda: s_info.vision_configs(family=3),
     f"vision_configs: family=3 is not one of {FAMILIES}"),
    ("encoder_info.hf_configs", "family", lambda: s_info.hf_configs(family="CLIP"),
     f"hf_configs: family='CLIP' is not one of {FAMILIES}"),
    # backend
    ("backend.backend_queries", "override", lambda: s_backend.backend_queries(override="FLASH_ATTN"),
     f"backend_queries: override='FLASH_ATTN' {BOOL}"),
    ("backend.capabilities", "known", lambda: s_backend.capabilities(known=1),
     f"capabilities: known=1 {OPT_BOOL}"),
    ("backend.cuda_facts", "all_kernels", lambda: s_backend.cuda_facts(all_kernels=None),
     f"cuda_facts: all_kernels=None {BOOL}"),
    ("backend.cuda_facts", "known_capability", lambda: s_backend.cuda_facts(known_capability="yes"),
     f"cuda_facts: known_capability='yes' {OPT_BOOL}"),
    ("backend.simulated_queries", "facts", lambda: s_backend.simulated_queries("cuda"),
     "simulated_queries: facts='cuda' is not a Hypothesis strategy (got str)"),
    ("backend.simulated_queries", "override", lambda: s_backend.simulated_queries(s_backend.cpu_facts(), "always"),
     "simulated_queries: override='always' is not one of None, True, False, 'listed', 'unlisted'"),
    ("backend.simulated_queries", "override", lambda: s_backend.simulated_queries(s_backend.cpu_facts(), 1),
     "simulated_queries: override=1 is not one of None, True, False, 'listed', 'unlisted'"),
]

# (function, a correct call): each draws (or, for the two plain helpers, returns) a value
GOOD = [
    ("feature_select.named_strategies", lambda: s_fs.named_strategies()),
    ("feature_select.callable_strategies", lambda: s_fs.callable_strategies(include_folds=False)),
    ("feature_select.feature_select_strategies", lambda: s_fs.feature_select_strategies(True, True)),
    ("feature_select.invalid_strategies", lambda: s_fs.invalid_strategies()),
    ("feature_select.token_counts", lambda: s_fs.token_counts(0)),
    ("feature_select.vision_features", lambda: s_fs.vision_features(min_tokens=300, max_tokens=B.MAX_ELEMENTS)),
    ("encoder_outputs.hidden_states", lambda: st.just(s_enc.hidden_states(4, 1, 2, 3, dtype=torch.float64))),
    ("encoder_outputs.encoder_shapes", lambda: s_enc.encoder_shapes()),
    ("encoder_outputs.layer_selections", lambda: s_enc.layer_selections(8, 8, include_final=True, final_as="negative")),
    ("encoder_outputs.post_norms", lambda: s_enc.post_norms(4)),
    ("encoder_outputs.encoder_output_problems", lambda: s_enc.encoder_output_problems(select=False, with_proc=True)),
    ("pos_ids.t_indices", lambda: s_pos.t_indices(1)),
    ("pos_ids.pos_id_inputs", lambda: s_pos.pos_id_inputs()),
    ("load_balance.image_size_lists", lambda: s_lb.image_size_lists(B.MAX_SIZES)),
    ("load_balance.rank_counts", lambda: s_lb.rank_counts(B.MAX_BALANCE_RANKS)),
    ("load_balance.load_balance_inputs", lambda: s_lb.load_balance_inputs()),
    ("dp.world_sizes", lambda: s_dp.world_sizes(1)),
    ("dp.plain_dp_problems", lambda: s_dp.plain_dp_problems(max_ranks=4)),
    ("dp.grid_lists", lambda: s_dp.grid_lists("rope_2d", (1, 2), max_images=0, max_patches=0)),
    ("dp.mrope_problems", lambda: s_dp.mrope_problems("rope_2d", True, 4, True, True)),
    ("encoder_info.vision_configs", lambda: s_info.vision_configs("siglip")),
    ("encoder_info.hf_configs", lambda: s_info.hf_configs(None)),
    ("encoder_info.image_dims", lambda: s_info.image_dims()),
    ("encoder_info.encoder_info_problems", lambda: s_info.encoder_info_problems()),
    ("backend.head_sizes", lambda: s_backend.head_sizes()),
    ("backend.attention_dtypes", lambda: s_backend.attention_dtypes()),
    ("backend.backend_names", lambda: s_backend.backend_names()),
    ("backend.backend_queries", lambda: s_backend.backend_queries(override=True)),
    ("backend.capabilities", lambda: s_backend.capabilities(known=False)),
    ("backend.cuda_facts", lambda: s_backend.cuda_facts(all_kernels=True, known_capability=True)),
    ("backend.rocm_facts", lambda: s_backend.rocm_facts()),
    ("backend.xpu_facts", lambda: s_backend.xpu_facts()),
    ("backend.cpu_facts", lambda: s_backend.cpu_facts()),
    ("backend.tpu_facts", lambda: s_backend.tpu_facts()),
    ("backend.platform_facts", lambda: s_backend.platform_facts()),
    ("backend.simulated_queries", lambda: s_backend.simulated_queries(s_backend.rocm_facts(), "unlisted")),
    ("backend.grid", lambda: st.just(s_backend.grid())),
]


def _public_functions():
    """(module.function, its parameters) for every public function defined in strategies/."""
    found = {}
    for module in MODULES:
        short = module.__name__.rsplit(".", 1)[1]
        for name, obj in vars(module).items():
            if name.startswith("_") or not isinstance(obj, types.FunctionType) or obj.__module__ != module.__name__:
                continue
            if f"{short}.{name}" not in NOT_STRATEGIES:
                found[f"{short}.{name}"] = [p for p in inspect.signature(obj).parameters if p != "draw"]
    return found


def test_every_argument_has_a_row():
    functions = _public_functions()
    covered = {(function, argument) for function, argument, _, _ in ROWS}
    missing = [(f, a) for f, params in functions.items() for a in params if (f, a) not in covered]
    assert not missing, f"arguments without a bad-value row: {missing}"
    drawn = {function for function, _ in GOOD}
    assert set(functions) <= drawn, f"functions without a correct-call row: {sorted(set(functions) - drawn)}"
    unknown = [(f, a) for f, a in covered if a not in functions.get(f, ())] + sorted(drawn - set(functions))
    assert not unknown, f"rows that name no public function or argument: {unknown}"


def _row_id(row):
    function, argument, _, message = row
    return f"{function.split('.')[1]}-{argument}-{message.split(': ', 1)[1][:40]}"


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_a_bad_argument_is_refused(row):
    _, _, call, message = row
    with pytest.raises(InvalidArgument) as raised:
        call().validate()  # eager: the call raises; validate() would force a lazy check
    assert str(raised.value) == message


@pytest.mark.parametrize("function, call", GOOD, ids=[f for f, _ in GOOD])
def test_a_correct_call_still_draws(function, call):
    drawn = []

    @settings(max_examples=5, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(call())
    def draw(value):
        drawn.append(value)

    draw()
    assert drawn
