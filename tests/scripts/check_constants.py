#!/usr/bin/env python3
"""Check that no released enumerator of the public headers changed value or
disappeared.

abidiff only sees types reachable from exported functions; our enums travel
as int32_t fields and arguments, so their values are invisible to it. This
test compares every enumerator of include/csp/*.h with the committed list of
the last release (tests/abi/constants.txt): each listed name must still
exist with the same value; new names are allowed and reported.

    check_constants.py --include include/csp --baseline tests/abi/constants.txt
    check_constants.py --include include/csp --write tests/abi/constants.txt

Every enumerator must have an explicit integer literal value, so that what
this script reads is what the compiler sees; anything else fails."""

import argparse
import pathlib
import re
import sys

ENUM_RE = re.compile(r"\benum\b\s*(\w*)\s*\{(.*?)\}\s*(\w*)\s*;", re.S)
ITEM_RE = re.compile(r"^(\w+)\s*=\s*(-?(?:0[xX][0-9a-fA-F]+|[0-9]+))[uUlL]*$")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def enumerators(include):
    """{name: (value, enum type, header)} over every public header."""
    found, errors = {}, []
    # experimental.h has a weaker promise (docs/abi.md): its values may change
    headers = sorted(h for h in pathlib.Path(include).glob("*.h") if h.name != "experimental.h")
    if not headers:
        errors.append(f"no headers under {include}")
    for h in headers:
        for m in ENUM_RE.finditer(strip_comments(h.read_text())):
            etype = m.group(3) or m.group(1) or "(anonymous)"
            for item in (x.strip() for x in m.group(2).split(",")):
                if not item:
                    continue
                im = ITEM_RE.match(item)
                if not im:
                    errors.append(f"{h.name}: {etype}: '{item}' has no integer literal value")
                    continue
                name, value = im.group(1), int(im.group(2), 0)
                if name in found:
                    errors.append(f"{h.name}: {name} defined twice")
                found[name] = (value, etype, h.name)
    return found, errors


def read_baseline(path):
    base = {}
    for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            sys.exit(f"{path}:{n}: expected 'NAME VALUE ENUM', got '{line}'")
        base[parts[0]] = (int(parts[1], 0), parts[2])
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--include", required=True, help="include/csp")
    grp = ap.add_mutually_exclusive_group(required=True)
    grp.add_argument("--baseline", help="committed list to compare with")
    grp.add_argument("--write", help="write the list of the current headers here")
    args = ap.parse_args()

    found, errors = enumerators(args.include)
    if not found and not errors:
        errors.append(f"no enumerators found under {args.include}")
    if errors:
        for e in errors:
            print(f"check_constants: {e}", file=sys.stderr)
        return 1

    if args.write:
        lines = ["# Enumerators of the public headers at the last release: NAME VALUE ENUM.",
                 "# Written by tools/abi-baseline.sh; checked by tests/scripts/check_constants.py."]
        lines += [f"{n} {v} {t}" for n, (v, t, _) in sorted(found.items(),
                                                            key=lambda kv: (kv[1][1], kv[1][0]))]
        pathlib.Path(args.write).write_text("\n".join(lines) + "\n")
        print(f"wrote {len(found)} enumerators to {args.write}")
        return 0

    base = read_baseline(args.baseline)
    bad = []
    for name, (value, etype) in sorted(base.items()):
        if name not in found:
            bad.append(f"{name} ({etype}) was released with value {value} and is gone")
        elif found[name][0] != value:
            bad.append(f"{name} ({etype}) changed value: {value} -> {found[name][0]}")
        elif found[name][1] != etype:
            bad.append(f"{name} moved from enum {etype} to {found[name][1]}")
    for b in bad:
        print(f"check_constants: {b}", file=sys.stderr)
    added = sorted(set(found) - set(base))
    for name in added:
        print(f"added: {name} = {found[name][0]} ({found[name][1]})")
    if bad:
        print(f"check_constants: {len(bad)} released enumerator(s) changed; a deliberate "
              "break needs a soname bump, a new baseline and a CHANGELOG line",
              file=sys.stderr)
        return 1
    print(f"{len(base)} released enumerators unchanged, {len(added)} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
