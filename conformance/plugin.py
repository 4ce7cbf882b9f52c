"""The pytest plugin (entry point ``pytest11``): options, parametrization over
target x function x check, expectations, the report and the exit status."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shlex
import sys
import time

import pytest

from . import profiles  # noqa: F401 - registers the Hypothesis profiles
from .checks import Ctx, Divergence, NotApplicable, format_call
from .expectations import BadExpectations, Expectations, default_for_release, load as load_expectations
from .simgroup import SimulationUnsupported
from .targets import BadSpec, Target, load_targets

BAD_INPUT_EXIT = 2


def pytest_addoption(parser):
    group = parser.getgroup("vllm-vision-conformance")
    group.addoption("--impl", action="append", default=[], metavar="NAME=SPEC",
                    help="add a candidate implementation: NAME=dotted.module, NAME=path/to/file.py or "
                         "NAME=ep:ENTRY_POINT (repeatable)")
    group.addoption("--targets", default=None, metavar="NAME,...",
                    help="check only these targets (reference, vllm, candidate names); default: all")
    group.addoption("--only", default=None, metavar="TARGET.FUNCTION.CHECK,...",
                    help="run only these checks (the ids the report prints)")
    group.addoption("--expectations", action="append", default=[], metavar="NAME=FILE",
                    help="known divergences of target NAME: a path, or a shipped name such as vllm-0.33.0")
    group.addoption("--ignore-expectations", action="store_true",
                    help="ignore every recorded expectation and report all divergences")
    group.addoption("--strict-expectations", action="store_true",
                    help="fail (exit 1) when an expectation entry matched no divergence (a stale entry)")
    group.addoption("--report-json", default=None, metavar="PATH", help="write the report as JSON")
    group.addoption("--example-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="time bound of one call of a target, and of one job of a real group (default 30)")
    group.addoption("--dp-group", default="both", choices=("sim", "gloo", "both"),
                    help="groups the data-parallel checks run under: the in-process simulation, real gloo "
                         "process groups (forked ranks, vLLM's own group setup), or both (default)")
    group.addoption("--baseline", default=None, metavar="BASE.json",
                    help="gate against the JSON report of a base run: exit 1 only on a divergence the base "
                         "run does not have (printed first), 0 otherwise, whatever the expectations say")
    group.addoption("--baseline-target", default=None, metavar="NAME",
                    help="target in the base report (default: vllm, or its one checked candidate)")
    group.addoption("--gate-target", default=None, metavar="NAME",
                    help="target of this run that is gated (default: vllm, or the one checked candidate)")
    group.addoption("--allow-expected", action="store_true",
                    help="with --baseline: a new divergence recorded in this run's expectations does not fail")


@dataclasses.dataclass
class Result:
    target: str
    function: str
    check: str
    kind: str
    status: str  # conforms | diverges | expected | not provided | skipped | error
    message: str = ""
    example: str | None = None
    examples: int = 0
    reason: str | None = None
    repro: str | None = None


class ConformanceSession:
    def __init__(self, config) -> None:
        self.config = config
        self.bad_input: list[str] = []
        self.gate_text = ""  # --baseline: the comparison, printed before the report
        self.results: list[Result] = []
        self.expectations: dict[str, Expectations] = {}
        wanted = config.getoption("targets")
        names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else None
        self.targets: list[Target] = load_targets(config.getoption("impl"), set(names) if names else None)
        self.reference = self.targets[0]
        for target in self.targets:
            if target.load_error:
                self.error(target.load_error)
        self._load_expectations()
        known = {t.name for t in self.targets}
        if names:
            for name in names:
                if name not in known:
                    self.error(f"--targets {name!r}: no such target (known: {', '.join(sorted(known))})")
            self.checked = [t for t in self.targets if t.name in names]
        else:
            self.checked = list(self.targets)
        only = config.getoption("only")
        self.only = {x.strip() for x in only.split(",")} if only else None
        choice = config.getoption("dp_group")
        self.dp_groups = {"sim", "gloo"} if choice == "both" else {choice}
        from .rankpool import register_targets

        register_targets([t for t in self.targets if t.usable])

    def error(self, line: str) -> None:
        self.bad_input.append(line)

    def _load_expectations(self) -> None:
        given: dict[str, str] = {}
        for value in self.config.getoption("expectations"):
            name, sep, spec = value.partition("=")
            if not sep:
                self.error(f"--expectations {value!r} is not NAME=FILE (FILE: a path or a shipped name such as vllm-0.33.0)")
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
                self.expectations[target.name] = load_expectations(spec)
            except (BadExpectations, OSError) as exc:
                self.error(str(exc))
                self.expectations[target.name] = Expectations()
        for name in given:
            self.error(f"--expectations {name}=...: no such target")

    def cases(self):
        from .registry import REGISTRY

        for target in self.checked:
            if target.load_error:
                continue
            for spec in REGISTRY:
                for check in spec.checks:
                    if target.kind == "reference" and check.needs_reference:
                        continue
                    if check.group is not None and check.group not in self.dp_groups:
                        continue
                    case_id = f"{target.name}.{spec.name}.{check.id}"
                    if self.only is not None and case_id not in self.only:
                        continue
                    yield case_id

    def stale_entries(self) -> list:
        """Entries that matched nothing although their check ran (or that name no check at all)."""
        from .registry import REGISTRY

        known = {(spec.name, check.id) for spec in REGISTRY for check in spec.checks}
        ran = {(r.target, r.function, r.check) for r in self.results if r.status not in ("skipped", "not provided")}
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
        for value in self.config.getoption("expectations"):
            if value.startswith(target.name + "="):
                parts += ["--expectations", value]
        if self.config.getoption("ignore_expectations"):
            parts.append("--ignore-expectations")
        parts += ["--targets", target.name, "--only", case_id]
        profile = getattr(self.config.option, "hypothesis_profile", None)
        if profile:
            parts += ["--hypothesis-profile", profile]
        seed = getattr(self.config.option, "hypothesis_seed", None)
        if seed is not None:  # a profile that is not derandomized replays only with its seed
            parts += ["--hypothesis-seed", str(seed)]
        return " ".join(shlex.quote(p) for p in parts)


def session(config) -> ConformanceSession:
    existing = getattr(config, "_vvc_session", None)
    if existing is None:
        existing = config._vvc_session = ConformanceSession(config)
    return existing


def pytest_generate_tests(metafunc):
    if "conformance_case" in metafunc.fixturenames:
        ids = list(session(metafunc.config).cases())
        metafunc.parametrize("conformance_case", ids, ids=ids)


def _first_divergence(exc: BaseException) -> BaseException:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            return _first_divergence(inner)
    return exc


def run_case(config, case_id: str) -> None:
    """Run one check of one function against one target, record, and end the test."""
    from hypothesis import example as hyp_example, given
    from hypothesis.errors import Flaky

    from .registry import BY_NAME

    sess = session(config)
    target_name, function, check_id = case_id.split(".", 2)
    target = sess.target(target_name)
    spec = BY_NAME[function]
    check = spec.check(check_id)
    result = Result(target_name, function, check_id, check.kind, "conforms")
    sess.results.append(result)

    if target.skip_reason:
        result.status, result.message = "skipped", target.skip_reason
        pytest.skip(target.skip_reason)
    if target.get(function) is None:
        result.status, result.message = "not provided", f"{target.name} does not provide {function}"
        pytest.skip(result.message)
    skip = spec.skip_reason() if getattr(spec, "skip_reason", None) else None
    if check.group == "gloo" and "fork" not in multiprocessing.get_all_start_methods():
        skip = "real process groups need the fork start method, which this platform lacks"
    if skip:
        result.status, result.message = "skipped", skip
        pytest.skip(skip)

    ctx = Ctx(target, sess.reference, function, timeout=config.getoption("example_timeout"))
    try:
        if check.kind == "case":
            kwargs = check.case_input()
            ctx.current = format_call(function, kwargs)
            ctx.examples = 1
            check.run(ctx, kwargs)
        else:
            def prop(drawn):
                ctx.current = format_call(function, drawn)
                ctx.examples += 1
                try:
                    check.run(ctx, drawn)
                except NotApplicable:
                    ctx.not_applicable += 1

            prop._hypothesis_internal_add_digest = case_id.encode()
            test = given(check.strategy)(prop)
            for edge in reversed(check.examples):
                test = hyp_example(edge)(test)
            test()
    except NotApplicable as exc:
        result.status, result.message = "skipped", f"not applicable to this release's form: {exc}"
        pytest.skip(result.message)
    except SimulationUnsupported as exc:
        result.status, result.message = "skipped", str(exc)
        pytest.skip(result.message)
    except (Divergence, Flaky, BaseExceptionGroup) as raw:
        exc = _first_divergence(raw)
        if not isinstance(exc, (Divergence, Flaky)):
            raise
        result.examples = ctx.examples
        result.message = getattr(exc, "what", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if isinstance(exc, Flaky):
            result.message = f"flaky: the same input passed and failed: {result.message}"
        result.example = getattr(exc, "call", None) or ctx.current
        result.repro = sess.repro(case_id)
        entry = sess.expectations[target_name].lookup(function, check_id, result.message)
        if entry is not None and not config.getoption("ignore_expectations"):
            entry.matched = True
            result.status, result.reason = "expected", entry.reason
            pytest.xfail(f"expected divergence ({entry.source}): {entry.reason}")
        result.status = "diverges"
        pytest.fail(f"{result.message}\n  minimal input: {result.example}\n  replay: {result.repro}", pytrace=False)
    result.examples = ctx.examples
    if ctx.not_applicable and ctx.not_applicable == ctx.examples:
        result.status, result.message = "skipped", "no drawn input is expressible in this release's form"
        pytest.skip(result.message)


def pytest_runtest_makereport(item, call):
    # A harness or Hypothesis error (not a divergence) still gets a cell.
    if call.when == "call" and call.excinfo is not None and "conformance_case" in getattr(item, "fixturenames", ()):
        sess = session(item.config)
        if sess.results and sess.results[-1].status == "conforms":
            last = sess.results[-1]
            if not call.excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception)):
                last.status = "error"
                last.message = f"{call.excinfo.typename}: {str(call.excinfo.value).splitlines()[0] if str(call.excinfo.value) else ''}"


def pytest_sessionstart(session):
    session.config._vvc_started = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    sess = getattr(config, "_vvc_session", None)
    if sess is None:
        return
    from .report import render_text

    if sess.gate_text:
        terminalreporter.write_sep("=", f"vllm-vision-conformance gate against {config.getoption('baseline')}")
        terminalreporter.write(sess.gate_text)
    terminalreporter.write_sep("=", "vllm-vision-conformance report")
    terminalreporter.write(render_text(sess, config))


def pytest_unconfigure(config):
    # After output capture ends: one line per bad input, last, on stderr.
    sess = getattr(config, "_vvc_session", None)
    for line in sess.bad_input if sess else ():
        sys.stderr.write(f"vllm-vision-conformance: error: {line}\n")


def pytest_sessionfinish(session, exitstatus):
    sess = getattr(session.config, "_vvc_session", None)
    if sess is None:
        return
    if sess.bad_input:
        session.exitstatus = BAD_INPUT_EXIT
    elif session.config.getoption("strict_expectations") and sess.stale_entries():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and sess.checked:
        session.exitstatus = pytest.ExitCode.OK
    if session.config.getoption("baseline") and not sess.bad_input:
        _gate(session, sess)
    path = session.config.getoption("report_json")
    if path:
        from .report import to_json

        import json

        with open(path, "w", encoding="utf-8") as handle:
            json.dump(to_json(sess, session.config, int(session.exitstatus)), handle, indent=2)


def _gate(session, sess) -> None:
    """--baseline: the exit status is the gate's (see conformance.baseline)."""
    import json

    from . import baseline
    from .report import to_json

    config = session.config
    path = config.getoption("baseline")
    try:
        with open(path, encoding="utf-8") as fh:
            base = json.load(fh)
    except (OSError, ValueError) as exc:
        sess.error(f"--baseline {path}: cannot read a JSON report ({exc}); expected the --report-json "
                   "file of an earlier run")
        session.exitstatus = BAD_INPUT_EXIT
        return
    current = to_json(sess, config, int(session.exitstatus))
    result = baseline.compare(base, current, base_target=config.getoption("baseline_target"),
                              current_target=config.getoption("gate_target"),
                              allow_expected=config.getoption("allow_expected"))
    sess.gate_text = baseline.render(result, base_name=path, current_name="this run")
    if result.exit_status == BAD_INPUT_EXIT:
        sess.error("--baseline: cannot gate: " + "; ".join(result.problems))
    session.exitstatus = result.exit_status
