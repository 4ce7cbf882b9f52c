"""Share the identical large files of the tox envs through hard links.

Why: every release env holds its own torch, triton, transformers, ... (about 3.2 GB
each), so the 16 envs of ``tox -m matrix`` took about 50 GB, although most of those
bytes are the same in every env. After this runs in each env (tox ``commands_pre``,
once the env is installed), an env costs about 1.5 GB beyond the first: its vLLM wheel
and what differs.

How: ``python share_env_files.py STORE [ENV]`` walks ENV (default ``sys.prefix``) for
regular files of at least ``--min-size`` bytes that have one link only, and for each
one looks up ``STORE/<sha256>-<size>``: found, the file is replaced (atomically) by a
hard link to it; not found, the file is linked into the store. Store entries no env
links to any more (an env was recreated or removed) are deleted first. Files already
linked are skipped, so a later run only stats.

Safe because pip never writes an installed file in place (it unlinks and writes anew),
nor does Python's bytecode cache; small files (the torchvision shim, which is
rewritten in place on each run) stay below the size bar. A filesystem without hard
links makes this a no-op with one line saying so. ``VVC_SHARE_ENV_FILES=0`` turns it off.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def prune(store: str) -> int:
    """Delete store entries that only the store links to; return how many."""
    removed = 0
    for entry in os.scandir(store):
        if entry.is_file(follow_symlinks=False) and entry.stat().st_nlink == 1:
            os.unlink(entry.path)
            removed += 1
    return removed


def share(env: str, store: str, min_size: int = 256 * 1024) -> dict[str, int]:
    """Link ENV's large single-link files to identical ones in STORE (see module doc)."""
    os.makedirs(store, exist_ok=True)
    stats = {"pruned": prune(store), "linked": 0, "stored": 0, "bytes_saved": 0}
    tag = f".vvc-share-{os.getpid()}"
    for root, dirs, files in os.walk(env):
        if os.path.abspath(root) == os.path.abspath(store):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size < min_size or st.st_nlink > 1:
                continue
            key = os.path.join(store, f"{_digest(path)}-{st.st_size}")
            if os.path.exists(key):
                tmp = path + tag
                os.link(key, tmp)
                os.replace(tmp, path)
                stats["linked"] += 1
                stats["bytes_saved"] += st.st_size
            else:
                tmp = key + tag
                os.link(path, tmp)
                os.replace(tmp, key)
                stats["stored"] += 1
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", help="folder of shared files (same filesystem as the envs)")
    p.add_argument("env", nargs="?", default=sys.prefix, help="env folder (default: this interpreter's)")
    p.add_argument("--min-size", type=int, default=256 * 1024, help="bytes (default 256 KiB)")
    args = p.parse_args(argv)
    if os.environ.get("VVC_SHARE_ENV_FILES", "1") == "0":
        return 0
    try:
        stats = share(args.env, args.store, args.min_size)
    except OSError as exc:  # no hard links here (another filesystem, a read-only store, ...)
        print(f"share_env_files: not sharing files ({exc}); the env keeps its own copies")
        return 0
    print(f"share_env_files: {stats['linked']} files now shared "
          f"({stats['bytes_saved'] / 2**30:.2f} GiB saved), {stats['stored']} new in the store, "
          f"{stats['pruned']} stale store entries removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
