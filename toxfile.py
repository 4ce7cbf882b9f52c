"""tox inline plugin: the uv settings of requirements/uv_settings.py in every env's set_env.

Where torch comes from (a local CPU wheel, else PyTorch's CPU index) is decided there;
this only applies it, without replacing a value tox.ini or the caller set.
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


@impl
def tox_add_env_config(env_conf, state):  # noqa: ARG001
    env_conf["set_env"].update(_SETTINGS, override=False)
