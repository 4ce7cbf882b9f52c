"""tox inline plugin: the uv settings of requirements/uv_settings.py in every env's set_env.

Where torch comes from (a local CPU wheel, else PyTorch's CPU index) is decided there;
this only applies it, without replacing a value tox.ini or the caller set, and names the
uv binary tox-uv runs (VVC_UV).
"""

from __future__ import annotations

import importlib.util
import pathlib

from tox.plugin import impl

_spec = importlib.util.spec_from_file_location(
    "vvc_uv_settings", pathlib.Path(__file__).resolve().parent / "requirements" / "uv_settings.py")
uv_settings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(uv_settings)
_SETTINGS = uv_settings.this_machine()


def _uv_bin() -> str:
    """The uv that tox-uv uses (its bundled one, else the one on PATH), for commands_pre."""
    import os
    import shutil

    if os.environ.get("TOX_UV_PATH"):
        return shutil.which(os.environ["TOX_UV_PATH"]) or os.environ["TOX_UV_PATH"]
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv") or "uv"


# VVC_UV: tox.ini's commands_pre call it (tox provisioned into .tox/.tox has no uv on PATH)
_SETTINGS["VVC_UV"] = _uv_bin()


@impl
def tox_add_env_config(env_conf, state):  # noqa: ARG001
    env_conf["set_env"].update(_SETTINGS, override=False)
