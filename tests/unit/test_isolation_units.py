"""The isolation machinery's own parts: the plain-data codec, the results
model, exit codes, the worker's fault causes, the adapter's refusals."""

import json
import pickle
import signal

import pytest
import torch

from vllm_vision_conformance.conformance import plain
from vllm_vision_conformance.conformance.results import BadReport, CheckResult, Exit, Report, Status, load, worst


class _Int(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class _Tensor(torch.Tensor):
    pass


def test_plain_values_cross_exactly():
    value = {"a": [1, 2.5, True, None, "s", b"b"], "t": (torch.arange(6).reshape(2, 3),
                                                       torch.tensor([1.5], dtype=torch.bfloat16)),
             "e": torch.empty(0, 4), "dt": torch.float16, "dev": torch.device("cpu")}
    back = plain.decode(plain.loads(plain.dumps(plain.encode(value))))
    assert back["a"] == [1, 2.5, True, None, "s", b"b"] and type(back["t"]) is tuple
    assert torch.equal(back["t"][0], value["t"][0]) and back["t"][1].dtype == torch.bfloat16
    assert back["e"].shape == (0, 4) and back["dt"] is torch.float16 and back["dev"] == torch.device("cpu")


@pytest.mark.parametrize("value, says", [
    (_Int(3), "a subclass of int"),
    (torch.zeros(2).as_subclass(_Tensor), "a subclass of Tensor"),
    ([1, _Int(2)], "a subclass of int"),
    (object(), "an object of type builtins.object"),
    ({1: 2}, "keys are not all str"),
])
def test_anything_else_is_described_not_converted(value, says):
    found = plain.decode(plain.encode(value))
    foreign = found if isinstance(found, plain.Foreign) else next(v for v in found if isinstance(v, plain.Foreign))
    assert says in foreign.description


def test_encoding_never_runs_comparison_or_repr():
    class Trap:
        def __repr__(self):
            raise AssertionError("repr called")

        def __eq__(self, other):
            raise AssertionError("eq called")

        def __bool__(self):
            raise AssertionError("bool called")

    assert isinstance(plain.roundtrip(Trap()), plain.Foreign)
    nested: list = []
    nested.append(nested)
    assert "nested deeper" in repr(plain.roundtrip(nested))


def test_exceptions_cross_as_records_and_builtins_cannot_be_forged():
    fake = type("ValueError", (Exception,), {"__module__": "builtins"})
    real = plain.decode(plain.raised_wire(ValueError("no")))
    forged = plain.decode(plain.raised_wire(fake("yes")))
    assert real.exc.is_a(ValueError) and real.exc.message == "no"
    assert not forged.exc.is_a(ValueError) and forged.exc.type_name == "not-builtins.ValueError"
    assert plain.decode(plain.raised_wire(KeyboardInterrupt())).exc.is_a(KeyboardInterrupt)


def test_replies_holding_classes_are_refused():
    with pytest.raises(plain.Malformed, match="refused"):
        plain.loads(pickle.dumps(torch.zeros(1)))
    with pytest.raises(plain.Malformed, match="refused"):
        plain.loads(pickle.dumps(ValueError("x")))
    for bad in [("X", "torch.float32", (2,), "cpu", b"\x00"), ("nope",), ["L", ()], ("D", ((1, 2),))]:
        with pytest.raises(plain.Malformed):
            plain.decode(bad)


def test_inputs_cross_to_a_worker_fast_and_whole():
    norm = torch.nn.LayerNorm(3)
    ex = {"x": [torch.arange(4.0), torch.zeros(0, 2, dtype=torch.int64)], "norm": norm}
    back = pickle.loads(plain.dumps_input(ex))
    assert torch.equal(back["x"][0], ex["x"][0]) and back["x"][1].shape == (0, 2)
    assert torch.equal(back["norm"].weight, norm.weight)


def test_report_roundtrip_schema_and_refusals(tmp_path):
    report = Report(checks=[CheckResult("t", "f", "c", "case", Status.EXPECTED, reason="why")],
                    complete=True, exit_status=0, meta={"torch": "x"})
    path = tmp_path / "r.json"
    report.save(str(path))
    back = load(str(path))
    assert back.checks[0].status is Status.EXPECTED and back.complete and back.meta["torch"] == "x"
    old = json.loads(path.read_text())
    del old["schema"], old["complete"]
    path.write_text(json.dumps(old))
    assert load(str(path)).complete is True  # a schema-1 report was written at the end of a finished run
    path.write_text(json.dumps({"checks": [], "targets": [], "schema": 99}))
    with pytest.raises(BadReport, match="newer"):
        load(str(path))
    path.write_text("[]")
    with pytest.raises(BadReport):
        load(str(path))


def test_exit_codes_order():
    assert worst([]) == Exit.OK
    assert worst([Exit.DIVERGES, Exit.INCOMPLETE]) == Exit.INCOMPLETE
    assert worst([Exit.INCOMPLETE, Exit.BAD_INPUT, Exit.DIVERGES]) == Exit.BAD_INPUT
    assert worst([0, 0, Exit.DIVERGES]) == Exit.DIVERGES


def test_death_causes_in_words():
    from vllm_vision_conformance.conformance.worker import describe_exitcode

    assert describe_exitcode(3) == "exited with code 3"
    assert describe_exitcode(-signal.SIGSEGV) == "was killed by signal 11 (SIGSEGV)"
    assert describe_exitcode(-signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"


def test_refusals_follow_the_form():
    from vllm_vision_conformance.conformance.adapter import refusal

    forms = {"resolve_visual_encoder_outputs": "feature_sample_layers", "get_vit_attn_backend": "no-override"}
    assert "feature_select_strategy" in refusal("resolve_visual_encoder_outputs", forms,
                                                {"feature_select_strategy": "class"})
    assert refusal("resolve_visual_encoder_outputs", forms, {"feature_select_strategy": None}) is None
    assert "no override" in refusal("get_vit_attn_backend", forms, {"attn_backend_override": "TORCH_SDPA"})
    assert refusal("get_vit_attn_backend", {"get_vit_attn_backend": "argument"},
                   {"attn_backend_override": "TORCH_SDPA"}) is None
    assert refusal("get_vit_attn_backend", {}, {"attn_backend_override": "TORCH_SDPA"}) is None  # documented form


def test_a_worker_is_replaced_after_it_dies(tmp_path):
    """The worker machinery directly: a target host, a worker that dies, a fresh one."""
    from vllm_vision_conformance.conformance.worker import TargetProcess, WorkerFault

    module = tmp_path / "dies_once.py"
    module.write_text("import os\n"
                      "def get_load_balance_assignment(sizes, num_gpus=2):\n"
                      "    if sizes == [13]:\n"
                      "        os._exit(13)\n"
                      "    return ([], [0] * num_gpus, [0] * num_gpus)\n")
    proc = TargetProcess("t", {"kind": "candidate", "name": "t", "spec": str(module)})
    proc.start()
    try:
        info = proc.wait_loaded()
        assert info["names"] == ["get_load_balance_assignment"]
        with pytest.raises(WorkerFault, match="exited with code 13"):
            proc.probe("get_load_balance_assignment", "case-no-images", {"sizes": [13], "num_gpus": 1}, 5)
        reply = proc.probe("get_load_balance_assignment", "case-no-images", {"sizes": [], "num_gpus": 2}, 5)
        assert reply[0] == "ok"
        assert plain.decode(reply[1]).value == ([], [0, 0], [0, 0]) and proc.restarts == 1
    finally:
        proc.close()


def test_enum_members_keep_their_own_repr():
    """Expectations quote vLLM's enum repr (<AttentionBackendEnum.FLASH_ATTN: '...'>): it must survive the crossing."""
    import enum

    class Backend(enum.Enum):
        FLASH_ATTN = "vllm.v1.attention.backends.flash_attn.FlashAttentionBackend"
        ODD = object()

    assert repr(plain.roundtrip(Backend.FLASH_ATTN)) == repr(Backend.FLASH_ATTN)
    assert repr(plain.roundtrip(Backend.ODD)) == "<Backend.ODD>"
    assert plain.roundtrip(Backend.FLASH_ATTN).name == "FLASH_ATTN"


def test_a_keyboard_interrupt_is_an_outcome_in_a_worker_and_the_users_in_the_controller():
    """A target's KeyboardInterrupt (in its worker) is its outcome; in the controller, where only
    the reference runs, it is the user interrupting the run and must propagate."""
    from types import SimpleNamespace

    from vllm_vision_conformance.conformance.worker import TargetView

    def interrupted():
        raise KeyboardInterrupt()

    target = SimpleNamespace(name="t", module=None, names={"f": interrupted})
    assert isinstance(TargetView(target, "f", 1.0).invoke(interrupted).exc, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        TargetView(target, "f", 1.0, in_controller=True).invoke(interrupted)
