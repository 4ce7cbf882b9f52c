"""A simulated tensor-parallel group, in one process (a simulation, not the
real thing: the real ``torch.distributed`` groups are :mod:`conformance.rankpool`).

The target's data-parallel function body runs once per simulated rank, twice:
pass 0 records what each rank hands the all-gather (and stops it there),
pass 1 replays every rank with the concatenation of all ranks' tensors. The
group facts are injected by patching the three names the function reads from
its own module globals (``get_tensor_model_parallel_world_size``,
``get_tensor_model_parallel_rank``, ``tensor_model_parallel_all_gather``),
exactly as vLLM's ``vision.py`` imports them. The gather is strict: ranks
disagreeing on shape (beyond the gather dim), dtype or device is a
``CollectiveMismatch`` (a real gloo group would abort or return garbage), and
so is a non-contiguous tensor, which NCCL's ``all_gather_into_tensor``
refuses (vLLM's base device communicator hands it the tensor as it is; gloo
on CPU would gather it correctly).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Iterator

import torch

GROUP_NAMES = (
    "get_tensor_model_parallel_world_size",
    "get_tensor_model_parallel_rank",
    "tensor_model_parallel_all_gather",
)


class SimulationUnsupported(Exception):
    """The function does not read the group through the three names."""


class CollectiveMismatch(Exception):
    """Ranks handed the all-gather incompatible tensors, or skipped it."""


class _Stop(BaseException):
    pass


def function_globals(fn: Callable) -> dict:
    inner = getattr(fn, "__wrapped__", fn)
    namespace = getattr(inner, "__globals__", None)
    if namespace is None or not all(name in namespace for name in GROUP_NAMES):
        raise SimulationUnsupported(
            "the function does not read the tensor-parallel group through "
            + ", ".join(GROUP_NAMES)
            + " in its module, so it cannot be simulated in-process"
        )
    return namespace


@contextlib.contextmanager
def _patched(namespace: dict, world: int, rank: int, gather) -> Iterator[None]:
    saved = {name: namespace[name] for name in GROUP_NAMES}
    namespace["get_tensor_model_parallel_world_size"] = lambda: world
    namespace["get_tensor_model_parallel_rank"] = lambda: rank
    namespace["tensor_model_parallel_all_gather"] = gather
    try:
        yield
    finally:
        namespace.update(saved)


def _describe(t: Any) -> str:
    if not isinstance(t, torch.Tensor):
        return type(t).__name__
    return f"Tensor(shape={tuple(t.shape)}, dtype={t.dtype}, device={t.device})"


def run_simulated(fn: Callable, make_call: Callable[[Callable], Any], world: int) -> list[Any]:
    """Run ``make_call(fn)`` as every rank of a simulated group of ``world``.

    ``make_call`` receives the function and must call it with fresh arguments.
    Returns each rank's result. Exceptions raised by a rank propagate, with
    the rank added to the message via ``add_note``.
    """
    namespace = function_globals(fn)
    recorded: list[Any] = [None] * world
    gathers: list[tuple[int, int]] = []

    for rank in range(world):

        def record(tensor, dim=-1, _rank=rank):
            if isinstance(tensor, torch.Tensor) and not tensor.is_contiguous():
                raise CollectiveMismatch(
                    f"rank {_rank} handed the all-gather a non-contiguous {_describe(tensor)}; NCCL's "
                    "all_gather_into_tensor, which vLLM's base device communicator calls (ROCm, or CUDA "
                    "without PyNCCL), requires contiguous input"
                )
            recorded[_rank] = tensor.detach().clone()
            gathers.append((_rank, dim))
            raise _Stop

        with _patched(namespace, world, rank, record):
            try:
                make_call(fn)
            except _Stop:
                continue
            except BaseException as exc:
                exc.add_note(f"(raised on simulated rank {rank} of {world})")
                raise
        recorded[rank] = None

    joined = [r for r in range(world) if recorded[r] is not None]
    if not joined:
        gathered = None
    else:
        if len(joined) != world:
            missing = [r for r in range(world) if recorded[r] is None]
            raise CollectiveMismatch(
                f"ranks {missing} of {world} returned without joining the all-gather "
                f"that ranks {joined} joined (a real group would hang)"
            )
        dims = {dim for _, dim in gathers}
        first = recorded[0]
        for rank in range(1, world):
            other = recorded[rank]
            if (
                not isinstance(other, torch.Tensor)
                or other.dtype != first.dtype
                or other.device != first.device
                or tuple(other.shape) != tuple(first.shape)
            ):
                raise CollectiveMismatch(
                    f"rank 0 handed the all-gather {_describe(first)} but rank {rank} "
                    f"handed {_describe(other)}; every rank must pass the same shape, dtype and device"
                )
        if len(dims) != 1:
            raise CollectiveMismatch(f"ranks gathered along different dims {sorted(dims)}")
        gathered = torch.cat(recorded, dim=dims.pop())

    results = []
    for rank in range(world):

        def replay(tensor, dim=-1):
            return gathered.clone()

        with _patched(namespace, world, rank, replay):
            try:
                results.append(make_call(fn))
            except BaseException as exc:
                exc.add_note(f"(raised on simulated rank {rank} of {world}, replay pass)")
                raise
    return results
