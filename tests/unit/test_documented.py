"""The documented names exist once (vllm_vision_conformance/documented.py);
everything else must agree with that list, and the registry's aggregator must
refuse a missing, doubled or misplaced record."""

import importlib
import re
import types
from pathlib import Path

import pytest

from vllm_vision_conformance import documented
from vllm_vision_conformance.documented import FAMILIES, FAMILY, NAMES

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "vllm-vision-api.txt"


def test_every_name_has_its_reference_strategy_and_record_module():
    from vllm_vision_conformance import reference
    from vllm_vision_conformance.conformance.registry import REGISTRY

    assert reference.__all__ == list(NAMES)
    for name in NAMES:
        stem = FAMILY[name]
        assert hasattr(reference, name), f"reference does not define {name}"
        assert getattr(importlib.import_module(f"vllm_vision_conformance.reference.{stem}"), name, None) \
            is getattr(reference, name), f"{name} is not defined in reference/{stem}.py"
        importlib.import_module(f"vllm_vision_conformance.strategies.{stem}")
        records = importlib.import_module(f"vllm_vision_conformance.conformance.records.{stem}").RECORDS
        assert name in [spec.name for spec in records], f"conformance/records/{stem}.py has no record for {name}"
    assert [spec.name for spec in REGISTRY] == list(NAMES)


def test_every_record_module_is_a_family_and_only_holds_records():
    folder = ROOT / "conformance" / "records"
    stems = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    assert stems == sorted(FAMILIES)
    for stem in FAMILIES:
        assert (ROOT / "reference" / f"{stem}.py").is_file() and (ROOT / "strategies" / f"{stem}.py").is_file()


def test_the_names_are_the_documented_page_s():
    if not SEED.is_file():
        pytest.skip(f"the docs page {SEED} is not beside this checkout")
    text = SEED.read_text()
    # The stored page lost the heading of run_dp_sharded_vision_model; its section
    # (parameters image_input and vision_model) is there.
    assert "| image_input | Tensor | Image input tensor. |" in text
    for name in NAMES:
        if name != "run_dp_sharded_vision_model":
            assert re.search(rf"\b{re.escape(name)}\b", text), f"{name} is not on the documented page"


def test_the_adapter_and_the_readme_table_read_the_one_list():
    from vllm_vision_conformance.conformance import adapter

    assert adapter.DOCUMENTED == NAMES
    rows = re.findall(r"^\| `([^`]+)` \|", (ROOT / "README.md").read_text(), re.M)
    assert [r for r in rows if r in NAMES or r.startswith(("get_", "run_", "_get", "Vision", "resolve_"))] == list(NAMES)


def _fake_family(monkeypatch, stem, specs):
    module = types.ModuleType(f"vllm_vision_conformance.conformance.records.{stem}")
    module.RECORDS = specs
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)


@pytest.mark.parametrize("change, says", [
    ("drop", "no record for the documented name(s) get_llm_pos_ids_for_vision"),
    ("double", "a second record for 'get_llm_pos_ids_for_vision'"),
    ("undocumented", "'get_llm_pos_ids', which is not a documented name"),
    ("misplaced", "belongs in conformance/records/load_balance.py"),
])
def test_the_aggregator_refuses_a_broken_family(monkeypatch, change, says):
    from vllm_vision_conformance.conformance import registry
    from vllm_vision_conformance.conformance.checks import FunctionSpec
    from vllm_vision_conformance.conformance.records import pos_ids

    real = pos_ids.RECORDS
    specs = {"drop": [], "double": real + real, "undocumented": [FunctionSpec("get_llm_pos_ids", "x", [])],
             "misplaced": real + [FunctionSpec("get_load_balance_assignment", "x", [])]}[change]
    _fake_family(monkeypatch, "pos_ids", specs)
    with pytest.raises(AssertionError, match=re.escape(says)):
        registry.gather()


def test_names_are_unique_and_families_in_order():
    assert len(set(NAMES)) == len(NAMES)
    assert list(FAMILIES) == list(dict.fromkeys(FAMILY[n] for n in NAMES))
    assert documented.DOCUMENTED[0] == ("VisionFeatureSelectStrategyStr", "feature_select")
