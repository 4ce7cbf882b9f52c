"""The names vLLM documents for its vision helpers, listed once.

The page is vLLM's API docs for ``vllm.model_executor.models.vision``. Each
name's *family* is the stem of its three modules: ``reference/<stem>.py``
(the clean implementation), ``strategies/<stem>.py`` (its inputs) and
``conformance/records/<stem>.py`` (its checks). The reference exports exactly
these names, the registry holds one record for each, in this order (the order
of the report's columns), and tests/unit/test_documented.py fails when any of
the three is missing.
"""

DOCUMENTED: tuple[tuple[str, str], ...] = (
    ("VisionFeatureSelectStrategyStr", "feature_select"),
    ("VisionFeatureSelectStrategy", "feature_select"),
    ("_get_vision_feature_selector", "feature_select"),
    ("get_num_selected_vision_tokens", "feature_select"),
    ("resolve_visual_encoder_outputs", "encoder_outputs"),
    ("get_llm_pos_ids_for_vision", "pos_ids"),
    ("get_load_balance_assignment", "load_balance"),
    ("run_dp_sharded_vision_model", "dp"),
    ("run_dp_sharded_mrope_vision_model", "dp"),
    ("get_vision_encoder_info", "encoder_info"),
    ("get_vit_attn_backend", "backend"),
)

NAMES: tuple[str, ...] = tuple(name for name, _ in DOCUMENTED)
FAMILY: dict[str, str] = dict(DOCUMENTED)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(FAMILY.values()))
