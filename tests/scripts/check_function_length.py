#!/usr/bin/env python3
"""Fail when a function of the library's C sources is longer than a limit.

    check_function_length.py [--max N] FILE...

A function is a top-level definition: a line that starts at column 0 and
ends with ')' or ') {' (its header may span lines), followed by a body in
braces that starts at column 0 or at the end of the header. Its length is
the number of lines from the header's first line to the closing brace. The
house rule (docs/internals.md) is at most 150 lines; long functions are
where the event, the solvers and the codecs used to hide their steps."""
import argparse
import re
import sys


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        # a header begins at column 0 with an identifier and has a '('
        if re.match(r"^[A-Za-z_][\w \*]*\(", line) and not line.rstrip().endswith(";") \
                and not line.startswith(("typedef", "struct", "enum", "union")):
            start = i
            j = i
            while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and "{" in lines[j]:
                depth = 0
                k = j
                while k < len(lines):
                    depth += lines[k].count("{") - lines[k].count("}")
                    if depth == 0:
                        break
                    k += 1
                name = re.match(r"^[\w \*]*?(\w+)\s*\(", line)
                yield (name.group(1) if name else line.strip()), start + 1, k - start + 1
                i = k + 1
                continue
        i += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=150)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    bad = []
    count = 0
    for path in a.files:
        for name, line, length in functions(path):
            count += 1
            if length > a.max:
                bad.append("%s:%d: %s is %d lines (at most %d)" % (path, line, name, length, a.max))
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        sys.exit(1)
    print("%d functions in %d files, none longer than %d lines" % (count, len(a.files), a.max))


if __name__ == "__main__":
    main()
