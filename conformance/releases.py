"""The vLLM releases the matrix runs: one table, read by everything that lists them.

Standard library only, no relative imports: tox's inline plugin (toxfile.py) and the
scripts in requirements/ can load this file by path, without torch.

One :class:`Release` per tox env ``vllm-X``. What is derived from the table:

- tox.ini's per-release lines (``VLLM_VERSION``, the transformers range, the extra deps,
  the labels ``conformance`` and ``matrix``, ``env_list``, the matrix-report command),
  written between its ``# >>> releases: ...`` / ``# <<< releases: ...`` markers by
  ``python -m vllm_vision_conformance.conformance.releases --write-tox``
  (idempotent; ``--check`` says what differs, exit 1); the release lines of the CI example's
  job matrix (examples/vllm-vision-conformance.yml) are rewritten by the same command;
- tests/unit/test_release_table.py checks that tox.ini (through tox's own parser), the
  bounds files, the expectations, pyproject.toml's transformers bound, the CI example and
  docs/releases.md agree with the table.

Adding a release: docs/releases.md, "Adding a release".
"""

# no ``from __future__ import annotations``: the dataclass would then look this module up in
# sys.modules, which a file loaded by path (spec_from_file_location) is not in.
import argparse
import configparser
import dataclasses
import pathlib
import re
import sys
import textwrap


@dataclasses.dataclass(frozen=True)
class Release:
    version: str
    """The vLLM release, ``X`` of the tox env ``vllm-X``."""
    transformers: str
    """The transformers range the env installs: the release's own, narrowed where its code breaks."""
    asks: str
    """The transformers range the release itself asks for (its ``Requires-Dist``)."""
    narrowed: str = ""
    """Why ``transformers`` is narrower than ``asks`` (a comment in tox.ini); "" when it is not."""
    extra: tuple[tuple[str, str], ...] = ()
    """Further deps of the env, each ``(requirement, why)``."""
    same_vision_py: str = ""
    """The releases whose ``vision.py`` is byte-identical to this one's, this one included, patch releases
    too, as measured on every final release 0.10.2 - 0.33.0 (docs/release-code.md, the ``vision`` item's
    raw hash): ``A = B = C``, or ``A - B`` for every release from A to B; "" when no other release has it."""

    @property
    def env(self) -> str:
        return f"vllm-{self.version}"


_PIXTRAL = ("its pixtral.py imports PixtralRotaryEmbedding, which transformers removed in 5.17.0 "
            "(with 5.24.0 every get_vision_encoder_info check failed with that ImportError)")

_NOT5 = ("run with transformers 4.x, as the releases before it that ask for <5 (it also accepts 5.x from "
         "5.5.3; 0.24.0 is the first release that requires 5.x)")
_ASKS_4_OR_5 = ">=4.56,!=5.0.*,!=5.1.*,!=5.2.*,!=5.3.*,!=5.4.*,!=5.5.0"

RELEASES: tuple[Release, ...] = (
    Release("0.10.2", ">=4.55.2,<5", asks=">=4.55.2", narrowed="not run with transformers 5.x",
            extra=(("compressed-tensors==0.11.0",
                    "0.10.2's clip.py imports model_loader, whose bitsandbytes loader imports "
                    "fused_moe/config.py, which imports compressed_tensors (0.10.2 pins 0.11.0)"),)),
    Release("0.11.0", ">=4.55.2,<5", asks=">=4.55.2", narrowed="not run with transformers 5.x"),
    Release("0.11.1", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.11.1 - 0.12.0"),
    Release("0.11.2", ">=4.56,<5", asks=">=4.56,<5",
            same_vision_py="0.11.1 - 0.12.0"),
    Release("0.12.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.11.1 - 0.12.0"),
    Release("0.13.0", ">=4.56,<5", asks=">=4.56,<5"),
    Release("0.14.1", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.14.0 = 0.14.1"),
    Release("0.15.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.15.0 - 0.16.0"),
    Release("0.16.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.15.0 - 0.16.0"),
    Release("0.17.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.17.0 = 0.17.1"),
    Release("0.18.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.18.0 - 0.20.2"),
    Release("0.19.0", ">=4.56,<5", asks=">=4.56,<5", same_vision_py="0.18.0 - 0.20.2"),
    Release("0.20.0", ">=4.56,<5", asks=_ASKS_4_OR_5, narrowed=_NOT5, same_vision_py="0.18.0 - 0.20.2"),
    Release("0.21.0", ">=4.56,<5", asks=_ASKS_4_OR_5, narrowed=_NOT5, same_vision_py="0.21.0 - 0.25.1"),
    Release("0.23.0", ">=4.56,<5", asks=_ASKS_4_OR_5, narrowed=_NOT5, same_vision_py="0.21.0 - 0.25.1"),
    Release("0.24.0", ">=5.5.3,<5.17", asks=">=5.5.3", narrowed=_PIXTRAL, same_vision_py="0.21.0 - 0.25.1"),
    Release("0.25.0", ">=5.5.3,<5.17", asks=">=5.5.3", narrowed=_PIXTRAL, same_vision_py="0.21.0 - 0.25.1"),
    Release("0.26.0", ">=5.5.3,<5.17", asks=">=5.5.3", narrowed=_PIXTRAL, same_vision_py="0.26.0 - 0.27.1"),
    Release("0.27.0", ">=5.5.3,<5.17", asks=">=5.5.3", narrowed=_PIXTRAL,
            same_vision_py="0.26.0 - 0.27.1"),
    Release("0.28.0", ">=5.5.3,<5.17", asks=">=5.5.3", narrowed=_PIXTRAL, same_vision_py="0.28.0 = 0.29.0"),
    Release("0.29.0", ">=5.10.4,<5.17", asks=">=5.10.4", narrowed=_PIXTRAL, same_vision_py="0.28.0 = 0.29.0"),
    Release("0.30.0", ">=5.10.4,<5.17", asks=">=5.10.4", narrowed=_PIXTRAL),
    Release("0.31.0", ">=5.10.4,<5.18", asks=">=5.10.4,<5.18", same_vision_py="0.31.0 - 0.33.0"),
    Release("0.32.0", ">=5.16.1,<5.20", asks=">=5.16.1,<5.20", same_vision_py="0.31.0 - 0.33.0"),
    Release("0.33.0", ">=5.16.1,<5.21", asks=">=5.16.1,<5.21",
            same_vision_py="0.31.0 - 0.33.0"),
)

DEFAULT = "0.33.0"
"""The release of the bare ``tox`` (env_list) and of the ``tests`` env."""

WRITER = "python -m vllm_vision_conformance.conformance.releases --write-tox"


def by_version(version: str) -> Release:
    for r in RELEASES:
        if r.version == version:
            return r
    raise KeyError(version)


def default() -> Release:
    return by_version(DEFAULT)


def envs() -> list[str]:
    return [r.env for r in RELEASES]


# ---------------------------------------------------------------- versions

def version_tuple(version: str) -> tuple[int, ...]:
    """The first three numbers of a version (local part dropped): "0.33.0+empty" -> (0, 33, 0)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def bounds(spec: str) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """(lower, upper) of a specifier such as ">=4.55.2,<5"; None where it has none."""
    lower = upper = None
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(>=|>|<=|<|==|~=)\s*([\d.]+)\s*", part)
        if not m:
            continue
        v = tuple(int(n) for n in m.group(2).split("."))
        if m.group(1) in (">=", ">", "==", "~="):
            lower = v
        if m.group(1) in ("<", "<=", "=="):
            upper = v
    return lower, upper


def vision_py_groups() -> list[str]:
    """The byte-identical ``vision.py`` groups, in table order (docs/releases.md, "Which releases")."""
    out: list[str] = []
    for r in RELEASES:
        if r.same_vision_py and r.same_vision_py not in out:
            out.append(r.same_vision_py)
    return out


# ---------------------------------------------------------------- tox.ini, written from the table

BEGIN, END = "# >>> releases: ", "# <<< releases: "


def _wrap(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 96 - len(indent))]


def tox_blocks(indent: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The lines of each marked block of tox.ini (indented as given per block, default 4 spaces)."""
    ind = {name: "    " for name in ("env_list", "labels", "set_env", "deps", "report")}
    ind["env_list"] = ""
    ind.update(indent or {})
    newest_first = sorted(RELEASES, key=lambda r: version_tuple(r.version), reverse=True)

    def factors(r: Release) -> str:
        return f"tests,{r.env}" if r.version == DEFAULT else r.env

    names = ", ".join(envs())
    deps = [f"{ind['deps']}# transformers per release: the release's own range, narrowed where its code breaks"]
    for i, r in enumerate(newest_first):
        if r.narrowed and (i == 0 or newest_first[i - 1].narrowed != r.narrowed):
            # one comment for a run of releases narrowed for the same reason
            run = [r]
            for later in newest_first[i + 1:]:
                if later.narrowed != r.narrowed:
                    break
                run.append(later)
            asks = ", ".join(f"{x.version} asks for {x.asks}" for x in run)
            deps += _wrap(f"{asks}; narrowed: {r.narrowed}.", ind["deps"])
        deps.append(f"{ind['deps']}{factors(r)}: transformers{r.transformers}")
        for req, why in r.extra:
            deps += _wrap(f"{why}.", ind["deps"])
            deps.append(f"{ind['deps']}{r.env}: {req}")
    reports = " ".join(f"{{work_dir}}{{/}}report-{e}.json" for e in envs())
    return {
        "env_list": [f"{ind['env_list']}env_list = {default().env}"],
        "labels": [
            f"{ind['labels']}# every release whose behaviour-deciding code differs (docs/release-code.md), from 0.10.2",
            f"{ind['labels']}conformance = {names}",
            f"{ind['labels']}matrix = {names}, matrix-report",
        ],
        "set_env": [f"{ind['set_env']}{factors(r)}: VLLM_VERSION = {r.version}" for r in newest_first],
        "deps": deps,
        "report": [f"{ind['report']}python -m conformance.matrix render --out {{tox_root}}{{/}}matrix {{posargs}} "
                   + reports],
    }


def write_tox(text: str) -> str:
    """``text`` (tox.ini) with every marked block written from the table; the rest kept as it is."""
    lines = text.splitlines()
    out: list[str] = []
    seen: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        stripped = line.strip()
        i += 1
        if not stripped.startswith(BEGIN):
            continue
        name = stripped[len(BEGIN):].split()[0]
        indent = line[: len(line) - len(line.lstrip())]
        block = tox_blocks({name: indent}).get(name)
        if block is None:
            raise ValueError(f"tox.ini: unknown block {name!r} (known: {', '.join(tox_blocks())})")
        end = next((j for j in range(i, len(lines)) if lines[j].strip().startswith(END + name)), None)
        if end is None:
            raise ValueError(f"tox.ini: block {name!r} has no end marker {END + name!r}")
        out.extend(block)
        out.append(lines[end])
        seen.append(name)
        i = end + 1
    missing = [n for n in tox_blocks() if n not in seen]
    if missing:
        raise ValueError(f"tox.ini: no marked block for {', '.join(missing)} ({BEGIN}NAME ... {END}NAME)")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# ---------------------------------------------------------------- tox.ini, checked field by field

def _factor_match(expr: str, env: str) -> bool:
    """tox's factor condition: ``a,b-c,!d`` is a OR (b AND c) OR (NOT d)."""
    have = set(env.split("-"))
    for alt in expr.split(","):
        parts = [p.strip() for p in alt.strip().split("-") if p.strip()]
        if parts and all((p[1:] not in have) if p.startswith("!") else (p in have) for p in parts):
            return True
    return False


def _values(value: str, env: str) -> list[str]:
    """The lines of a multi-line tox value that apply to ``env`` (factor prefixes removed)."""
    out = []
    for line in value.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([!\w.,-]+):\s+(.*)$", line)
        if m and not m.group(1).startswith("-"):
            if _factor_match(m.group(1), env):
                out.append(m.group(2).strip())
        else:
            out.append(line)
    return out


def _label(labels: str, name: str) -> list[str] | None:
    for line in labels.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return [e.strip() for e in value.split(",") if e.strip()]
    return None


def _list_problems(what: str, got: list[str] | None, want: list[str]) -> list[str]:
    if got is None:
        return [f"{what}: missing"]
    problems = [f"{what} lacks {e}" for e in want if e not in got]
    problems += [f"{what} has {e}, which is not in conformance/releases.py" for e in got if e not in want]
    if not problems and got != want:
        problems.append(f"{what} is not in the table's order: {', '.join(got)} (want {', '.join(want)})")
    return problems


def check_tox_ini(text: str) -> list[str]:
    """What tox.ini (its text) gets wrong against the table; [] when it agrees.

    Field by field (each problem names its release env), then the writer's output."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(text)
    problems: list[str] = []
    base = ini["testenv"] if ini.has_section("testenv") else {}
    set_env, deps = base.get("set_env", ""), base.get("deps", "")
    transformers_lines = lambda env: [d for d in _values(deps, env) if re.match(r"transformers\b", d)]  # noqa: E731
    for r in RELEASES:
        env_ = r.env
        versions = [v.split("=", 1)[1].strip() for v in _values(set_env, env_) if v.split("=")[0].strip() == "VLLM_VERSION"]
        if versions != [r.version]:
            problems.append(f"{env_}: set_env VLLM_VERSION is {versions or 'not set'}, the table says {r.version}")
        got = transformers_lines(env_)
        if got != [f"transformers{r.transformers}"]:
            problems.append(f"{env_}: deps transformers {got or 'missing'}, the table says transformers{r.transformers}")
        applied = _values(deps, env_)
        for req, _ in r.extra:
            if req not in applied:
                problems.append(f"{env_}: deps lack {req}, which the table lists")
        known = {req for rr in RELEASES for req, _ in rr.extra}
        for req in known - {q for q, _ in r.extra}:
            if req in applied:
                problems.append(f"{env_}: deps have {req}, which the table does not list for it")
        if not any("vllm-requires{/}{env:VLLM_VERSION}.txt" in d for d in applied):
            problems.append(f"{env_}: deps lack -c requirements/vllm-requires/{{env:VLLM_VERSION}}.txt")
    # the tests env runs beside the default release
    d = default()
    tests_versions = [v.split("=", 1)[1].strip() for v in _values(set_env, "tests") if v.split("=")[0].strip() == "VLLM_VERSION"]
    if tests_versions != [d.version]:
        problems.append(f"tests: set_env VLLM_VERSION is {tests_versions or 'not set'}, the default release is {d.version}")
    if transformers_lines("tests") != [f"transformers{d.transformers}"]:
        problems.append(f"tests: deps transformers {transformers_lines('tests') or 'missing'}, "
                        f"the default release {d.env} has transformers{d.transformers}")
    for env_ in re.findall(r"\bvllm-\d[\w.]*", set_env + deps):
        if env_ not in envs():
            problems.append(f"{env_}: in tox.ini's [testenv] but not in conformance/releases.py")
    tox = ini["tox"] if ini.has_section("tox") else {}
    if tox.get("env_list", "").split() != [d.env]:
        problems.append(f"env_list is {tox.get('env_list', '').split()}, the default release is {d.env}")
    labels = tox.get("labels", "")
    problems += _list_problems("label conformance", _label(labels, "conformance"), envs())
    problems += _list_problems("label matrix", _label(labels, "matrix"), envs() + ["matrix-report"])
    report = ini.get("testenv:matrix-report", "commands", fallback="")
    listed = re.findall(r"report-(vllm-[\w.]+?)\.json", report)
    problems += _list_problems("the matrix-report command's reports", listed if report else None, envs())
    problems = sorted(set(problems), key=problems.index)
    try:
        written = write_tox(text)
    except ValueError as exc:
        return problems + [str(exc)]
    if written != text:
        changed = [line.strip() for line in set(text.splitlines()) ^ set(written.splitlines())]
        problems.append(f"tox.ini differs from what the writer writes from conformance/releases.py "
                        f"(lines: {'; '.join(sorted(changed))[:600]}): run `{WRITER}`")
    return problems


# ---------------------------------------------------------------- the CI example's job matrix

CI_LINE = re.compile(r"^(\s*)- \{name: (vllm-[\d.]+), env: vllm-[\d.]+, vllm: release\}\s*$")


def write_ci_example(text: str) -> str:
    """The example workflow with its release jobs (``vllm: release``) written from the table."""
    lines = text.splitlines()
    at = [i for i, line in enumerate(lines) if CI_LINE.match(line)]
    if not at or at != list(range(at[0], at[-1] + 1)):
        raise ValueError("examples/vllm-vision-conformance.yml: the `vllm: release` jobs are not one run of lines")
    indent = CI_LINE.match(lines[at[0]]).group(1)
    new = [f"{indent}- {{name: {e}, env: {e}, vllm: release}}" for e in envs()]
    out = lines[: at[0]] + new + lines[at[-1] + 1:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def ci_example_envs(text: str) -> list[str]:
    return [m.group(2) for m in map(CI_LINE.match, text.splitlines()) if m]


# ---------------------------------------------------------------- command line

def _root() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parents[1]
    return here if (here / "tox.ini").is_file() else pathlib.Path.cwd()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vllm_vision_conformance.conformance.releases",
                                description="the release table; write or check tox.ini and the CI example from it")
    p.add_argument("--root", type=pathlib.Path, default=None, help="the repository (default: this source tree)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--write-tox", action="store_true",
                      help="rewrite tox.ini's marked release blocks and the CI example's release jobs")
    what.add_argument("--check", action="store_true", help="say what tox.ini gets wrong (exit 1), change nothing")
    args = p.parse_args(argv)
    root = args.root or _root()
    tox_ini, ci = root / "tox.ini", root / "examples" / "vllm-vision-conformance.yml"
    if args.write_tox:
        for path, write in ((tox_ini, write_tox), (ci, write_ci_example)):
            old = path.read_text()
            new = write(old)
            if new != old:
                path.write_text(new)
            print(f"{path}: {'written' if new != old else 'unchanged'}")
        problems = check_tox_ini(tox_ini.read_text())
    elif args.check:
        problems = check_tox_ini(tox_ini.read_text())
        if ci_example_envs(ci.read_text()) != envs():
            problems.append(f"{ci}: its release jobs are not the table's envs: run `{WRITER}`")
    else:
        for r in RELEASES:
            flags = [f"transformers{r.transformers}"] + [q for q, _ in r.extra]
            print(f"{r.env}{' (default)' if r.version == DEFAULT else ''}: {', '.join(flags)}")
        return 0
    for problem in problems:
        print(f"tox.ini: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
