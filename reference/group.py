"""The tensor-parallel group interface the reference's data-parallel functions use.

The reference never imports vLLM. Its two data-parallel functions read the
group facts through the three module-level names below (the same names vLLM's
``vision.py`` uses), which delegate to the group installed with
:func:`use_group`:

* a simulated group (``conformance.simgroup``) in-process, one call per rank;
* a real ``torch.distributed`` group (:class:`TorchDistributedGroup`);
* by default, :class:`SingleProcessGroup` (world size 1), or the default
  ``torch.distributed`` group when one is initialised.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Protocol, runtime_checkable

import torch


@runtime_checkable
class TPGroup(Protocol):
    """What a data-parallel helper needs to know about its group."""

    @property
    def world_size(self) -> int: ...

    @property
    def rank(self) -> int: ...

    def all_gather(self, tensor: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Concatenate every rank's ``tensor`` along ``dim``, in rank order.

        Every rank must pass a tensor of the same shape, dtype and device.
        """
        ...


class SingleProcessGroup:
    """A group of one: the all-gather is the identity."""

    world_size = 1
    rank = 0

    def all_gather(self, tensor: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return tensor


class TorchDistributedGroup:
    """A real ``torch.distributed`` process group (gloo or NCCL)."""

    def __init__(self, group=None) -> None:
        import torch.distributed as dist

        self._dist = dist
        self._group = group

    @property
    def world_size(self) -> int:
        return self._dist.get_world_size(self._group)

    @property
    def rank(self) -> int:
        return self._dist.get_rank(self._group)

    def all_gather(self, tensor: torch.Tensor, dim: int = -1) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        self._dist.all_gather(parts, tensor.contiguous(), group=self._group)
        return torch.cat(parts, dim=dim)


_local = threading.local()


def current_group() -> TPGroup:
    """The group installed by :func:`use_group`, else a sensible default."""
    group = getattr(_local, "group", None)
    if group is not None:
        return group
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return TorchDistributedGroup()
    return SingleProcessGroup()


@contextlib.contextmanager
def use_group(group: TPGroup) -> Iterator[TPGroup]:
    """Run the reference's data-parallel functions under ``group``."""
    previous = getattr(_local, "group", None)
    _local.group = group
    try:
        yield group
    finally:
        _local.group = previous


# The three names vLLM's vision.py reads; the harness may patch them too.
def get_tensor_model_parallel_world_size() -> int:
    return current_group().world_size


def get_tensor_model_parallel_rank() -> int:
    return current_group().rank


def tensor_model_parallel_all_gather(tensor: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return current_group().all_gather(tensor, dim)
