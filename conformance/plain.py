"""Plain data across the process boundary: what a worker may send back.

The worker side (:func:`encode`) turns what a probe observed into a tree of
builtins only (None, bool, int, float, str, bytes, tuples, lists, dicts),
taking from each value only what its *exact* type says: an ``int`` subclass,
a tensor subclass, an object of any other class is not converted but described
(:class:`Foreign`), so that a result of the wrong type is a divergence in
itself. Nothing in the value is asked to compare, print or convert itself;
whatever a candidate's object runs while it is examined is bounded by the
controller's deadline on the worker.

The controller side (:func:`loads`, :func:`decode`) unpickles with no class
allowed at all (only builtins can be built) and validates every node: a
malformed reply is refused (:class:`Malformed`), never half-trusted.

Wire nodes: scalars as they are; ``("L", items)`` list, ``("T", items)`` tuple,
``("D", ((key, value), ...))`` dict with str keys, ``("X", dtype, shape, device,
bytes | None)`` tensor, ``("Z", dtype)``, ``("V", device)``, ``("N", dims)``
torch.Size, ``("E", enum class, member, value)``, ``("F", description)`` foreign,
``("O", value)`` an outcome that returned, ``("R", type, mro, message, notes)``
an outcome that raised.
"""

from __future__ import annotations

import builtins
import collections.abc
import copyreg
import dataclasses
import enum
import io
import pickle
import types
import typing
from typing import Any

import torch

MAX_DEPTH = 64
MAX_NODES = 2_000_000
MAX_TENSOR_BYTES = 1 << 29
MAX_TEXT = 2000
MAX_REPLY_BYTES = 1 << 30


class Malformed(Exception):
    """A reply that is not a well-formed plain tree."""


@dataclasses.dataclass
class Outcome:
    """What one call did: returned ``value`` or raised ``exc``.

    In a worker, ``exc`` is the exception itself; after :func:`decode` it is
    a :class:`Raised` record.
    """

    value: Any = None
    exc: Any = None


@dataclasses.dataclass(frozen=True)
class Raised:
    """An exception raised in another process, as plain facts."""

    type_name: str  # qualified: "builtins.ValueError", "_pytest.outcomes.Skipped"
    mro: tuple[str, ...]  # qualified names of its classes; "builtins.X" only for the real builtin X
    message: str = ""
    notes: tuple[str, ...] = ()

    @property
    def short_name(self) -> str:
        return self.type_name[len("builtins."):] if self.type_name.startswith("builtins.") else self.type_name

    def is_a(self, cls: type) -> bool:
        return qualified_name(cls) in self.mro

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass(frozen=True)
class Foreign:
    """A value whose type is not one of the plain types: only its description crosses."""

    description: str

    def __repr__(self) -> str:
        return f"<{self.description}>"


_NO_VALUE = "<not plain>"


@dataclasses.dataclass(frozen=True)
class EnumValue:
    """An enum member, by class and member name (and its value, when that is plain)."""

    cls: str
    name: str
    value: Any = _NO_VALUE

    def __repr__(self) -> str:  # as enum.Enum's own repr
        cls = self.cls.rpartition(".")[2]
        return f"<{cls}.{self.name}>" if self.value is _NO_VALUE else f"<{cls}.{self.name}: {self.value!r}>"


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A subtree already encoded (by a rank process): passed on as it is."""

    wire: Any


def short(value: Any, limit: int = 120) -> str:
    """A value of the plain types, formatted briefly (our own formatting only)."""
    if isinstance(value, torch.Tensor):
        body = f", values={value.tolist()}" if value.numel() <= 12 and value.device.type != "meta" else ""
        return f"tensor(shape={tuple(value.shape)}, dtype={str(value.dtype).replace('torch.', '')}{body})"
    if type(value) in (list, tuple):
        inner = ", ".join(short(v, 40) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        text = f"[{inner}]" if type(value) is list else f"({inner}{',' if len(value) == 1 else ''})"
    elif type(value) in (int, float, bool, str, bytes, type(None), Foreign, EnumValue, Raised) or \
            isinstance(value, (torch.dtype, torch.device)):
        text = repr(value)
    else:
        text = f"<{type(value).__module__}.{type(value).__qualname__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- safe introspection (worker side) ----------------------------------------

_TYPE_MODULE = type.__dict__["__module__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]
_TYPE_MRO = type.__dict__["__mro__"]
_EXC_ARGS = BaseException.__dict__["args"]


def qualified_name(cls: Any) -> str:
    """``module.qualname`` of a class, read without running the class's own code."""
    try:
        module, name = _TYPE_MODULE.__get__(cls), _TYPE_QUALNAME.__get__(cls)
    except BaseException:  # noqa: BLE001 - not a class at all
        return "?"
    module = module if type(module) is str else "?"
    name = name if type(name) is str else "?"
    if module == "builtins" and getattr(builtins, name, None) is not cls:
        module = "not-builtins"  # a class that calls itself a builtin and is not
    return f"{module}.{name}"


def _mro(cls: type) -> tuple:
    try:
        mro = _TYPE_MRO.__get__(cls)
        return mro if type(mro) is tuple else ()
    except BaseException:  # noqa: BLE001
        return ()


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if type(value) is str else ""


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)  # bounded by the controller's deadline on this process
        if type(text) is str:
            return text[:MAX_TEXT]
    except BaseException:  # noqa: BLE001
        pass
    try:
        args = _EXC_ARGS.__get__(exc)
    except BaseException:  # noqa: BLE001
        return "<unprintable>"
    if type(args) is tuple and all(type(a) in (str, int, float, bool, type(None)) for a in args):
        return (str(args[0]) if len(args) == 1 else str(args) if args else "")[:MAX_TEXT]
    return "<unprintable>"


def _notes(exc: BaseException) -> tuple[str, ...]:
    try:
        notes = exc.__dict__.get("__notes__") if type(exc.__dict__) is dict else None
    except BaseException:  # noqa: BLE001
        return ()
    return tuple(_text(n) for n in notes if type(n) is str) if type(notes) is list else ()


def raised_wire(exc: BaseException) -> tuple:
    cls = type(exc)
    return ("R", qualified_name(cls), tuple(qualified_name(c) for c in _mro(cls)), _message(exc), _notes(exc))


def _foreign(value: Any, why: str = "") -> tuple:
    cls = type(value)
    name = qualified_name(cls)
    plain = next((qualified_name(b) for b in _mro(cls)[1:] if b in _PLAIN_BASES), None)
    text = f"an object of type {name}" + (f" (a subclass of {plain.rpartition('.')[2]})" if plain else "")
    return ("F", text + (f": {why}" if why else ""))


_PLAIN_BASES = (int, float, str, bytes, bool, list, tuple, dict, torch.Tensor, type(None))
_SCALARS = (type(None), bool, int, float, str, bytes)


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def encode(value: Any, _depth: int = 0, _budget: _Budget | None = None) -> Any:
    """The wire tree of ``value`` (worker side); never raises."""
    budget = _budget or _Budget()
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        return ("F", f"a result with more than {MAX_NODES} parts")
    if _depth > MAX_DEPTH:
        return ("F", f"a result nested deeper than {MAX_DEPTH} levels")
    cls = type(value)
    try:
        if cls in _SCALARS:
            if cls is str and len(value) > 1 << 20:
                return ("F", "a string longer than 1 MiB")
            return value
        if cls is Outcome:
            if value.exc is not None:
                return raised_wire(value.exc) if isinstance(value.exc, BaseException) else _foreign(value.exc)
            return ("O", encode(value.value, _depth + 1, budget))
        if cls is Encoded:
            return value.wire
        if cls is list or cls is tuple:
            return ("L" if cls is list else "T", tuple(encode(v, _depth + 1, budget) for v in value))
        if cls is dict:
            items = []
            for k, v in value.items():
                if type(k) is not str:
                    return _foreign(value, "a dict whose keys are not all str")
                items.append((k, encode(v, _depth + 1, budget)))
            return ("D", tuple(items))
        if cls is torch.Tensor:
            return _tensor_wire(value)
        if cls is torch.dtype:
            return ("Z", str(value))
        if cls is torch.device:
            return ("V", str(value))
        if cls is torch.Size:
            return ("N", tuple(int(d) for d in value))
        if enum.Enum in _mro(cls):
            fields = value.__dict__ if type(value.__dict__) is dict else {}
            name, member = fields.get("_name_"), fields.get("_value_")
            if type(name) is str:
                return ("E", qualified_name(cls), name, member if type(member) in _SCALARS else _NO_VALUE)
        return _foreign(value)
    except BaseException as exc:  # noqa: BLE001 - examining the value failed: it is not plain
        return _foreign(value, f"examining it raised {qualified_name(type(exc))}")


def _tensor_wire(t: torch.Tensor) -> tuple:
    if t.layout != torch.strided or t.is_quantized or t.is_nested:
        return ("F", f"a tensor with layout {t.layout}")
    shape = tuple(int(d) for d in t.shape)
    device = str(t.device)
    if t.device.type == "meta":
        return ("X", str(t.dtype), shape, device, None)
    nbytes = t.numel() * t.element_size()
    if nbytes > MAX_TENSOR_BYTES:
        return ("F", f"a tensor of {nbytes} bytes (more than {MAX_TENSOR_BYTES})")
    flat = t.detach().resolve_conj().resolve_neg().to("cpu").contiguous().reshape(-1)
    data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return ("X", str(t.dtype), shape, device, data)


# ---- the wire ------------------------------------------------------------------

def _tensor_from_bytes(dtype: str, shape: tuple, data: bytes) -> torch.Tensor:
    dt = getattr(torch, dtype[len("torch."):])
    if not data:
        return torch.empty(shape, dtype=dt)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dt).reshape(shape)


def _reduce_tensor(t: torch.Tensor):
    flat = t.detach().resolve_conj().resolve_neg().contiguous().reshape(-1)
    data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return _tensor_from_bytes, (str(t.dtype), tuple(t.shape), data)


class _Pickler(pickle.Pickler):
    """The controller's pickler for what it sends a worker: CPU tensors as raw bytes
    (torch's own reduction goes through torch.save, which is much slower)."""

    dispatch_table = {**copyreg.dispatch_table, torch.Tensor: _reduce_tensor}


def dumps_input(value: Any) -> bytes:
    """Pickle an input for a worker (controller -> worker: trusted, any picklable value)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(value)
    return buffer.getvalue()


def dumps(wire: Any) -> bytes:
    return pickle.dumps(wire, protocol=5)


class _BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle's hook
        raise pickle.UnpicklingError(f"refused: a reply may not name {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: persistent ids")


def loads(data: bytes) -> Any:
    """Unpickle a reply that may hold builtins only."""
    try:
        return _BuiltinsOnly(io.BytesIO(data)).load()
    except Exception as exc:  # noqa: BLE001
        raise Malformed(f"the reply does not unpickle as plain data: {exc}") from None


# ---- decoding (controller side) ------------------------------------------------------

def _dtype(name: Any) -> torch.dtype:
    if type(name) is not str or not name.startswith("torch."):
        raise Malformed(f"bad dtype {name!r}")
    value = getattr(torch, name[len("torch."):], None)
    if not isinstance(value, torch.dtype):
        raise Malformed(f"bad dtype {name!r}")
    return value


def _tensor(dtype: Any, shape: Any, device: Any, data: Any) -> Any:
    dt = _dtype(dtype)
    if type(shape) is not tuple or not all(type(d) is int and d >= 0 for d in shape) or type(device) is not str:
        raise Malformed("bad tensor header")
    if data is None:
        if device != "meta":
            raise Malformed("a tensor without data off the meta device")
        return torch.empty(shape, dtype=dt, device="meta")
    if type(data) is not bytes:
        raise Malformed("bad tensor data")
    numel = 1
    for d in shape:
        numel *= d
    itemsize = torch.empty((), dtype=dt).element_size()
    if len(data) != numel * itemsize:
        raise Malformed(f"tensor data of {len(data)} bytes for {numel} elements of {dt}")
    if numel == 0:
        out = torch.empty(shape, dtype=dt)
    else:
        out = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dt).reshape(shape)
    if device != "cpu":
        try:
            out = out.to(device)
        except Exception:  # noqa: BLE001 - a device this process cannot hold
            return Foreign(f"a tensor on {device}, which the controller cannot hold")
    return out


def decode(wire: Any, _depth: int = 0) -> Any:
    if _depth > MAX_DEPTH + 4:
        raise Malformed("nested too deep")
    cls = type(wire)
    if cls in _SCALARS:
        return wire
    if cls is not tuple or not wire or type(wire[0]) is not str:
        raise Malformed(f"unexpected node of type {cls.__name__}")
    tag, rest = wire[0], wire[1:]
    try:
        if tag == "L":
            (items,) = rest
            return [decode(v, _depth + 1) for v in _tuple(items)]
        if tag == "T":
            (items,) = rest
            return tuple(decode(v, _depth + 1) for v in _tuple(items))
        if tag == "D":
            (items,) = rest
            out = {}
            for pair in _tuple(items):
                key, value = _tuple(pair)
                if type(key) is not str:
                    raise Malformed("a dict key that is not str")
                out[key] = decode(value, _depth + 1)
            return out
        if tag == "X":
            return _tensor(*rest)
        if tag == "Z":
            (name,) = rest
            return _dtype(name)
        if tag == "V":
            (name,) = rest
            if type(name) is not str:
                raise Malformed("bad device")
            return torch.device(name)
        if tag == "N":
            (dims,) = rest
            return torch.Size(tuple(d for d in _tuple(dims) if type(d) is int))
        if tag == "E":
            cls_name, name, member = rest
            if type(member) not in _SCALARS:
                raise Malformed("an enum value that is not plain")
            return EnumValue(_str(cls_name), _str(name), member)
        if tag == "F":
            (text,) = rest
            return Foreign(_str(text))
        if tag == "O":
            (value,) = rest
            return Outcome(value=decode(value, _depth + 1))
        if tag == "R":
            type_name, mro, message, notes = rest
            return Outcome(exc=Raised(_str(type_name), tuple(_str(m) for m in _tuple(mro)), _str(message),
                                      tuple(_str(n) for n in _tuple(notes))))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise Malformed(f"bad {tag!r} node: {exc}") from None
    raise Malformed(f"unknown tag {tag!r}")


def _tuple(value: Any) -> tuple:
    if type(value) is not tuple:
        raise Malformed("expected a tuple")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise Malformed("expected a str")
    return value


def roundtrip(value: Any) -> Any:
    """What the controller would receive for ``value`` (used on the reference's own observations)."""
    return decode(encode(value))


# ---- types as plain data (the documented aliases) -------------------------------

def describe_type(t, depth: int = 0):
    """A typing construct as plain data: ["Literal", values], ["Union", members],
    ["Callable", params, result], ["class", name], ["other", type name]."""
    if depth > 8:
        return ["other", "too deep"]
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Literal:
        return ["Literal", list(args)]
    if origin in (typing.Union, types.UnionType):
        return ["Union", [describe_type(a, depth + 1) for a in args]]
    if origin is collections.abc.Callable:
        params, result = (args[0], args[1]) if len(args) == 2 else (None, None)
        shown = [describe_type(p, depth + 1) for p in params] if type(params) is list else "..."
        return ["Callable", shown, describe_type(result, depth + 1)]
    if isinstance(t, type):
        return ["class", qualified_name(t)]
    return ["other", qualified_name(type(t))]


def render_type(desc) -> str:
    """The plain description written back as a type expression (our formatting only)."""
    if type(desc) is not list or not desc:
        return short(desc)
    kind = desc[0]
    if kind == "Literal" and len(desc) == 2 and type(desc[1]) is list:
        return f"Literal[{', '.join(short(v) for v in desc[1])}]"
    if kind == "Union" and len(desc) == 2 and type(desc[1]) is list:
        return " | ".join(render_type(m) for m in desc[1])
    if kind == "Callable" and len(desc) == 3:
        params = desc[1] if type(desc[1]) is not list else "[" + ", ".join(render_type(p) for p in desc[1]) + "]"
        return f"Callable[{params}, {render_type(desc[2])}]"
    if kind in ("class", "other") and len(desc) == 2 and type(desc[1]) is str:
        return desc[1].removeprefix("builtins.")
    return short(desc)
