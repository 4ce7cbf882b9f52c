"""Turn one expectations file per release (``KIND-RELEASE.txt``, the format
before release ranges) into one file per kind (``KIND.txt``), and check that
the two say the same for every release. How ``expectations/vllm.txt`` was made::

    python -m vllm_vision_conformance.conformance.convert_expectations convert OLD_DIR OUT_FILE
    python -m vllm_vision_conformance.conformance.convert_expectations check OLD_DIR NEW_FILE

``convert``: identical entries (function, check, TEXT or rule, and the same
reason) of several releases become one entry with the narrowest readable
range over the releases of OLD_DIR in version order: a run of consecutive
releases ``>=first,<next-release-not-included``, a single release ``==x``,
and a run that reaches the newest release ``>=first`` (open upwards, so a
newer release starts from the newest's entries; stale reports say which no
longer hold). Entries that hold on non-consecutive releases get one line per
run, under the same reason. The twin entries ``X`` / ``X-gloo`` of a
data-parallel check with the same TEXT and reason become one entry without a
scope; a twin entry without its partner gets ``scope=sim`` / ``scope=gloo``.
The same entry with different reasons on different releases stays separate
entries (no reason text is lost).

``check``: for every ``KIND-RELEASE.txt`` of OLD_DIR, the multiset of
(function, check, TEXT, rule, reason) that NEW_FILE yields for RELEASE (twins
expanded) equals the old file's; prints one line per release, exit 1 on any
difference.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys

from packaging.version import Version

from .expectations import GLOO, dp_twins, parse_file

HEADER = """\
# Known divergences of vLLM from the documented contract, every release in one file.
# Format (conformance/expectations.py): "[RELEASES] [scope=GROUP] FUNCTION CHECK [TEXT | rule=NAME]",
# the reason in the comment lines directly above. RELEASES is a PEP 440 specifier (no range: every
# release); a data-parallel check X covers its twin X-gloo too unless scoped (scope=sim, scope=gloo).
# Each is described with its input in docs/findings.md.
"""


def old_files(old_dir: str) -> tuple[str, list[tuple[str, str]]]:
    """(kind, [(release, path)] in version order) of the ``KIND-RELEASE.txt`` files of a folder."""
    found = []
    for name in os.listdir(old_dir):
        m = re.fullmatch(r"(\w+)-(\d[\w.+!-]*)\.txt", name)
        if m:
            found.append((m.group(1), m.group(2), os.path.join(old_dir, name)))
    kinds = {k for k, _, _ in found}
    if len(kinds) != 1:
        raise SystemExit(f"{old_dir}: want KIND-RELEASE.txt files of one kind, found kinds {sorted(kinds) or 'none'}")
    return kinds.pop(), sorted(((r, p) for _, r, p in found), key=lambda rp: Version(rp[0]))


def _old_keys(path: str, twins) -> tuple[collections.Counter, dict[tuple, int], list]:
    """An old file's entries as (function, base check, scope, text, rule, reason), twins merged;
    the line index where each first appears; the file's lines."""
    with open(path, encoding="utf-8") as handle:
        lines = parse_file(handle.read(), path, frozenset()).lines  # each check id on its own, as before
    keys, where = collections.Counter(), {}
    for n, line in enumerate(lines):
        check, scope = line.check, ""
        if check.endswith(GLOO) and (line.function, check[:-len(GLOO)]) in twins:
            check, scope = check[:-len(GLOO)], "gloo"
        elif (line.function, check) in twins:
            scope = "sim"
        key = (line.function, check, scope, line.text, line.rule, line.reason)
        keys[key] += 1
        where.setdefault(key, n)
    for key in list(keys):
        if key[2] == "sim":
            gloo = (*key[:2], "gloo", *key[3:])
            both = min(keys[key], keys[gloo])
            if both:
                keys[key] -= both
                keys[gloo] -= both
                merged = (*key[:2], "", *key[3:])
                keys[merged] += both
                where[merged] = min(where[key], where[gloo])
    return +keys, where, lines


def _ranges(held: list[int], count: int, releases: list[str]) -> list[str]:
    """The specifiers of the runs of consecutive release indices in ``held``."""
    runs, start = [], held[0]
    for prev, cur in zip(held, held[1:] + [None]):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    out = []
    for first, last in runs:
        if last == count - 1:
            out.append(f">={releases[first]}")
        elif first == last:
            out.append(f"=={releases[first]}")
        else:
            out.append(f">={releases[first]},<{releases[last + 1]}")
    return out


def convert(old_dir: str, twins=None) -> str:
    twins = dp_twins() if twins is None else twins
    _, files = old_files(old_dir)
    releases = [r for r, _ in files]
    held: dict[tuple, list[int]] = {}  # (key, copy) -> release indices
    first_seen: dict[tuple, tuple[int, int]] = {}  # (key, copy) -> (age of the newest file with it, line)
    comments: dict[str, tuple[str, ...]] = {}  # reason -> its comment lines, as first seen
    reason_rank: dict[str, int] = {}
    for age, index in enumerate(reversed(range(len(files)))):  # newest first: the newest file's layout leads
        keys, where, lines = _old_keys(files[index][1], twins)
        for line in lines:
            comments.setdefault(line.reason, line.comment)
            reason_rank.setdefault(line.reason, len(reason_rank))
        for key, count in keys.items():
            for copy in range(count):
                held.setdefault((key, copy), []).append(index)
                first_seen.setdefault((key, copy), (age, where[key]))
    ordered = sorted(held, key=lambda k: (reason_rank[k[0][5]], first_seen[k]))
    out = [HEADER]
    previous = None
    for k in ordered:
        function, check, scope, text, rule, reason = k[0]
        if reason != previous:
            out.append("\n" + "".join(f"# {c}".rstrip() + "\n" for c in comments[reason]))
            previous = reason
        tail = f"rule={rule}" if rule else text
        for spec in _ranges(sorted(held[k]), len(releases), releases):
            words = [spec] + ([f"scope={scope}"] if scope else []) + [function, check] + ([tail] if tail else [])
            out.append(" ".join(words) + "\n")
    return "".join(out)


def _entries(exp) -> collections.Counter:
    return collections.Counter((e.function, e.check, e.text, e.rule, e.reason) for e in exp.all())


def check(old_dir: str, new_file: str, twins=None, out=sys.stdout) -> bool:
    """True when NEW_FILE yields, for every release of OLD_DIR, exactly that release's old entries."""
    twins = dp_twins() if twins is None else twins
    _, files = old_files(old_dir)
    with open(new_file, encoding="utf-8") as handle:
        new = parse_file(handle.read(), new_file, twins)
    same = True
    for release, path in files:
        with open(path, encoding="utf-8") as handle:
            old = _entries(parse_file(handle.read(), path, frozenset()).select(None))
        got = _entries(new.select(release))
        if old == got:
            print(f"{release}: same {sum(old.values())} entries", file=out)
            continue
        same = False
        print(f"{release}: DIFFERENT: only in the old file {sorted((old - got).elements())}; "
              f"only in {new_file} {sorted((got - old).elements())}", file=out)
    return same


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_vision_conformance.conformance.convert_expectations",
                                     description="one expectations file per release -> one file with release ranges")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write OUT_FILE from OLD_DIR's KIND-RELEASE.txt files")
    c.add_argument("old_dir")
    c.add_argument("out_file")
    k = sub.add_parser("check", help="NEW_FILE yields every release's old entries, exactly")
    k.add_argument("old_dir")
    k.add_argument("new_file")
    args = parser.parse_args(argv)
    if args.command == "convert":
        text = convert(args.old_dir)
        with open(args.out_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        return 0 if check(args.old_dir, args.out_file) else 1
    return 0 if check(args.old_dir, args.new_file) else 1


if __name__ == "__main__":
    sys.exit(main())
