"""Where the code under test runs: never in the controller.

Every target other than the reference (vLLM's module, each candidate) lives
in processes of its own, forked from the controller before any of them runs:

* a **host** loads the target (imports vLLM's module or the candidate) and
  does nothing else: it is the loaded state that workers are forked from, so
  a worker that crashed, hung or was poisoned is replaced in milliseconds
  without importing anything again. Targets that need vLLM share one *base*
  host that imported vLLM once; each of their own hosts is forked from it.
* a **worker**, forked from its target's host, runs probes: the target-side
  half of a check (``Check.probe``), which calls the target and hands back
  what it observed as plain data (:mod:`conformance.plain`). Its real-group
  rank pools are its own (forked from it), so a target that breaks its
  process groups breaks only its own.

The controller (the pytest process) sends each probe a fresh copy of the
input, bounds every call of the target from outside (the worker announces
each call; past the deadline the worker and its ranks get SIGKILL) and reads
replies that can only hold builtins. A worker that died, hung or sent
something malformed is a :class:`WorkerFault` with its real cause ("exited
with code 3", "was killed by signal 11 (SIGSEGV)", "did not return within 5
s"); the next probe gets a fresh worker.

Every process here sets up its own process group, dies with its parent
(``PR_SET_PDEATHSIG`` on Linux) and writes its stdout/stderr to a log file of
its own, so nothing a target does reaches the controller's terminal.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import multiprocessing.connection as mpc
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

from . import plain

CTX = multiprocessing.get_context("fork")
MAX_ALLOW = 600.0  # the longest a worker may ask one step to take (a real group starting, say)
HOST_RESTARTS = 3  # a host that keeps dying is given up after this many restarts
CLOSE_GRACE = 3.0


class WorkerFault(Exception):
    """The target's process could not answer: it died, hung, or sent a malformed reply."""

    def __init__(self, cause: str, hung: bool = False, final: bool = False) -> None:
        super().__init__(cause)
        self.cause, self.hung, self.final = cause, hung, final


class LoadFailed(Exception):
    """The target does not load (the one-line reason)."""


def describe_exitcode(code: int | None) -> str:
    """``multiprocessing``'s exit code in words (negative: the signal that killed it)."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "?"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


# ---- the child side ------------------------------------------------------------

_LOADED: Any = None  # the host's loaded target, inherited by its workers
_LOG_DIR: str | None = None
# File descriptors of this process's connections to its other processes: a child
# forked from here must not hold them (a target could otherwise write forged
# replies into another target's connection, or keep it open past that one's death).
_PRIVATE: set[int] = set()


def keep_private(fd: int) -> None:
    _PRIVATE.add(fd)


def seal_inherited(keep: tuple[int, ...] = ()) -> None:
    """In a freshly forked child: point every inherited private descriptor at
    /dev/null (the number stays valid, the connection is no longer held)."""
    if not _PRIVATE:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in list(_PRIVATE):
            if fd not in keep:
                try:
                    os.dup2(null, fd)
                except OSError:
                    pass
    finally:
        os.close(null)
    _PRIVATE.clear()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001
            pass


def _become_child(log_path: str, parent: int, conn) -> None:
    seal_inherited(keep=(conn.fileno(),))
    keep_private(conn.fileno())  # and this process's children must not hold it either
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(70)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGCHLD, signal.SIGPIPE):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's to handle
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        faulthandler.enable(file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass


def _send(conn, message: Any) -> None:
    conn.send_bytes(plain.dumps(message))


def _child_main(conn, role: str, payload: Any, log_path: str, parent: int) -> None:
    code = 0
    try:
        _become_child(log_path, parent, conn)
        if role == "host":
            _host_main(conn, payload, log_path)
        else:
            _worker_main(conn, log_path)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 71
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(code)


def _host_main(conn, payload: dict, log_path: str) -> None:
    global _LOADED
    from . import targets

    try:
        if payload.get("preload") == "vllm":
            targets.import_vllm_vision()
            info: Any = {"preloaded": "vllm"}
        else:
            _LOADED = targets.load_in_process(payload["kind"], payload["name"], payload["spec"])
            info = _LOADED.info()
            from . import rankpool

            rankpool.register_targets([_LOADED])
    except BaseException as exc:  # noqa: BLE001 - the target does not load: say why, in one line
        why = exc.args[0] if isinstance(exc, targets.LoadError) else f"{type(exc).__name__}: {exc}"
        _send(conn, ("load-failed", str(why).splitlines()[0] if str(why) else type(exc).__name__))
        return
    _send(conn, ("loaded", plain.encode(info)))
    children: dict[int, Any] = {}
    me = os.getpid()
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            break
        kind = message[0]
        if kind == "spawn":
            _, role, child_payload, child_log = message
            parent_end, child_end = CTX.Pipe()
            keep_private(parent_end.fileno())
            proc = CTX.Process(target=_child_main, args=(child_end, role, child_payload, child_log, me))
            proc.start()
            child_end.close()
            children[proc.pid] = proc
            _send(conn, ("spawned", proc.pid))
            with socket.socket(fileno=os.dup(conn.fileno())) as sock:
                socket.send_fds(sock, [b"F"], [parent_end.fileno()])
            _PRIVATE.discard(parent_end.fileno())
            parent_end.close()
        elif kind == "reap":
            _, pid, grace = message
            proc = children.pop(pid, None)
            _send(conn, ("reaped", pid, _reap(proc, grace) if proc is not None else None))
        elif kind == "close":
            break
    for proc in children.values():
        _reap(proc, 0)


def _reap(proc, grace: float) -> int | None:
    """Wait up to ``grace`` for the process to end, then kill it and its group."""
    proc.join(grace)
    if proc.exitcode is None:
        _kill_group(proc.pid)
        proc.join(5)
    return proc.exitcode


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class TargetView:
    """What a probe sees of the target, in the process where the target lives.

    ``invoke`` calls anything of the target's (a function, a method of what it
    returned) and catches whatever it raises, ``BaseException`` included:
    control flow raised by the target is an outcome like any other. Before
    each call it tells the controller (``announce``), whose deadline then
    applies to that call. ``allow(seconds)`` asks for a longer deadline for
    the next step (a real group starting); the controller caps it.
    """

    def __init__(self, target, function: str, timeout: float, tick: Callable[[float | None], None] | None = None,
                 in_controller: bool = False) -> None:
        self.target, self.function, self.timeout = target, function, timeout
        # In the controller the target is the reference (ours): a KeyboardInterrupt there is
        # the user interrupting the run, not an outcome of the call.
        self.in_controller = in_controller
        self.name = target.name
        self.module = target.module
        self._tick = tick
        self._calls = 0

    def fn(self, name: str):
        return self.target.names.get(name)

    def provides(self, name: str) -> bool:
        return name in self.target.names

    def announce(self) -> None:
        """A call of the target starts now. The controller's deadline runs from when it
        sent the probe, which covers the first call; each later one restarts it."""
        if self._tick is not None and self._calls:
            self._tick(None)
        self._calls += 1

    def allow(self, seconds: float) -> None:
        if self._tick is not None:
            self._tick(seconds)

    def invoke(self, fn: Callable, *args, **kwargs) -> plain.Outcome:
        self.announce()
        try:
            return plain.Outcome(value=fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - whatever the target raises is its outcome
            if self.in_controller and isinstance(exc, KeyboardInterrupt):
                raise
            return plain.Outcome(exc=exc)

    def call(self, function: str, kwargs: dict) -> plain.Outcome:
        from .checks import fresh

        return self.invoke(self.fn(function), **fresh(kwargs))


def run_probe(target, function: str, check_id: str, example: dict, timeout: float, tick=None) -> tuple:
    """Run one check's probe on ``target`` here; the reply (plain wire data)."""
    from .registry import BY_NAME

    check = BY_NAME[function].check(check_id)
    view = TargetView(target, function, timeout, tick)
    try:
        observed = check.probe(view, example)
    except BaseException as exc:  # noqa: BLE001 - our probe failed: a harness error, with the input
        return ("probe-failed", plain.raised_wire(exc), traceback.format_exc(limit=6)[-3000:])
    return ("ok", plain.encode(observed))


def _worker_main(conn, log_path: str) -> None:
    target = _LOADED

    def tick(seconds: float | None) -> None:
        _send(conn, ("tick", seconds))

    _send(conn, ("ready", os.getpid()))
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if message[0] == "probe":
            _, function, check_id, example, timeout = message
            _send(conn, ("result", run_probe(target, function, check_id, example, timeout, tick)))
        elif message[0] == "close":
            return


# ---- the controller side --------------------------------------------------------

def _log_dir() -> str:
    global _LOG_DIR
    if _LOG_DIR is None or not os.path.isdir(_LOG_DIR):
        _LOG_DIR = tempfile.mkdtemp(prefix="vvc-workers-")
    return _LOG_DIR


def _last_words(log_path: str) -> str:
    """The last line a process wrote to its log, for the cause of its death."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            lines = [ln.strip() for ln in handle.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    text = "".join(ch if ch.isprintable() else "?" for ch in lines[-1])
    return text if len(text) <= 200 else text[:197] + "..."


def _recv(conn, timeout: float) -> Any:
    """One plain message within ``timeout``; raises TimeoutError, EOFError or plain.Malformed."""
    if not conn.poll(max(0.0, timeout)):
        raise TimeoutError
    try:
        data = conn.recv_bytes(plain.MAX_REPLY_BYTES)
    except OSError as exc:
        if "bad message length" in str(exc):
            raise plain.Malformed(f"a reply larger than {plain.MAX_REPLY_BYTES} bytes") from None
        raise EOFError(str(exc)) from None
    return plain.loads(data)


class _Proc:
    """A process the controller talks to: forked by the controller itself, or by a host."""

    def __init__(self, pid: int, conn, log_path: str, *, local=None, host: "Host | None" = None) -> None:
        self.pid, self.conn, self.log_path = pid, conn, log_path
        self._local, self._host = local, host
        self.started = time.monotonic()

    def reap(self, grace: float) -> int | None:
        try:
            _PRIVATE.discard(self.conn.fileno())
            self.conn.close()
        except OSError:
            pass
        if self._local is not None:
            return _reap(self._local, grace)
        if self._host is not None:
            return self._host.reap(self.pid, grace)
        return None

    def kill(self) -> None:
        _kill_group(self.pid)


def _spawn_local(role: str, payload: Any, log_path: str) -> _Proc:
    parent_end, child_end = CTX.Pipe()
    keep_private(parent_end.fileno())
    proc = CTX.Process(target=_child_main, args=(child_end, role, payload, log_path, os.getpid()))
    proc.start()
    child_end.close()
    return _Proc(proc.pid, parent_end, log_path, local=proc)


class Host:
    """A host process: loaded once, forks the processes that do the work."""

    def __init__(self, label: str, payload: dict, parent: "Host | None" = None) -> None:
        self.label, self.payload, self.parent = label, payload, parent
        self.log_path = os.path.join(_log_dir(), f"{label}-host.log")
        self.proc: _Proc | None = None
        self.info: Any = None
        self.error: str | None = None

    def start(self) -> None:
        """Fork the host (it loads in the background; :meth:`wait_loaded` collects the answer)."""
        self.info, self.error = None, None
        if self.parent is None:
            self.proc = _spawn_local("host", self.payload, self.log_path)
        else:
            self.proc = self.parent.spawn("host", self.payload, self.log_path)

    def wait_loaded(self, timeout: float) -> Any:
        """The host's load answer; raises LoadFailed with the one-line reason."""
        assert self.proc is not None
        try:
            reply = _recv(self.proc.conn, timeout - (time.monotonic() - self.proc.started))
        except TimeoutError:
            self.proc.reap(0)
            self.proc = None
            raise LoadFailed(f"loading did not finish within {timeout:g} s (killed)") from None
        except (EOFError, plain.Malformed) as exc:
            code = self.proc.reap(2.0)
            words = _last_words(self.log_path)
            self.proc = None
            why = f"the process {describe_exitcode(code)} while loading" if isinstance(exc, EOFError) \
                else f"it sent a malformed reply while loading ({exc})"
            raise LoadFailed(why + (f" (last output: {words})" if words else "")) from None
        if not (type(reply) is tuple and len(reply) == 2 and reply[0] in ("loaded", "load-failed")):
            self.proc.reap(0)
            self.proc = None
            raise LoadFailed("it sent a malformed reply while loading")
        if reply[0] == "load-failed":
            self.proc.reap(2.0)
            self.proc = None
            raise LoadFailed(str(reply[1]))
        try:
            self.info = plain.decode(reply[1])
        except plain.Malformed as exc:
            self.proc.reap(0)
            self.proc = None
            raise LoadFailed(f"it sent a malformed description of itself ({exc})") from None
        return self.info

    @property
    def alive(self) -> bool:
        return self.proc is not None

    def _request(self, message: tuple, timeout: float = 30.0) -> Any:
        if self.proc is None:
            raise EOFError("the host is not running")
        try:
            self.proc.conn.send_bytes(pickle.dumps(message))
            return _recv(self.proc.conn, timeout)
        except (TimeoutError, EOFError, OSError, plain.Malformed):
            self.close(0)
            raise EOFError(f"the {self.label} host process stopped answering") from None

    def spawn(self, role: str, payload: Any, log_path: str) -> _Proc:
        reply = self._request(("spawn", role, payload, log_path))
        if not (type(reply) is tuple and len(reply) == 2 and reply[0] == "spawned" and type(reply[1]) is int):
            self.close(0)
            raise EOFError(f"the {self.label} host sent a malformed reply")
        assert self.proc is not None
        if not self.proc.conn.poll(30):
            self.close(0)
            raise EOFError(f"the {self.label} host did not hand over its child's connection")
        with socket.socket(fileno=os.dup(self.proc.conn.fileno())) as sock:
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
        if len(fds) != 1:
            self.close(0)
            raise EOFError(f"the {self.label} host did not hand over its child's connection")
        keep_private(fds[0])
        return _Proc(reply[1], mpc.Connection(fds[0]), log_path, host=self)

    def reap(self, pid: int, grace: float) -> int | None:
        try:
            reply = self._request(("reap", pid, grace), timeout=grace + 10)
        except EOFError:
            return None
        if type(reply) is tuple and len(reply) == 3 and reply[0] == "reaped" and (reply[2] is None or type(reply[2]) is int):
            return reply[2]
        return None

    def close(self, grace: float = CLOSE_GRACE) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.conn.send_bytes(pickle.dumps(("close",)))
        except OSError:
            pass
        proc.reap(grace)


class TargetProcess:
    """The controller's handle on one target: its host, and the worker of the moment."""

    def __init__(self, name: str, payload: dict, base: Host | None = None, *, load_timeout: float = 300.0) -> None:
        self.name, self.load_timeout = name, load_timeout
        self.host = Host(_safe(name), payload, parent=base)
        self.worker: _Proc | None = None
        self.restarts = 0
        self.host_restarts = 0

    def start(self) -> None:
        self.host.start()

    def wait_loaded(self) -> Any:
        return self.host.wait_loaded(self.load_timeout)

    def _worker(self) -> _Proc:
        if self.worker is not None:
            return self.worker
        for attempt in range(2):
            if not self.host.alive:
                if self.host_restarts >= HOST_RESTARTS:
                    raise WorkerFault(f"{self.name}'s processes died {self.host_restarts + 1} times; "
                                      "not started again", hung=True, final=True)
                self.host_restarts += 1
                self.host.start()
                try:
                    self.host.wait_loaded(self.load_timeout)
                except LoadFailed as exc:
                    raise WorkerFault(f"{self.name} could not be loaded again: {exc}", hung=True, final=True) from None
            log = os.path.join(_log_dir(), f"{_safe(self.name)}-worker-{self.restarts}.log")
            try:
                proc = self.host.spawn("worker", None, log)
            except EOFError:
                continue  # the host died: start it again, once
            try:
                reply = _recv(proc.conn, self.load_timeout)
            except (TimeoutError, EOFError, plain.Malformed):
                code = proc.reap(1.0)
                raise WorkerFault(f"a fresh worker of {self.name} {describe_exitcode(code)} before it was ready")
            if not (type(reply) is tuple and reply and reply[0] == "ready"):
                proc.reap(0)
                raise WorkerFault(f"a fresh worker of {self.name} sent a malformed greeting")
            self.worker = proc
            return proc
        raise WorkerFault(f"{self.name}'s host process could not be started again", hung=True, final=True)

    def _fault(self, cause: str, grace: float, hung: bool = False) -> WorkerFault:
        proc, self.worker = self.worker, None
        self.restarts += 1
        code = proc.reap(grace) if proc is not None else None
        if hung:
            return WorkerFault(cause, hung=True)
        words = _last_words(proc.log_path) if proc is not None else ""
        return WorkerFault(cause.replace("{how}", describe_exitcode(code)) + (f" (last output: {words})" if words else ""))

    def probe(self, function: str, check_id: str, example: dict, timeout: float) -> Any:
        """The decoded reply of one probe; raises WorkerFault when the worker could not answer."""
        proc = self._worker()
        try:
            proc.conn.send_bytes(plain.dumps_input(("probe", function, check_id, example, timeout)))
        except OSError:
            raise self._fault("the worker process {how} before the call", 2.0) from None
        deadline, allowed = time.monotonic() + timeout, timeout
        while True:
            try:
                message = _recv(proc.conn, deadline - time.monotonic())
            except TimeoutError:
                raise self._fault(f"{self.name}.{function} did not return within {allowed:g} s "
                                  "(its process was killed)", 0, hung=True) from None
            except EOFError:
                raise self._fault("the worker process {how} during the call", 2.0) from None
            except plain.Malformed as exc:
                raise self._fault(f"the worker sent a malformed reply ({exc})", 0, hung=False) from None
            if type(message) is not tuple or not message:
                raise self._fault("the worker sent a malformed reply", 0)
            if message[0] == "tick" and len(message) == 2:
                seconds = message[1]
                # an allowance is capped at MAX_ALLOW, but never shortens the per-call timeout itself
                allowed = timeout if seconds is None else max(timeout, min(MAX_ALLOW, float(seconds))) \
                    if type(seconds) in (int, float) and seconds == seconds else timeout
                deadline = time.monotonic() + allowed
                continue
            if message[0] == "result" and len(message) == 2 and type(message[1]) is tuple and message[1]:
                return message[1]
            raise self._fault("the worker sent a malformed reply", 0)

    def close(self) -> None:
        proc, self.worker = self.worker, None
        if proc is not None:
            try:
                proc.conn.send_bytes(pickle.dumps(("close",)))
            except OSError:
                pass
            proc.reap(CLOSE_GRACE)
        self.host.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
