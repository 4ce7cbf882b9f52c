"""The tox envs' install logic: where torch comes from, vLLM's own bounds, the CUDA-only kernels.

requirements/uv_settings.py chooses between a local CPU wheel and PyTorch's CPU index;
both branches are checked here on a faked environment (the index cannot be reached from
this machine). requirements/drop_cuda_kernels.py is checked on real ELF files built here.
"""

from __future__ import annotations

import configparser
import importlib.util
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REQ / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


uv_settings = _load("uv_settings")
drop_cuda_kernels = _load("drop_cuda_kernels")
vllm_requires = _load("vllm_requires")

TAGS = ["cp311-cp311-manylinux_2_28_x86_64", "cp311-abi3-manylinux_2_28_x86_64", "py3-none-any"]
WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def _settings(environ, files=()):
    return uv_settings.uv_settings(environ, torch_version="2.13.0", tags=TAGS, config_files=list(files))


def _pip_conf(path: pathlib.Path, **values) -> pathlib.Path:
    conf = configparser.RawConfigParser()
    conf["global"] = {k.replace("_", "-"): v for k, v in values.items()}
    with open(path, "w") as fh:
        conf.write(fh)
    return path


# ---- where torch comes from ---------------------------------------------------------

def test_a_local_cpu_wheel_is_used_through_uv_find_links(tmp_path):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / WHEEL).write_bytes(b"")
    conf = _pip_conf(tmp_path / "pip.conf", find_links=str(tmp_path / "wheels"))
    out = _settings({}, [conf])
    assert out == {"UV_FIND_LINKS": str(tmp_path / "wheels")}
    assert "UV_TORCH_BACKEND" not in out


def test_without_a_local_wheel_torch_comes_from_pytorchs_cpu_index(tmp_path):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    conf = _pip_conf(tmp_path / "pip.conf", find_links=str(tmp_path / "wheels"))
    assert _settings({}, [conf]) == {"UV_TORCH_BACKEND": "cpu"}
    assert _settings({}, []) == {"UV_TORCH_BACKEND": "cpu"}  # no pip configuration at all
    # a find-links folder that does not exist, or a remote one, is no local wheel
    assert _settings({"PIP_FIND_LINKS": f"{tmp_path}/nope https://example.org/wheels"}) == {"UV_TORCH_BACKEND": "cpu"}


@pytest.mark.parametrize("name", [
    "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",        # PyPI's (CUDA) build, no +cpu
    "torch-2.14.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",    # another release than the pinned one
    "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",    # another Python
    "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_aarch64.whl",   # another platform
])
def test_a_wheel_that_does_not_fit_is_not_taken(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert _settings({"PIP_FIND_LINKS": str(tmp_path)}) == {"UV_TORCH_BACKEND": "cpu"}


def test_environment_before_config_files_and_uv_find_links_counts(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / WHEEL).write_bytes(b"")
    conf = _pip_conf(tmp_path / "pip.conf", find_links=str(tmp_path / "elsewhere"))
    assert _settings({"PIP_FIND_LINKS": f"file://{local}"}, [conf]) == {"UV_FIND_LINKS": str(local)}
    # the caller's UV_FIND_LINKS holds the wheel: kept as it is, and no torch backend
    assert _settings({"UV_FIND_LINKS": f"/x,{local}"}) == {}


def test_a_torch_backend_set_by_the_caller_wins(tmp_path):
    (tmp_path / WHEEL).write_bytes(b"")
    assert _settings({"UV_TORCH_BACKEND": "cpu", "PIP_FIND_LINKS": str(tmp_path)}) == {}


def test_pips_extra_indexes_reach_uv_with_pips_way_of_choosing(tmp_path):
    conf = _pip_conf(tmp_path / "pip.conf", extra_index_url="file:///a/simple file:///b/simple")
    out = _settings({}, [conf])
    assert out["UV_EXTRA_INDEX_URL"] == "file:///a/simple file:///b/simple"
    assert out["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    out = _settings({"UV_EXTRA_INDEX_URL": "file:///mine", "UV_INDEX_STRATEGY": "first-index"}, [conf])
    assert "UV_EXTRA_INDEX_URL" not in out and "UV_INDEX_STRATEGY" not in out


def test_pip_config_files_follow_pips_order(tmp_path):
    files = uv_settings.pip_config_files({"HOME": str(tmp_path), "XDG_CONFIG_DIRS": "/etc/xdg"})
    assert files == [pathlib.Path("/etc/xdg/pip/pip.conf"), pathlib.Path("/etc/pip.conf"),
                     tmp_path / ".pip" / "pip.conf", tmp_path / ".config" / "pip" / "pip.conf"]
    assert uv_settings.pip_config_files({"PIP_CONFIG_FILE": "/dev/null"}) == []
    late = _pip_conf(tmp_path / "late.conf", find_links="/late")
    early = _pip_conf(tmp_path / "early.conf", find_links="/early")
    assert uv_settings.pip_setting("find-links", {}, [early, late]) == ["/late"]


def test_the_pinned_torch_is_read_from_the_constraints_file(tmp_path):
    assert uv_settings.pinned_torch() == "2.13.0"
    (tmp_path / "c.txt").write_text("# x\ntorchvision==0.28.0\ntorch == 2.9.1+cpu  # why\n")
    assert uv_settings.pinned_torch(tmp_path / "c.txt") == "2.9.1"
    (tmp_path / "c.txt").write_text("torchvision==0.28.0\n")
    with pytest.raises(ValueError):
        uv_settings.pinned_torch(tmp_path / "c.txt")


def test_the_constraints_admit_only_a_cpu_torch():
    lines = [line.split("#")[0].strip() for line in (REQ / "cpu-constraints.txt").read_text().splitlines()]
    assert "torch==2.13.0+cpu" in lines
    assert "triton" in (REQ / "excludes.txt").read_text().split()


def test_the_tox_config_carries_the_settings_and_the_bars():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    assert ini.get("tox", "env_list").split() == ["vllm-0.33.0"]
    base = ini["testenv"]
    assert "UV_EXCLUDE" in base["set_env"] and "UV_CONSTRAINT" in base["set_env"]
    assert "cpu-constraints.txt" in base["deps"]  # uv ignores UV_CONSTRAINT once deps has a -c
    assert "-m pip" not in base["commands_pre"]  # no pip in uv's venvs
    assert "{env:VVC_UV:uv} pip install" in base["commands_pre"] and "{env:VVC_UV:uv}" in base["allowlist_externals"]
    assert "VVC_PROFILE" in base["pass_env"] and "HYPOTHESIS_PROFILE" not in base["pass_env"]
    assert "suite.txt" in base["deps"]
    assert "pytest-xdist" in (REQ / "suite.txt").read_text()


# ---- vLLM's own bounds --------------------------------------------------------------

def test_release_bounds_keep_the_shared_packages_only():
    requires = ["mistral_common[image]>=1.11.6", "torch==2.14.0", "xgrammar==0.2.8; platform_machine == 'x86_64'",
                "flashinfer-python==0.6", "numpy", "pytest; extra == 'test'", "openai (>=1.0)"]
    names = vllm_requires.shared_names()
    assert vllm_requires.constraints(requires, names) == [
        "mistral-common>=1.11.6", "numpy", "openai>=1.0", "xgrammar==0.2.8 ; platform_machine == 'x86_64'"]


def test_every_release_env_has_its_bounds_file():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    releases = [e.strip()[len("vllm-"):] for e in ini.get("tox", "labels").split("conformance =")[1]
                .split("\n")[0].split(",")]
    assert len(releases) >= 14
    for version in releases:
        text = (REQ / "vllm-requires" / f"{version}.txt").read_text()
        assert f"vLLM {version}'s" in text and "mistral-common" in text, version


# ---- CUDA-only extension modules ----------------------------------------------------

def _cc():
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler here to build test libraries")
    return cc


def _so(cc, path: pathlib.Path, *needed: str, lib_dir: pathlib.Path | None = None):
    src = path.with_suffix(".c")
    src.write_text("int f(void) { return 1; }\n")
    cmd = [cc, "-shared", "-fPIC", "-o", str(path), str(src), f"-L{lib_dir or path.parent}", "-Wl,--no-as-needed"]
    cmd += [f"-l:{n}" for n in needed]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def test_needed_libraries_are_read_from_the_elf_file(tmp_path):
    cc = _cc()
    _so(cc, tmp_path / "libcudart.so.12")
    ext = _so(cc, tmp_path / "ext.so", "libcudart.so.12")
    assert "libcudart.so.12" in drop_cuda_kernels.needed_libraries(str(ext))
    assert drop_cuda_kernels.needs_cuda(str(ext))
    plain = _so(cc, tmp_path / "plain.so")
    assert not drop_cuda_kernels.needs_cuda(str(plain))
    (tmp_path / "text.so").write_text("INPUT(libfoo.so)\n")  # a linker script, not ELF
    assert drop_cuda_kernels.needed_libraries(str(tmp_path / "text.so")) is None
    assert not drop_cuda_kernels.needs_cuda(str(tmp_path / "text.so"))


def test_a_real_extension_module_of_this_python_needs_no_cuda():
    ext = next(pathlib.Path(sysconfig.get_paths()["platstdlib"], "lib-dynload").glob("*.so"), None)
    if ext is None:
        pytest.skip("this Python has no lib-dynload extension modules")
    names = drop_cuda_kernels.needed_libraries(str(ext))
    assert names is not None and not drop_cuda_kernels.needs_cuda(str(ext))


def test_drop_removes_only_cuda_modules_and_their_record_lines(tmp_path, monkeypatch):
    cc = _cc()
    site = tmp_path / "site"
    pkg = site / "fakevllm"
    pkg.mkdir(parents=True)
    _so(cc, tmp_path / "libcuda.so.1")
    (pkg / "__init__.py").write_text("")
    cuda = _so(cc, pkg / "_C.abi3.so", "libcuda.so.1", lib_dir=tmp_path)
    cpu = _so(cc, pkg / "_cpu.abi3.so")
    for c in pkg.glob("*.c"):
        c.unlink()
    info = site / "fakevllm-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakevllm\nVersion: 1.0\n")
    rows = ["fakevllm/__init__.py,,", "fakevllm/_C.abi3.so,,", "fakevllm/_cpu.abi3.so,,",
            "fakevllm-1.0.dist-info/METADATA,,", "fakevllm-1.0.dist-info/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    monkeypatch.syspath_prepend(str(site))
    removed, freed = drop_cuda_kernels.drop("fakevllm")
    assert removed == ["fakevllm/_C.abi3.so"] and freed > 0
    assert not cuda.exists() and cpu.exists()
    assert "_C.abi3.so" not in (info / "RECORD").read_text()
    assert "_cpu.abi3.so" in (info / "RECORD").read_text()
    assert drop_cuda_kernels.drop("fakevllm") == ([], 0)  # again: nothing left to remove
    monkeypatch.setenv("VVC_KEEP_CUDA_KERNELS", "1")
    assert drop_cuda_kernels.main(["fakevllm"]) == 0


def test_the_module_command_lines_run():
    out = subprocess.run([sys.executable, str(REQ / "uv_settings.py")], capture_output=True, text=True, check=True)
    assert all("=" in line for line in out.stdout.splitlines())
