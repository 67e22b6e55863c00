#!/usr/bin/env python3
"""Fail when an error message of the library names a function that is not
public: every "csp_...:" message prefix and every `fn` name given to a
message must be an export of lib/csp.map (docs/internals.md, "House rules").

    check_messages.py LIB_DIR MAP"""
import pathlib
import re
import sys


def main():
    lib, mapfile = pathlib.Path(sys.argv[1]), sys.argv[2]
    exports = set(re.findall(r"^\s*(csp_\w+);", open(mapfile).read(), re.M))
    bad, seen = [], 0
    pat = re.compile(r'"(csp_\w+):|\b(?:fn|FN)(?:\[\])?\s*=\s*"(csp_\w+)"')
    for f in sorted(lib.glob("*/*.[ch]")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for m in pat.finditer(line):
                name = m.group(1) or m.group(2)
                seen += 1
                if name not in exports and not name.startswith("csp__"):
                    bad.append("%s:%d: a message names %s, which is not exported" % (f, n, name))
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        sys.exit(1)
    print("%d message prefixes, every one a public function" % seen)


if __name__ == "__main__":
    main()
