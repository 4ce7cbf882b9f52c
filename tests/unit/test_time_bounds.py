"""The time bounds: the per-call deadline (``--example-timeout``, default 30 s), how a
worker's tick restarts it and ``view.allow(...)`` extends it (capped at
``worker.MAX_ALLOW``), the real group's start allowance (``groups.POOL_START_ALLOWANCE``),
the load deadline, the rank pool's job deadline and grace. A fake clock where the
arithmetic is the point; tiny real timeouts (well under 0.5 s) where the waiting is."""

from __future__ import annotations

import math
import multiprocessing
import queue
import time
import types

import pytest

from vllm_vision_conformance.conformance import checks, groups, plain, plugin, profiles, rankpool, worker
from vllm_vision_conformance.conformance.targets import VLLM_MODULE, Target
from vllm_vision_conformance.conformance.worker import Host, LoadFailed, TargetProcess, TargetView, WorkerFault


def test_the_defaults():
    options = {name: kw for name, _, kw in plugin.OPTIONS}
    assert options["example-timeout"]["default"] == "30" and options["load-timeout"]["default"] == "300"
    assert checks.Ctx(types.SimpleNamespace(name="t"), "f").timeout == 30.0
    assert (worker.MAX_ALLOW, worker.CLOSE_GRACE, groups.POOL_START_ALLOWANCE) == (600.0, 3.0, 120.0)
    pool = rankpool.RankPool(2)
    assert (pool.timeout, pool.start_timeout, pool.grace) == (30.0, 120.0, 1.0)
    assert TargetProcess.__init__.__kwdefaults__ == {"load_timeout": 300.0}


def test_hypothesis_has_no_deadline_in_the_suites_profiles():
    """The suite's own bound is the per-call deadline; Hypothesis's deadline is off in every profile."""
    from hypothesis import settings

    profiles.register()
    for name in profiles.PROFILES.values():
        assert settings.get_profile(name).deadline is None


def test_the_cli_passes_the_timeouts_on():
    from vllm_vision_conformance.conformance.cli import translate

    assert translate(["--example-timeout", "5", "--load-timeout=60"]) == \
        ["--vvc-example-timeout", "5", "--vvc-load-timeout=60"]


# ---- the options' values ----------------------------------------------------------------

class _Config:
    def __init__(self, **options):
        self.options = options
        self.option = types.SimpleNamespace(hypothesis_seed=None)
        self._vvc_profile = "vvc-ci"

    def getoption(self, name, default=None):
        return self.options.get(name, default)


@pytest.mark.parametrize("raw, value", [("30", 30.0), ("0.5", 0.5), ("1e3", 1000.0), (45, 45.0), (" 2 ", 2.0)])
def test_a_time_bound_is_a_finite_positive_number_of_seconds(raw, value):
    from vllm_vision_conformance.conformance.session import _seconds

    errors = []
    assert _seconds(_Config(vvc_example_timeout=raw), "vvc_example_timeout", errors) == value and errors == []


@pytest.mark.parametrize("raw", ["0", "-1", "inf", "nan", "abc", "", None, "1e400"])
@pytest.mark.parametrize("option, flag", [("vvc_example_timeout", "--example-timeout"),
                                          ("vvc_load_timeout", "--load-timeout")])
def test_anything_else_is_bad_input_of_one_line(raw, option, flag):
    from vllm_vision_conformance.conformance.session import _seconds

    errors = []
    assert _seconds(_Config(**{option: raw}), option, errors) == 30.0
    assert errors == [f"{flag} {raw!r}: not a time bound; accepted: a finite number of seconds > 0 (e.g. 30)"]


@pytest.mark.parametrize("timeout, said", [(30.0, None), (2.5, "2.5"), (1000.0, "1000")])
def test_the_replay_command_carries_a_timeout_other_than_the_default(timeout, said):
    from vllm_vision_conformance.conformance.session import ConformanceSession

    sess = object.__new__(ConformanceSession)
    sess.targets, sess.timeout = [Target("vllm", "vllm", VLLM_MODULE)], timeout
    sess.config = _Config(vvc_expectations=[])
    line = sess.repro("vllm.get_load_balance_assignment.case-no-images")
    assert ("--example-timeout" in line) is (said is not None)
    if said:
        assert line.endswith(f"--profile ci --example-timeout {said}")


def test_the_sessions_timeout_reaches_the_context_the_views_and_the_worker():
    from vllm_vision_conformance.conformance.registry import BY_NAME
    from vllm_vision_conformance.conformance.session import _Runner

    asked = []

    class Process:
        def probe(self, function, check_id, example, timeout):
            asked.append((function, check_id, timeout))
            return ("ok", plain.encode(plain.Outcome(value=1)))

    target = Target("c", "candidate", "m", process=Process())
    reference = types.SimpleNamespace(local=types.SimpleNamespace(name="reference", module=None, names={}))
    sess = types.SimpleNamespace(timeout=7.5, reference=reference)
    check = BY_NAME["get_load_balance_assignment"].checks[0]
    runner = _Runner(sess, target, "get_load_balance_assignment", check)
    assert runner.ctx.timeout == 7.5 and runner.ref_view.timeout == 7.5 and runner.view is None
    assert runner.observe({"sizes": []}).value == 1
    assert asked == [("get_load_balance_assignment", check.id, 7.5)]


# ---- the worker side: announce and allow ----------------------------------------------------

def test_a_view_ticks_before_each_later_call_and_asks_for_more_time():
    ticks = []
    target = types.SimpleNamespace(name="t", module=None, names={"f": lambda: 1})
    view = TargetView(target, "f", 4.0, tick=ticks.append)
    view.announce()
    assert ticks == []  # the first call is covered by the deadline the controller set when it sent the probe
    view.invoke(lambda: 2)
    view.invoke(lambda: 3)
    view.allow(150.0)
    assert ticks == [None, None, 150.0] and view.timeout == 4.0
    quiet = TargetView(target, "f", 4.0)  # in the controller: no deadline to tell
    quiet.announce(), quiet.announce(), quiet.allow(9)


def test_a_real_group_asks_for_its_start_allowance_plus_the_timeout(monkeypatch):
    asked, pools = [], []

    class Pool:
        def run(self, job):
            pools.append(job)
            return []

    def get_pool(world, timeout):
        asked.append((world, timeout))
        return Pool()

    monkeypatch.setattr(rankpool, "get_pool", get_pool)
    allowed = []
    view = types.SimpleNamespace(timeout=7.0, name="t", function="run_dp_sharded_vision_model", allow=allowed.append)
    got = groups.probe("gloo")(view, {"world_size": 2, "model": "m", "image_input": "x"})
    assert got == {"ranks": []} and allowed == [127.0] and asked == [(2, 7.0)]
    assert pools[0]["target"] == "t" and pools[0]["args"] == ["x", "<model>"]

    def faulty(world, timeout):
        class P:
            def run(self, job):
                raise rankpool.GroupFault("ranks [1] did not finish within 7 s (finished: none)", hung=True)
        return P()

    monkeypatch.setattr(rankpool, "get_pool", faulty)
    assert groups.probe("gloo")(view, {"world_size": 2, "model": "m", "image_input": "x"}) == \
        {"fault": "ranks [1] did not finish within 7 s (finished: none)", "hung": True}


def test_the_pool_takes_each_runs_timeout(monkeypatch):
    monkeypatch.setattr(rankpool, "_POOLS", {})
    first = rankpool.get_pool(3, timeout=7.0)
    assert first.timeout == 7.0 and first.procs == []  # made, not started
    again = rankpool.get_pool(3, timeout=2.0)
    assert again is first and first.timeout == 2.0


# ---- the controller side: the deadline of one probe -------------------------------------------

class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class _FakeProc:
    def __init__(self, conn=None):
        self.conn = conn or types.SimpleNamespace(send_bytes=lambda data: None)
        self.log_path = "/nonexistent/vvc-test.log"
        self.reaped = []
        self.started = 1000.0

    def reap(self, grace):
        self.reaped.append(grace)
        return None


def _process(proc) -> TargetProcess:
    tp = object.__new__(TargetProcess)
    tp.name, tp.worker, tp.restarts, tp.load_timeout = "t", proc, 0, 300.0
    return tp


@pytest.fixture
def scripted(monkeypatch):
    """The worker's replies, each after the clock moved on by some seconds (None: no reply in time);
    returns the timeouts the controller waited with."""
    clock = _Clock()
    monkeypatch.setattr(worker, "time", types.SimpleNamespace(monotonic=clock))  # the worker module's clock only

    def run(timeout, steps):
        waited, steps = [], list(steps)

        def recv(conn, wait):
            waited.append(wait)
            advance, message = steps.pop(0)
            clock.now += advance
            if message is None:
                raise TimeoutError
            return message

        monkeypatch.setattr(worker, "_recv", recv)
        tp = _process(_FakeProc())
        try:
            return tp.probe("f", "c", {}, timeout), waited, tp
        except WorkerFault as fault:
            return fault, waited, tp

    return run


RESULT = ("result", ("ok", 1))


@pytest.mark.parametrize("tick, allowed", [
    (None, 30.0),  # a later call: the deadline restarts at the timeout
    (150.0, 150.0),  # allow(150): a longer deadline for the next step
    (150, 150.0),
    (10_000.0, 600.0),  # capped at MAX_ALLOW
    (math.inf, 600.0),
    (1.0, 30.0),  # never shorter than the timeout
    (-5.0, 30.0),
    (math.nan, 30.0),  # not a number of seconds: the timeout
    ("120", 30.0),
    (True, 30.0),
])
def test_a_tick_sets_the_next_deadline(scripted, tick, allowed):
    reply, waited, _ = scripted(30.0, [(10.0, ("tick", tick)), (0.0, RESULT)])
    assert reply == ("ok", 1) and waited == [30.0, allowed]


def test_the_time_already_spent_counts_against_the_deadline(scripted):
    """Without a tick the deadline is the one set when the probe was sent."""
    reply, waited, _ = scripted(30.0, [(12.0, ("tick", 100.0)), (40.0, ("tick", None)), (29.0, RESULT)])
    assert waited == [30.0, 100.0, 30.0] and reply == ("ok", 1)


def test_past_the_deadline_the_worker_is_killed_and_the_message_says_the_allowance(scripted):
    fault, waited, tp = scripted(30.0, [(0.0, ("tick", 150.0)), (150.0, None)])
    assert isinstance(fault, WorkerFault) and fault.hung and not fault.final
    assert fault.cause == "t.f did not return within 150 s (its process was killed)"
    assert tp.worker is None and tp.restarts == 1
    fault, _, _ = scripted(2.5, [(2.5, None)])
    assert fault.cause == "t.f did not return within 2.5 s (its process was killed)"


def test_a_malformed_tick_is_a_fault_not_more_time(scripted):
    fault, _, tp = scripted(30.0, [(0.0, ("tick",))])
    assert fault.cause == "the worker sent a malformed reply" and not fault.hung and tp.restarts == 1


def test_mutation_a_changed_cap_is_noticed(scripted, monkeypatch):
    monkeypatch.setattr(worker, "MAX_ALLOW", 100.0)
    _, waited, _ = scripted(30.0, [(0.0, ("tick", 10_000.0)), (0.0, RESULT)])
    assert waited[1] == 100.0
    with pytest.raises(AssertionError):
        test_a_tick_sets_the_next_deadline(scripted, 10_000.0, 600.0)


def test_asking_for_more_time_never_shortens_the_deadline(scripted):
    _, waited, _ = scripted(1000.0, [(0.0, ("tick", groups.POOL_START_ALLOWANCE + 1000.0)), (0.0, RESULT)])
    assert waited[1] >= 1000.0


def test_a_real_tiny_deadline_and_a_real_tick():
    """On a real pipe: no reply within 0.05 s is a hung worker; a tick asking 0.2 s makes it wait that long."""
    parent, child = multiprocessing.Pipe()
    try:
        tp = _process(_FakeProc(parent))
        start = time.monotonic()
        with pytest.raises(WorkerFault) as info:
            tp.probe("f", "c", {}, 0.05)
        took = time.monotonic() - start
        assert info.value.cause == "t.f did not return within 0.05 s (its process was killed)"
        assert 0.04 <= took < 2.0  # loose above: a loaded machine is slow, never early
        child.recv_bytes()  # the probe that was sent
        child.send_bytes(plain.dumps(("tick", 0.2)))
        tp.worker = _FakeProc(parent)
        start = time.monotonic()
        with pytest.raises(WorkerFault) as info:
            tp.probe("f", "c", {}, 0.05)
        took = time.monotonic() - start
        assert info.value.cause == "t.f did not return within 0.2 s (its process was killed)"
        assert 0.18 <= took < 2.0
    finally:
        parent.close()
        child.close()


# ---- loading ----------------------------------------------------------------------------------------

def test_the_load_deadline_runs_from_the_hosts_start(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(worker, "time", types.SimpleNamespace(monotonic=clock))  # the worker module's clock only
    waited = []

    def recv(conn, wait):
        waited.append(wait)
        raise TimeoutError

    monkeypatch.setattr(worker, "_recv", recv)
    host = object.__new__(Host)
    host.proc = proc = _FakeProc()
    proc.started = clock.now
    clock.now += 100.0
    with pytest.raises(LoadFailed) as info:
        host.wait_loaded(300.0)
    assert str(info.value) == "loading did not finish within 300 s (killed)"
    assert waited == [200.0] and proc.reaped == [0] and host.proc is None


# ---- the real group's job: deadline and grace ------------------------------------------------------

class _Rank:
    exitcode = None

    def is_alive(self):
        return True


def _pool(world, timeout, monkeypatch):
    pool = rankpool.RankPool(world, timeout=timeout)
    pool.procs = [_Rank() for _ in range(world)]
    pool._targets = {"t"}
    pool.jobs = [queue.Queue() for _ in range(world)]
    pool.results = queue.Queue()
    closed = []
    monkeypatch.setattr(pool, "close", lambda: closed.append(True))
    return pool, closed


def test_a_job_past_its_deadline_is_a_hung_group(monkeypatch):
    pool, closed = _pool(2, 0.05, monkeypatch)
    start = time.monotonic()
    with pytest.raises(rankpool.GroupFault) as info:
        pool.run({"target": "t"})
    took = time.monotonic() - start
    assert str(info.value) == "ranks [0, 1] did not finish within 0.05 s (finished: none)"
    assert info.value.hung and closed and 0.04 <= took < 2.0
    assert [q.get_nowait() for q in pool.jobs] == [(1, {"target": "t"})] * 2


def test_a_rank_that_raised_gives_its_peers_only_the_grace(monkeypatch):
    pool, closed = _pool(2, 5.0, monkeypatch)
    pool.grace = 0.05
    payload = {"outcome": plain.raised_wire(ValueError("bad grid")), "calls": [], "gathers": [], "group_intact": True}
    pool.results.put(("done", 0, 1, rankpool._encode(payload)))
    start = time.monotonic()
    with pytest.raises(rankpool.GroupFault) as info:
        pool.run({"target": "t"})
    took = time.monotonic() - start
    assert str(info.value) == ("ranks [1] were left waiting in a collective that the other ranks did not join "
                               "(finished: rank 0 raised ValueError: bad grid (on rank 0))")
    assert not info.value.hung and closed and took < 2.5  # the grace, not the 5 s deadline
