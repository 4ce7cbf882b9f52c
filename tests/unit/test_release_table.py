"""The release table (conformance/releases.py) and everything that lists the releases agree.

tox.ini (its per-release lines are written from the table: `python -m
vllm_vision_conformance.conformance.releases --write-tox`), checked through tox's own
parser where tox is installed and field by field on the text; the bounds files, the
expectations, pyproject.toml's transformers bound, the CI example's job matrix,
docs/releases.md and the README. A half-done release (a table entry without the rest,
or a tox.ini edited by hand) fails here, naming the release.
"""

import configparser
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from vllm_vision_conformance.conformance import releases
from vllm_vision_conformance.conformance.releases import RELEASES, Release, bounds, version_tuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOX_INI = ROOT / "tox.ini"
CI_EXAMPLE = ROOT / "examples" / "vllm-vision-conformance.yml"
DOCS = ROOT / "docs" / "releases.md"


# ---------------------------------------------------------------- the checks, as functions of the table

def bounds_file_problems(root: pathlib.Path = ROOT) -> list[str]:
    problems = []
    for r in releases.RELEASES:
        path = root / "requirements" / "vllm-requires" / f"{r.version}.txt"
        if not path.is_file():
            problems.append(f"{r.env}: no {path.relative_to(root)} (requirements/vllm_requires.py writes it)")
        elif f"vLLM {r.version}'s" not in path.read_text():
            problems.append(f"{r.env}: {path.relative_to(root)} is not vLLM {r.version}'s")
    return problems


def expectations_problems() -> list[str]:
    """Every release of the table has expectations, checked on it: vllm.txt's ranges give any
    release entries, so the file also lists the releases its entries were checked on under
    --strict-expectations, and each release of the table must be there."""
    from vllm_vision_conformance.conformance.expectations import builtin_path, checked_on, default_for_release

    listed = checked_on(open(builtin_path("vllm"), encoding="utf-8").read())
    return [f"{r.env}: no expectations (expectations.default_for_release({r.version!r}) is None)"
            for r in releases.RELEASES if default_for_release(r.version) is None] + \
        [f"{r.env}: not in conformance/expectations/vllm.txt's '# Checked with --strict-expectations on:' "
         "line (run it under --strict-expectations, fix the entries, then add it)"
         for r in releases.RELEASES if r.version not in listed]


def pyproject_problems(text: str) -> list[str]:
    deps = tomllib.loads(text)["project"]["dependencies"]
    spec = next((d for d in deps if re.match(r"transformers\b", d)), None)
    if spec is None:
        return ["pyproject.toml: no transformers dependency"]
    lower, upper = bounds(spec[len("transformers"):])
    lowest = min(releases.RELEASES, key=lambda r: bounds(r.transformers)[0])
    highest = max(releases.RELEASES, key=lambda r: bounds(r.transformers)[1])
    problems = []
    if lower != bounds(lowest.transformers)[0]:
        problems.append(f"pyproject.toml: {spec}: its lower bound is not {lowest.env}'s (transformers{lowest.transformers})")
    if upper != bounds(highest.transformers)[1]:
        problems.append(f"pyproject.toml: {spec}: its upper bound is not {highest.env}'s (transformers{highest.transformers})")
    return problems


def ci_problems(text: str) -> list[str]:
    got, want = releases.ci_example_envs(text), releases.envs()
    problems = [f"examples/vllm-vision-conformance.yml: no job for {e}" for e in want if e not in got]
    problems += [f"examples/vllm-vision-conformance.yml: a job for {e}, which is not in the table" for e in got if e not in want]
    if not problems and got != want:
        problems.append("examples/vllm-vision-conformance.yml: the release jobs are not in the table's order")
    if not problems and releases.write_ci_example(text) != text:
        problems.append(f"examples/vllm-vision-conformance.yml: not as the writer writes it: run `{releases.WRITER}`")
    return problems


def _docs_table(text: str) -> list[list[str]]:
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("| env | transformers (tox.ini) |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif inside:
            break
    return rows


def docs_problems(text: str) -> list[str]:
    problems = []
    seen: dict[str, list[str]] = {}
    for cells in _docs_table(text):
        for v in re.findall(r"\d+\.\d+\.\d+", cells[0]):
            seen.setdefault(v, []).append(cells[0])
            try:
                r = releases.by_version(v)
            except KeyError:
                problems.append(f"docs/releases.md: the transformers table has vllm-{v}, which is not in the table")
                continue
            if cells[1] != r.transformers:
                problems.append(f"docs/releases.md: {r.env}: transformers {cells[1]}, the table says {r.transformers}")
            if cells[2] != r.asks:
                problems.append(f"docs/releases.md: {r.env}: asks for {cells[2]}, the table says {r.asks}")
            if [q for q, _ in r.extra] != re.findall(r"[\w-]+==[\d.]+", cells[4]):
                problems.append(f"docs/releases.md: {r.env}: extra {cells[4][:40]!r}, the table says "
                                f"{[q for q, _ in r.extra]}")
    for r in releases.RELEASES:
        if len(seen.get(r.version, [])) != 1:
            problems.append(f"docs/releases.md: the transformers table lists {r.env} "
                            f"{len(seen.get(r.version, []))} times (want once)")
    flat = " ".join(text.split())
    groups = "; ".join(releases.vision_py_groups())
    if f"groups, patch releases included, from `docs/release-code.md`: {groups}), plus 0.10.2" not in flat:
        problems.append(f"docs/releases.md: \"Which releases\" does not list the byte-identical vision.py groups "
                        f"of the table: {groups}")
    return problems


def readme_problems(text: str) -> list[str]:
    first, last = releases.RELEASES[0].version, releases.RELEASES[-1].version
    want = f"({len(releases.RELEASES)} envs, {first} to {last})"
    return [] if want in " ".join(text.split()) else [f"README.md: does not say {want}"]


# ---------------------------------------------------------------- the table itself

def test_the_table_is_well_formed():
    versions = [r.version for r in RELEASES]
    assert len(set(versions)) == len(versions)
    assert versions == sorted(versions, key=version_tuple), "the table is in release order"
    assert releases.default() in RELEASES and releases.DEFAULT == "0.33.0"
    for r in RELEASES:
        assert isinstance(r, Release) and re.fullmatch(r"\d+\.\d+\.\d+", r.version), r
        lower, upper = bounds(r.transformers)
        assert lower and upper and lower < upper, r.env
        asks_lower, asks_upper = bounds(r.asks)
        assert asks_lower is None or lower >= asks_lower, f"{r.env}: transformers below what it asks for"
        assert asks_upper is None or upper <= asks_upper, f"{r.env}: transformers above what it asks for"
        if r.transformers != r.asks and bounds(r.asks)[1] != upper:
            assert r.narrowed, f"{r.env}: a narrower upper bound needs its reason"
        assert all(req and why for req, why in r.extra), r.env


@pytest.mark.parametrize("group", releases.vision_py_groups())
def test_each_vision_py_group_holds_its_releases(group):
    if " - " in group:
        lo, hi = (version_tuple(v) for v in group.split(" - "))
        members = [r for r in RELEASES if lo <= version_tuple(r.version) <= hi]
    else:
        names = group.split(" = ")
        assert len(names) >= 2 and names == sorted(names, key=version_tuple), group
        members = [r for r in RELEASES if r.version in names]
    assert members and all(r.same_vision_py == group for r in members), group
    assert [r for r in RELEASES if r.same_vision_py == group] == members, group


def test_the_table_loads_by_path_without_torch():
    """As tox's inline plugin or a requirements/ script would load it: by path, no package."""
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('r', {str(ROOT / 'conformance' / 'releases.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "assert 'torch' not in sys.modules\n"
            "print(m.envs()[-1], m.version_tuple('0.27.1+empty'))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["vllm-0.33.0", "(0,", "27,", "1)"], out.stderr


# ---------------------------------------------------------------- tox.ini

def test_tox_ini_agrees_with_the_table():
    problems = releases.check_tox_ini(TOX_INI.read_text())
    assert not problems, "\n".join(problems) + f"\n(fix the table, then run `{releases.WRITER}`)"


def test_the_writer_is_idempotent():
    text = TOX_INI.read_text()
    assert releases.write_tox(text) == text, f"tox.ini is not as the writer writes it: run `{releases.WRITER}`"
    assert releases.write_tox(releases.write_tox(text)) == text


def _tox_config(*args: str) -> str:
    tox = shutil.which("tox")
    if tox is None:
        pytest.skip("no tox on PATH: tox.ini is checked with configparser only (test_tox_ini_agrees_with_the_table)")
    # a tox run's own TOX_* variables would be read as settings of the inner tox
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k != "VIRTUAL_ENV"}
    out = subprocess.run([tox, "-c", str(TOX_INI), *args], capture_output=True, text=True, timeout=120,
                         env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _sections(text: str) -> dict[str, dict[str, list[str]]]:
    """`tox config` output: {env or "tox": {key: [lines]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    env = key = None
    for line in text.splitlines():
        m = re.fullmatch(r"\[(?:testenv:)?(.+)\]", line)
        if m:
            env, key = m.group(1), None
            out[env] = {}
        elif env and re.match(r"^\w+ =", line):
            key, _, value = line.partition(" =")
            out[env][key] = [value.strip()] if value.strip() else []
        elif env and key and line.startswith("  "):
            out[env][key].append(line.strip())
    return out


def _tox_labels(lines: list[str]) -> dict[str, list[str]]:
    """tox prints ``labels`` as ``name=first`` then one env a line."""
    out: dict[str, list[str]] = {}
    name = None
    for line in lines:
        if "=" in line:
            name, _, line = line.partition("=")
            out[name] = []
        out[name].append(line)
    return out


def test_tox_itself_reads_the_table_from_tox_ini():
    """tox's own parser (one `tox config` call): every release env's VLLM_VERSION, transformers,
    extras and bounds file; the tests env beside the default release; the labels in the table's
    order; env_list; the matrix-report command's reports."""
    names = releases.envs()
    parsed = _sections(_tox_config("config", "--core", "-e", ",".join(names + ["tests", "matrix-report"]),
                                   "-k", "set_env", "deps", "commands", "labels", "env_list"))
    known_extras = {q for r in RELEASES for q, _ in r.extra}
    for r in RELEASES + (None,):
        env = "tests" if r is None else r.env
        want = releases.default() if r is None else r
        conf = parsed[env]
        assert f"VLLM_VERSION={want.version}" in conf["set_env"], env
        assert [d for d in conf["deps"] if d.startswith("transformers")] == [f"transformers{want.transformers}"], env
        assert [d for d in conf["deps"] if d in known_extras] == [q for q, _ in want.extra], env
        assert f"-c {ROOT}/requirements/vllm-requires/{want.version}.txt" in conf["deps"], env
    labels = _tox_labels(parsed["tox"]["labels"])
    assert labels["conformance"] == names
    assert labels["matrix"] == names + ["matrix-report"]
    assert parsed["tox"]["env_list"] == [releases.default().env]
    command = " ".join(parsed["matrix-report"]["commands"])
    assert re.findall(r"report-(vllm-[\w.]+?)\.json", command) == names


def test_the_label_order_and_the_matrix_report_as_the_matrix_reads_them():
    from vllm_vision_conformance.conformance.matrix import tox_envs

    assert tox_envs(str(TOX_INI), "conformance") == releases.envs()
    assert tox_envs(str(TOX_INI), "matrix") == releases.envs() + ["matrix-report"]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOX_INI)
    command = ini.get("testenv:matrix-report", "commands")
    assert re.findall(r"report-(vllm-[\w.]+?)\.json", command) == releases.envs()
    assert f"vLLM {releases.DEFAULT}" in ini.get("testenv:tests", "description")


# ---------------------------------------------------------------- the rest of the repository

def test_every_release_has_its_bounds_file():
    assert bounds_file_problems() == []


def test_every_release_has_expectations():
    assert expectations_problems() == []


def test_pyproject_transformers_bound_covers_every_release():
    assert pyproject_problems((ROOT / "pyproject.toml").read_text()) == []


def test_the_ci_example_runs_every_release():
    assert ci_problems(CI_EXAMPLE.read_text()) == []


def test_docs_list_every_release():
    assert docs_problems(DOCS.read_text()) == []
    assert readme_problems((ROOT / "README.md").read_text()) == []


# ---------------------------------------------------------------- mutations: each must fail, naming the release

def _drop(text: str, pattern: str) -> str:
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert len(hits) == 1, (pattern, hits)
    return "".join(lines[: hits[0]] + lines[hits[0] + 1:])


def _sub(text: str, pattern: str, new: str) -> str:
    out, n = re.subn(pattern, new, text)
    assert n == 1, pattern
    return out


TOX_MUTATIONS = {
    "set_env line removed": ("vllm-0.28.0", lambda t: _drop(t, r"^\s+vllm-0\.28\.0: VLLM_VERSION")),
    "default's set_env line removed": ("vllm-0.33.0", lambda t: _drop(t, r"^\s+tests,vllm-0\.33\.0: VLLM_VERSION")),
    "set_env version wrong": ("vllm-0.14.1", lambda t: _sub(t, r"vllm-0\.14\.1: VLLM_VERSION = 0\.14\.1",
                                                            "vllm-0.14.1: VLLM_VERSION = 0.14.0")),
    "transformers line removed": ("vllm-0.11.0", lambda t: _drop(t, r"^\s+vllm-0\.11\.0: transformers")),
    "transformers range changed": ("vllm-0.30.0", lambda t: _sub(t, r"vllm-0\.30\.0: transformers>=5\.10\.4,<5\.17",
                                                                 "vllm-0.30.0: transformers>=5.10.4,<5.18")),
    "default's transformers changed": ("vllm-0.33.0", lambda t: _sub(t, r"tests,vllm-0\.33\.0: transformers[^\n]*",
                                                                      "tests,vllm-0.33.0: transformers>=5.16.1,<5.22")),
    "extra dep removed": ("vllm-0.10.2", lambda t: _drop(t, r"compressed-tensors==0\.11\.0")),
    "conformance label entry missing": ("vllm-0.21.0", lambda t: _sub(t, r"(conformance = [^\n]*?)vllm-0\.21\.0, ",
                                                                      r"\1")),
    "matrix label entry missing": ("vllm-0.17.0", lambda t: _sub(t, r"(matrix = [^\n]*?)vllm-0\.17\.0, ", r"\1")),
    "matrix-report report missing": ("vllm-0.26.0", lambda t: _sub(t, r" \{work_dir\}\{/\}report-vllm-0\.26\.0\.json",
                                                                   "")),
    "env_list not the default": ("vllm-0.33.0", lambda t: _sub(t, r"env_list = vllm-0\.33\.0", "env_list = vllm-0.31.0")),
    "a release the table lacks": ("vllm-0.99.0", lambda t: _sub(t, r"(\n\s+vllm-0\.31\.0: VLLM_VERSION = 0\.31\.0)",
                                                                r"\n    vllm-0.99.0: VLLM_VERSION = 0.99.0\1")),
}


@pytest.mark.parametrize("mutation", sorted(TOX_MUTATIONS))
def test_a_mutated_tox_ini_fails_naming_the_release(mutation):
    env, mutate = TOX_MUTATIONS[mutation]
    text = mutate(TOX_INI.read_text())
    problems = releases.check_tox_ini(text)
    assert problems, f"{mutation}: the check passed"
    assert any(env in p for p in problems), problems
    assert releases.WRITER in problems[-1], problems  # and says how to repair it
    assert releases.check_tox_ini(releases.write_tox(text)) == [], "the writer repairs it"


def test_a_hand_edit_inside_a_block_fails_with_the_writer_command():
    text = _sub(TOX_INI.read_text(), r"(\n\s+# transformers per release[^\n]*)", r"\1 (edited)")
    problems = releases.check_tox_ini(text)
    assert problems and releases.WRITER in problems[0]
    assert releases.check_tox_ini(releases.write_tox(text)) == []


def test_a_half_done_release_fails_naming_it(monkeypatch, tmp_path):
    """A table entry and nothing else: tox.ini, the bounds file, the expectations, the CI
    example and the docs each name it; the writer fixes tox.ini and the CI example only."""
    new = Release("0.34.0", ">=5.16.1,<5.21", asks=">=5.16.1,<5.21")
    monkeypatch.setattr(releases, "RELEASES", RELEASES + (new,))
    tox_text, ci_text = TOX_INI.read_text(), CI_EXAMPLE.read_text()
    assert any("vllm-0.34.0" in p for p in releases.check_tox_ini(tox_text))
    assert any("vllm-0.34.0" in p for p in bounds_file_problems())
    assert any("vllm-0.34.0" in p for p in expectations_problems())
    assert any("vllm-0.34.0" in p for p in ci_problems(ci_text))
    assert any("vllm-0.34.0" in p for p in docs_problems(DOCS.read_text()))
    written = releases.write_tox(tox_text)
    assert releases.check_tox_ini(written) == []
    assert "vllm-0.34.0: VLLM_VERSION = 0.34.0" in written and "report-vllm-0.34.0.json" in written
    assert ci_problems(releases.write_ci_example(ci_text)) == []


@pytest.mark.parametrize("mutation,env", [
    ("job removed", "vllm-0.15.0"), ("job added", "vllm-0.99.0"),
])
def test_a_mutated_ci_example_fails_naming_the_release(mutation, env):
    text = CI_EXAMPLE.read_text()
    if mutation == "job removed":
        text = _drop(text, r"\{name: vllm-0\.15\.0, env: vllm-0\.15\.0, vllm: release\}")
    else:
        text = _sub(text, r"(\n(\s+)- \{name: vllm-0\.33\.0, env: vllm-0\.33\.0, vllm: release\})",
                    r"\1\n\2- {name: vllm-0.99.0, env: vllm-0.99.0, vllm: release}")
    assert any(env in p for p in ci_problems(text))


def test_a_mutated_docs_table_or_pyproject_fails_naming_the_release():
    docs = DOCS.read_text()
    assert any("vllm-0.31.0" in p for p in docs_problems(_sub(docs, r"\| vllm-0\.31\.0 \| >=5\.10\.4,<5\.18 \|",
                                                              "| vllm-0.31.0 | >=5.10.4,<5.19 |")))
    assert any("vllm-0.13.0" in p for p in docs_problems(_sub(docs, r", 0\.13\.0, 0\.14\.1", ", 0.14.1")))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert any("vllm-0.33.0" in p for p in pyproject_problems(pyproject.replace("<5.21", "<5.20")))
    assert any("vllm-0.10.2" in p for p in pyproject_problems(pyproject.replace(">=4.55.2,", ">=4.56,")))
