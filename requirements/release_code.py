"""Which vLLM releases change the code that decides the vision helpers' behaviour (issue 13).

Standard library only (pip, as a subprocess, downloads the wheels). For every release asked
for, the wheel is downloaded (``pip download --no-deps``) one at a time, only the files read
here are extracted into the cache dir, and the wheel is deleted. Then four items are hashed
per release:

``vision``
    ``vllm/model_executor/models/vision.py``, the whole module.
``platforms``
    the platforms' ViT attention selection: every function or method of ``vllm/platforms/*.py``
    whose name contains ``vit_attn`` (``get_vit_attn_backend``,
    ``get_supported_vit_attn_backends``, ...), each named ``file::Class.name``.
``config``
    the multimodal config's backend option: in the class ``MultiModalConfig`` (wherever
    ``vllm/config.py`` or ``vllm/config/*.py`` defines it), the field ``mm_encoder_attn_backend``
    and every method whose source names it (its validator), except ``compute_hash`` (the cache
    key, which does not decide the backend); plus the member list (``NAME = value``) of the
    backend enum it validates against (``class _Backend`` / ``class AttentionBackendEnum``).
``encoder_info``
    the classes ``VisionEncoderInfo`` (vision.py), ``CLIPEncoderInfo`` (clip.py),
    ``SiglipEncoderInfo`` (siglip.py), ``PixtralHFEncoderInfo`` (pixtral.py).

Each item gets two hashes: ``raw`` (the source text of the definitions, decorators included,
as the release has it) and ``norm`` (``ast.unparse`` of the definitions with docstrings
removed: comments, docstrings, quoting, line breaks and blank lines do not count). Groups and
boundaries use ``norm``. A third, ``bare``, also drops the annotations of function arguments
and returns (``Optional[X]`` -> ``X | None`` does not count; class fields keep theirs, a
pydantic field's annotation is its type): boundaries that are annotation-only are listed. For ``platforms`` and ``encoder_info`` a third, wider hash
``helpers`` also takes in the functions of the same file that those definitions call
(``name(...)``, ``cls.name(...)``, ``self.name(...)``, ``Class.name(...)``, transitively), so a
change in a helper shows even where the named definitions are unchanged; it is reported, not
used for the boundaries.

Usage::

    python requirements/release_code.py all --cache /tmp/release-code
    python requirements/release_code.py 0.31.0 0.32.0 0.33.0 --cache /tmp/release-code
    python requirements/release_code.py all --cache /tmp/release-code --json out.json --markdown out.md --matrix .
    python requirements/release_code.py --cache /tmp/release-code --diff 0.31.0 0.32.0 platforms

``all`` is every final release on PyPI from 0.10.2 on (``pip index versions vllm``; pre-,
dev- and post-releases are left out). Re-runnable: a release whose files are in the cache
(``CACHE/X/.complete``) is not downloaded again. What is saved per release: ``CACHE/X/files/``
(the extracted files as in the wheel), ``CACHE/X/items/ITEM.raw.py`` and ``ITEM.norm.py``
(the extracted definitions), ``CACHE/X/hashes.json``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import hashlib
import json
import pathlib
import re
import shutil
import string
import subprocess
import sys
import tempfile
import zipfile

FIRST = (0, 10, 2)
ITEMS = ("vision", "platforms", "config", "encoder_info")

# files extracted from each wheel (exact paths, or a directory prefix ending in "/")
WANTED_FILES = (
    "vllm/model_executor/models/vision.py",
    "vllm/model_executor/models/clip.py",
    "vllm/model_executor/models/siglip.py",
    "vllm/model_executor/models/pixtral.py",
    "vllm/config.py",
    "vllm/attention/backends/registry.py",
    "vllm/v1/attention/backends/registry.py",
)
WANTED_DIRS = ("vllm/platforms/", "vllm/config/")
ENUM_CLASSES = ("_Backend", "AttentionBackendEnum")
ENUM_RE = re.compile(r"^class (%s)\b" % "|".join(ENUM_CLASSES), re.M)
ENCODER_INFO = (
    ("vllm/model_executor/models/vision.py", "VisionEncoderInfo"),
    ("vllm/model_executor/models/clip.py", "CLIPEncoderInfo"),
    ("vllm/model_executor/models/siglip.py", "SiglipEncoderInfo"),
    ("vllm/model_executor/models/pixtral.py", "PixtralHFEncoderInfo"),
)
CONFIG_FIELD = "mm_encoder_attn_backend"
# methods of MultiModalConfig that name the field but do not decide the backend: compute_hash
# (the config's cache key; its changes from 0.12.0 on are its hash function and other fields)
CONFIG_SKIP = ("compute_hash",)


# ---------------------------------------------------------------- releases and downloads

def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def is_final(v: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)*", v) is not None


def all_releases() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "vllm"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Available versions:\s*(.*)", out)
    if not m:
        raise SystemExit(f"pip index versions vllm: no version list in {out!r}")
    versions = [v.strip() for v in m.group(1).split(",")]
    return sorted((v for v in versions if is_final(v) and version_key(v) >= FIRST), key=version_key)


def wanted(name: str) -> bool:
    return name in WANTED_FILES or (name.endswith(".py") and any(
        name.startswith(d) and "/" not in name[len(d):] for d in WANTED_DIRS))


def fetch(version: str, cache: pathlib.Path) -> pathlib.Path:
    """CACHE/X/files, the files of X read here; downloads X's wheel unless they are cached."""
    root = cache / version
    if (root / ".complete").is_file():
        return root / "files"
    with tempfile.TemporaryDirectory(prefix=f"vllm-{version}-", dir=cache) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "--quiet", f"vllm=={version}", "-d", tmp], check=True)
        wheels = list(pathlib.Path(tmp).glob("vllm-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"vllm=={version}: expected one wheel, got {wheels}")
        files = root / "files"
        if files.exists():
            shutil.rmtree(files)
        with zipfile.ZipFile(wheels[0]) as z:
            names = z.namelist()
            take = [n for n in names if wanted(n)]
            # the backend enum, wherever the release defines it (vllm/**.py)
            for n in names:
                if n.endswith(".py") and n.startswith("vllm/") and n not in take:
                    if ENUM_RE.search(z.read(n).decode("utf-8", "replace")):
                        take.append(n)
            for n in take:
                dest = files / n
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(n))
        (root / "wheel.txt").write_text(f"{wheels[0].name} {wheels[0].stat().st_size}\n")
        wheels[0].unlink()
    (root / ".complete").write_text("")
    return files


# ---------------------------------------------------------------- extraction

def _strip_docstrings(node: ast.AST) -> ast.AST:
    node = copy.deepcopy(node)
    for n in ast.walk(node):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                n.body = body[1:] or [ast.Pass()]
    return node


def _strip_annotations(node: ast.AST) -> ast.AST:
    """Without the annotations of function arguments and returns (class fields keep theirs: a
    pydantic field's annotation is its type)."""
    node = copy.deepcopy(node)
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n.returns = None
            a = n.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None:
                    arg.annotation = None
    return node


def _raw(src: str, node: ast.AST) -> str:
    """The node's source text, decorators included."""
    lines = src.splitlines()
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[first - 1: node.end_lineno])


def _norm(node: ast.AST) -> str:
    return ast.unparse(_strip_docstrings(node))


def _bare(node: ast.AST) -> str:
    return ast.unparse(_strip_annotations(_strip_docstrings(node)))


class Defs:
    """The definitions of one file: module-level functions and classes, and methods by class."""

    def __init__(self, src: str):
        self.src = src
        self.tree = ast.parse(src)
        self.funcs: dict[str, ast.AST] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.methods: dict[str, dict[str, ast.AST]] = {}
        for n in self.tree.body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs[n.name] = n
            elif isinstance(n, ast.ClassDef):
                self.classes[n.name] = n
                self.methods[n.name] = {m.name: m for m in n.body
                                        if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}

    def helpers(self, roots: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(class or "", name) of every same-file function the roots call, transitively (roots excluded)."""
        seen, todo, out = set(roots), list(roots), []
        while todo:
            cls, name = todo.pop()
            node = self.methods.get(cls, {}).get(name) if cls else self.funcs.get(name)
            if node is None:
                continue
            for call in ast.walk(node):
                if not isinstance(call, ast.Call):
                    continue
                f, ref = call.func, None
                if isinstance(f, ast.Name):
                    ref = ("", f.id) if f.id in self.funcs else None
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                    owner = f.value.id
                    if owner in ("cls", "self") and cls:
                        ref = self._method_owner(cls, f.attr)
                    elif owner in self.classes:
                        ref = self._method_owner(owner, f.attr)
                if ref and ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
                    out.append(ref)
        return sorted(out)

    def _method_owner(self, cls: str, name: str) -> tuple[str, str] | None:
        """The class of this file (cls or a base of it defined here) that defines ``name``."""
        todo, seen = [cls], set()
        while todo:
            c = todo.pop(0)
            if c in seen or c not in self.classes:
                continue
            seen.add(c)
            if name in self.methods[c]:
                return (c, name)
            todo += [b.id for b in self.classes[c].bases if isinstance(b, ast.Name)]
        return None

    def node(self, cls: str, name: str) -> ast.AST:
        return self.methods[cls][name] if cls else self.funcs[name]


def _read(files: pathlib.Path, rel: str) -> str | None:
    p = files / rel
    return p.read_text(encoding="utf-8") if p.is_file() else None


def _part(label: str, raw: str, node: ast.AST | None) -> dict:
    if node is None:
        return {"label": label, "raw": raw, "norm": raw, "bare": raw}
    return {"label": label, "raw": raw, "norm": _norm(node), "bare": _bare(node)}


def extract(files: pathlib.Path) -> dict[str, dict]:
    """Per item: parts (label, raw, norm), and for platforms/encoder_info the helper parts."""
    out: dict[str, dict] = {}

    # 1. vision.py
    src = _read(files, "vllm/model_executor/models/vision.py")
    out["vision"] = {"parts": [_part("vision.py", src, ast.parse(src))] if src else []}

    # 2. platforms: every def whose name contains vit_attn
    parts, helpers = [], []
    for p in sorted((files / "vllm/platforms").glob("*.py")):
        src = p.read_text(encoding="utf-8")
        d = Defs(src)
        roots = [("", n) for n in d.funcs if "vit_attn" in n]
        roots += [(c, m) for c, ms in d.methods.items() for m in ms if "vit_attn" in m]
        for c, n in sorted(roots):
            node = d.node(c, n)
            parts.append(_part(f"{p.name}::{c + '.' if c else ''}{n}", _raw(src, node), node))
        for c, n in d.helpers(sorted(roots)):
            node = d.node(c, n)
            helpers.append(_part(f"{p.name}::{c + '.' if c else ''}{n}", _raw(src, node), node))
    out["platforms"] = {"parts": parts, "helpers": helpers}

    # 3. the multimodal config's backend option, and the backend enum's members
    parts = []
    cfg_files = ["vllm/config.py"] + sorted(str(p.relative_to(files)) for p in (files / "vllm/config").glob("*.py"))
    found_cfg = False
    for rel in cfg_files:
        src = _read(files, rel)
        if src is None or "class MultiModalConfig" not in src:
            continue
        d = Defs(src)
        cls = d.classes.get("MultiModalConfig")
        if cls is None:
            continue
        found_cfg = True
        for n in cls.body:
            seg = _raw(src, n)
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == CONFIG_FIELD:
                parts.append(_part(f"{rel}::MultiModalConfig.{CONFIG_FIELD}", seg, n))
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and CONFIG_FIELD in ast.unparse(n) \
                    and n.name not in CONFIG_SKIP:
                parts.append(_part(f"{rel}::MultiModalConfig.{n.name}", seg, n))
    if found_cfg and not parts:
        parts.append(_part(f"MultiModalConfig.{CONFIG_FIELD}", "<absent>", None))
    enum_parts = []
    for p in sorted(files.rglob("*.py")):
        src = p.read_text(encoding="utf-8")
        if not ENUM_RE.search(src):
            continue
        d = Defs(src)
        for name in ENUM_CLASSES:
            cls = d.classes.get(name)
            if cls is None:
                continue
            members = [n for n in cls.body if isinstance(n, ast.Assign)
                       and all(isinstance(t, ast.Name) for t in n.targets)]
            rel = str(p.relative_to(files))
            enum_parts.append(_part(f"{rel}::{name} members", "\n".join(_raw(src, n) for n in members),
                                    ast.Module(body=members, type_ignores=[])))
    out["config"] = {"parts": parts + enum_parts}

    # 4. the encoder-info classes
    parts, helpers = [], []
    for rel, name in ENCODER_INFO:
        src = _read(files, rel)
        if src is None:
            parts.append(_part(f"{pathlib.Path(rel).name}::{name}", "<absent>", None))
            continue
        d = Defs(src)
        cls = d.classes.get(name)
        if cls is None:
            parts.append(_part(f"{pathlib.Path(rel).name}::{name}", "<absent>", None))
            continue
        parts.append(_part(f"{pathlib.Path(rel).name}::{name}", _raw(src, cls), cls))
        roots = [(name, m) for m in d.methods[name]]
        for c, n in d.helpers(roots):
            if c == name:
                continue  # the class's own methods are in its part
            node = d.node(c, n)
            helpers.append(_part(f"{pathlib.Path(rel).name}::{c + '.' if c else ''}{n}", _raw(src, node), node))
    out["encoder_info"] = {"parts": parts, "helpers": helpers}
    return out


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _joined(parts: list[dict], key: str) -> str:
    return "".join(f"# ==== {p['label']}\n{p[key]}\n" for p in parts)


def hashes(version: str, cache: pathlib.Path) -> dict:
    files = fetch(version, cache)
    items = extract(files)
    outdir = cache / version / "items"
    outdir.mkdir(parents=True, exist_ok=True)
    result = {}
    for item, data in items.items():
        raw, norm, bare = (_joined(data["parts"], k) for k in ("raw", "norm", "bare"))
        (outdir / f"{item}.raw.py").write_text(raw)
        (outdir / f"{item}.norm.py").write_text(norm)
        (outdir / f"{item}.bare.py").write_text(bare)
        entry = {"raw": _h(raw), "norm": _h(norm), "bare": _h(bare),
                 "parts": {p["label"]: _h(p["norm"]) for p in data["parts"]}}
        if "helpers" in data:
            wide = norm + _joined(data["helpers"], "norm")
            (outdir / f"{item}.helpers.norm.py").write_text(_joined(data["helpers"], "norm"))
            entry["helpers"] = _h(wide)
            entry["helper_parts"] = {p["label"]: _h(p["norm"]) for p in data["helpers"]}
        result[item] = entry
    (cache / version / "hashes.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


# ---------------------------------------------------------------- groups and boundaries

def groups(versions: list[str], table: dict[str, dict], item: str, key: str = "norm") -> dict[str, str]:
    """A letter per release: consecutive releases with the same hash share it; a new hash gets the next letter
    (a hash seen before, after a different one, gets its old letter back and is marked with ')."""
    letters, seen, out, prev = iter(string.ascii_uppercase + string.ascii_lowercase), {}, {}, None
    for v in versions:
        h = table[v][item][key]
        if h not in seen:
            seen[h] = next(letters)
            out[v] = seen[h]
        else:
            out[v] = seen[h] + ("'" if h != prev else "")
        prev = h
    return out


def boundaries(versions: list[str], table: dict[str, dict], key: str = "norm") -> list[tuple[str, str, list[str]]]:
    """(previous release, release, items changed) for every release where an item's hash changes."""
    out = []
    for a, b in zip(versions, versions[1:]):
        changed = [i for i in ITEMS if table[a][i][key] != table[b][i][key]]
        if changed:
            out.append((a, b, changed))
    return out


def changed_parts(a: dict, b: dict, field: str = "parts") -> list[str]:
    pa, pb = a.get(field, {}), b.get(field, {})
    return sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))


def matrix_rows(root: pathlib.Path) -> list[str]:
    """The releases of the matrix: conformance/releases.py's RELEASES (loaded by path, standard library)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_releases", root / "conformance" / "releases.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [r.version for r in mod.RELEASES]


def markdown(versions: list[str], table: dict[str, dict], rows: list[str] | None = None) -> str:
    g = {i: groups(versions, table, i) for i in ITEMS}
    rows = rows or []
    lines = ["| release | matrix row | " + " | ".join(ITEMS) + " | raw (vision, platforms, config, encoder_info) |",
             "|---|---|" + "---|" * (len(ITEMS) + 1)]
    for v in versions:
        lines.append(f"| {v} | {'row' if v in rows else ''} | "
                     + " | ".join(f"{g[i][v]} `{table[v][i]['norm'][:8]}`" for i in ITEMS)
                     + " | " + " ".join(f"`{table[v][i]['raw'][:6]}`" for i in ITEMS) + " |")
    lines += ["", "Boundaries (normalised source):", ""]
    bounds_ = boundaries(versions, table)
    for a, b, items in bounds_:
        detail = "; ".join(f"{i}: {', '.join(changed_parts(table[a][i], table[b][i]))}" for i in items)
        lines.append(f"- {b} (from {a}){' [row]' if b in rows else ''}: {detail}")
    if rows:
        starts = [versions[0]] + [b for _, b, _ in bounds_]
        lines += ["", "Runs of releases equal on all four items, and the matrix rows in each:", ""]
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else None
            run = versions[versions.index(start): versions.index(end) if end else len(versions)]
            inside = [v for v in run if v in rows]
            lines.append(f"- {run[0]}{' - ' + run[-1] if len(run) > 1 else ''}: "
                         f"{'rows ' + ', '.join(inside) if inside else 'NO ROW'}"
                         f"{'' if start in rows else ' (the boundary release ' + start + ' is not a row)'}")
    lines += ["", "Helper-only changes (same-file functions the named definitions call; named ones unchanged):", ""]
    for a, b in zip(versions, versions[1:]):
        for i in ("platforms", "encoder_info"):
            if table[a][i]["norm"] == table[b][i]["norm"] and table[a][i]["helpers"] != table[b][i]["helpers"]:
                lines.append(f"- {b} (from {a}) {i}: {', '.join(changed_parts(table[a][i], table[b][i], 'helper_parts'))}")
    lines += ["", "Annotation-only changes (normalised differs, equal without function annotations):", ""]
    for a, b in zip(versions, versions[1:]):
        only = [i for i in ITEMS if table[a][i]["norm"] != table[b][i]["norm"] and table[a][i]["bare"] == table[b][i]["bare"]]
        if only:
            lines.append(f"- {b} (from {a}): {', '.join(only)}")
    lines += ["", "Raw-only changes (raw hash differs, normalised equal):", ""]
    for a, b in zip(versions, versions[1:]):
        only = [i for i in ITEMS if table[a][i]["raw"] != table[b][i]["raw"] and table[a][i]["norm"] == table[b][i]["norm"]]
        if only:
            lines.append(f"- {b} (from {a}): {', '.join(only)}")
    return "\n".join(lines) + "\n"


def diff(cache: pathlib.Path, a: str, b: str, item: str, kind: str = "norm") -> str:
    pa, pb = cache / a / "items" / f"{item}.{kind}.py", cache / b / "items" / f"{item}.{kind}.py"
    return "".join(difflib.unified_diff(pa.read_text().splitlines(True), pb.read_text().splitlines(True),
                                        f"{a}/{item}.{kind}.py", f"{b}/{item}.{kind}.py", n=2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("releases", nargs="*", help='release versions, or "all" (every final release from 0.10.2)')
    p.add_argument("--cache", type=pathlib.Path, required=True, help="where the extracted sources are kept")
    p.add_argument("--json", type=pathlib.Path, help="write the hashes, groups and boundaries here")
    p.add_argument("--markdown", type=pathlib.Path, help="write the table and boundaries here (default: stdout)")
    p.add_argument("--matrix", type=pathlib.Path, metavar="ROOT",
                   help="mark the matrix rows of ROOT/conformance/releases.py and the runs without one")
    p.add_argument("--diff", nargs=3, metavar=("A", "B", "ITEM"), help="print the diff of ITEM's extracted source")
    p.add_argument("--kind", default="norm", choices=("norm", "raw", "bare", "helpers.norm"), help="which source --diff reads")
    args = p.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.diff:
        sys.stdout.write(diff(args.cache, *args.diff, kind=args.kind))
        return 0
    versions = all_releases() if args.releases == ["all"] else sorted(args.releases, key=version_key)
    if not versions:
        p.error("no releases")
    table = {}
    for v in versions:
        print(f"vllm {v} ...", file=sys.stderr, flush=True)
        table[v] = hashes(v, args.cache)
    rows = matrix_rows(args.matrix) if args.matrix else None
    md = markdown(versions, table, rows)
    if args.markdown:
        args.markdown.write_text(md)
    else:
        sys.stdout.write(md)
    if args.json:
        args.json.write_text(json.dumps({
            "releases": versions,
            "hashes": table,
            "groups": {i: groups(versions, table, i) for i in ITEMS},
            "boundaries": [{"from": a, "to": b, "items": items} for a, b, items in boundaries(versions, table)],
        }, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
