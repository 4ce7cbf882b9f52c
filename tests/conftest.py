import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CANDIDATES = HERE / "candidates"


def run_cli(*args, tmp_path: Path, profile: str = "ci", timeout: int = 900, python_prefix: str | None = None):
    """Run the suite's command line in a subprocess; return (exit status, JSON report, output)."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
    cli = ["-m", "vllm_vision_conformance"] if python_prefix is None else ["-c", python_prefix]
    cmd = [sys.executable, *cli, "--report-json", str(report), f"--profile={profile}", *args]
    env = dict(os.environ, VLLM_LOGGING_LEVEL="ERROR")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)
    data = json.loads(report.read_text()) if report.exists() else None
    return proc.returncode, data, proc.stdout + proc.stderr


@pytest.fixture
def cli(tmp_path):
    def _run(*args, **kw):
        return run_cli(*args, tmp_path=tmp_path, **kw)
    return _run


@pytest.fixture(scope="module")
def pool_targets():
    """The reference and (when importable) vLLM, registered for rank pools; pools closed after."""
    from vllm_vision_conformance.conformance import rankpool
    from vllm_vision_conformance.conformance.targets import VLLM_MODULE, LoadError, load_in_process, load_reference

    found = [load_reference()]
    try:
        found.append(load_in_process("vllm", "vllm", VLLM_MODULE))
    except LoadError:
        pass
    rankpool.register_targets(found)
    yield {t.name: t for t in found}
    rankpool.close_all()


def vllm_vision_source() -> str:
    """The text of the installed vLLM's vision.py (skips when vLLM is absent)."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("vllm")
    except Exception:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vLLM is not installed here; the tox env 'tests' installs it")
    path = Path(list(spec.submodule_search_locations)[0]) / "model_executor" / "models" / "vision.py"
    return path.read_text()


def _cuda_count() -> int:
    import os
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # do not initialise CUDA before forking
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pytest_collection_modifyitems(config, items):
    count = None
    for item in items:
        gpu = item.get_closest_marker("gpu")
        need = item.get_closest_marker("gpus")
        if gpu is None and need is None:
            continue
        if count is None:
            count = _cuda_count()
        wanted = need.args[0] if need else 1
        if count < wanted:
            item.add_marker(pytest.mark.skip(
                reason=f"needs {wanted} CUDA GPU(s), this machine has {count}; run on a GPU machine"))
