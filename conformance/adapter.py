"""Presenting a vLLM-shaped module (vLLM's own ``vision.py`` of any release
0.10.x -> newest, or a copy of it) through the documented signatures.

The adaptation is decided by inspecting the module's signatures, not by its
version number, so a copy of any release works as a candidate as it is.
Everything not listed here is passed through unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import types
from typing import Any, Callable

from ..documented import NAMES as DOCUMENTED
from .checks import NotApplicable


class NotInThisForm(Exception):
    """The release's form of the function cannot express this input. The
    controller refuses such inputs before they are sent (:func:`refusal`);
    raised here only as a safeguard."""


def _params(fn: Callable) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return {}


def resolve_form(fn: Callable) -> str:
    """``documented``; ``no-last-hs-proc`` (0.11.1 - 0.14.x: the documented
    form without ``last_hs_proc``); or ``feature_sample_layers`` (<= 0.11.0:
    no feature_select_strategy, no last_hs_proc either)."""
    params = _params(fn)
    if "select_layers" in params or not params or "feature_sample_layers" not in params:
        if params and "last_hs_proc" not in params and not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return "no-last-hs-proc"
        return "documented"
    return "feature_sample_layers"


def backend_form(fn: Callable, module: types.ModuleType) -> str:
    """How a release's ``get_vit_attn_backend`` takes an override: ``argument``
    (0.11.1 - 0.14.x, the documented form), ``none`` (<= 0.10.2: no head size,
    dtype or override), ``multimodal_config`` (0.21+), ``private`` (0.15 - 0.20:
    the private function's argument), ``no-override`` (0.11.0)."""
    params = _params(fn)
    if "attn_backend_override" in params:
        return "argument"
    if "support_fa" in params or (params and "head_size" not in params and "dtype" not in params):
        return "none"
    if getattr(module, "get_multimodal_config", None) is not None:
        return "multimodal_config"
    if getattr(module, "_get_vit_attn_backend", None) is not None:
        return "private"
    return "no-override"


def forms(module: Any, names: dict[str, Any]) -> dict[str, str]:
    """The form of each adapted name (the controller decides from these which inputs a target can take)."""
    out = {}
    if not (isinstance(module, types.ModuleType) and looks_like_vllm(module)):
        return out
    if "resolve_visual_encoder_outputs" in names:
        out["resolve_visual_encoder_outputs"] = resolve_form(getattr(module, "resolve_visual_encoder_outputs"))
    if "get_vit_attn_backend" in names:
        out["get_vit_attn_backend"] = backend_form(getattr(module, "get_vit_attn_backend"), module)
    return out


def refusal(function: str, target_forms: dict[str, str], example: dict) -> str | None:
    """Why the target's form of ``function`` cannot take ``example`` (None: it can)."""
    form = target_forms.get(function)
    if function == "resolve_visual_encoder_outputs" and form == "feature_sample_layers" \
            and example.get("feature_select_strategy") is not None:
        return "this release has no feature_select_strategy argument"
    if function == "resolve_visual_encoder_outputs" and form in ("feature_sample_layers", "no-last-hs-proc") \
            and example.get("last_hs_proc") is not None:
        return "this release has no last_hs_proc argument (added in 0.15)"
    if function == "get_vit_attn_backend" and form in ("none", "no-override") \
            and example.get("attn_backend_override") is not None:
        return "this release's get_vit_attn_backend takes no override"
    return None


def prepare_by_form(ctx, example: dict) -> dict:
    """A check's ``prepare``: the example as it is, or NotApplicable when the target's form cannot take it."""
    why = refusal(ctx.function, ctx.target.forms, example)
    if why:
        raise NotApplicable(why)
    return example


def _adapt_resolve(fn: Callable) -> Callable:
    if resolve_form(fn) != "feature_sample_layers":
        return fn

    # <= 0.11.0: (encoder_outputs, feature_sample_layers, post_layer_norm, max_possible_layers)
    @functools.wraps(fn)
    def documented(encoder_outputs, post_layer_norm, *, select_layers=None,
                   max_possible_layers=None, last_hs_proc=None, feature_select_strategy=None):
        if feature_select_strategy is not None:
            raise NotInThisForm("this release has no feature_select_strategy argument")
        if last_hs_proc is not None:
            raise NotInThisForm("this release has no last_hs_proc argument")
        return fn(encoder_outputs, select_layers, post_layer_norm, max_possible_layers)

    return documented


def backend_enum(module: types.ModuleType):
    for name in ("AttentionBackendEnum", "_Backend"):
        enum_cls = getattr(module, name, None)
        if enum_cls is not None:
            return enum_cls
    return None


def to_enum(enum_cls, override: Any) -> Any:
    """A backend name becomes the release's enum member; an unknown name is
    passed on as the string, as a user of that release would."""
    if isinstance(override, str) and enum_cls is not None:
        try:
            return enum_cls[override]
        except KeyError:
            return override
    return override


def _adapt_backend(fn: Callable, module: types.ModuleType) -> Callable:
    form = backend_form(fn, module)
    enum_cls = backend_enum(module)
    if form == "argument":
        @functools.wraps(fn)
        def documented(head_size, dtype, *, attn_backend_override=None):
            return fn(head_size, dtype, attn_backend_override=to_enum(enum_cls, attn_backend_override))

        return documented

    if form == "none":
        # the default is the one the ViTs without FlashAttention support ask for
        @functools.wraps(fn)
        def documented(head_size, dtype, *, attn_backend_override=None):
            if attn_backend_override is not None:
                raise NotInThisForm("this release's get_vit_attn_backend takes no override")
            return fn()

        return documented

    private = getattr(module, "_get_vit_attn_backend", None)

    @functools.wraps(fn)
    def documented(head_size, dtype, *, attn_backend_override=None):
        if attn_backend_override is None:
            return fn(head_size, dtype)
        if form == "multimodal_config":
            # the override comes from the multimodal config (validated by vLLM's own
            # MultiModalConfig field validator) of the current engine config, set with
            # vLLM's own set_current_vllm_config, so the release's get_multimodal_config
            # is exercised too. The engine config is the minimal stub vLLM's own tests use.
            from vllm.config import MultiModalConfig, set_current_vllm_config

            name = getattr(attn_backend_override, "name", attn_backend_override)
            config = MultiModalConfig(mm_encoder_attn_backend=name)
            engine = types.SimpleNamespace(model_config=types.SimpleNamespace(multimodal_config=config))
            with set_current_vllm_config(engine):
                return fn(head_size, dtype)
        if form == "private":
            # the public function reads the engine config; the override
            # argument lives on the private function.
            return private(head_size, dtype, attn_backend_override=to_enum(enum_cls, attn_backend_override))
        raise NotInThisForm("this release's get_vit_attn_backend takes no override")

    return documented


def looks_like_vllm(module: types.ModuleType) -> bool:
    """A vLLM-shaped module: vLLM's ``vision.py`` or a copy of it."""
    return hasattr(module, "current_platform") or getattr(module, "__name__", "").startswith("vllm.")


def documented_names(module: Any) -> dict[str, Any]:
    """The documented names ``module`` provides, adapted to the documented forms."""
    found = {name: getattr(module, name) for name in DOCUMENTED if hasattr(module, name)}
    if isinstance(module, types.ModuleType) and looks_like_vllm(module):
        if "resolve_visual_encoder_outputs" in found:
            found["resolve_visual_encoder_outputs"] = _adapt_resolve(found["resolve_visual_encoder_outputs"])
        if "get_vit_attn_backend" in found:
            found["get_vit_attn_backend"] = _adapt_backend(found["get_vit_attn_backend"], module)
    return found


@contextlib.contextmanager
def environment(**values: str | None):
    """Set (or unset, with None) environment variables for one call."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
