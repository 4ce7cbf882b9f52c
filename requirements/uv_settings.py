"""Where the tox envs get torch from: a local CPU wheel if there is one, else PyTorch's CPU index.

Why: uv (tox-uv's installer) does not read pip's configuration, and PyPI's torch for
Linux is the CUDA build (several GB with its nvidia-* packages). So tox (``toxfile.py``)
sets these uv variables in every env, computed by :func:`uv_settings`:

* a CPU wheel of the pinned torch (``requirements/cpu-constraints.txt``) that fits this
  interpreter lies in a find-links folder (pip's ``find-links``, ``PIP_FIND_LINKS`` or
  ``UV_FIND_LINKS``): ``UV_FIND_LINKS`` names that folder, no torch backend;
* otherwise: ``UV_TORCH_BACKEND=cpu``, so uv takes torch and torchvision from
  https://download.pytorch.org/whl/cpu, never the CUDA build;
* in both cases the extra indexes of pip's configuration (``extra-index-url``,
  ``PIP_EXTRA_INDEX_URL``) become ``UV_EXTRA_INDEX_URL``, with pip's way of choosing
  among indexes (``UV_INDEX_STRATEGY=unsafe-best-match``: the best version over all of
  them; uv's default would take a package only from the first index that has it).

A variable already set in the environment is left as it is (and nothing torch-related is
set when ``UV_TORCH_BACKEND`` is). ``python requirements/uv_settings.py`` prints the
settings this machine gets.
"""

from __future__ import annotations

import configparser
import os
import pathlib
import re
import sys
from typing import Iterable, Mapping

HERE = pathlib.Path(__file__).resolve().parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pinned_torch(constraints: pathlib.Path = HERE / "cpu-constraints.txt") -> str:
    """The torch version the constraints file pins (``torch==X``)."""
    for line in constraints.read_text().splitlines():
        m = re.fullmatch(r"\s*torch\s*==\s*([^\s;#+]+)(\+\S+)?\s*(#.*)?", line)
        if m:
            return m.group(1)
    raise ValueError(f"no torch==X line in {constraints}")


def pip_config_files(environ: Mapping[str, str]) -> list[pathlib.Path]:
    """pip's configuration files on Linux, in pip's order (later ones win)."""
    if "PIP_CONFIG_FILE" in environ:
        return [] if environ["PIP_CONFIG_FILE"] == os.devnull else [pathlib.Path(environ["PIP_CONFIG_FILE"])]
    home = pathlib.Path(environ.get("HOME", "~")).expanduser()
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [pathlib.Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs.split(":")) if d]
    files.append(pathlib.Path("/etc/pip.conf"))
    files.append(home / ".pip" / "pip.conf")
    files.append(pathlib.Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    return files


def pip_setting(name: str, environ: Mapping[str, str], files: Iterable[pathlib.Path]) -> list[str]:
    """A list-valued pip setting (``find-links``, ``extra-index-url``): environment first, then the files."""
    env_name = "PIP_" + name.upper().replace("-", "_")
    if environ.get(env_name):
        return environ[env_name].split()
    value: list[str] = []
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, name):
                value = parser.get(section, name).split()
    return value


def local_dir(link: str) -> pathlib.Path | None:
    if link.startswith("file://"):
        link = link[len("file://"):]
    elif "://" in link:
        return None
    path = pathlib.Path(link)
    return path if path.is_dir() else None


def find_cpu_torch(dirs: Iterable[pathlib.Path], version: str, tags: Iterable[str]) -> pathlib.Path | None:
    """A wheel ``torch-VERSION+cpu-...whl`` in DIRS that one of TAGS (``cp311-cp311-linux_x86_64``...) fits."""
    tags = set(tags)
    for d in dirs:
        for wheel in sorted(d.glob(f"torch-{version}+cpu-*.whl")):
            pys, abis, plats = wheel.name[:-len(".whl")].split("-")[-3:]
            if any(f"{p}-{a}-{pl}" in tags
                   for p in pys.split(".") for a in abis.split(".") for pl in plats.split(".")):
                return wheel
    return None


def uv_settings(environ: Mapping[str, str], *, torch_version: str, tags: Iterable[str],
                config_files: Iterable[pathlib.Path] | None = None) -> dict[str, str]:
    """The uv variables for the tox envs (module doc). Pure: reads only ENVIRON and the files."""
    files = list(pip_config_files(environ) if config_files is None else config_files)
    out: dict[str, str] = {}
    indexes = pip_setting("extra-index-url", environ, files)
    if indexes and "UV_EXTRA_INDEX_URL" not in environ:
        out["UV_EXTRA_INDEX_URL"] = " ".join(indexes)
        if "UV_INDEX_STRATEGY" not in environ:
            out["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if "UV_TORCH_BACKEND" in environ:
        return out  # the caller chose
    links = [link for link in environ.get("UV_FIND_LINKS", "").split(",") if link]
    links += pip_setting("find-links", environ, files)
    dirs = [d for d in map(local_dir, links) if d is not None]
    wheel = find_cpu_torch(dirs, torch_version, tags)
    if wheel is not None:
        if "UV_FIND_LINKS" not in environ:
            out["UV_FIND_LINKS"] = str(wheel.parent)
    else:
        out["UV_TORCH_BACKEND"] = "cpu"
    return out


def this_machine(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`uv_settings` for this interpreter (the one tox creates the envs from) and environment."""
    from packaging.tags import sys_tags

    return uv_settings(os.environ if environ is None else environ, torch_version=pinned_torch(),
                       tags=[str(t) for t in sys_tags()])


if __name__ == "__main__":
    for key, value in this_machine().items():
        print(f"{key}={value}")
    sys.exit(0)
