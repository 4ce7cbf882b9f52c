"""The adapter's per-release forms (conformance/adapter.py), on tiny fakes that
have each release's exact signatures (the def lines below are copied, as data,
from the releases' vision.py), and on the installed vLLM's own def lines (read
from its source, not imported: importing vLLM takes most of a minute here)."""

from __future__ import annotations

import ast
import contextlib
import enum
import importlib.util
import inspect
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from vllm_vision_conformance import reference
from vllm_vision_conformance.conformance import adapter
from vllm_vision_conformance.conformance.adapter import (NotInThisForm, backend_enum, backend_form,
                                                         documented_names, environment, forms, prepare_by_form,
                                                         refusal, resolve_form, to_enum)
from vllm_vision_conformance.conformance.checks import NotApplicable

RESOLVE = "resolve_visual_encoder_outputs"
BACKEND = "get_vit_attn_backend"

# The def lines of each release, copied from site-packages/vllm/model_executor/models/vision.py
# (envs .tox/vllm-0.10.2, -0.11.0, -0.13.0, -0.15.0; test_release_data_matches_the_envs checks them
# against those files where they exist). ``module`` says which other names the module has.
RELEASES = {
    "0.10.2": dict(
        resolve='''\
def resolve_visual_encoder_outputs(
    encoder_outputs: Union[torch.Tensor, list[torch.Tensor]],
    feature_sample_layers: Optional[list[int]],
    post_layer_norm: Optional[torch.nn.LayerNorm],
    max_possible_layers: int,
) -> torch.Tensor:''',
        backend="def get_vit_attn_backend(support_fa: bool = False) -> _Backend:",
        private=None, module=("_Backend",),
        forms=("feature_sample_layers", "none")),
    "0.11.0": dict(
        resolve='''\
def resolve_visual_encoder_outputs(
    encoder_outputs: Union[torch.Tensor, list[torch.Tensor]],
    feature_sample_layers: Optional[list[int]],
    post_layer_norm: Optional[torch.nn.LayerNorm],
    max_possible_layers: int,
) -> torch.Tensor:''',
        backend="def get_vit_attn_backend(head_size: int, dtype: torch.dtype) -> _Backend:",
        private=None, module=("_Backend",),
        forms=("feature_sample_layers", "no-override")),
    "0.13.0": dict(
        resolve='''\
def resolve_visual_encoder_outputs(
    encoder_outputs: torch.Tensor | list[torch.Tensor],
    post_layer_norm: torch.nn.LayerNorm | None,
    *,
    select_layers: list[int] | None = None,
    max_possible_layers: int | None = None,
    feature_select_strategy: VisionFeatureSelectStrategy | None = None,
) -> torch.Tensor:''',
        backend='''\
def get_vit_attn_backend(
    head_size: int,
    dtype: torch.dtype,
    *,
    attn_backend_override: AttentionBackendEnum | None = None,
) -> AttentionBackendEnum:''',
        private=None, module=("AttentionBackendEnum",),
        forms=("no-last-hs-proc", "argument")),
    "0.15.0": dict(
        resolve='''\
def resolve_visual_encoder_outputs(
    encoder_outputs: torch.Tensor | list[torch.Tensor],
    post_layer_norm: torch.nn.LayerNorm | None,
    *,
    select_layers: list[int] | None = None,
    max_possible_layers: int | None = None,
    last_hs_proc: Callable[[torch.Tensor], torch.Tensor] | None = None,
    feature_select_strategy: VisionFeatureSelectStrategy | None = None,
) -> torch.Tensor:''',
        backend='''\
def get_vit_attn_backend(
    head_size: int,
    dtype: torch.dtype,
) -> AttentionBackendEnum:''',
        private='''\
def _get_vit_attn_backend(
    head_size: int,
    dtype: torch.dtype,
    *,
    attn_backend_override: AttentionBackendEnum | None = None,
) -> AttentionBackendEnum:''',
        module=("AttentionBackendEnum",),
        forms=("documented", "private")),
}


class FakeBackend(enum.Enum):
    TORCH_SDPA = "sdpa"
    FLASH_ATTN = "fa"


def _header(source: str, name: str) -> str | None:
    """The def lines of top-level function ``name`` in ``source`` (up to its body), as written."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return "\n".join(lines[node.lineno - 1:node.body[0].lineno - 1]).rstrip()
    return None


def _module_names(source: str) -> set[str]:
    """Names defined or imported at the top level of ``source``."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def fake_release(name: str, resolve: str, backend: str, private: str | None = None, module=(),
                 vllm_named: bool = True) -> tuple[types.ModuleType, list]:
    """A module whose functions have exactly these def lines; each call is recorded
    (function name, the arguments as bound) in the returned list."""
    calls: list = []
    mod = types.ModuleType(f"vllm.model_executor.models._vvc_fake_{name.replace('.', '_')}" if vllm_named
                           else f"_vvc_fake_{name.replace('.', '_')}")
    body = "    __calls.append(({name!r}, dict(locals())))\n    return {ret}\n"
    src = "from __future__ import annotations\n"
    src += resolve + "\n" + body.format(name=RESOLVE, ret="'resolved'")
    src += backend + "\n" + body.format(name=BACKEND, ret="'public'")
    if private:
        src += private + "\n" + body.format(name="_get_vit_attn_backend", ret="'private'")
    namespace = {"__calls": calls, "__name__": mod.__name__}
    exec(compile(src, f"<{name}>", "exec"), namespace)
    for key, value in namespace.items():
        if not key.startswith("__"):
            setattr(mod, key, value)
    for extra in module:
        if extra in ("_Backend", "AttentionBackendEnum"):
            setattr(mod, extra, FakeBackend)
        else:
            setattr(mod, extra, lambda: None)
    return mod, calls


@pytest.fixture(params=sorted(RELEASES))
def release(request):
    data = RELEASES[request.param]
    mod, calls = fake_release(request.param, data["resolve"], data["backend"], data["private"], data["module"])
    return request.param, data, mod, calls


def test_each_release_is_recognised_as_its_documented_form(release):
    version, data, mod, _ = release
    want_resolve, want_backend = data["forms"]
    assert resolve_form(mod.resolve_visual_encoder_outputs) == want_resolve
    assert backend_form(mod.get_vit_attn_backend, mod) == want_backend
    assert forms(mod, documented_names(mod)) == {RESOLVE: want_resolve, BACKEND: want_backend}


def test_the_form_is_read_from_the_signature_not_the_version():
    """The same def lines in a module of another name give the same form; forms() only
    applies to a vLLM-shaped module (named vllm.* or with current_platform)."""
    data = RELEASES["0.11.0"]
    plain_mod, _ = fake_release("x", data["resolve"], data["backend"], vllm_named=False)
    assert resolve_form(plain_mod.resolve_visual_encoder_outputs) == "feature_sample_layers"
    assert forms(plain_mod, documented_names(plain_mod)) == {}
    plain_mod.current_platform = object()
    assert forms(plain_mod, documented_names(plain_mod)) == {RESOLVE: "feature_sample_layers",
                                                            BACKEND: "no-override"}


def check_old_resolve_adapted(mod, calls) -> None:
    """The <= 0.11.0 resolve, adapted: called with the old names, in the old order."""
    fn = documented_names(mod)[RESOLVE]
    outputs, norm = torch.zeros(1), torch.nn.Identity()
    assert fn(outputs, norm, select_layers=[-1, -2], max_possible_layers=7) == "resolved"
    name, bound = calls[-1]
    assert name == RESOLVE
    assert list(bound) == ["encoder_outputs", "feature_sample_layers", "post_layer_norm", "max_possible_layers"]
    assert bound["encoder_outputs"] is outputs and bound["post_layer_norm"] is norm
    assert bound["feature_sample_layers"] == [-1, -2] and bound["max_possible_layers"] == 7
    # the documented defaults reach the old positional arguments as None
    fn(outputs, None)
    assert calls[-1][1] == {"encoder_outputs": outputs, "feature_sample_layers": None, "post_layer_norm": None,
                            "max_possible_layers": None}
    with pytest.raises(NotInThisForm, match="no feature_select_strategy argument"):
        fn(outputs, None, feature_select_strategy="class")
    with pytest.raises(NotInThisForm, match="no last_hs_proc argument"):
        fn(outputs, None, last_hs_proc=lambda x: x)
    assert len([c for c in calls if c[0] == RESOLVE]) == 2  # the refused calls never reached the release


@pytest.mark.parametrize("version", ["0.10.2", "0.11.0"])
def test_the_old_resolve_is_called_with_the_old_argument_names_in_order(version):
    data = RELEASES[version]
    mod, calls = fake_release(version, data["resolve"], data["backend"], module=data["module"])
    adapted = documented_names(mod)[RESOLVE]
    assert adapted is not mod.resolve_visual_encoder_outputs
    assert list(inspect.signature(adapted, follow_wrapped=False).parameters) == [
        "encoder_outputs", "post_layer_norm", "select_layers", "max_possible_layers", "last_hs_proc",
        "feature_select_strategy"]
    check_old_resolve_adapted(mod, calls)


def test_mutation_an_adapter_that_passes_the_documented_order_is_noticed(monkeypatch):
    """Mutation: the old form passed through unadapted, or adapted with post_layer_norm and
    the layers swapped: the check above fails."""
    data = RELEASES["0.11.0"]
    mod, calls = fake_release("m1", data["resolve"], data["backend"], module=data["module"])
    monkeypatch.setattr(adapter, "_adapt_resolve", lambda fn: fn)
    with pytest.raises((AssertionError, TypeError)):
        check_old_resolve_adapted(mod, calls)

    def swapped(fn):
        def documented(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                       last_hs_proc=None, feature_select_strategy=None):
            return fn(encoder_outputs, post_layer_norm, select_layers, max_possible_layers)
        return documented

    monkeypatch.setattr(adapter, "_adapt_resolve", swapped)
    with pytest.raises(AssertionError):
        check_old_resolve_adapted(mod, calls)


@pytest.mark.parametrize("version", ["0.13.0", "0.15.0"])
def test_the_newer_resolve_forms_are_passed_through_unchanged(version):
    data = RELEASES[version]
    mod, calls = fake_release(version, data["resolve"], data["backend"], data["private"], data["module"])
    assert documented_names(mod)[RESOLVE] is mod.resolve_visual_encoder_outputs


def test_backend_argument_form_maps_names_to_the_releases_enum():
    data = RELEASES["0.13.0"]
    mod, calls = fake_release("0.13.0", data["resolve"], data["backend"], module=data["module"])
    fn = documented_names(mod)[BACKEND]
    assert fn(64, torch.float16, attn_backend_override="TORCH_SDPA") == "public"
    assert calls[-1] == (BACKEND, {"head_size": 64, "dtype": torch.float16,
                                   "attn_backend_override": FakeBackend.TORCH_SDPA})
    fn(64, torch.float16, attn_backend_override="NO_SUCH_BACKEND")  # passed on as the string, as a user would
    assert calls[-1][1]["attn_backend_override"] == "NO_SUCH_BACKEND"
    fn(80, torch.bfloat16)
    assert calls[-1][1] == {"head_size": 80, "dtype": torch.bfloat16, "attn_backend_override": None}


def test_backend_none_form_0_10_2_takes_no_arguments_and_refuses_an_override():
    data = RELEASES["0.10.2"]
    mod, calls = fake_release("0.10.2", data["resolve"], data["backend"], module=data["module"])
    fn = documented_names(mod)[BACKEND]
    assert fn(64, torch.float16) == "public"
    assert calls[-1] == (BACKEND, {"support_fa": False})  # the default: a ViT without FlashAttention support
    with pytest.raises(NotInThisForm, match="^this release's get_vit_attn_backend takes no override$"):
        fn(64, torch.float16, attn_backend_override="TORCH_SDPA")
    assert len(calls) == 1


def test_backend_no_override_form_0_11_0():
    data = RELEASES["0.11.0"]
    mod, calls = fake_release("0.11.0", data["resolve"], data["backend"], module=data["module"])
    fn = documented_names(mod)[BACKEND]
    assert fn(72, torch.float32) == "public"
    assert calls[-1] == (BACKEND, {"head_size": 72, "dtype": torch.float32})
    with pytest.raises(NotInThisForm, match="takes no override"):
        fn(72, torch.float32, attn_backend_override="FLASH_ATTN")
    assert len(calls) == 1


def test_backend_private_form_0_15_0_sends_the_override_to_the_private_function():
    data = RELEASES["0.15.0"]
    mod, calls = fake_release("0.15.0", data["resolve"], data["backend"], data["private"], data["module"])
    fn = documented_names(mod)[BACKEND]
    assert fn(64, torch.float16) == "public"
    assert calls[-1] == (BACKEND, {"head_size": 64, "dtype": torch.float16})
    assert fn(64, torch.float16, attn_backend_override="FLASH_ATTN") == "private"
    assert calls[-1] == ("_get_vit_attn_backend", {"head_size": 64, "dtype": torch.float16,
                                                   "attn_backend_override": FakeBackend.FLASH_ATTN})


def test_backend_multimodal_config_form_sets_the_config_around_the_public_call(monkeypatch):
    """0.21+: the override travels in the current engine config's multimodal config (vLLM's
    own config classes; faked here, vLLM's import takes most of a minute)."""
    data = RELEASES["0.15.0"]
    mod, calls = fake_release("mm", data["resolve"], data["backend"], data["private"],
                              data["module"] + ("get_multimodal_config",))
    assert backend_form(mod.get_vit_attn_backend, mod) == "multimodal_config"
    seen = []

    class MultiModalConfig:
        def __init__(self, mm_encoder_attn_backend):
            self.mm_encoder_attn_backend = mm_encoder_attn_backend

    @contextlib.contextmanager
    def set_current_vllm_config(engine):
        seen.append(("enter", engine.model_config.multimodal_config.mm_encoder_attn_backend))
        yield
        seen.append(("exit",))

    fake_config = types.ModuleType("vllm.config")
    fake_config.MultiModalConfig, fake_config.set_current_vllm_config = MultiModalConfig, set_current_vllm_config
    monkeypatch.setitem(sys.modules, "vllm.config", fake_config)
    public = mod.get_vit_attn_backend

    def recording_public(head_size, dtype):
        seen.append(("call", head_size, dtype))
        return public(head_size, dtype)

    fn = adapter._adapt_backend(recording_public, mod)
    assert fn(64, torch.float16) == "public" and seen == [("call", 64, torch.float16)]  # no config without override
    seen.clear()
    assert fn(64, torch.float16, attn_backend_override=FakeBackend.TORCH_SDPA) == "public"
    assert seen == [("enter", "TORCH_SDPA"), ("call", 64, torch.float16), ("exit",)]  # by name, inside the config
    assert not any(c[0] == "_get_vit_attn_backend" for c in calls)


def test_backend_forms_order_of_precedence():
    """An override argument wins; then support_fa / no head size nor dtype; then the
    multimodal config before the private function."""
    def argument(head_size, dtype, *, attn_backend_override=None): ...
    def public(head_size, dtype): ...
    def bare(x): ...
    both = types.SimpleNamespace(get_multimodal_config=lambda: None, _get_vit_attn_backend=public)
    assert backend_form(argument, both) == "argument"
    assert backend_form(bare, both) == "none"
    assert backend_form(public, both) == "multimodal_config"
    assert backend_form(public, types.SimpleNamespace(_get_vit_attn_backend=public)) == "private"
    assert backend_form(public, types.SimpleNamespace()) == "no-override"


def test_resolve_forms_of_candidates_shapes():
    def kwargs_only(encoder_outputs, post_layer_norm, **kw): ...
    def documented_form(encoder_outputs, post_layer_norm, *, select_layers=None, last_hs_proc=None): ...
    def no_hs(encoder_outputs, post_layer_norm, *, select_layers=None): ...
    assert resolve_form(kwargs_only) == "documented"  # **kwargs may take last_hs_proc
    assert resolve_form(documented_form) == "documented"
    assert resolve_form(no_hs) == "no-last-hs-proc"
    assert resolve_form(object()) == "documented"  # no signature to read: taken as documented
    assert resolve_form(reference.resolve_visual_encoder_outputs) == "documented"
    assert backend_form(reference.get_vit_attn_backend, reference) == "argument"


def test_a_module_that_is_not_vllm_shaped_is_not_adapted():
    data = RELEASES["0.10.2"]
    mod, _ = fake_release("plain", data["resolve"], data["backend"], vllm_named=False)
    found = documented_names(mod)
    assert found[RESOLVE] is mod.resolve_visual_encoder_outputs and found[BACKEND] is mod.get_vit_attn_backend
    assert set(documented_names(reference)) == set(reference.__all__) & set(adapter.DOCUMENTED)


def test_backend_enum_and_to_enum():
    class Old(enum.Enum):
        X = 1

    assert backend_enum(types.SimpleNamespace(_Backend=Old, AttentionBackendEnum=FakeBackend)) is FakeBackend
    assert backend_enum(types.SimpleNamespace(_Backend=Old)) is Old
    assert backend_enum(types.SimpleNamespace()) is None
    assert to_enum(FakeBackend, "FLASH_ATTN") is FakeBackend.FLASH_ATTN
    assert to_enum(FakeBackend, "sdpa") == "sdpa"  # by member name, not value
    assert to_enum(None, "FLASH_ATTN") == "FLASH_ATTN"
    assert to_enum(FakeBackend, FakeBackend.TORCH_SDPA) is FakeBackend.TORCH_SDPA
    assert to_enum(FakeBackend, None) is None


REFUSALS = [
    (RESOLVE, "feature_sample_layers", {"feature_select_strategy": "class"},
     "this release has no feature_select_strategy argument"),
    (RESOLVE, "feature_sample_layers", {"last_hs_proc": abs},
     "this release has no last_hs_proc argument (added in 0.15)"),
    (RESOLVE, "no-last-hs-proc", {"last_hs_proc": abs}, "this release has no last_hs_proc argument (added in 0.15)"),
    (BACKEND, "none", {"attn_backend_override": "TORCH_SDPA"}, "this release's get_vit_attn_backend takes no override"),
    (BACKEND, "no-override", {"attn_backend_override": "X"}, "this release's get_vit_attn_backend takes no override"),
]
ACCEPTED = [
    (RESOLVE, "no-last-hs-proc", {"feature_select_strategy": "class"}),
    (RESOLVE, "documented", {"feature_select_strategy": "class", "last_hs_proc": abs}),
    (RESOLVE, "feature_sample_layers", {"feature_select_strategy": None, "last_hs_proc": None, "select_layers": [1]}),
    (BACKEND, "private", {"attn_backend_override": "X"}),
    (BACKEND, "multimodal_config", {"attn_backend_override": "X"}),
    (BACKEND, "none", {"attn_backend_override": None}),
    ("get_load_balance_assignment", "feature_sample_layers", {"last_hs_proc": abs}),  # another function
]


@pytest.mark.parametrize("function, form, example, why", REFUSALS)
def test_refusals_name_what_the_release_lacks(function, form, example, why):
    assert refusal(function, {function: form}, example) == why
    ctx = types.SimpleNamespace(function=function, target=types.SimpleNamespace(forms={function: form}))
    with pytest.raises(NotApplicable) as info:
        prepare_by_form(ctx, example)
    assert str(info.value) == why


@pytest.mark.parametrize("function, form, example", ACCEPTED)
def test_what_a_form_can_take_is_passed_as_it_is(function, form, example):
    forms_ = {RESOLVE: form, BACKEND: form}
    assert refusal(function, forms_, example) is None
    ctx = types.SimpleNamespace(function=function, target=types.SimpleNamespace(forms=forms_))
    assert prepare_by_form(ctx, example) is example


def test_environment_sets_unsets_and_restores(monkeypatch):
    monkeypatch.setenv("VVC_TEST_A", "before")
    monkeypatch.delenv("VVC_TEST_B", raising=False)
    with environment(VVC_TEST_A=None, VVC_TEST_B="set"):
        assert "VVC_TEST_A" not in os.environ and os.environ["VVC_TEST_B"] == "set"
    assert os.environ["VVC_TEST_A"] == "before" and "VVC_TEST_B" not in os.environ
    with pytest.raises(RuntimeError):
        with environment(VVC_TEST_A="inside"):
            raise RuntimeError
    assert os.environ["VVC_TEST_A"] == "before"


# ---- the real releases' text ----------------------------------------------------------

def _installed_vision(prefix: Path | None = None) -> Path | None:
    if prefix is None:
        spec = importlib.util.find_spec("vllm")  # finds, does not import
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(list(spec.submodule_search_locations)[0])
    else:
        found = sorted(prefix.glob("lib/python3*/site-packages/vllm"))
        if not found:
            return None
        root = found[0]
    path = root / "model_executor" / "models" / "vision.py"
    return path if path.is_file() else None


# the release envs: beside this checkout's own, or beside the env running these tests (tox's .tox)
ENV_DIRS = (Path(__file__).resolve().parents[2] / ".tox", Path(sys.prefix).parent)


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_release_data_matches_the_envs(version):
    """The def lines above are the releases' own (where the release's env exists here)."""
    path = next((p for p in (_installed_vision(base / f"vllm-{version}") for base in ENV_DIRS
                             if (base / f"vllm-{version}").is_dir()) if p), None)
    if path is None:
        pytest.skip(f"no env vllm-{version} here (tox -e vllm-{version} makes one)")
    source = path.read_text()
    data = RELEASES[version]
    assert _header(source, RESOLVE) == data["resolve"]
    assert _header(source, BACKEND) == data["backend"]
    assert _header(source, "_get_vit_attn_backend") == data["private"]
    names = _module_names(source)
    assert ("get_multimodal_config" in names) is False and set(data["module"]) <= names


def test_the_installed_vllm_is_recognised_as_the_documented_form():
    """The installed vLLM's own def lines (and module names), in a fake module: its release's
    forms (0.33.0: the documented resolve and the multimodal-config backend)."""
    path = _installed_vision()
    if path is None:
        pytest.skip("vLLM is not installed here; the tox env 'tests' installs it")
    source = path.read_text()
    names = _module_names(source)
    private = _header(source, "_get_vit_attn_backend")
    extra = tuple(n for n in ("AttentionBackendEnum", "_Backend", "get_multimodal_config") if n in names)
    mod, calls = fake_release("installed", _header(source, RESOLVE), _header(source, BACKEND), private, extra)
    from importlib.metadata import version

    release = tuple(int(p) for p in version("vllm").split("+")[0].split(".")[:3] if p.isdigit())
    want = ({RESOLVE: "documented", BACKEND: "multimodal_config"} if release >= (0, 21) else
            {RESOLVE: "documented", BACKEND: "private"} if release >= (0, 15) else
            {RESOLVE: "no-last-hs-proc", BACKEND: "argument"} if release >= (0, 11, 1) else
            {RESOLVE: "feature_sample_layers", BACKEND: "no-override"} if release >= (0, 11) else
            {RESOLVE: "feature_sample_layers", BACKEND: "none"})
    assert forms(mod, documented_names(mod)) == want
    if want[RESOLVE] == "documented":
        assert documented_names(mod)[RESOLVE] is mod.resolve_visual_encoder_outputs
        assert list(inspect.signature(mod.resolve_visual_encoder_outputs).parameters) == \
            list(inspect.signature(reference.resolve_visual_encoder_outputs).parameters)


def test_the_header_reader_reads_def_lines_exactly():
    source = textwrap.dedent('''\
        import os
        from a import (b, c as d)
        X = 1
        def f(
            x: int,
        ) -> int:
            """doc"""
            return x
        ''')
    assert _header(source, "f") == "def f(\n    x: int,\n) -> int:"
    assert _header(source, "missing") is None
    assert _module_names(source) >= {"os", "b", "d", "X", "f"}
