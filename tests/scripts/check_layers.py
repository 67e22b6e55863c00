#!/usr/bin/env python3
"""Fail when a library layer includes a layer above it (docs/internals.md,
"Layers"): the includes of lib/<layer>/ may only name the layers listed
for it below.

    check_layers.py LIB_DIR"""
import pathlib
import re
import sys

ALLOWED = {
    "core": {"core"},
    "linalg": {"core", "linalg"},
    "select": {"core", "select"},
    "sensing": {"core", "linalg", "sensing"},
    "solver": {"core", "linalg", "sensing", "solver"},
    "prune": {"core", "linalg", "select", "sensing", "solver", "prune"},
    "io": {"core", "linalg", "select", "sensing", "solver", "prune", "io"},
    "sparse": {"core", "linalg", "select", "sensing", "solver", "prune", "io", "sparse"},
}


def main():
    lib = pathlib.Path(sys.argv[1])
    bad, count = [], 0
    for layer, allowed in ALLOWED.items():
        for f in sorted((lib / layer).glob("*.[ch]")):
            for n, line in enumerate(f.read_text().splitlines(), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                count += 1
                inc = m.group(1)
                target = inc.split("/")[0] if "/" in inc else layer
                if target not in allowed:
                    bad.append("%s:%d: layer %s includes %s (allowed: %s)"
                               % (f, n, layer, inc, ", ".join(sorted(allowed))))
    missing = sorted(d.name for d in lib.iterdir() if d.is_dir() and d.name not in ALLOWED)
    if missing:
        bad.append("layers without a rule: %s" % ", ".join(missing))
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        sys.exit(1)
    print("%d includes in %d layers, none pointing up" % (count, len(ALLOWED)))


if __name__ == "__main__":
    main()
