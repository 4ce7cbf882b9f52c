"""Running a data-parallel check's call under a group, and reading each rank's result.

Each data-parallel check runs under one of two groups: "sim", the in-process
simulation (:mod:`conformance.simgroup`, every example), or "gloo", a real
group of processes (:mod:`conformance.rankpool`; selected with
``--dp-group``). :func:`probe` runs the target's function as every rank of the
group, where the target lives, and reports each rank's outcome and its model
calls, or the group's fault; :func:`rank_results` turns that into each rank's
result or the group's failure as a divergence, in the controller.
"""

from __future__ import annotations

import torch

from . import rankpool
from .checks import FAULT_SHRINKS, Ctx, Unsupported, exc_name
from .plain import Encoded, Outcome
from .simgroup import CollectiveMismatch, run_simulated

REAL_MAX_RANKS = 4
POOL_START_ALLOWANCE = 120.0  # a real group may have to start (fork, join) before the job


def call_kwargs(ex: dict) -> dict:
    return {"rope_type": ex["rope_type"]} if "rope_type" in ex else {}


def call_args(ex: dict, model):
    if "image_input" in ex:
        return [ex["image_input"], model]
    return [model, ex["pixel_values"], [list(g) for g in ex["grid_thw_list"]]]


def probe(group: str):
    """The probe of a data-parallel check under ``group`` ("sim" or "gloo")."""

    def run(view, ex: dict) -> dict:
        world, spec = ex["world_size"], ex["model"]
        if group == "gloo":
            view.allow(POOL_START_ALLOWANCE + view.timeout)
            job = {"target": view.name, "function": view.function, "model": spec,
                   "args": call_args(ex, "<model>"), "kwargs": call_kwargs(ex)}
            try:
                outcomes = rankpool.get_pool(world, timeout=view.timeout).run(job)
            except rankpool.GroupFault as exc:
                return {"fault": str(exc), "hung": exc.hung}
            return {"ranks": [{"rank": o.rank, "outcome": Encoded(o.outcome), "calls": o.calls} for o in outcomes]}

        fn, models = view.fn(view.function), []

        def make_call(f):
            model = spec.build()
            models.append(model)
            args = [a.clone() if isinstance(a, torch.Tensor) else a for a in call_args(ex, model)]
            view.announce()
            return f(*args, **call_kwargs(ex))

        try:
            results = run_simulated(fn, make_call, world)
        except CollectiveMismatch as exc:
            return {"mismatch": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - what a rank raised (with the rank in its notes)
            if view.in_controller and isinstance(exc, KeyboardInterrupt):
                raise  # the user interrupting the run while the reference ran
            return {"raised": Outcome(exc=exc)}
        return {"ranks": [{"rank": r, "outcome": Outcome(value=v), "calls": m.calls}
                          for r, (v, m) in enumerate(zip(results, models[-world:]))]}

    return run


def rank_results(ctx: Ctx, ex: dict, group: str, got: dict) -> list[dict]:
    """Each rank's result, or the group's failure as a divergence."""
    world = ex["world_size"]
    if group == "gloo":
        if "fault" in got:
            # A group that hung would wait out the deadline again on every further example,
            # and each fault costs a new group: shrink over a few, then stop at the last.
            ctx.faults += 1
            ctx.stop = got.get("hung") is True or ctx.faults > FAULT_SHRINKS
            raise ctx.diverge(f"real gloo group of {world}: {got['fault']}")
        for o in got["ranks"]:
            exc = o["outcome"].exc
            if exc is not None:
                what = "collective mismatch" if exc.short_name.endswith("CollectiveMismatch") else "raised"
                raise ctx.diverge(f"{what} in a real gloo group of {world}: {exc_name(exc)}: {exc.message} "
                                  f"(on rank {o['rank']})")
        return got["ranks"]
    if "mismatch" in got:
        raise ctx.diverge(f"collective mismatch in a simulated group of {world}: {got['mismatch']}")
    if "raised" in got:
        exc = got["raised"].exc
        notes = " ".join(exc.notes)
        raise ctx.diverge(f"raised {exc_name(exc)}: {exc.message} {notes}".strip())
    return got["ranks"]


def sim_supported(ctx: Ctx, ex: dict) -> dict:
    why = ctx.target.facts.get("dp", {}).get(ctx.function)
    if why:
        raise Unsupported(why)
    return ex
