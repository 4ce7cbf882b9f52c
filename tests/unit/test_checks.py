"""The call context and the generic judges (conformance/checks.py): what a divergence
says, how exceptions are matched by class, and that comparison is exact."""

from __future__ import annotations

import types

import pytest
import torch

from vllm_vision_conformance.conformance import checks
from vllm_vision_conformance.conformance.checks import (Check, Ctx, Divergence, agrees, both_returned, call_probe,
                                                        compare_outcomes, describe, exc_name, format_call, fresh,
                                                        is_a, raises, returns)
from vllm_vision_conformance.conformance.compare import Tolerance
from vllm_vision_conformance.conformance.plain import Outcome, Raised, roundtrip


class ContractError(ValueError):
    """A subclass of a builtin, defined here."""


class ValueErrorLookalike(Exception):
    pass


ValueErrorLookalike.__name__ = ValueErrorLookalike.__qualname__ = "ValueError"  # a class that borrows a builtin's name


def ctx(name: str = "cand", function: str = "f", current: str | None = None) -> Ctx:
    return Ctx(types.SimpleNamespace(name=name), function, current=current)


def returned(value) -> Outcome:
    """An outcome as the controller sees it: after the plain-data crossing."""
    return roundtrip(Outcome(value=value))


def raised(exc: BaseException) -> Outcome:
    return roundtrip(Outcome(exc=exc))


def divergence(fn, *args, **kwargs) -> Divergence:
    with pytest.raises(Divergence) as info:
        fn(*args, **kwargs)
    return info.value


# ---- what ctx.diverge records ---------------------------------------------------------

def test_diverge_names_the_input_and_the_target():
    exc = ctx("my-impl", "get_load_balance_assignment").diverge("returned 1, but should return 2",
                                                                 {"sizes": [3, 1], "num_gpus": 2})
    assert isinstance(exc, Divergence) and isinstance(exc, AssertionError)
    assert exc.what == "returned 1, but should return 2"
    assert exc.call == "get_load_balance_assignment(sizes=[3, 1], num_gpus=2)"
    assert str(exc) == ("returned 1, but should return 2 [get_load_balance_assignment(sizes=[3, 1], num_gpus=2)] "
                        "target=my-impl")


def test_diverge_without_kwargs_uses_the_current_example():
    c = ctx("t", current="f(x=1)")
    exc = c.diverge("it hung")
    assert exc.call == "f(x=1)" and str(exc) == "it hung [f(x=1)] target=t"
    bare = ctx("t").diverge("no input yet")
    assert bare.call is None and str(bare) == "no input yet"
    assert ctx("t", current="f(x=1)").diverge("empty input", {}).call == "f()"  # {} is an input, not "none"


def test_ctx_defaults():
    c = Ctx(types.SimpleNamespace(name="t"), "f")
    assert (c.timeout, c.examples, c.not_applicable, c.current, c.stop, c.faults) == (30.0, 0, 0, None, False, 0)


# ---- formatting ------------------------------------------------------------------------

def test_format_call_formats_our_values_briefly():
    assert format_call("f", {}) == "f()"
    assert format_call("f", {"a": 1, "b": None, "c": "s", "d": True, "e": 1.5}) == "f(a=1, b=None, c='s', d=True, e=1.5)"
    assert format_call("f", {"t": (1,), "u": (), "l": []}) == "f(t=(1,), u=(), l=[])"
    assert format_call("f", {"x": torch.arange(3)}) == "f(x=tensor(shape=(3,), dtype=int64, values=[0, 1, 2]))"
    assert format_call("f", {"x": torch.zeros(4, 4)}) == "f(x=tensor(shape=(4, 4), dtype=float32))"
    assert format_call("f", {"norm": torch.nn.LayerNorm(3)}) == "f(norm=LayerNorm(...))"
    assert format_call("f", {"l": list(range(10))}) == "f(l=[0, 1, 2, 3, 4, 5, 6, 7, ...])"
    assert format_call("f", {"d": torch.float16}) == "f(d=torch.float16)"


def test_format_call_is_one_line_and_bounded():
    text = format_call("f", {"s": "a\nb" * 100, "obj": types.SimpleNamespace(x="1\n2")})
    assert "\n" not in text
    long_value = checks._fmt("x" * 500)
    assert len(long_value) == 120 and long_value.endswith("...")
    assert checks._fmt(types.SimpleNamespace(a="p  \n  q")) == "namespace(a='p \\n q')"  # whitespace collapsed


def test_fresh_copies_what_a_call_may_mutate():
    t = torch.zeros(2)
    original = {"a": [t, (t,)], "n": 3}
    copy = fresh(original)
    copy["a"][0].add_(1)
    copy["a"][1][0].add_(2)
    copy["a"].append("x")
    assert t.tolist() == [0.0, 0.0] and original["a"] == [t, (t,)] and len(original["a"]) == 2
    assert type(copy["a"][1]) is tuple and copy["n"] == 3


# ---- exceptions by class ---------------------------------------------------------------

def test_exc_name_shows_the_class_and_qualifies_a_borrowed_builtin_name():
    assert exc_name(ValueError("x")) == "ValueError"
    assert exc_name(raised(ValueError("x")).exc) == "ValueError"
    assert exc_name(raised(ContractError("x")).exc) == "ContractError"
    lookalike = raised(ValueErrorLookalike("x")).exc
    assert lookalike.type_name == f"{__name__}.ValueError"
    assert exc_name(lookalike) == f"{__name__}.ValueError"  # not mistaken for the builtin
    assert exc_name(Raised("not-builtins.TypeError", ("not-builtins.TypeError",))) == "not-builtins.TypeError"


def test_is_a_follows_the_class_hierarchy_on_records_and_live_exceptions():
    sub = raised(ContractError("x")).exc
    assert is_a(sub, ValueError("contract")) and is_a(sub, Exception("contract"))
    assert is_a(sub, raised(ValueError("y")).exc)  # wanted may be a record too
    assert not is_a(raised(ValueError("x")).exc, ContractError("contract"))  # a base is not the subclass
    assert not is_a(raised(ValueErrorLookalike("x")).exc, ValueError("contract"))  # the name alone is not enough
    assert not is_a(raised(TypeError("x")).exc, ValueError("contract"))
    assert is_a(ContractError("live"), ValueError("contract")) and not is_a(TypeError(), ValueError())
    assert is_a(raised(KeyboardInterrupt()).exc, BaseException())


def test_describe_gives_the_first_line_only():
    assert describe(returned([1, 2])) == "returned [1, 2]"
    assert describe(raised(ValueError("first line\nsecond line"))) == "raised ValueError: first line"
    assert describe(Outcome(exc=TypeError("live"))) == "raised TypeError: live"
    assert describe(returned(torch.tensor([1.0]))) == "returned tensor(shape=(1,), dtype=float32, values=[1.0])"


# ---- compare_outcomes ------------------------------------------------------------------

def test_the_wrong_exception_class_is_a_divergence():
    want = raised(ValueError("size must be positive"))
    exc = divergence(compare_outcomes, ctx(), want, raised(TypeError("bad type")), {"n": 0})
    assert exc.what == "raised TypeError: bad type, but should raise ValueError (contract: size must be positive)"
    assert exc.call == "f(n=0)"


def test_a_subclass_of_the_contracts_exception_conforms_but_not_the_other_way():
    compare_outcomes(ctx(), raised(ValueError("c")), raised(ContractError("sub")), {})
    compare_outcomes(ctx(), Outcome(exc=ValueError("c")), raised(ContractError("sub")), {})  # live expectation
    exc = divergence(compare_outcomes, ctx(), raised(ContractError("c")), raised(ValueError("base")), {})
    assert exc.what == "raised ValueError: base, but should raise ContractError (contract: c)"
    exc = divergence(compare_outcomes, ctx(), raised(ValueError("c")), raised(ValueErrorLookalike("fake")), {})
    assert exc.what.startswith(f"raised {__name__}.ValueError: fake, but should raise ValueError")


def test_returning_where_the_contract_raises_and_raising_where_it_returns():
    exc = divergence(compare_outcomes, ctx(), raised(ValueError("0 ranks")), returned(([], [], [])), {"num_gpus": 0})
    assert exc.what == "returned ([], [], []), but should raise ValueError (contract: 0 ranks)"
    exc = divergence(compare_outcomes, ctx(), returned(3), raised(ZeroDivisionError("division by zero")), {})
    assert exc.what == "raised ZeroDivisionError: division by zero, but should return 3"


def test_no_outcome_at_all_is_a_divergence_at_the_path():
    exc = divergence(compare_outcomes, ctx(), returned(1), {"not": "an outcome"}, {}, path="selector(feats)")
    assert exc.what == "selector(feats): no outcome was reported"


@pytest.mark.parametrize("want, got, says", [
    ((1, 2), [1, 2], "result is list, but should be tuple"),
    ([1, 2], (1, 2), "result is tuple, but should be list"),
    (torch.zeros(2), torch.zeros(2, dtype=torch.float64), "result.dtype=torch.float64, but should be torch.float32"),
    (torch.zeros(2), torch.zeros(2, device="meta"), "result.device=meta, but should be cpu"),
    (torch.zeros(2), torch.zeros(1, 2), "result.shape=(1, 2), but should be (2,)"),
    (1, True, "result=True (bool), but should be 1 (int)"),
    (1, 1.0, "result=1.0 (float), but should be 1 (int)"),
    (torch.tensor([1.0]), torch.tensor([1.0 + 1e-6]), "exactly; 1 of 1 elements differ"),
    ((torch.zeros(1), [1]), (torch.zeros(1), [2]), "result[1][0]=2, but should be 1"),
])
def test_comparison_is_exact(want, got, says):
    exc = divergence(compare_outcomes, ctx(), returned(want), returned(got), {})
    assert says in exc.what


def test_a_tolerance_applies_only_when_given_and_a_path_names_the_part():
    compare_outcomes(ctx(), returned(torch.tensor([1.0])), returned(torch.tensor([1.0 + 1e-6])), {},
                     Tolerance(rtol=1e-5))
    exc = divergence(compare_outcomes, ctx(), returned([0, 1]), returned([0, 2]), {}, path="rank 1: result")
    assert exc.what == "rank 1: result[1]=2, but should be 1"
    compare_outcomes(ctx(), returned(torch.tensor([float("nan")])), returned(torch.tensor([float("nan")])), {})


def test_mutation_a_compare_that_ignores_the_container_type_is_noticed(monkeypatch):
    """Mutation: with a diff that compares tuples and lists by value, the tuple/list test fails."""
    monkeypatch.setattr(checks, "diff", lambda e, a, path, tol: None if list(e) == list(a) else "differs")
    with pytest.raises(pytest.fail.Exception):
        test_comparison_is_exact((1, 2), [1, 2], "result is list, but should be tuple")


@pytest.mark.parametrize("want, got", [
    (3, torch.zeros(2, 2)),
    ([torch.zeros(2, 2)], [torch.zeros(2, 2), torch.zeros(2, 2)]),
])
def test_a_divergence_is_one_line_whatever_the_values(want, got):
    exc = divergence(compare_outcomes, ctx(), returned(want), returned(got), {"x": 1})
    assert "\n" not in exc.what and "\n" not in str(exc)


# ---- both_returned -----------------------------------------------------------------------

def test_both_returned_in_its_four_cases():
    assert both_returned(ctx(), returned(1), returned(2), {}, "a selector") is True
    assert both_returned(ctx(), raised(ValueError("c")), raised(ContractError("d")), {}, "a selector") is False
    exc = divergence(both_returned, ctx(), returned(1), raised(KeyError("k")), {"s": "x"}, "a selector")
    assert exc.what == "raised KeyError: 'k', but should return a selector" and exc.call == "f(s='x')"
    exc = divergence(both_returned, ctx(), raised(ValueError("bad strategy")), returned(1), {}, "an encoder info")
    assert exc.what == "returned an encoder info, but should raise ValueError (contract: bad strategy)"
    exc = divergence(both_returned, ctx(), raised(ValueError("c")), raised(TypeError("t")), {}, "a selector")
    assert exc.what == "raised TypeError: t, but should raise ValueError (contract: c)"


# ---- the generic check builders ------------------------------------------------------------

def _view(fn):
    from vllm_vision_conformance.conformance.worker import TargetView

    return TargetView(types.SimpleNamespace(name="t", module=None, names={"f": fn}), "f", 1.0)


def test_agrees_compares_with_the_reference_and_needs_it():
    check = agrees("prop", "doc", strategy="S", tol=Tolerance(atol=0.5), examples=({"x": 1},))
    assert (check.kind, check.needs_reference, check.ref_probe, check.probe, check.examples) == \
        ("property", True, call_probe, call_probe, ({"x": 1},))
    check.judge(ctx(), {}, returned(torch.tensor([1.0])), returned(torch.tensor([1.4])))  # within its tolerance
    exc = divergence(check.judge, ctx(), {"x": 1}, returned(torch.tensor([1.0])), returned(torch.tensor([2.0])))
    assert "within rtol=0.0, atol=0.5" in exc.what and exc.call == "f(x=1)"


def test_returns_judges_against_the_written_value():
    check = returns("case", "doc", {"n": 2}, expected=lambda: (1, 2))
    assert (check.kind, check.needs_reference, check.ref_probe) == ("case", False, None)
    assert check.case_input() == {"n": 2} and check.case_input() is not check.example  # a copy
    check.judge(ctx(), {"n": 2}, returned((1, 2)), None)
    exc = divergence(check.judge, ctx(), {"n": 2}, returned([1, 2]), None)
    assert exc.what == "result is list, but should be tuple"


def test_raises_accepts_the_class_or_a_subclass_and_quotes_the_doc():
    check = raises("error-case", "0 ranks: ValueError", {"num_gpus": 0}, ValueError)
    check.judge(ctx(), {}, raised(ContractError("x")), None)
    exc = divergence(check.judge, ctx(), {"num_gpus": 0}, returned(([], [], [])), None)
    assert exc.what == "returned ([], [], []), but should raise ValueError (contract: 0 ranks: ValueError)"
    exc = divergence(check.judge, ctx(), {}, raised(RuntimeError("boom")), None)
    assert exc.what == "raised RuntimeError: boom, but should raise ValueError (contract: 0 ranks: ValueError)"


def test_call_probe_calls_with_a_fresh_copy_and_catches_everything():
    seen = []

    def f(x):
        seen.append(x)
        x.add_(1)
        raise SystemExit(3)

    t = torch.zeros(1)
    outcome = call_probe(_view(f), {"x": t})
    assert isinstance(outcome.exc, SystemExit) and t.tolist() == [0.0] and seen[0] is not t


def test_a_case_example_may_be_a_function():
    calls = []
    check = Check("c", "doc", call_probe, lambda *a: None, example=lambda: calls.append(1) or {"k": len(calls)})
    assert check.case_input() == {"k": 1} and check.case_input() == {"k": 2}
    assert Check("c", "doc", call_probe, lambda *a: None).case_input() == {}
