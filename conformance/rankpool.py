"""Real ``torch.distributed`` groups on CPU: a persistent pool of rank processes.

Each pool is one group of ``world_size`` processes, forked from the harness
once and fed many examples. When vLLM is imported, the group is set up the
way vLLM sets up its tensor-parallel group (``init_distributed_environment``
then ``initialize_model_parallel`` with the gloo backend, under a minimal
engine config holding vLLM's own ``ParallelConfig``), so a vLLM-shaped
target's ``tensor_model_parallel_all_gather`` runs vLLM's real all-gather
path. Without vLLM, a plain gloo process group serves the reference (whose
group interface then reads ``torch.distributed``).

Every rank runs the target's function on the same job; the harness gets each
rank's result, the model calls it made (instrumented model) and what it handed
the all-gather. Before the real gather, the ranks exchange the gather's shape,
dtype, device and dim (``all_gather_object``) and all raise
``CollectiveMismatch`` when they disagree: gloo would otherwise abort the
process or hand back garbage without raising.

CUDA: ``RankPool(n, backend="nccl", start_method="spawn")`` runs the same
jobs with NCCL, one GPU per rank, tensors on the GPU (``job["device"]``).

Faults never hang the run: a job has a deadline; a rank that raised while its
peers still wait, a rank that returned without joining the collective, or a
rank that hangs ends the job with those facts, and the pool is torn down and
started again for the next job.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import queue
import socket
import sys
import time
import traceback
from typing import Any

import torch

_TARGETS: dict[str, Any] = {}  # name -> Target, inherited by the forked ranks
_POOLS: dict[tuple[int, str], "RankPool"] = {}


class GroupFault(Exception):
    """The group could not finish a job: a rank hung, died, or left its peers waiting."""

    def __init__(self, message: str, hung: bool = False) -> None:
        super().__init__(message)
        self.hung = hung


@dataclasses.dataclass
class RankOutcome:
    """One rank's part of a job: its outcome as plain wire data (``conformance.plain``)."""

    rank: int
    outcome: Any = None  # ("O", value) or ("R", type, mro, message, notes)
    calls: list = dataclasses.field(default_factory=list)
    gathers: list = dataclasses.field(default_factory=list)

    @property
    def raised(self) -> bool:
        return type(self.outcome) is tuple and bool(self.outcome) and self.outcome[0] == "R"

    @property
    def error(self) -> str | None:
        """``Type: message (on rank r)`` when the rank raised."""
        if not self.raised:
            return None
        name = str(self.outcome[1]).removeprefix("builtins.").rpartition(".")[2]
        return f"{name}: {self.outcome[3]} (on rank {self.rank})"

    def decoded(self):
        from . import plain

        return plain.decode(self.outcome)


def register_targets(targets) -> None:
    """Make targets available to ranks forked from now on."""
    for target in targets:
        _TARGETS[target.name] = target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _EngineConfig:
    """The smallest engine config vLLM's group initialisation reads."""

    def __init__(self) -> None:
        from vllm.config import ParallelConfig

        self.parallel_config = ParallelConfig()
        self.model_config = None
        self.engram_config = None
        try:  # 0.10.x reads it while setting up the group
            from vllm.config import CompilationConfig

            self.compilation_config = CompilationConfig()
        except Exception:  # noqa: BLE001 - releases that do not have or need it
            pass

    def __getattr__(self, name: str):
        raise AttributeError(f"the conformance harness' engine config has no {name!r} (this vLLM release reads it)")


_ENGINE: "_EngineConfig | None" = None  # built once in the parent, inherited by forked ranks


def _prepare_engine_config() -> None:
    """Build the engine config in the parent before forking: building it imports
    about 500 modules (vLLM's executor), which every rank would otherwise import again."""
    global _ENGINE
    if _ENGINE is None and "vllm" in sys.modules:
        try:
            _ENGINE = _EngineConfig()
        except Exception:  # noqa: BLE001 - each rank builds its own then, and reports what fails
            pass


def _init_group(rank: int, world: int, port: int, backend: str) -> str:
    method = f"tcp://127.0.0.1:{port}"
    if "vllm" in sys.modules:
        from vllm.config import set_current_vllm_config
        from vllm.distributed.parallel_state import init_distributed_environment, initialize_model_parallel

        with set_current_vllm_config(_ENGINE or _EngineConfig()):
            init_distributed_environment(world_size=world, rank=rank, local_rank=rank,
                                         distributed_init_method=method, backend=backend)
            initialize_model_parallel(tensor_model_parallel_size=world, backend=backend)
        return "vllm"
    import torch.distributed as dist

    dist.init_process_group(backend, init_method=method, world_size=world, rank=rank)
    return "torch.distributed"


def _encode(payload: dict) -> bytes:
    from . import plain

    return plain.dumps(payload)


def _decode(data: bytes) -> dict:
    from . import plain

    payload = plain.loads(data)
    if type(payload) is not dict:
        raise plain.Malformed("a rank's reply is not a dict")
    return payload


def _execute(rank: int, world: int, job: dict) -> dict:
    import torch.distributed as dist

    from .simgroup import GROUP_NAMES, CollectiveMismatch, function_globals

    from . import plain

    target = _TARGETS[job["target"]]
    fn = target.names.get(job["function"])
    namespace = function_globals(fn)
    real_gather = namespace["tensor_model_parallel_all_gather"]
    gathers: list = []

    def checked_gather(tensor, dim=-1):
        meta = (tuple(tensor.shape), str(tensor.dtype), str(tensor.device), dim) if isinstance(tensor, torch.Tensor) \
            else (type(tensor).__name__,)
        everyone = [None] * world
        dist.all_gather_object(everyone, meta)
        gathers.append(meta)
        if any(m != everyone[0] for m in everyone):
            raise CollectiveMismatch(
                "ranks handed the all-gather " + "; ".join(f"rank {r}: {m}" for r, m in enumerate(everyone)))
        return real_gather(tensor, dim)

    device = torch.device(job.get("device", "cpu"))
    model = job["model"].build().to(device) if hasattr(job["model"], "build") else job["model"]
    args = [model if a == "<model>" else (a.to(device) if isinstance(a, torch.Tensor) else a) for a in job["args"]]
    saved = {name: namespace[name] for name in GROUP_NAMES}
    namespace["tensor_model_parallel_all_gather"] = checked_gather
    try:
        with torch.inference_mode():
            outcome = plain.Outcome(value=fn(*args, **job.get("kwargs", {})))
    except BaseException as exc:  # noqa: BLE001 - carried back to the harness
        outcome = plain.Outcome(exc=exc)
    finally:
        namespace.update(saved)
    calls = [[int(rows), grids] for rows, grids in getattr(model, "calls", [])]
    return {"outcome": plain.encode(outcome), "calls": calls,
            "gathers": [list(g) for g in gathers], "group_intact": dist.is_initialized()}


def _reload_targets(specs) -> None:
    """In a spawned rank (no fork inheritance): load the targets again."""
    from .targets import load_in_process

    for name, kind, spec in specs:
        if name not in _TARGETS:
            _TARGETS[name] = load_in_process(kind, name, spec)


def _rank_main(rank: int, world: int, port: int, backend: str, jobs, results, specs=None) -> None:
    import warnings

    from .worker import _die_with_parent, seal_inherited

    seal_inherited()  # a rank holds no connection of its process to the controller or to other targets
    _die_with_parent()
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(1)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    try:
        if specs is not None:
            _reload_targets(specs)
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        how = _init_group(rank, world, port, backend)
    except BaseException:  # noqa: BLE001
        results.put(("init-failed", rank, None, traceback.format_exc(limit=3)))
        return
    results.put(("ready", rank, None, how))
    while True:
        item = jobs.get()
        if item is None:
            break
        job_id, job = item
        try:
            payload = _execute(rank, world, job)
        except BaseException as exc:  # noqa: BLE001 - the harness itself failed on this rank
            from . import plain

            payload = {"outcome": plain.raised_wire(exc), "calls": [], "gathers": [], "group_intact": True}
        results.put(("done", rank, job_id, _encode(payload)))


class RankPool:
    """``world_size`` forked rank processes joined by a real gloo group."""

    def __init__(self, world_size: int, *, backend: str = "gloo", timeout: float = 30.0,
                 start_timeout: float = 120.0, start_method: str = "fork") -> None:
        self.world_size, self.backend, self.start_method = world_size, backend, start_method
        self.timeout, self.start_timeout = timeout, start_timeout
        self.grace = 1.0  # how long peers may take to finish once a rank raised or skipped the collective
        self.procs: list = []
        self.how: str | None = None
        self.starts = 0
        self._job_id = 0
        self._targets: set[str] = set()

    # -- lifecycle --
    def start(self) -> None:
        if self.start_method == "fork":
            _prepare_engine_config()
        ctx = multiprocessing.get_context(self.start_method)
        port = _free_port()
        self.jobs = [ctx.Queue() for _ in range(self.world_size)]
        self.results = ctx.Queue()
        # fork: the ranks inherit the loaded targets; spawn (CUDA): they load them again.
        specs = None if self.start_method == "fork" else [(t.name, t.kind, t.spec) for t in _TARGETS.values()]
        self.procs = [ctx.Process(target=_rank_main, args=(r, self.world_size, port, self.backend, self.jobs[r],
                                                           self.results, specs), daemon=True)
                      for r in range(self.world_size)]
        for proc in self.procs:
            proc.start()
        self._targets = set(_TARGETS)
        self.starts += 1
        ready = 0
        deadline = time.monotonic() + self.start_timeout
        while ready < self.world_size:
            try:
                kind, rank, _, info = self.results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise GroupFault(f"the {self.world_size}-rank group did not start within {self.start_timeout:g} s")
            if kind == "init-failed":
                self.close()
                raise GroupFault(f"rank {rank} could not join the group: {info.strip().splitlines()[-1]}")
            self.how = info
            ready += 1

    def close(self) -> None:
        for q in getattr(self, "jobs", []):
            try:
                q.put_nowait(None)
            except Exception:  # noqa: BLE001
                pass
        for proc in self.procs:
            proc.join(timeout=0.5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
        self.procs = []

    @property
    def alive(self) -> bool:
        return bool(self.procs) and all(p.is_alive() for p in self.procs)

    # -- jobs --
    def run(self, job: dict) -> list[RankOutcome]:
        """Run ``job`` on every rank; each rank's outcome, or ``GroupFault``.

        A rank that dies is reported with how it died (its exit code or
        signal); a rank that raised or skipped the collective gives its peers
        ``grace`` seconds; a rank that left the process group destroyed is a
        fault of the job. After any fault the pool starts afresh."""
        if not self.alive or job["target"] not in self._targets:
            self.close()
            self.start()
        self._job_id += 1
        job_id = self._job_id
        for q in self.jobs:
            q.put((job_id, job))
        outcomes: dict[int, RankOutcome] = {}
        intact: dict[int, bool] = {}
        deadline = time.monotonic() + self.timeout
        grace_until = None
        while len(outcomes) < self.world_size:
            now = time.monotonic()
            limit = min(deadline, grace_until) if grace_until else deadline
            try:
                kind, rank, got_id, data = self.results.get(timeout=max(0.01, min(0.1, limit - now)))
            except queue.Empty:
                dead = self._dead(outcomes)
                if dead:
                    self._fault_dead(dead, outcomes)
                if time.monotonic() < limit:
                    continue
                missing = sorted(set(range(self.world_size)) - set(outcomes))
                finished = self._finished(outcomes)
                self.close()
                if grace_until and time.monotonic() >= grace_until and time.monotonic() < deadline:
                    raise GroupFault(f"ranks {missing} were left waiting in a collective that the other ranks "
                                     f"did not join (finished: {finished})")
                raise GroupFault(f"ranks {missing} did not finish within {self.timeout:g} s (finished: {finished})",
                                 hung=True)
            if kind != "done" or got_id != job_id:
                continue
            try:
                payload = _decode(data)
                outcome = RankOutcome(rank, payload["outcome"], list(payload["calls"]), list(payload["gathers"]))
                intact[rank] = payload.get("group_intact", True) is True
            except Exception as exc:  # noqa: BLE001 - a rank sent something that is not a reply
                self.close()
                raise GroupFault(f"rank {rank} sent a malformed reply ({exc})") from None
            outcomes[rank] = outcome
            early = outcome.raised or not outcome.gathers
            if early and grace_until is None:
                # A rank that raised or skipped the collective may leave its peers blocked.
                grace_until = time.monotonic() + min(self.grace, self.timeout)
        result = [outcomes[r] for r in range(self.world_size)]
        broken = [r for r, ok in sorted(intact.items()) if not ok]
        if broken:
            self.close()
            raise GroupFault(f"ranks {broken} left the process group destroyed after the call "
                             f"(finished: {self._finished(outcomes)})")
        errors = {o.error.split(" (on rank")[0] if o.error else None for o in result}
        if len(errors) > 1 or any("gloo" in (o.error or "").lower() or "timeout" in (o.error or "").lower()
                                  for o in result):
            self.close()  # the group may be broken: start afresh for the next job
        return result

    def _dead(self, outcomes: dict) -> list[tuple[int, int]]:
        return [(r, p.exitcode) for r, p in enumerate(self.procs) if r not in outcomes and p.exitcode is not None]

    def _fault_dead(self, dead: list[tuple[int, int]], outcomes: dict) -> None:
        from .worker import describe_exitcode

        finished = self._finished(outcomes)
        self.close()
        what = "; ".join(f"rank {r} {describe_exitcode(code)}" for r, code in dead)
        raise GroupFault(f"{what} during the job, in a group of {self.world_size} (finished: {finished})")

    def _finished(self, outcomes: dict) -> str:
        return ", ".join(self._describe(o) for o in outcomes.values()) or "none"

    @staticmethod
    def _describe(outcome: RankOutcome) -> str:
        return f"rank {outcome.rank} " + (f"raised {outcome.error}" if outcome.raised else
                                          f"returned after {len(outcome.gathers)} all-gather(s)")


def get_pool(world_size: int, backend: str = "gloo", timeout: float = 30.0) -> RankPool:
    """The session's pool for ``world_size`` (started on first use, kept)."""
    key = (world_size, backend)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = RankPool(world_size, backend=backend, timeout=timeout)
    pool.timeout = timeout
    return pool


@atexit.register
def close_all() -> None:
    for pool in _POOLS.values():
        pool.close()
    _POOLS.clear()
