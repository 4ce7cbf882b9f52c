"""The stored input corpus: one file per documented function, the same inputs on every release.

``conformance/corpus/<function>.pickle`` holds, per check of the function, its case
input, the explicit edge examples of a property, the first ``--draws`` draws of
each property under the suite's ``vvc-ci`` profile (the same draws the suite's run
starts with: the same seed), and the shrunk counterexamples that reports of a
matrix carry (``--reports``). Inputs are *stored*: a change of the strategies does
not change them; regenerating is an explicit act::

    PYTHONPATH=$PWD python -m vllm_vision_conformance.conformance.corpus --write [--reports matrix/reports/*.json]

A run of the suite (``--corpus``) has every target answer every stored input
through the same machinery as the checks (the target's worker; the reference
in-process), after the checks. The answer kept is short and canonical
(:func:`render`: a backend name, ``raised ValueError``, a tensor's dtype and shape
with a digest of its bytes); the report holds them per target and function,
with the file's hash. The matrix compares consecutive releases on them
(:func:`changes`).

The file is a pickle of plain data only (read with no class allowed,
``plain.loads``); each input inside it is its own pickle (``data``), of the
objects the strategies drew, so that an input that no longer loads is that
input's answer, not the end of the corpus. Tensors are stored as raw bytes,
transformers configs as their class name and non-default fields (the releases'
envs have different transformers).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import pickle
import sys
import time
from typing import Any

FORMAT = 1
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SUFFIX = ".pickle"
DRAWS = 8  # the first draws of each property kept (the ci profile runs 200)
MAX_INPUT_BYTES = 48_000  # an input larger than this pickled is left out (the files stay small)
MAX_ANSWER = 160  # longer answers keep their head and a digest of the whole
HANGS = 2  # a target that hangs this many times answers no more of the corpus
COMMAND = "PYTHONPATH=$PWD python -m vllm_vision_conformance.conformance.corpus --write"


# ---------------------------------------------------------------- encoding of inputs

def _hf_config(name: str, fields: dict):
    """A transformers config rebuilt from its class name and non-default fields."""
    import transformers

    return getattr(transformers, name)(**fields)


def _is_hf_config(obj: Any) -> bool:
    return type(obj).__module__.startswith("transformers.") and hasattr(obj, "to_dict")


def _config_fields(obj: Any) -> dict:
    """The fields of a transformers config that differ from its class's defaults (the same
    class's defaults differ little across transformers versions; its full dict does)."""
    mine, default = obj.to_dict(), type(obj)().to_dict()
    return {k: v for k, v in mine.items() if k not in ("transformers_version", "model_type")
            and (k not in default or default[k] != v)}


class _Pickler(pickle.Pickler):
    """The worker wire's pickler (tensors as raw bytes), and transformers configs by value."""

    def __init__(self, buffer) -> None:
        from .plain import _Pickler as wire

        super().__init__(buffer, protocol=4)
        self.dispatch_table = wire.dispatch_table

    def reducer_override(self, obj):
        cls = type(obj)
        if _is_hf_config(obj):
            return _hf_config, (cls.__name__, _config_fields(obj))
        return NotImplemented


def dump_input(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer).dump(value)
    return buffer.getvalue()


def load_input(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 - our own stored file, shipped with the suite


def encode_example(value: Any) -> str | None:
    """A minimal input as text for a report (base64 of :func:`dump_input`); None if too large or unpicklable."""
    try:
        data = dump_input(value)
    except Exception:  # noqa: BLE001 - an input the corpus cannot hold
        return None
    return base64.b64encode(data).decode("ascii") if len(data) <= MAX_INPUT_BYTES else None


# ---------------------------------------------------------------- the files

def path_of(function: str, folder: str = FOLDER) -> str:
    return os.path.join(folder, function + SUFFIX)


def file_hash(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


class _NoClasses(pickle.Unpickler):
    """The outer file is plain builtins data: refuse any class (standard library only, so
    the matrix can read the stored calls where torch is not installed)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"a corpus file names no class (found {module}.{name})")


def load(function: str, folder: str = FOLDER) -> dict | None:
    """The stored corpus of ``function`` (None: there is none), with its ``hash``. Needs no
    torch: each input stays its own pickle (``load_input``)."""
    path = path_of(function, folder)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        raw = handle.read()
    data = _NoClasses(io.BytesIO(raw)).load()  # plain data only: no class may be named in the outer file
    if type(data) is not dict or data.get("format") != FORMAT or data.get("function") != function:
        raise ValueError(f"{path}: not a corpus file of format {FORMAT} for {function}")
    data["hash"] = hashlib.sha256(raw).hexdigest()[:16]
    return data


def inputs_of(spec, draws: int = DRAWS, profile: str = "vvc-ci") -> list[dict]:
    """Every input of ``spec``'s checks that the corpus stores (real-group twins reuse the
    simulated twin's inputs: left out)."""
    out = []
    for check in spec.checks:
        if check.group == "gloo":
            continue
        if check.kind == "case":
            out.append(_entry(spec.name, check, "case", check.case_input()))
            continue
        for i, edge in enumerate(check.examples):
            out.append(_entry(spec.name, check, f"edge-{i}", edge))
        for i, drawn in enumerate(first_draws(spec.name, check, draws, profile)):
            out.append(_entry(spec.name, check, f"draw-{i}", drawn))
    return [e for e in out if e is not None]


def _entry(function: str, check, label: str, value: Any) -> dict | None:
    from .checks import format_call

    data = dump_input(value)
    if len(data) > MAX_INPUT_BYTES:
        return None
    entry = {"id": f"{check.id}/{label}", "check": check.id, "call": format_call(function, _shown(value)),
             "data": data}
    points = grid_points(function, check.id, value)
    if points:
        entry["points"] = points
    return entry


class _Shown:
    """A value shown by a repr of our own (a transformers config by its non-default fields)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown(value: Any) -> Any:
    import types

    cls = type(value)
    if _is_hf_config(value):
        fields = _config_fields(value)
        return _Shown(f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})")
    if isinstance(value, types.SimpleNamespace):
        return _Shown(f"namespace({', '.join(f'{k}={_shown(v)!r}' for k, v in vars(value).items())})")
    if type(value) is dict:
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, types.FunctionType):  # not its address: the call text stays the same
        return _Shown(f"<function {value.__qualname__}>")
    return value


def grid_points(function: str, check_id: str, value: Any) -> list[str] | None:
    """A case whose probe answers a list, one answer per point of a grid: the points, as calls."""
    if function != "get_vit_attn_backend" or "grid" not in check_id:
        return None
    from ..reference.backend import PlatformFacts
    from .checks import format_call
    from .records import backend

    points = getattr(backend, "_grid_points", None)
    if points is None or "known" not in value:
        return None
    return [format_call(function, {"facts": PlatformFacts("cuda", capability=cc, fa4=fa4), "head_size": head,
                                   "dtype": dtype, "attn_backend_override": None})
            for fa4, cc, dtype, head in points(value["known"])]


def first_draws(function: str, check, n: int, profile: str = "vvc-ci") -> list:
    """The first ``n`` distinct draws of a property, as the suite's run draws them (the same
    test function source and digest, so under a derandomized profile the same seed)."""
    from hypothesis import given, settings

    from . import profiles

    profiles.register()
    kept: list = []
    seen: set = set()

    class _Collect:
        def example(self, drawn) -> None:
            if len(kept) < n:
                key = dump_input(drawn)
                if key not in seen:
                    seen.add(key)
                    kept.append(pickle.loads(key))  # a copy, as it was drawn  # noqa: S301

    prop = property_of(_Collect(), function, check.id)
    test = settings(settings.get_profile(profile))(given(check.strategy)(prop))
    test()
    return kept


def property_of(runner, function: str, check_id: str):
    """The suite's own property function (``prop`` in conformance.session._run), its code
    object rebuilt around ``runner``: Hypothesis's derandomized seed is a digest of the
    function's source (its indentation included) and of the check's digest, so the corpus
    gets the very draws a run starts with."""
    import types

    from . import session

    code = next(c for c in session._run.__code__.co_consts
                if isinstance(c, types.CodeType) and c.co_name == "prop" and c.co_freevars == ("runner",))
    prop = types.FunctionType(code, session.__dict__, "prop", None, (types.CellType(runner),))
    prop._hypothesis_internal_add_digest = f"{function}.{check_id}".encode()
    return prop


def shrunk_inputs(paths: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """The minimal inputs that reports carry (``input`` of a divergent or expected check),
    by function: (check id, input), without duplicates."""
    from . import results

    out: dict[str, list] = {}
    seen = set()
    for path in paths:
        report = results.load(path)
        for c in report.checks:
            if not c.input or c.check.endswith("-gloo"):
                continue
            key = (c.function, c.check, c.input)
            if key in seen:
                continue
            seen.add(key)
            try:
                value = load_input(base64.b64decode(c.input))
            except Exception as exc:  # noqa: BLE001
                print(f"  {path}: {c.id}: the input does not load ({type(exc).__name__}); left out", file=sys.stderr)
                continue
            out.setdefault(c.function, []).append((c.check, value))
    return out


def write(folder: str = FOLDER, draws: int = DRAWS, reports: list[str] = (), names=None) -> dict[str, int]:
    from .registry import REGISTRY

    shrunk = shrunk_inputs(list(reports))
    os.makedirs(folder, exist_ok=True)
    sizes = {}
    command = COMMAND + (f" --draws {draws}" if draws != DRAWS else "") + \
        (f" --reports {' '.join(os.path.basename(r) for r in reports)}" if reports else "")
    for spec in REGISTRY:
        if names and spec.name not in names:
            continue
        entries = inputs_of(spec, draws)
        stored = {(e["check"], e["data"]) for e in entries}
        for check_id, value in shrunk.get(spec.name, ()):
            check = next((c for c in spec.checks if c.id == check_id), None)
            if check is None:
                continue
            entry = _entry(spec.name, check, f"shrunk-{len(entries)}", value)
            if entry is not None and (check_id, entry["data"]) not in stored:  # not already stored
                stored.add((check_id, entry["data"]))
                entries.append(entry)
        data = {"format": FORMAT, "function": spec.name, "command": command, "profile": "vvc-ci",
                "draws": draws, "inputs": entries}
        raw = pickle.dumps(data, protocol=4)
        with open(path_of(spec.name, folder), "wb") as handle:
            handle.write(raw)
        sizes[spec.name] = len(raw)
    return sizes


# ---------------------------------------------------------------- answers

def render(observed: Any) -> tuple[str, str]:
    """What a target did on one input, as (answer, kind): short, canonical and comparable.
    The kind is the answer's class ("FLASH_ATTN", "raised ValueError", "tensor float32"),
    the answer adds the values (a digest of a tensor's bytes)."""
    text, kind = _render(observed)
    if len(text) > MAX_ANSWER:
        text = f"{text[:MAX_ANSWER - 30]}... #{_digest(text.encode())}"
    if len(kind) > MAX_ANSWER:
        kind = f"{kind[:MAX_ANSWER - 30]}... #{_digest(kind.encode())}"
    return text, kind


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def _render(node: Any) -> tuple[str, str]:
    from .checks import exc_name
    from .plain import Outcome

    if isinstance(node, Outcome):
        if node.exc is not None:
            text = f"raised {exc_name(node.exc)}"
            return text, text
        return _render(node.value)
    if type(node) is dict:
        parts = [(k, _render(v)) for k, v in node.items() if v is not None]
        # views that agree (the call and the platform method), or the one view there was: one answer;
        # a dict of one key keeps its key ({mismatch: ...})
        if parts and len(node) > 1 and len({r for _, r in parts}) == 1:
            return parts[0][1]
        return ("{" + "; ".join(f"{k}: {t}" for k, (t, _) in parts) + "}",
                "{" + "; ".join(f"{k}: {c}" for k, (_, c) in parts) + "}")
    if type(node) in (list, tuple):
        rendered = [_render(v) for v in node]
        kinds = list(dict.fromkeys(c for _, c in rendered))
        open_, close = ("[", "]") if type(node) is list else ("(", ")")
        return open_ + ", ".join(t for t, _ in rendered) + close, open_ + ", ".join(kinds) + close
    return _value(node)


def _value(value: Any) -> tuple[str, str]:
    import torch

    from .plain import EnumValue, Foreign, short

    if isinstance(value, EnumValue):
        return value.name, value.name
    if type(value) is str:
        return (value, value) if value.replace("_", "").isalnum() and len(value) <= 40 else (repr(value), "str")
    if value is None or type(value) is bool:
        return repr(value), repr(value)
    if type(value) in (int, float):
        return repr(value), type(value).__name__
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        if value.device.type == "meta":
            return f"tensor {dtype}{list(value.shape)} on meta", f"tensor {dtype}"
        data = value.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b""
        return f"tensor {dtype}{list(value.shape)} #{_digest(data)}", f"tensor {dtype}"
    if isinstance(value, Foreign):
        return f"<{value.description}>", "an object of another type"
    text = short(value)
    return text, type(value).__name__


def canonical_fault(what: str) -> str:
    """A fault of the target's process, without what varies from run to run (its last output)."""
    return what.split(" (last output:", 1)[0]


def answer_all(sess, target, spec, corpus: dict, answers: dict) -> None:
    """Every stored input of ``spec``'s function answered by ``target``, into ``answers``
    (input id -> [answer, kind]); a fault of the target on one input is that input's answer."""
    from .checks import Divergence, HarnessError, NotApplicable, Unsupported
    from .session import _Runner, _StopCheck, _stop_if_terminated

    checks = {c.id: c for c in spec.checks}
    hangs = 0
    for entry in corpus["inputs"]:
        _stop_if_terminated()
        points = entry.get("points")

        def put(text: str, kind: str, entry=entry, points=points) -> None:
            # a grid's entry answers per point: an answer for the whole grid is every point's
            for key in [f"{entry['id']}@{i}" for i in range(len(points))] if points else [entry["id"]]:
                answers[key] = [text, kind]

        check = checks.get(entry["check"])
        if check is None:
            put("not in this suite", "not in this suite")
            continue
        if target.kind == "reference" and check.needs_reference and check.ref_probe is None:
            continue  # the judge computes the contract itself: the reference has no answer of its own
        if hangs >= HANGS:
            put(f"not answered: {target.name} hung {hangs} times", "not answered")
            continue
        try:
            drawn = load_input(entry["data"])
        except Exception as exc:  # noqa: BLE001 - stored with another version of the code
            put(f"input does not load: {type(exc).__name__}", "input does not load")
            continue
        runner = _Runner(sess, target, spec.name, check)
        runner.ctx.current = entry["call"]
        try:
            example = check.prepare(runner.ctx, drawn) if check.prepare else drawn
            if target.kind == "reference" and check.needs_reference:
                observed = runner.reference(example)
            else:
                observed = runner.observe(example)
        except NotApplicable as exc:
            put(f"not applicable: {_first(exc)}", "not applicable")
            continue
        except Unsupported as exc:
            put(f"unsupported: {_first(exc)}", "unsupported")
            continue
        except Divergence as exc:  # a fault of the target's process on this input
            put(f"fault: {canonical_fault(exc.what)}", "fault")
            continue
        except _StopCheck:
            hangs += 1
            put(f"fault: {canonical_fault(runner.fault[0] if runner.fault else 'the process failed')}", "fault")
            continue
        except HarnessError as exc:
            put(f"harness error: {_first(exc)}", "harness error")
            continue
        except Exception as exc:  # noqa: BLE001 - prepare failed on this input
            put(f"harness error: {type(exc).__name__}: {_first(exc)}", "harness error")
            continue
        if points and type(observed) is list and len(observed) == len(points):
            for i, point in enumerate(observed):
                answers[f"{entry['id']}@{i}"] = list(render(point))
        else:
            put(*render(observed))


def _first(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def run(sess, shard: tuple[int, int] = (0, 1)) -> dict:
    """The corpus pass of a run: every checked target, every function of this shard
    (``(index, count)``: pytest-xdist workers split the functions)."""
    from .registry import REGISTRY

    start = time.monotonic()
    out = {"format": FORMAT, "functions": {}, "targets": {}, "seconds": 0.0}
    for i, spec in enumerate(REGISTRY):
        if i % shard[1] != shard[0]:
            continue
        try:
            corpus = load(spec.name)
        except Exception as exc:  # noqa: BLE001 - a damaged file: said, the others run
            out.setdefault("errors", []).append(f"{spec.name}: {type(exc).__name__}: {exc}")
            continue
        if corpus is None:
            continue
        out["functions"][spec.name] = corpus["hash"]
        for target in sess.checked:
            if target.load_error or target.skip_reason:
                continue
            if not target.provides(spec.name):
                out["targets"].setdefault(target.name, {})[spec.name] = {"absent": True}
                continue
            answers: dict = {}
            began = time.monotonic()
            try:
                answer_all(sess, target, spec, corpus, answers)
            finally:
                out["targets"].setdefault(target.name, {})[spec.name] = {
                    "answers": answers, "seconds": round(time.monotonic() - began, 2)}
    out["seconds"] = round(time.monotonic() - start, 1)
    return out


def merge(into: dict, part: dict) -> dict:
    """One corpus section from several (pytest-xdist workers' shares)."""
    if not part:
        return into
    if not into:
        into.update({"format": part.get("format", FORMAT), "functions": {}, "targets": {}, "seconds": 0.0})
    into["functions"].update(part.get("functions", {}))
    for name, functions in part.get("targets", {}).items():
        into["targets"].setdefault(name, {}).update(functions)
    into["seconds"] = round(max(into.get("seconds", 0.0), part.get("seconds", 0.0)), 1)
    if part.get("errors"):
        into.setdefault("errors", []).extend(part["errors"])
    return into


# ---------------------------------------------------------------- the view: what changed between releases

def calls_of(function: str, digest: str | None) -> dict[str, str]:
    """Input id -> the input as a call, from the stored file when it is the one the reports used."""
    try:
        corpus = load(function)
    except Exception:  # noqa: BLE001
        return {}
    if corpus is None or (digest is not None and corpus["hash"] != digest):
        return {}
    calls = {}
    for entry in corpus["inputs"]:
        calls[entry["id"]] = entry["call"]
        for i, point in enumerate(entry.get("points", ())):
            calls[f"{entry['id']}@{i}"] = point
    return calls


def changes(rows: list[dict], functions: list[str]) -> dict:
    """Per function, per pair of consecutive releases (rows in version order) that both
    have corpus answers of the vLLM target: how many inputs changed their answer and,
    per kind of change (old kind -> new kind), the smallest example by its printed length."""
    out = {}
    for function in functions:
        have = [r for r in rows if (r.get("corpus") or {}).get(function, {}).get("answers") is not None]
        pairs = []
        calls_cache: dict = {}
        for old, new in zip(have, have[1:]):
            a, b = old["corpus"][function], new["corpus"][function]
            pair = {"from": old.get("release"), "to": new.get("release")}
            if a.get("hash") != b.get("hash"):
                pair.update(compared=False, why=f"different corpus files (hash {a.get('hash')} in {pair['from']}, "
                                                f"{b.get('hash')} in {pair['to']})")
                pairs.append(pair)
                continue
            calls = calls_cache.setdefault(a.get("hash"), calls_of(function, a.get("hash")))
            common = [k for k in a["answers"] if k in b["answers"]]
            kinds: dict = {}
            changed = 0
            for key in common:
                (ans_a, kind_a), (ans_b, kind_b) = a["answers"][key], b["answers"][key]
                if ans_a == ans_b:
                    continue
                changed += 1
                kind = f"{kind_a} -> {kind_b}" if kind_a != kind_b else f"{kind_a}: changed"
                example = f"{calls.get(key, 'input ' + key)}: {ans_a} in {pair['from']}, {ans_b} in {pair['to']}"
                slot = kinds.setdefault(kind, {"kind": kind, "count": 0, "example": example, "input": key})
                slot["count"] += 1
                if (len(example), example) < (len(slot["example"]), slot["example"]):
                    slot["example"], slot["input"] = example, key
            pair.update(compared=True, inputs=len(common), changed=changed,
                        kinds=sorted(kinds.values(), key=lambda k: (-k["count"], k["kind"])))
            pairs.append(pair)
        absent = [r.get("release") for r in rows if (r.get("corpus") or {}).get(function, {}).get("absent")]
        if not have and not absent:
            continue  # no report has corpus answers for it (reports of an older suite)
        out[function] = {"pairs": pairs, "releases": [r.get("release") for r in have], "absent": absent}
    return out


def render_markdown(view: dict) -> list[str]:
    lines = ["## What changed between releases (the stored corpus)", "",
             "Per function, per pair of consecutive releases with corpus answers: how many stored inputs "
             "changed their answer, and per kind of change the smallest example.", ""]
    for function, data in view.items():
        lines.append(f"### `{function}`")
        lines.append("")
        if not data["pairs"]:
            lines.append("- fewer than two releases with corpus answers" +
                         (f" (absent in {', '.join(data['absent'])})" if data["absent"] else ""))
        quiet: list = []  # consecutive pairs without a change: one line

        def flush() -> None:
            if quiet:
                chain = " -> ".join([quiet[0]["from"], *(q["to"] for q in quiet)])
                lines.append(f"- {chain}: no change ({quiet[-1]['inputs']} inputs)")
                quiet.clear()

        for pair in data["pairs"]:
            head = f"- {pair['from']} -> {pair['to']}"
            if pair["compared"] and not pair["changed"] and (not quiet or quiet[-1]["inputs"] == pair["inputs"]):
                quiet.append(pair)
                continue
            flush()
            if not pair["compared"]:
                lines.append(f"{head}: not compared: {pair['why']}")
            elif not pair["changed"]:
                quiet.append(pair)
            else:
                lines.append(f"{head}: {pair['changed']} of {pair['inputs']} inputs changed")
                for k in pair["kinds"]:
                    lines.append(f"  - `{k['kind']}` ({k['count']}): `{k['example']}`")
        flush()
        lines.append("")
    return lines


def render_html(view: dict) -> list[str]:
    import html

    e = html.escape
    out = ["<h2 id='changes'>What changed between releases (the stored corpus)</h2>"]
    for function, data in view.items():
        out.append(f"<section><h3>{e(function)}</h3><ul>")
        if not data["pairs"]:
            out.append("<li>fewer than two releases with corpus answers</li>")
        for pair in data["pairs"]:
            head = f"{e(str(pair['from']))} &rarr; {e(str(pair['to']))}"
            if not pair["compared"]:
                out.append(f"<li>{head}: not compared: {e(pair['why'])}</li>")
            elif not pair["changed"]:
                out.append(f"<li>{head}: no change ({pair['inputs']} inputs)</li>")
            else:
                out.append(f"<li>{head}: {pair['changed']} of {pair['inputs']} inputs changed<ul>")
                out.extend(f"<li><code>{e(k['kind'])}</code> ({k['count']}): <pre>{e(k['example'])}</pre></li>"
                           for k in pair["kinds"])
                out.append("</ul></li>")
        out.append("</ul></section>")
    return out


# ---------------------------------------------------------------- the command

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_vision_conformance.conformance.corpus",
                                description="write the stored input corpus (conformance/corpus/*.pickle)")
    p.add_argument("--write", action="store_true", help="generate the files from the checks' inputs")
    p.add_argument("--draws", type=int, default=DRAWS, help=f"draws kept per property (default {DRAWS})")
    p.add_argument("--reports", nargs="*", default=[], help="JSON reports whose minimal inputs are added")
    p.add_argument("--folder", default=FOLDER)
    p.add_argument("--only", help="comma-separated functions (default: all)")
    args = p.parse_args(argv)
    if args.write and os.environ.get("PYTHONHASHSEED") != "0":
        # a set pickles in the order of the run's string hashing: fixed, so that the same
        # inputs write the same bytes (the same hash) every time
        os.execve(sys.executable, [sys.executable, "-m", __spec__.name if __spec__ else "vllm_vision_conformance."
                                   "conformance.corpus", *(sys.argv[1:] if argv is None else argv)],
                  {**os.environ, "PYTHONHASHSEED": "0"})
    if not args.write:
        from .registry import REGISTRY

        for spec in REGISTRY:
            corpus = load(spec.name, args.folder)
            print(f"{spec.name}: " + (f"{len(corpus['inputs'])} inputs, hash {corpus['hash']}" if corpus else "none"))
        return 0
    start = time.monotonic()
    sizes = write(args.folder, args.draws, args.reports, set(args.only.split(",")) if args.only else None)
    for name, size in sizes.items():
        print(f"{path_of(name, args.folder)}: {size} bytes")
    print(f"{sum(sizes.values())} bytes in {len(sizes)} files, {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":  # run as the package's module, so that the pickles name it, not __main__
    from vllm_vision_conformance.conformance import corpus as _module

    raise SystemExit(_module.main())
