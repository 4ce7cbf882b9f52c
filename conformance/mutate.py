"""``vllm-vision-mutate``: mutation testing of the suite against vLLM's ``vision.py``.

The suite claims to catch a ``vision.py`` that departs from the contract. This
command measures that claim: it makes single-point changes (mutants) to the
installed vLLM's ``vision.py`` (or the one given with ``--vision``), restricted
to the bodies of the documented functions and of the private helpers of
``vision.py`` they call, runs the suite on each mutant, and reports which
mutants the suite tells apart from the unmutated file (killed) and which it
does not (survivors).

How a mutant is judged:

- Mutants run as candidates of the suite (``--impl mNNN=FILE``), many in one
  run (``--batch``), so they share the cost of importing vLLM; each one only on
  the checks of the function it mutates (``--only``), with the release's
  expectations applied (``--expectations mNNN=vllm-X``).
- Every batch also runs the unmutated file as the candidate ``control`` on the
  checks of all the functions the batch mutates. The control is the original
  file written back by ``ast.unparse`` like every mutant, so the mutation is
  the only difference between them.
- A mutant is *killed* when it does not load, or when any of its per-check
  results (status and message, its own name replaced by the control's) differs
  from the control's for the same check. Otherwise it *survives*.

The mutator is a small ``ast`` transformer (see ``OPERATORS``): one change per
mutant, mutants identical in AST to the original (or to an earlier mutant)
skipped, each written with ``ast.unparse``. docs/mutation.md says why no
mutation-testing library is used, and lists the survivors of the shipped
releases, each equivalent or a gap of the suite.

Exit status: 0 the run finished (whatever the kill rate, unless
``--fail-under``), 1 the kill rate is under ``--fail-under``, 2 a bad argument
(one line), 3 the run is incomplete (interrupted, or a batch whose control did
not run: its mutants are "not judged").
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

PROG = "vllm-vision-mutate"
CONTROL = "control"
KILLED, SURVIVED, NOT_JUDGED = "killed", "survived", "not judged"
DEFAULT_BATCH = 16
MAX_BATCH = 64

# The documented names that are type aliases (module-level assignments): their
# value is what gets mutated. Every other documented name is a function.
ALIASES = ("VisionFeatureSelectStrategyStr", "VisionFeatureSelectStrategy")


class BadArgument(Exception):
    """A bad argument: one line, exit 2."""


def documented_names() -> tuple[str, ...]:
    from .adapter import DOCUMENTED

    return DOCUMENTED


# ---- the mutator -------------------------------------------------------------


@dataclasses.dataclass
class Mutant:
    id: str
    functions: list[str]  # the documented function(s) whose checks judge it
    scope: str  # the definition it changes (a documented function, a helper, an alias)
    operator: str
    line: int  # in the original file
    col: int
    before: str
    after: str
    source: str = dataclasses.field(repr=False, default="")

    @property
    def function(self) -> str:
        return self.functions[0]

    def describe(self) -> str:
        where = self.scope if self.scope == self.function else f"{self.scope} (helper of {self.function})"
        return f"line {self.line}:{self.col} in {where}: {self.operator}: {self.before}  ->  {self.after}"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("source")
        return data


def _walk(node: ast.AST, parent: ast.AST | None = None, field: str | None = None,
          index: int | None = None) -> Iterator[tuple[ast.AST, ast.AST | None, str | None, int | None]]:
    """Every node, depth first, with where it hangs: (node, parent, field, list index)."""
    yield node, parent, field, index
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from _walk(item, node, name, i)
        elif isinstance(value, ast.AST):
            yield from _walk(value, node, name, None)


def _is_docstring(node: ast.AST, parent: ast.AST | None, field: str | None, index: int | None) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str) and field == "body" and index == 0
            and isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)))


def _skipped_subtrees(scope: ast.AST) -> set[int]:
    """ids of the nodes under ``scope`` not to mutate: annotations, decorators,
    docstrings, f-strings, and what only words an error (a raised exception's
    arguments, an assert's message, a log call)."""
    skip: set[int] = set()

    def mark(node):
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node, parent, field, index in _walk(scope):
        if isinstance(node, ast.arg):
            mark(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for d in node.decorator_list:
                mark(d)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif isinstance(node, ast.JoinedStr):
            mark(node)
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            for a in node.exc.args:
                mark(a)
            for k in node.exc.keywords:
                mark(k.value)
        elif isinstance(node, ast.Assert):
            mark(node.msg)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "logger"):
            mark(node)
        if _is_docstring(node, parent, field, index):
            mark(node)
    return skip


_BINOP_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div, ast.Add),
    ast.Div: (ast.Mult, ast.FloorDiv),
    ast.FloorDiv: (ast.Div, ast.Mult),
    ast.Mod: (ast.FloorDiv,),
    ast.Pow: (ast.Mult,),
    ast.BitOr: (ast.BitAnd,),
    ast.BitAnd: (ast.BitOr,),
    ast.BitXor: (ast.BitOr,),
    ast.LShift: (ast.RShift,),
    ast.RShift: (ast.LShift,),
}
_CMP_SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_CALL_SWAPS = {"max": "min", "min": "max", "any": "all", "all": "any"}
_SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
    ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or",
}
_DECIDES = (ast.Compare, ast.BoolOp)  # conditions already mutated by their own operators

# The operators, as the report names them (a mutant's ``operator`` starts with one of these).
OPERATORS = {
    "arith": "an arithmetic operator swapped (+ -, * / +, // / *, %, **, bit operators)",
    "augassign": "the operator of an augmented assignment swapped (+= -=, ...)",
    "compare": "a comparison swapped (== !=, < <=, > >=, is / is not, in / not in)",
    "boolop": "and <-> or",
    "unary": "`not`, unary minus or ~ removed",
    "negate": "a condition (if, while, conditional expression, comprehension filter) negated",
    "constant": "a constant changed: int 0 -> 1, 1 -> 0 and 2, n -> n+1 and n-1; True <-> False; "
                "a string 'x' -> 'XXxXX'",
    "call": "max <-> min, any <-> all",
    "keyword": "a keyword argument dropped from a call (the callee's default applies)",
    "slice": "a slice bound dropped, or a computed bound + 1",
    "return": "a returned value replaced by None",
    "statement": "a statement removed (`pass` where the block would be empty)",
    "union": "a member dropped from a type union (the aliases)",
}


def _plus_one(expr: ast.expr) -> ast.expr:
    return ast.BinOp(left=copy.deepcopy(expr), op=ast.Add(), right=ast.Constant(1))


def _int_variants(value: int) -> list[int]:
    if value == 0:
        return [1]
    if value == 1:
        return [0, 2]
    return [value + 1, value - 1]


def _expr_mutations(node: ast.AST, parent, field, in_alias: bool) -> list[tuple[str, ast.AST]]:
    """(operator, replacement of ``node``) for every single-point change of ``node`` itself."""
    out: list[tuple[str, ast.AST]] = []
    dc = copy.deepcopy
    if isinstance(node, ast.BinOp):
        if in_alias and isinstance(node.op, ast.BitOr):
            out.append(("union: right member dropped", dc(node.left)))
            out.append(("union: left member dropped", dc(node.right)))
        else:
            for new in _BINOP_SWAPS.get(type(node.op), ()):
                out.append((f"arith: {_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}",
                            ast.BinOp(left=dc(node.left), op=new(), right=dc(node.right))))
    elif isinstance(node, ast.AugAssign):
        for new in _BINOP_SWAPS.get(type(node.op), ()):
            out.append((f"augassign: {_SYMBOL[type(node.op)]}= -> {_SYMBOL[new]}=",
                        ast.AugAssign(target=dc(node.target), op=new(), value=dc(node.value))))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            new = _CMP_SWAPS.get(type(op))
            if new is not None:
                ops = [dc(o) for o in node.ops]
                ops[i] = new()
                out.append((f"compare: {_SYMBOL[type(op)]} -> {_SYMBOL[new]}",
                            ast.Compare(left=dc(node.left), ops=ops, comparators=dc(node.comparators))))
    elif isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        out.append((f"boolop: {_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}", ast.BoolOp(op=new(), values=dc(node.values))))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        word = {ast.Not: "not", ast.USub: "-", ast.Invert: "~"}[type(node.op)]
        out.append((f"unary: {word} removed", dc(node.operand)))
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            out.append((f"constant: {value} -> {not value}", ast.Constant(not value)))
        elif isinstance(value, int):
            for new in _int_variants(value):
                out.append((f"constant: {value} -> {new}", ast.Constant(new)))
        elif isinstance(value, float):
            out.append((f"constant: {value!r} -> {value + 1!r}", ast.Constant(value + 1)))
        elif isinstance(value, str):
            out.append((f"constant: {value!r} -> {'XX' + value + 'XX'!r}", ast.Constant("XX" + value + "XX")))
    elif isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAPS:
            new_call = dc(node)
            new_call.func = ast.Name(id=_CALL_SWAPS[node.func.id], ctx=ast.Load())
            out.append((f"call: {node.func.id} -> {_CALL_SWAPS[node.func.id]}", new_call))
        for i, kw in enumerate(node.keywords):
            if kw.arg is None:
                continue
            new_call = dc(node)
            del new_call.keywords[i]
            out.append((f"keyword: {kw.arg}= dropped", new_call))
    elif isinstance(node, ast.Slice):
        for bound in ("lower", "upper"):
            value = getattr(node, bound)
            if value is None:
                continue
            dropped = dc(node)
            setattr(dropped, bound, None)
            out.append((f"slice: {bound} bound dropped", dropped))
            if not isinstance(value, ast.Constant) and not (
                    isinstance(value, ast.UnaryOp) and isinstance(value.operand, ast.Constant)):
                shifted = dc(node)
                setattr(shifted, bound, _plus_one(value))
                out.append((f"slice: {bound} bound + 1", shifted))
    elif isinstance(node, ast.Return):
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append(("return: value -> None", ast.Return(value=ast.Constant(None))))
    # Conditions that are not comparisons or boolean operations get negated
    # (comparisons have their own swaps, `not x` its removal).
    is_test = (field == "test" and isinstance(parent, (ast.If, ast.IfExp, ast.While))) or (
        field == "ifs" and isinstance(parent, ast.comprehension))
    if is_test and isinstance(node, ast.expr) and not isinstance(node, _DECIDES) and not (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        out.append(("negate: condition negated", ast.UnaryOp(op=ast.Not(), operand=dc(node))))
    return out


def _removable(node: ast.AST, parent, field, index) -> bool:
    if not isinstance(node, ast.stmt) or index is None or field not in ("body", "orelse", "finalbody"):
        return False
    if isinstance(node, (ast.Return, ast.Pass, ast.Global, ast.Nonlocal)):  # `return` -> None is its own operator
        return False
    return not _is_docstring(node, parent, field, index)


def _header(node: ast.AST) -> str:
    """One line of source for a node (a compound statement: its first line, then '...')."""
    text = ast.unparse(node)
    first = text.splitlines()[0] if text else text
    return first + (" ..." if "\n" in text else "")


def _module_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _alias_nodes(tree: ast.Module) -> dict[str, ast.AST]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name = node.target.id
        else:
            continue
        if name in ALIASES:
            found[name] = node
    return found


def scopes(tree: ast.Module, documented: Iterable[str]) -> dict[str, list[str]]:
    """What is mutated, and by whose checks it is judged: each documented name
    present in the module, and each module-level helper function that a
    documented function calls (directly or through another helper), attributed
    to the documented function(s) that call it."""
    documented = [n for n in documented]
    functions = _module_functions(tree)
    aliases = _alias_nodes(tree)
    owners: dict[str, list[str]] = {}
    for name in documented:
        if name in aliases or name in functions:
            owners[name] = [name]
    for name in documented:
        if name not in functions:
            continue
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            for node in ast.walk(functions[current]):
                if isinstance(node, ast.Name) and node.id in functions and node.id not in seen:
                    if node.id in documented:
                        continue
                    seen.add(node.id)
                    todo.append(node.id)
        for helper in sorted(seen):
            owners.setdefault(helper, [])
            if name not in owners[helper]:
                owners[helper].append(name)
    return owners


def generate(source: str, *, documented: Iterable[str] | None = None, functions: Iterable[str] | None = None,
             filename: str = "vision.py") -> tuple[str, list[Mutant]]:
    """The control (the module written back by ``ast.unparse``) and every
    single-point mutant of the documented functions' bodies (and their helpers').
    ``functions`` restricts the mutants to those judged by these documented names.

    Each change is made in place on the one parsed tree and undone after its
    mutated definition is written back; the module's other top-level statements
    are written once, so a mutant differs from the control in that definition only."""
    tree = ast.parse(source, filename=filename)
    documented = list(documented_names() if documented is None else documented)
    owners = scopes(tree, documented)
    wanted = None if functions is None else set(functions)
    parts = [ast.unparse(stmt) for stmt in tree.body]
    control = "\n".join(parts) + "\n"
    defs = {**_module_functions(tree), **_alias_nodes(tree)}
    position = {id(stmt): i for i, stmt in enumerate(tree.body)}
    mutants: list[Mutant] = []
    for scope_name in sorted(owners, key=lambda s: defs[s].lineno):
        scope_owners = owners[scope_name]
        if wanted is not None and not wanted.intersection(scope_owners):
            continue
        scope = defs[scope_name]
        in_alias = scope_name in ALIASES
        skip = _skipped_subtrees(scope)
        # The original definition as written back, then every mutant's: the same text
        # is the same tree (ast.unparse is deterministic and parses back to its input).
        seen = {ast.unparse(scope)}
        sites = list(_walk(scope.value, scope, "value", None) if in_alias else _walk(scope))
        for node, parent, field, index in sites:
            if id(node) in skip or node is scope:
                continue
            changes: list[tuple[str, ast.AST | None]] = list(_expr_mutations(node, parent, field, in_alias))
            if _removable(node, parent, field, index):
                changes.append(("statement: removed", None))
            for operator, replacement in changes:
                with _replaced(parent, field, index, replacement):
                    text = ast.unparse(scope)
                if text in seen:  # identical to the original or to an earlier mutant
                    continue
                try:
                    compile(text, filename, "exec")
                except SyntaxError:
                    continue
                seen.add(text)
                mutated = list(parts)
                mutated[position[id(scope)]] = text
                after = "(removed)" if replacement is None else _header(replacement)
                mutants.append(Mutant(
                    id="", functions=list(scope_owners), scope=scope_name, operator=operator,
                    line=getattr(node, "lineno", getattr(parent, "lineno", scope.lineno)),
                    col=getattr(node, "col_offset", 0), before=_header(node), after=after,
                    source="\n".join(mutated) + "\n"))
    width = max(3, len(str(len(mutants))))
    for number, mutant in enumerate(mutants, 1):
        mutant.id = f"m{number:0{width}d}"
    return control, mutants


@contextlib.contextmanager
def _replaced(parent: ast.AST, field: str, index: int | None, replacement: ast.AST | None):
    """``parent.field`` (or its item ``index``) replaced for the block; None removes a statement."""
    if index is None:
        saved = getattr(parent, field)
        setattr(parent, field, replacement)
        try:
            yield
        finally:
            setattr(parent, field, saved)
        return
    body = getattr(parent, field)
    saved_list = list(body)
    if replacement is None:
        del body[index]
        if not body:
            body.append(ast.Pass())
    else:
        body[index] = replacement
    try:
        yield
    finally:
        body[:] = saved_list


def differences(a: ast.AST, b: ast.AST, path: str = "") -> list[str]:
    """Where two trees differ: the paths of the smallest differing subtrees
    (a statement list of another length counts once, at the list)."""
    if type(a) is not type(b):
        return [path or "<root>"]
    if not isinstance(a, ast.AST):
        if isinstance(a, list):
            if len(a) != len(b):
                return [path]
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
        return [] if a == b else [path]
    found = []
    for name in a._fields:
        found += differences(getattr(a, name, None), getattr(b, name, None), f"{path}.{name}")
    return found


# ---- running the suite on mutants --------------------------------------------


def checks_of(function: str, dp_group: str) -> list[str]:
    """The check ids of a documented function that a candidate gets under ``--dp-group``."""
    from .registry import BY_NAME

    groups = {"sim", "gloo"} if dp_group == "both" else {dp_group}
    return [c.id for c in BY_NAME[function].checks if c.group is None or c.group in groups]


def _normalise(message: str, name: str) -> str:
    return re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w])", CONTROL, message or "")


@dataclasses.dataclass
class Verdict:
    status: str  # KILLED | SURVIVED | NOT_JUDGED
    reason: str = ""
    check: str | None = None


def judge(report: dict, mutant: str, functions: Iterable[str], checks: dict[str, list[str]],
          control: str = CONTROL) -> Verdict:
    """Killed, survived or not judged, from one run's JSON report (``Report.to_dict``)."""
    targets = {t["name"]: t for t in report.get("targets", [])}
    ctl = targets.get(control)
    if ctl is None or ctl.get("error"):
        return Verdict(NOT_JUDGED, f"the control did not load: {ctl.get('error') if ctl else 'absent'}")
    info = targets.get(mutant)
    if info is None:
        return Verdict(NOT_JUDGED, "the mutant is not in the report")
    if info.get("error"):
        return Verdict(KILLED, f"does not load: {info['error']}")
    results = {(c["target"], c["function"], c["check"]): c for c in report.get("checks", [])}
    unjudged = []
    for function in functions:
        for check in checks[function]:
            want = results.get((control, function, check))
            got = results.get((mutant, function, check))
            if want is None or want["status"] in ("not run", "error"):
                unjudged.append(f"{function}.{check}: the control's result is {want['status'] if want else 'missing'}")
                continue
            if got is None or got["status"] == "not run":
                unjudged.append(f"{function}.{check}: no result for the mutant")
                continue
            if (got["status"], _normalise(got["message"], mutant)) != (want["status"], want["message"]):
                shown = got["message"] or "(no message)"
                if got["status"] == want["status"]:
                    why = f"{got['status']} as the control, but: {shown}"
                else:
                    why = f"{got['status']} (control: {want['status']}): {shown}"
                return Verdict(KILLED, why[:400], f"{function}.{check}")
    if unjudged:
        return Verdict(NOT_JUDGED, "; ".join(unjudged[:3]))
    return Verdict(SURVIVED)


@dataclasses.dataclass
class Options:
    python: str
    release: str | None
    profile: str
    dp_group: str
    example_timeout: float
    workdir: Path
    extra: list[str] = dataclasses.field(default_factory=list)  # more options for the suite


class Interrupted(Exception):
    pass


def _suite_env() -> dict[str, str]:
    """The environment of a suite run: this very ``conformance`` package first on the
    path (a relative PYTHONPATH would otherwise resolve in the batch folder and pick
    up another installed copy), vLLM's logging quiet."""
    root = str(Path(__file__).resolve().parent.parent)
    paths = [root] + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), VLLM_LOGGING_LEVEL="ERROR")


def run_batch(control_source: str, batch: list[Mutant], opts: Options, number: int) -> tuple[dict | None, dict]:
    """Run the suite once on the control and the mutants of ``batch``; (report, batch record)."""
    folder = opts.workdir / f"batch-{number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{CONTROL}.py").write_text(control_source, encoding="utf-8")
    functions = sorted({f for m in batch for f in m.functions})
    args = ["--impl", f"{CONTROL}={folder / (CONTROL + '.py')}"]
    only = [f"{CONTROL}.{f}.{c}" for f in functions for c in checks_of(f, opts.dp_group)]
    for mutant in batch:
        path = folder / f"{mutant.id}.py"
        path.write_text(mutant.source, encoding="utf-8")
        args += ["--impl", f"{mutant.id}={path}"]
        only += [f"{mutant.id}.{f}.{c}" for f in mutant.functions for c in checks_of(f, opts.dp_group)]
    names = [CONTROL, *(m.id for m in batch)]
    if opts.release:
        for name in names:
            args += ["--expectations", f"{name}={opts.release}"]
    report_path = folder / "report.json"
    args += ["--targets", ",".join(names), "--only", ",".join(only), "--report-json", str(report_path),
             f"--profile={opts.profile}", "--dp-group", opts.dp_group,
             "--example-timeout", f"{opts.example_timeout:g}", *opts.extra]
    log = folder / "output.txt"
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([opts.python, "-m", "vllm_vision_conformance", *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=folder, env=_suite_env())
        try:
            status = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)  # the suite ends cleanly, writing its report
            try:
                proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                proc.kill()
                proc.wait()
            raise Interrupted() from None
    seconds = time.monotonic() - start
    record = {"batch": number, "mutants": [m.id for m in batch], "functions": functions,
              "exit_status": status, "seconds": round(seconds, 1), "output": str(log)}
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = None
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        record["problem"] = "no report: " + " | ".join(tail)
    return report, record


def _sample(mutants: list[Mutant], limit: int | None) -> list[Mutant]:
    """At most ``limit`` mutants: the quota dealt round-robin across the functions,
    each function's picks evenly spread over its mutants (deterministic)."""
    if limit is None or limit >= len(mutants):
        return list(mutants)
    by_function: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_function.setdefault(m.function, []).append(m)
    quota = dict.fromkeys(by_function, 0)
    left = limit
    while left:
        for f, ms in by_function.items():
            if left and quota[f] < len(ms):
                quota[f] += 1
                left -= 1
    keep = set()
    for f, ms in by_function.items():
        keep.update(id(ms[i * len(ms) // quota[f]]) for i in range(quota[f]))
    return [m for m in mutants if id(m) in keep]


def _batches(mutants: list[Mutant], size: int) -> list[list[Mutant]]:
    ordered = sorted(mutants, key=lambda m: (m.function, m.id))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def summarise(mutants: list[Mutant], verdicts: dict[str, Verdict], functions: Iterable[str]) -> dict:
    def counts(ms):
        killed = sum(1 for m in ms if verdicts[m.id].status == KILLED)
        survived = sum(1 for m in ms if verdicts[m.id].status == SURVIVED)
        judged = killed + survived
        return {"mutants": len(ms), "killed": killed, "survived": survived, "not_judged": len(ms) - judged,
                "kill_rate": round(killed / judged, 4) if judged else None}

    judged = [m for m in mutants if m.id in verdicts]
    per = {f: counts([m for m in judged if f in m.functions]) for f in functions}
    return {"functions": {f: c for f, c in per.items() if c["mutants"]}, "overall": counts(judged)}


def _rate(c: dict) -> str:
    if c["kill_rate"] is None:
        return "-"
    return f"{100 * c['kill_rate']:.1f}%"


def render(summary: dict, mutants: list[Mutant], verdicts: dict[str, Verdict]) -> str:
    rows = [("function", "mutants", "killed", "survived", "not judged", "kill rate")]
    for f, c in summary["functions"].items():
        rows.append((f, str(c["mutants"]), str(c["killed"]), str(c["survived"]), str(c["not_judged"]), _rate(c)))
    o = summary["overall"]
    rows.append(("overall", str(o["mutants"]), str(o["killed"]), str(o["survived"]), str(o["not_judged"]), _rate(o)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    survivors = [m for m in mutants if m.id in verdicts and verdicts[m.id].status == SURVIVED]
    lines.append("")
    lines.append(f"{len(survivors)} survivor(s):" if survivors else "no survivors")
    for m in survivors:
        lines.append(f"- {m.id} {m.function}: {m.describe()}")
    unjudged = [m for m in mutants if m.id in verdicts and verdicts[m.id].status == NOT_JUDGED]
    if unjudged:
        lines.append("")
        lines.append(f"{len(unjudged)} not judged:")
        for m in unjudged:
            lines.append(f"- {m.id} {m.function}: {verdicts[m.id].reason}")
    return "\n".join(lines)


# ---- the command ---------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise BadArgument(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Mutation testing of the conformance suite: single-point mutants of "
                "vLLM's vision.py (the documented functions' bodies), each run through the suite on the checks "
                "of the function it changes; prints the kill rate per function and the survivors.")
    p.add_argument("--vision", metavar="PATH", help="the vision.py to mutate (default: the installed vLLM's)")
    p.add_argument("--functions", metavar="F1,F2", help="mutate only these documented functions "
                   "(and the helpers they call); default: all")
    p.add_argument("--release", metavar="vllm-X|FILE", help="expectations applied to the control and every "
                   "mutant (default: the installed vLLM's entries of the shipped vllm.txt; FILE@X for a file "
                   "with release ranges)")
    p.add_argument("--report", metavar="PATH.json", help="write the JSON report here")
    p.add_argument("--max-mutants", metavar="N", type=_positive, help="run at most N mutants, taken "
                   "round-robin across the functions (default: all)")
    p.add_argument("--mutants", metavar="ID,...", help="run only these mutants (the ids --list and the "
                   "report give, for the same file and --functions)")
    p.add_argument("--batch", metavar="N", type=_positive, default=DEFAULT_BATCH,
                   help=f"mutants per suite run (default {DEFAULT_BATCH}, at most {MAX_BATCH}: each is a "
                        "process of its own, and the run's check list is one command-line argument)")
    p.add_argument("--dp-group", choices=("sim", "gloo", "both"), default="sim",
                   help="groups the data-parallel checks run under (default sim: the real gloo groups cost "
                        "several times more and catch the same mutants here; see docs/mutation.md)")
    p.add_argument("--hypothesis-profile", default="ci", choices=("dev", "ci", "thorough"),
                   help="Hypothesis profile of the suite runs (default ci; it must be derandomized for the "
                        "control and the mutants to see the same inputs)")
    p.add_argument("--example-timeout", metavar="SECONDS", type=_positive_float, default=30.0,
                   help="the suite's time bound of one call, and of one real group's job (default 30 s, the "
                        "suite's: a mutant that loops is killed by it; a shorter bound makes a loaded "
                        "machine's slow calls look like kills)")
    p.add_argument("--keep", metavar="DIR", help="keep the mutants, the suite's reports and outputs in DIR "
                   "(default: a temporary folder, removed)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit, running nothing")
    p.add_argument("--fail-under", metavar="PERCENT", type=_percent,
                   help="exit 1 when the overall kill rate is under PERCENT")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite and > 0")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 100")
    return value


def installed_vision() -> Path:
    try:
        spec = importlib.util.find_spec("vllm")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BadArgument("--vision not given and vLLM is not installed here (accepted: --vision PATH to a "
                          "vision.py, with the vLLM it comes from installed)")
    return Path(list(spec.submodule_search_locations)[0]) / "model_executor" / "models" / "vision.py"


def _installed_release() -> str | None:
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def _resolve(args) -> tuple[Path, str, list[str], str | None]:
    """The file, its source, the functions to mutate and the expectations, or BadArgument."""
    path = Path(args.vision) if args.vision else installed_vision()
    if not path.is_file():
        raise BadArgument(f"--vision {path}: no such file (accepted: a path to a copy of vLLM's vision.py)")
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadArgument(f"--vision {path}: cannot be read ({exc})") from None
    except SyntaxError as exc:
        raise BadArgument(f"--vision {path}: not Python ({exc.msg}, line {exc.lineno})") from None
    documented = documented_names()
    present = [n for n in documented if n in scopes(tree, documented)]
    if not present:
        raise BadArgument(f"--vision {path}: defines none of the documented names ({', '.join(documented)})")
    if args.functions is not None:
        asked = [f.strip() for f in args.functions.split(",") if f.strip()]
        if not asked:
            raise BadArgument("--functions: empty (accepted: documented names, comma-separated)")
        for f in asked:
            if f not in documented:
                raise BadArgument(f"--functions {f!r}: not a documented name (accepted: {', '.join(documented)})")
            if f not in present:
                raise BadArgument(f"--functions {f!r}: {path} does not define it (it defines: {', '.join(present)})")
        present = [f for f in present if f in asked]
    release = args.release
    if release is None:
        installed = _installed_release()
        if installed:
            from .expectations import default_for_release

            release = default_for_release(installed)
    else:
        from .expectations import BadExpectations, load

        try:
            load(release)
        except (BadExpectations, OSError) as exc:
            raise BadArgument(f"--release {release!r}: {exc}") from None
    if args.report:
        from .results import check_writable

        why = check_writable(args.report)
        if why:
            raise BadArgument(f"--report {args.report}: cannot be written: {why}")
    if args.batch > MAX_BATCH:
        raise BadArgument(f"--batch {args.batch}: at most {MAX_BATCH} mutants per suite run")
    if args.keep and os.path.exists(args.keep) and not os.path.isdir(args.keep):
        raise BadArgument(f"--keep {args.keep}: exists and is not a folder")
    return path, source, present, release


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        path, source, functions, release = _resolve(args)
    except BadArgument as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    control, mutants = generate(source, functions=functions, filename=str(path))
    total = len(mutants)
    if args.mutants is not None:
        wanted = [m.strip() for m in args.mutants.split(",") if m.strip()]
        known = {m.id for m in mutants}
        unknown = [m for m in wanted if m not in known]
        if not wanted or unknown:
            sys.stderr.write(f"{PROG}: error: --mutants {','.join(unknown) or repr(args.mutants)}: no such mutant "
                             f"(accepted: ids from --list, m{1:03d}..{mutants[-1].id if mutants else 'none'})\n")
            return 2
        mutants = [m for m in mutants if m.id in set(wanted)]
    chosen = _sample(mutants, args.max_mutants)
    if args.list:
        for m in chosen:
            print(f"{m.id} {m.function}: {m.describe()}")
        print(f"{len(chosen)} of {total} mutants")
        return 0
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vvc-mutate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    opts = Options(python=sys.executable, release=release, profile=args.hypothesis_profile, dp_group=args.dp_group,
                   example_timeout=args.example_timeout, workdir=workdir)
    batches = _batches(chosen, args.batch)
    print(f"{PROG}: {path} ({'vLLM ' + _installed_release() if _installed_release() else 'vLLM not installed'}); "
          f"{len(chosen)} of {total} mutants in {len(batches)} batch(es) of up to {args.batch}; "
          f"expectations {release or 'none'}; profile {args.hypothesis_profile}; --dp-group {args.dp_group}",
          flush=True)
    verdicts: dict[str, Verdict] = {}
    records: list[dict] = []
    start = time.monotonic()
    interrupted = False

    def _terminate(signum, frame):  # SIGTERM ends the run as Ctrl-C does: the report is still written
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for number, batch in enumerate(batches, 1):
            report, record = run_batch(control, batch, opts, number)
            checks = {f: checks_of(f, opts.dp_group) for m in batch for f in m.functions}
            for m in batch:
                verdicts[m.id] = (judge(report, m.id, m.functions, checks) if report is not None
                                  else Verdict(NOT_JUDGED, record.get("problem", "no report")))
            record["killed"] = sum(1 for m in batch if verdicts[m.id].status == KILLED)
            record["survived"] = sum(1 for m in batch if verdicts[m.id].status == SURVIVED)
            records.append(record)
            print(f"batch {number}/{len(batches)}: {len(batch)} mutant(s) of {', '.join(record['functions'])}: "
                  f"{record['killed']} killed, {record['survived']} survived, "
                  f"{len(batch) - record['killed'] - record['survived']} not judged "
                  f"({record['seconds']:.0f} s, suite exit {record['exit_status']})", flush=True)
    except (Interrupted, KeyboardInterrupt):
        interrupted = True
        print(f"{PROG}: interrupted; the report covers the batches that finished", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    seconds = time.monotonic() - start
    ran = [m for m in chosen if m.id in verdicts]
    summary = summarise(ran, verdicts, documented_names())
    print()
    print(render(summary, ran, verdicts))
    per_mutant = seconds / len(ran) if ran else None
    print(f"\n{len(ran)} mutant(s) in {seconds:.0f} s"
          + (f" ({per_mutant:.1f} s per mutant, control runs included)" if per_mutant else ""))
    incomplete = interrupted or any(v.status == NOT_JUDGED for v in verdicts.values())
    if args.report:
        data = {
            "tool": PROG, "vision": str(path), "vllm": _installed_release(), "expectations": release,
            "profile": args.hypothesis_profile, "dp_group": args.dp_group, "batch": args.batch,
            "mutants_generated": total, "mutants_run": len(ran), "complete": not incomplete,
            "seconds": round(seconds, 1), "seconds_per_mutant": round(per_mutant, 2) if per_mutant else None,
            **summary,
            "mutants": [{**m.to_dict(), "status": verdicts[m.id].status, "reason": verdicts[m.id].reason,
                         "check": verdicts[m.id].check} for m in ran],
            "batches": records,
        }
        tmp = f"{args.report}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, args.report)
        print(f"JSON report: {args.report}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if incomplete:
        return 3
    rate = summary["overall"]["kill_rate"]
    if args.fail_under is not None and rate is not None and 100 * rate < args.fail_under:
        print(f"{PROG}: kill rate {100 * rate:.1f}% is under --fail-under {args.fail_under:g}%")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
