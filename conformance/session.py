"""The suite's hooks, registered by the plugin (``conformance.plugin``) only in a run of
the suite: parametrization over target x function x check, expectations, the report
and the exit status.

The controller (this process) draws every input, computes the reference's
observation on its own copy, has each other target observed in its own
worker process (``conformance.worker``), and judges plain data. Exit status:
0 every requested check of every requested target ran and conformed or
diverged only as recorded; 1 a divergence beyond that (or a stale entry under
``--strict-expectations``); 2 bad input (one line each, other targets' results
kept); 3 the run is incomplete (interrupted, or a check did not run or could
not be judged). See ``conformance.results.Exit``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shlex
import signal
import sys
import time

import pytest

from . import profiles
from .plugin import spelled
from .checks import FAULT_SHRINKS, Ctx, Divergence, HarnessError, NotApplicable, Unsupported, format_call, fresh
from .expectations import BadExpectations, Expectations, default_for_release, load as load_expectations
from .results import CheckResult, Exit, Report, Status, check_writable, worst
from .targets import Target



class _StopCheck(BaseException):
    """Ends a property at once (Hypothesis does not catch it): the target's process
    hung, or kept dying; the check's verdict is the fault already recorded."""


def _seconds(config, option: str, errors: list[str]) -> float:
    raw = config.getoption(option)
    flag = "--" + option.removeprefix("vvc_").replace("_", "-")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        errors.append(f"{flag} {raw!r}: not a time bound; accepted: a finite number of seconds > 0 (e.g. 30)")
        return 30.0
    return value


class ConformanceSession:
    def __init__(self, config) -> None:
        self.config = config
        self.bad_input: list[str] = []
        self.incomplete: list[str] = []
        self.gate_text = ""  # --baseline: the comparison, printed before the report
        self.corpus: dict = {}  # the corpus pass: answers per target and function (conformance.corpus)
        self.results: list[CheckResult] = []
        self.requested: list[str] = []
        self.expectations: dict[str, Expectations] = {}
        self.hosts: list = []
        self.started = getattr(config, "_vvc_started", None) or time.monotonic()
        self.printed = False
        self.fatal = False  # an option is bad: nothing runs
        self.timeout = _seconds(config, "vvc_example_timeout", self.bad_input)
        self.load_timeout = _seconds(config, "vvc_load_timeout", self.bad_input)
        self.role = role(config)
        # under pytest-xdist only the controller writes the report (the workers send their results)
        self.report_path = config.getoption("vvc_report_json") if self.role != "worker" else None
        if self.report_path:
            why = check_writable(self.report_path)
            if why:
                self.bad_input.append(f"--report-json {self.report_path}: cannot write the report there ({why}); "
                                      "accepted: a file path in an existing, writable folder")
                self.report_path = None
        for line in getattr(config, "_vvc_option_errors", []):
            self.bad_input.append(line)
        self.fatal = bool(self.bad_input)
        wanted = config.getoption("vvc_targets")
        names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted is not None else None
        if names == []:  # given, but names nothing: not "every target"
            self.bad_input.append(f"--targets {wanted!r} names no target (accepted: target names "
                                  "separated by commas: reference, vllm, or the NAME of an --impl)")
            self.fatal = True
        from . import targets as targets_mod

        self.targets, errors = targets_mod.plan(config.getoption("vvc_impl"), set(names) if names else None)
        self.bad_input.extend(errors)
        self.reference = self.targets[0]
        known = {t.name for t in self.targets}
        if names:
            for name in names:
                if name not in known:
                    self.error(f"--targets {name!r}: no such target (known: {', '.join(sorted(known))})")
        only = config.getoption("vvc_only")
        self.only = {x.strip() for x in only.split(",") if x.strip()} if only else None
        if not self.fatal and self.role == "controller":
            # pytest-xdist's controller runs nothing: the workers load the targets and say what
            # they found (pytest_testnodedown); vLLM's release is read from its metadata here
            for target in self.targets:
                if target.kind == "vllm":
                    target.release = targets_mod.vllm_release()
        elif not self.fatal:
            warm = self.only is None or any(".get_vision_encoder_info." in c for c in self.only) or \
                config.getoption("vvc_corpus") == "on"  # the corpus pass calls every function
            self.hosts = targets_mod.start(self.targets, load_timeout=self.load_timeout, warm=warm)
        for target in self.targets:
            if target.load_error:
                self.error(target.load_error)
        self._load_expectations()
        self.checked = [t for t in self.targets if t.skip_reason is None]
        choice = config.getoption("vvc_dp_group")
        self.dp_groups = {"sim", "gloo"} if choice == "both" else {choice}
        if self.only is not None:
            self._check_only()

    def error(self, line: str) -> None:
        if line not in self.bad_input:
            self.bad_input.append(line)

    def _load_expectations(self) -> None:
        given: dict[str, str] = {}
        for value in self.config.getoption("vvc_expectations"):
            name, sep, spec = value.partition("=")
            if not sep:
                self.error(f"--expectations {value!r} is not NAME=FILE (FILE: a path or a shipped name such as "
                           "vllm-0.33.0)")
                continue
            given[name] = spec
        for target in self.targets:
            spec = given.pop(target.name, None)
            if spec is None and target.kind == "vllm" and target.release:
                spec = default_for_release(target.release)
            if spec is None:
                self.expectations[target.name] = Expectations()
                continue
            try:
                # a path's ranges select by vLLM's release; a candidate's is not known (FILE@RELEASE)
                self.expectations[target.name] = load_expectations(
                    spec, target.release if target.kind == "vllm" else None)
            except (BadExpectations, OSError) as exc:
                self.error(str(exc))
                self.expectations[target.name] = Expectations()
        for name in given:
            self.error(f"--expectations {name}=...: no such target")

    def all_cases(self, targets=None, groups=None):
        from .registry import REGISTRY

        groups = self.dp_groups if groups is None else groups
        for target in targets if targets is not None else self.checked:
            for spec in REGISTRY:
                for check in spec.checks:
                    if target.kind == "reference" and check.needs_reference:
                        continue
                    if check.group is not None and check.group not in groups:
                        continue
                    yield f"{target.name}.{spec.name}.{check.id}"

    def _check_only(self) -> None:
        possible = set(self.all_cases(self.targets))
        any_group = set(self.all_cases(self.targets, {"sim", "gloo"}))
        names = {t.name for t in self.targets}
        for case_id in sorted(self.only):
            if case_id in possible and not self.target(case_id.split(".", 1)[0]).skip_reason:
                continue
            target = case_id.split(".", 1)[0]
            if target not in names:
                self.error(f"--only {case_id}: no such target {target!r} (ids are TARGET.FUNCTION.CHECK, "
                           "as the report prints them)")
            elif case_id in any_group and self.target(target).skip_reason:
                self.error(f"--only {case_id}: target {target!r} is left out by --targets (accepted: add it there)")
            elif case_id in any_group:
                self.error(f"--only {case_id}: a check of a group that --dp-group "
                           f"{self.config.getoption('vvc_dp_group')} leaves out (accepted: --dp-group both)")
            else:
                self.error(f"--only {case_id}: no such check (ids are TARGET.FUNCTION.CHECK, as the report "
                           "prints them; the reference is not checked against itself)")

    def cases(self):
        if self.fatal:
            return
        for case_id in self.all_cases():
            target = self.target(case_id.split(".", 1)[0])
            if target.load_error:
                continue
            if self.only is not None and case_id not in self.only:
                continue
            yield case_id

    def stale_entries(self) -> list:
        """Entries that matched nothing although their check ran (or that name no check at all)."""
        from .registry import REGISTRY

        known = {(spec.name, check.id) for spec in REGISTRY for check in spec.checks}
        ran = {(r.target, r.function, r.check) for r in self.results if r.status not in (
            Status.SKIPPED, Status.NOT_PROVIDED, Status.NOT_RUN)}
        checked = {t.name for t in self.checked if t.usable}
        return [(name, e) for name, exp in self.expectations.items() if name in checked for e in exp.stale()
                if (name, e.function, e.check) in ran or (e.function, e.check) not in known]

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def repro(self, case_id: str) -> str:
        target = self.target(case_id.split(".", 1)[0])
        parts = ["vllm-vision-conformance"]
        if target.kind == "candidate":
            parts += ["--impl", f"{target.name}={os.path.abspath(target.spec) if os.path.exists(target.spec) else target.spec}"]
        for value in self.config.getoption("vvc_expectations"):
            if value.startswith(target.name + "="):
                parts += ["--expectations", value]
        if self.config.getoption("vvc_ignore_expectations"):
            parts.append("--ignore-expectations")
        parts += ["--targets", target.name, "--only", case_id]
        parts += profiles.replay_options(self.config._vvc_profile)
        seed = getattr(self.config.option, "hypothesis_seed", None)
        if seed is not None:  # a profile that is not derandomized replays only with its seed
            parts += ["--hypothesis-seed", str(seed)]
        if self.timeout != 30.0:
            parts += ["--example-timeout", f"{self.timeout:g}"]
        return " ".join(shlex.quote(p) for p in parts)

    # -- the report --
    def report(self, exit_status: int | None = None, complete: bool = False) -> Report:
        from .report import build

        return build(self, self.config, exit_status, complete)

    def checkpoint(self) -> None:
        """Rewrite the JSON report (incomplete) so that nothing is lost if the run dies."""
        if self.report_path:
            try:
                self.report().save(self.report_path)
            except OSError:
                pass

    def close(self) -> None:
        from . import rankpool
        from .targets import close

        close(self.targets, self.hosts)
        self.hosts = []
        rankpool.close_all()


def session_of(config) -> ConformanceSession:
    existing = getattr(config, "_vvc_session", None)
    if existing is None:
        existing = config._vvc_session = ConformanceSession(config)
        if existing.role == "controller":
            existing.requested = list(existing.cases())  # until a worker says what it collected
    return existing


def role(config) -> str:
    """``serial``, or under pytest-xdist ``controller`` (judges nothing: it gathers the
    workers' results from their test reports) or ``worker`` (runs the checks)."""
    if hasattr(config, "workerinput"):
        return "worker"
    return "controller" if config.pluginmanager.has_plugin("dsession") else "serial"


# -- pytest-xdist: results travel in the test reports (pytest's own channel), the rest
#    (bad input a worker found) in the worker's workeroutput --

_CONFIG = None  # the controller's config (pytest_runtest_logreport gets only the report)


def pytest_sessionstart(session):
    global _CONFIG
    if role(session.config) == "controller":
        _CONFIG = session.config
        session.config._vvc_started = time.monotonic()  # its session is made when a worker has collected
        if threading_main() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminate)
            session.config._vvc_sigterm = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    sess = session_of(node.config)
    # node ids test_conformance.py::test_conformance[TARGET.FUNCTION.CHECK]
    collected = [i.split("::test_conformance[", 1)[1][:-1] for i in ids if "::test_conformance[" in i]
    if not getattr(sess, "collected", False):
        sess.collected = True
        sess.requested = collected
        if not collected and not sess.bad_input:
            sess.error(_nothing_selected(node.config))


def pytest_runtest_logreport(report):
    data = getattr(report, "vvc_result", None)
    if data is None or _CONFIG is None or role(_CONFIG) != "controller":
        return
    sess = session_of(_CONFIG)
    result = CheckResult.from_dict(data["result"])
    order = {c: i for i, c in enumerate(sess.requested)}
    sess.results = sorted([r for r in sess.results if r.id != result.id] + [result],
                          key=lambda r: order.get(r.id, len(order)))
    entries = sess.expectations.get(result.target)
    for index in data.get("matched", ()):
        if entries is not None and index < len(entries.of(result.function, result.check)):
            entries.of(result.function, result.check)[index].matched = True
    sess.checkpoint()
    _stop_if_terminated()  # a signal whose KeyboardInterrupt was lost (raised in a callback) still ends the run


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    sess = session_of(node.config)
    sent = getattr(node, "workeroutput", {}).get("vvc", {})
    for line in sent.get("bad_input", ()):
        sess.error(line)
    for line in sent.get("incomplete", ()):
        if line not in sess.incomplete:
            sess.incomplete.append(line)
    from .corpus import merge

    merge(sess.corpus, sent.get("corpus") or {})
    for name, info in sent.get("targets", {}).items():
        target = next((t for t in sess.targets if t.name == name), None)
        if target is not None:
            target.release = target.release or info.get("release")
            target.load_error = target.load_error or info.get("load_error")
    if error:
        sess.incomplete.append(f"a pytest-xdist worker went down: {str(error).splitlines()[0] if str(error) else error}")


def pytest_configure(config):
    """The suite's profile, chosen before Hypothesis's plugin loads one (a nonexistent one is bad input)."""
    profiles.register()
    if not hasattr(config, "workerinput") and threading_main() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        # Ctrl-C from the first moment of a run: Python's own handler raised wherever the main
        # thread was, also inside code that catches everything (a target's import) or only
        # prints (Hypothesis's gc callback), and the run went on. Recorded, it ends the run at
        # the next example or check (pytest-xdist's controller: at once, and at the next report).
        signal.signal(signal.SIGINT, _terminate)
        config._vvc_sigint = True
    explicit = getattr(config.option, "hypothesis_profile", None)
    short = config.getoption("vvc_profile") or os.environ.get("VVC_PROFILE") or None
    config._vvc_profile, error = profiles.choose(explicit, short)
    if error:
        config._vvc_option_errors = [error]
        if explicit:
            config.option.hypothesis_profile = None  # Hypothesis's plugin would stop the run on it


def pytest_generate_tests(metafunc):
    if "conformance_case" in metafunc.fixturenames:
        sess = session_of(metafunc.config)
        ids = list(sess.cases())
        sess.requested = ids
        metafunc.parametrize("conformance_case", ids, ids=ids)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    sess = getattr(config, "_vvc_session", None)
    if sess is None:
        return
    if sess.fatal:
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    selected = {item.callspec.params["conformance_case"] for item in items
                if hasattr(item, "callspec") and "conformance_case" in item.callspec.params}
    sess.requested = [c for c in sess.requested if c in selected]


def pytest_collection_finish(session):
    sess = getattr(session.config, "_vvc_session", None)
    if sess is None:
        return
    if not sess.requested and not sess.bad_input:
        sess.error(_nothing_selected(session.config))
    if sess.requested and threading_main() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # A terminated run still writes its report (marked incomplete) and says so in its exit status.
        signal.signal(signal.SIGTERM, _terminate)
        sess.sigterm = True


def _nothing_selected(config) -> str:
    how = [f for f, opt in (("-k", "keyword"), ("--only", "vvc_only"), ("--targets", "vvc_targets"))
           if config.getoption(opt)]
    return ("no check is selected" + (f" (by {', '.join(how)})" if how else "") +
            "; the ids are TARGET.FUNCTION.CHECK, as the report prints them")


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


_TERMINATED = []  # SIGTERM (or, in a serial run, SIGINT) arrived


def _signal_name(signum) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _terminate(signum, frame):
    """SIGTERM, and SIGINT in a serial run: the run stops at the next example or check
    (``_stop_if_terminated``). Raising here instead could land inside a callback whose
    exceptions Python only prints (Hypothesis's gc callback): the run went on, and the
    test of it hung (seen with SIGTERM, then with Python's own SIGINT handler on a loaded
    machine). pytest-xdist's controller runs no example, so it raises at once."""
    _TERMINATED.append(signum)
    if _CONFIG is not None:
        raise KeyboardInterrupt(f"terminated ({_signal_name(signum)})")


def _stop_if_terminated() -> None:
    if _TERMINATED:
        raise KeyboardInterrupt(f"terminated ({_signal_name(_TERMINATED[0])})")


def _first_divergence(exc: BaseException) -> BaseException:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            return _first_divergence(inner)
    return exc


class _Runner:
    """One check of one function on one target: examples in, verdict out."""

    def __init__(self, sess: ConformanceSession, target: Target, function: str, check, entries=()) -> None:
        from .worker import TargetView

        self.sess, self.target, self.function, self.check = sess, target, function, check
        self.entries = list(entries)  # the target's expectations entries for this check, applied on every input
        self.departures: list[tuple[str, str, object]] = []  # (input, divergence, the entry describing it)
        self.ctx = Ctx(target, function, timeout=sess.timeout)
        self.ref_view = TargetView(sess.reference.local, function, sess.timeout, in_controller=True)
        self.view = TargetView(target.local, function, sess.timeout, in_controller=True) \
            if target.local is not None else None
        self.fault: tuple[str, str] | None = None  # (cause, call) of the last fault
        self.drawn = None  # the input being run, as drawn (a divergence's minimal input, for the corpus)

    def observe(self, example: dict):
        from . import plain
        from .worker import WorkerFault

        if self.view is not None:  # the reference, in this process
            try:
                return plain.roundtrip(self.check.probe(self.view, fresh(example)))
            except Exception as exc:  # noqa: BLE001 - our own probe failed on our own reference
                raise HarnessError(f"the probe failed on the reference: {type(exc).__name__}: {exc}") from None
        try:
            reply = self.target.process.probe(self.function, self.check.id, example, self.sess.timeout)
        except WorkerFault as fault:
            self.ctx.faults += 1
            self.fault = (fault.cause, self.ctx.current)
            if fault.hung or fault.final or self.ctx.faults > FAULT_SHRINKS:
                raise _StopCheck() from None
            raise self.ctx.diverge(fault.cause) from None
        if reply[0] == "ok" and len(reply) == 2:
            try:
                return plain.decode(reply[1])
            except plain.Malformed as exc:
                self.ctx.faults += 1
                self.fault = (f"the worker sent a malformed reply ({exc})", self.ctx.current)
                raise self.ctx.diverge(self.fault[0]) from None
        if reply[0] == "probe-failed" and len(reply) == 3:
            try:
                exc = plain.decode(reply[1]).exc
                what = f"{exc.short_name}: {exc.message.splitlines()[0] if exc.message else ''}"
            except (plain.Malformed, AttributeError):
                what = "(unreadable)"
            raise HarnessError(f"the probe failed in {self.target.name}'s process: {what}")
        self.fault = ("the worker sent a malformed reply", self.ctx.current)
        raise self.ctx.diverge(self.fault[0])

    def reference(self, example: dict):
        from . import plain

        if self.check.ref_probe is None:
            return None
        try:
            return plain.roundtrip(self.check.ref_probe(self.ref_view, fresh(example)))
        except Exception as exc:  # noqa: BLE001
            raise HarnessError(f"the reference's probe failed: {type(exc).__name__}: {exc}") from None

    def recorded(self, example: dict, got, exc: Divergence):
        """The expectations entry that describes this divergence (None: none does):
        its TEXT is in the message, or the target follows its rule on this input
        (the reference with the rule changed, judged like the contract)."""
        rules = []
        for entry in self.entries:
            if not entry.rule:
                if entry.describes(exc.what):
                    return entry
                continue
            rules.append(entry.rule)
            for rule in entry.rule.split(","):
                want = self.rule_outcome(rule, example)
                try:
                    self.check.judge(self.ctx, example, got, want)
                except Divergence:
                    continue
                return entry
        if rules:
            exc.what = f"{exc.what} (and it does not follow the recorded rule {','.join(rules)} either)"
        return None

    def rule_outcome(self, rule: str, example: dict):
        import dataclasses

        from ..reference import departures

        from . import plain
        from .worker import TargetView

        probe = self.check.ref_probe or self.check.probe
        local = self.sess.reference.local
        local = dataclasses.replace(local, name=f"rule {rule}",
                                    names={**local.names, self.function: departures.get(self.function, rule)})
        try:
            return plain.roundtrip(probe(TargetView(local, self.function, self.sess.timeout, in_controller=True), fresh(example)))
        except Exception as exc:  # noqa: BLE001
            raise HarnessError(f"the probe failed on the recorded rule {rule}: {type(exc).__name__}: {exc}") from None

    def example(self, drawn: dict) -> None:
        """Run one example: prepare, observe, judge."""
        _stop_if_terminated()
        ctx = self.ctx
        self.drawn = drawn
        ctx.current = format_call(self.function, drawn)
        ctx.examples += 1
        try:
            example = self.check.prepare(ctx, drawn) if self.check.prepare else drawn
        except NotApplicable:
            ctx.not_applicable += 1
            return
        if example is not drawn:
            ctx.current = format_call(self.function, example)
        want = self.reference(example)
        got = self.observe(example)
        try:
            self.check.judge(ctx, example, got, want)
        except Divergence as exc:
            if ctx.stop:  # the judge read a fault that must not be repeated (a real group that hung)
                self.fault = (exc.what, exc.call or ctx.current)
                raise _StopCheck() from None
            entry = self.recorded(example, got, exc)
            if entry is not None:
                self.departures.append((ctx.current, exc.what, entry, drawn))
                return
            raise
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - a result the judge cannot read
            if self.target.kind == "reference":
                raise HarnessError(f"judging the reference's result raised {type(exc).__name__}: {exc}") from None
            raise ctx.diverge(f"the result is not of the documented form (judging it raised "
                              f"{type(exc).__name__}: {exc})") from None


def run_case(config, case_id: str, item=None) -> None:
    """Run one check of one function against one target, record, and end the test."""
    from .registry import BY_NAME

    _stop_if_terminated()
    sess = session_of(config)
    target_name, function, check_id = case_id.split(".", 2)
    target = sess.target(target_name)
    check = BY_NAME[function].check(check_id)
    result = CheckResult(target_name, function, check_id, check.kind)
    sess.results.append(result)
    try:
        _run(sess, config, target, function, check, result, case_id, item)
    finally:
        if result.status is Status.NOT_RUN:  # interrupted, or an error of the harness itself
            result.status = Status.ERROR if sys.exc_info()[0] is not KeyboardInterrupt else Status.NOT_RUN
            if not result.message:
                kind = sys.exc_info()[0]
                result.message = f"{kind.__name__ if kind else 'stopped'}: {sys.exc_info()[1] or ''}".strip()
        sess.checkpoint()


def _run(sess, config, target, function, check, result, case_id, item=None) -> None:
    from hypothesis import example as hyp_example, given, settings
    from hypothesis.errors import Flaky
    from hypothesis.statistics import collector, describe_statistics  # as Hypothesis's own pytest plugin

    if not target.provides(function):
        result.status, result.message = Status.NOT_PROVIDED, f"{target.name} does not provide {function}"
        pytest.skip(result.message)
    if check.group == "gloo" and "fork" not in multiprocessing.get_all_start_methods():
        result.status, result.message = Status.SKIPPED, "real process groups need the fork start method"
        pytest.skip(result.message)

    entries = [] if config.getoption("vvc_ignore_expectations") else \
        sess.expectations[target.name].of(function, check.id)
    runner = _Runner(sess, target, function, check, entries)
    ctx = runner.ctx
    verdict, harness = None, None
    try:
        if check.kind == "case":
            runner.example(check.case_input())
        else:
            def prop(drawn):
                runner.example(drawn)

            # The draws depend on the function, the check, the profile and the seed,
            # never on the target: every target sees the same inputs, so their
            # verdicts compare (Hypothesis has no public hook for this digest).
            prop._hypothesis_internal_add_digest = f"{function}.{check.id}".encode()
            test = given(check.strategy)(prop)
            for edge in reversed(check.examples):
                test = hyp_example(edge)(test)
            # the suite's profile on its own property only; the global settings stay as they are
            test = settings(settings.get_profile(config._vvc_profile))(test)
            def note(stats):
                result.events.update(_events(stats))
                if item is not None:  # Hypothesis's plugin prints it (--hypothesis-show-statistics)
                    item.hypothesis_statistics = describe_statistics({**stats, "nodeid": item.nodeid})

            with collector.with_value(note):
                test()
    except Unsupported as exc:
        result.status, result.message = Status.SKIPPED, str(exc)
    except (_StopCheck, Divergence, Flaky, HarnessError, BaseExceptionGroup) as raw:
        exc = _first_divergence(raw)
        if isinstance(exc, _StopCheck):
            verdict = runner.fault or ("the target's process failed", ctx.current)
        elif isinstance(exc, HarnessError):
            harness = str(exc)
        elif isinstance(exc, (Divergence, Flaky)):
            message = getattr(exc, "what", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if isinstance(exc, Flaky):
                message = f"flaky: the same input passed and failed: {message}"
            verdict = (message, getattr(exc, "call", None) or ctx.current)
        else:
            raise
    result.examples = ctx.examples
    if result.status is Status.SKIPPED:
        pytest.skip(result.message)
    if harness is not None:
        result.status, result.message, result.example = Status.ERROR, harness, ctx.current
        result.repro = sess.repro(case_id)
        pytest.fail(f"harness error: {harness}\n  input: {ctx.current}\n  replay: {result.repro}", pytrace=False)
    if verdict is not None:
        result.input = _input_of(runner.drawn)
        _diverged(sess, config, result, case_id, verdict[0], verdict[1], ctx.examples)
    if runner.departures:
        _departed(sess, result, case_id, runner)
    if ctx.not_applicable and ctx.not_applicable == ctx.examples:
        result.status, result.message = Status.SKIPPED, "no drawn input is expressible in this release's form"
        pytest.skip(result.message)
    result.status = Status.CONFORMS


def _departed(sess, result, case_id, runner) -> None:
    """Every divergence of the check was one its entry records: an expected divergence,
    shown with its shortest input."""
    call, message, entry, drawn = min(runner.departures, key=lambda d: (len(d[0] or ""), d[0] or ""))
    how = f"follows the recorded rule {entry.rule}: " if entry.rule else ""
    count = len(runner.departures)
    result.message = f"{how}{message}" + (f" (on {count} of {result.examples} inputs)" if result.kind != "case" else "")
    result.example, result.repro = call, sess.repro(case_id)
    result.input = _input_of(drawn)
    matched = []
    for _, _, e, _ in runner.departures:
        if e not in matched:
            e.matched = True
            matched.append(e)
    result.status, result.reason = Status.EXPECTED, " / ".join(e.reason for e in matched)
    pytest.xfail(f"expected divergence ({entry.source}): {entry.reason}")


def _input_of(drawn) -> str | None:
    """The minimal input itself, for the stored corpus (``--reports`` of conformance.corpus)."""
    if drawn is None:
        return None
    from .corpus import encode_example

    return encode_example(drawn)


def _events(stats: dict) -> dict[str, int]:
    """Boundary classes (``hypothesis.event``) of the generated inputs: how many had each."""
    counts: dict[str, int] = {}
    for case in stats.get("generate-phase", {}).get("test-cases", ()):
        for label in case.get("events", ()):
            if not label.startswith("gave up because"):
                counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def _diverged(sess, config, result, case_id, message, example, examples) -> None:
    result.examples, result.message, result.example = examples, message, example
    result.repro = sess.repro(case_id)
    entry = sess.expectations[result.target].lookup(result.function, result.check, message)
    if entry is not None and not config.getoption("vvc_ignore_expectations"):
        entry.matched = True
        result.status, result.reason = Status.EXPECTED, entry.reason
        pytest.xfail(f"expected divergence ({entry.source}): {entry.reason}")
    result.status = Status.DIVERGES
    pytest.fail(f"{message}\n  minimal input: {example}\n  replay: {result.repro}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    cases = getattr(item, "callspec", None) and item.callspec.params.get("conformance_case")
    sess = getattr(item.config, "_vvc_session", None)
    result = next((r for r in reversed(sess.results) if r.id == cases), None) if cases and sess else None
    # A harness error (not a divergence) still gets a cell.
    if result is not None and call.when == "call" and call.excinfo is not None and \
            result.status in (Status.NOT_RUN, Status.CONFORMS) and \
            not call.excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt)):
        result.status = Status.ERROR
        text = str(call.excinfo.value)
        result.message = f"{call.excinfo.typename}: {text.splitlines()[0] if text else ''}"
    report = yield
    if result is not None and call.when == "call":
        # travels with the report to pytest-xdist's controller (any report attribute does)
        entries = sess.expectations[result.target].of(result.function, result.check)
        report.vvc_result = {"result": result.to_dict(),
                             "matched": [i for i, e in enumerate(entries) if e.matched]}
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    sess = getattr(config, "_vvc_session", None)
    if sess is None:
        return
    from .report import render_text

    if sess.gate_text:
        terminalreporter.write_sep("=", f"vllm-vision-conformance gate against {config.getoption('vvc_baseline')}")
        terminalreporter.write(sess.gate_text)
    terminalreporter.write_sep("=", "vllm-vision-conformance report")
    terminalreporter.write(render_text(sess, config, getattr(sess, "final", None)))
    sess.printed = True


def pytest_unconfigure(config):
    global _CONFIG
    _TERMINATED.clear()
    if getattr(config, "_vvc_sigterm", False):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if getattr(config, "_vvc_sigint", False):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _CONFIG = None
    sess = getattr(config, "_vvc_session", None)
    if sess is None:
        return
    sess.close()
    if sess.role == "worker":  # its results and bad input went to the controller
        return
    if not sess.printed:  # pytest printed no summary (an internal error): the report is not lost
        from .report import render_text

        sys.stdout.write("\n===== vllm-vision-conformance report =====\n")
        sys.stdout.write(render_text(sess, config, getattr(sess, "final", None)))
    # After output capture ends: one line per bad input, last, on stderr.
    for line in sess.bad_input:
        sys.stderr.write(f"vllm-vision-conformance: error: {spelled(config, line)}\n")
    for line in sess.incomplete:
        sys.stderr.write(f"vllm-vision-conformance: incomplete: {line}\n")
    if getattr(sess, "sigterm", False):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_status(session, sess, exitstatus) -> int:
    codes = []
    if sess.bad_input:
        codes.append(Exit.BAD_INPUT)
    done = {r.id for r in sess.results if r.status is not Status.NOT_RUN}
    missing = [c for c in sess.requested if c not in done]
    if _TERMINATED and exitstatus != pytest.ExitCode.INTERRUPTED:  # after the last check ran
        sess.incomplete.append(f"the run was terminated ({_signal_name(_TERMINATED[0])}) before it ended")
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        sess.incomplete.append(f"the run was interrupted; {len(missing)} of {len(sess.requested)} requested "
                               "checks did not run")
    elif exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        sess.incomplete.append("pytest reported an internal error")
    elif missing:
        sess.incomplete.append(f"{len(missing)} of {len(sess.requested)} requested checks did not run "
                               f"(first: {missing[0]})")
    errors = [r for r in sess.results if r.status is Status.ERROR]
    if errors:
        sess.incomplete.append(f"{len(errors)} check(s) could not be judged (harness error; first: {errors[0].id})")
    if sess.incomplete:
        codes.append(Exit.INCOMPLETE)
    if any(r.status is Status.DIVERGES for r in sess.results):
        codes.append(Exit.DIVERGES)
    if session.config.getoption("vvc_strict_expectations") and sess.stale_entries():
        codes.append(Exit.DIVERGES)
    if exitstatus == pytest.ExitCode.USAGE_ERROR:
        codes.append(Exit.BAD_INPUT)
    return worst(codes)


def _corpus_pass(config, sess, exitstatus) -> None:
    """Every target answers the stored corpus (``--corpus``), after the checks: the answers
    go in the report. Under pytest-xdist each worker answers its share of the functions."""
    choice = config.getoption("vvc_corpus", "auto")
    selected = sess.only is not None or bool(config.getoption("keyword", ""))
    if choice == "off" or (choice == "auto" and selected) or sess.fatal or \
            exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR) or _TERMINATED:
        return
    from . import corpus

    shard = (0, 1)
    if sess.role == "worker":
        worker = config.workerinput
        shard = (int(str(worker.get("workerid", "gw0")).removeprefix("gw") or 0), int(worker.get("workercount", 1)))
    try:
        sess.corpus = corpus.run(sess, shard)
    except KeyboardInterrupt:
        sess.incomplete.append("the run was interrupted during the corpus pass")


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if role(config) == "worker":
        sess = getattr(config, "_vvc_session", None)
        if sess is not None:
            _corpus_pass(config, sess, exitstatus)
            config.workeroutput["vvc"] = {
                "bad_input": list(sess.bad_input), "incomplete": list(sess.incomplete),
                "targets": {t.name: {"release": t.release, "load_error": t.load_error} for t in sess.targets},
                "corpus": sess.corpus}
        return
    sess = getattr(config, "_vvc_session", None)
    if sess is None and role(config) == "controller":
        sess = session_of(config)  # no worker got as far as collecting
    if sess is None:
        return
    if sess.role == "serial":
        _corpus_pass(config, sess, exitstatus)
    status = _exit_status(session, sess, exitstatus)
    if session.config.getoption("vvc_baseline") and status not in (Exit.BAD_INPUT, Exit.INCOMPLETE):
        status = _gate(session, sess, status)
    sess.final = status
    session.exitstatus = status
    if sess.report_path:
        complete = status not in (Exit.INCOMPLETE,) and not sess.incomplete
        try:
            sess.report(status, complete).save(sess.report_path)
        except OSError as exc:
            sess.error(f"--report-json {sess.report_path}: could not be written ({exc})")
            session.exitstatus = Exit.BAD_INPUT


def _gate(session, sess, status: int) -> int:
    """--baseline: the exit status is the gate's (see conformance.baseline)."""
    from . import baseline, results

    config = session.config
    path = config.getoption("vvc_baseline")
    try:
        base = results.load(path).to_dict()
    except results.BadReport as exc:
        sess.error(f"--baseline {path}: {exc}; expected the --report-json file of an earlier run")
        return Exit.BAD_INPUT
    current = sess.report(status, True).to_dict()
    result = baseline.compare(base, current, base_target=config.getoption("vvc_baseline_target"),
                              current_target=config.getoption("vvc_gate_target"),
                              allow_expected=config.getoption("vvc_allow_expected"))
    sess.gate_text = baseline.render(result, base_name=path, current_name="this run")
    if result.exit_status == Exit.BAD_INPUT:
        sess.error("--baseline: cannot gate: " + "; ".join(result.problems))
    return result.exit_status
