"""requirements/share_env_files.py: identical large env files become one inode, nothing else changes."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "requirements" / "share_env_files.py"
_spec = importlib.util.spec_from_file_location("share_env_files", _PATH)
share_env_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(share_env_files)

BIG = 300 * 1024


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def envs(tmp_path):
    same = os.urandom(BIG)
    a = tmp_path / "a" / "lib"
    b = tmp_path / "b" / "lib"
    files = {
        "a_same": _write(a / "torch" / "lib.so", same),
        "b_same": _write(b / "torch" / "lib.so", same),
        "a_own": _write(a / "vllm" / "_C.so", os.urandom(BIG)),
        "b_own": _write(b / "vllm" / "_C.so", os.urandom(BIG)),
        # same size, one byte apart: must not be shared
        "a_near": _write(a / "x.bin", same[:-1] + b"\0"),
        "b_near": _write(b / "x.bin", same[:-1] + b"\1"),
        "a_small": _write(a / "shim.py", b"x" * 100),
        "b_small": _write(b / "shim.py", b"x" * 100),
    }
    return tmp_path, files


def test_identical_large_files_share_one_inode_and_keep_their_bytes(envs):
    root, f = envs
    before = {k: p.read_bytes() for k, p in f.items()}
    store = root / "store"
    share_env_files.share(str(root / "a"), str(store))
    stats = share_env_files.share(str(root / "b"), str(store))
    assert stats["linked"] == 1 and stats["bytes_saved"] == BIG
    assert f["a_same"].stat().st_ino == f["b_same"].stat().st_ino
    for k in ("own", "near", "small"):
        assert f[f"a_{k}"].stat().st_ino != f[f"b_{k}"].stat().st_ino, k
    assert f["a_small"].stat().st_nlink == 1  # below the size bar: never linked
    assert {k: p.read_bytes() for k, p in f.items()} == before
    assert not [p for p in root.rglob("*.vvc-share-*")]  # no temporary names left


def test_rerun_only_stats_and_a_removed_env_frees_its_store_entries(envs):
    root, f = envs
    store = root / "store"
    share_env_files.share(str(root / "a"), str(store))
    share_env_files.share(str(root / "b"), str(store))
    again = share_env_files.share(str(root / "b"), str(store))
    assert again["linked"] == again["stored"] == 0
    entries = len(list(store.iterdir()))
    for p in (root / "b").rglob("*"):
        if p.is_file():
            p.unlink()  # env b removed (tox -r)
    stats = share_env_files.share(str(root / "a"), str(store))
    # b's own files (its _C.so and x.bin) had only the store left: pruned; shared lib.so kept
    assert stats["pruned"] == 2 and len(list(store.iterdir())) == entries - 2
    assert f["a_same"].exists() and f["a_same"].stat().st_nlink == 2


def test_switched_off_by_the_environment(envs, monkeypatch):
    root, f = envs
    monkeypatch.setenv("VVC_SHARE_ENV_FILES", "0")
    assert share_env_files.main([str(root / "store"), str(root / "b")]) == 0
    assert not (root / "store").exists() and f["b_same"].stat().st_nlink == 1
