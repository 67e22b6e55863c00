#!/usr/bin/env python3
"""Check that the library's exports, lib/csp.map and the CSP_API
declarations of the public headers name exactly the same functions, that
every export carries a version node, and that the soname and the header's
version macros are right. Exits non-zero and says what differs."""

import argparse
import pathlib
import re
import subprocess
import sys


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        base, _, version = name.partition("@")
        if kind == "A":
            continue  # a version node's own absolute symbol (CSP_0.1)
        syms[base] = (kind, version.strip("@"))
    return syms


def map_names(path):
    text = re.sub(r"/\*.*?\*/", "", pathlib.Path(path).read_text(), flags=re.S)
    names, nodes = set(), []
    for node, body in re.findall(r"(CSP_[A-Z_]*[0-9.]+)\s*\{(.*?)\}", text, flags=re.S):
        nodes.append(node)
        glob = body.split("local:")[0].replace("global:", "")
        for entry in glob.split(";"):
            entry = entry.strip()
            if not entry:
                continue
            if any(c in entry for c in "*?["):
                sys.exit(f"csp.map: wildcard '{entry}' in node {node}")
            if entry in names:
                sys.exit(f"csp.map: '{entry}' listed twice")
            names.add(entry)
    return names, nodes


def declared(include_dir):
    names = set()
    for hdr in sorted(pathlib.Path(include_dir).glob("*.h")):
        text = re.sub(r"/\*.*?\*/", "", hdr.read_text(), flags=re.S)
        text = re.sub(r"#define[^\n]*(\\\n[^\n]*)*", "", text)
        for m in re.finditer(r"\bCSP_API\b([^;{]*?)\b(csp_\w+)\s*\(", text):
            names.add(m.group(2))
    return names


def soname(library):
    out = subprocess.run(["readelf", "-d", library], check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--map", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--soname", required=True)
    ap.add_argument("--version", required=True)
    a = ap.parse_args()

    errors = []
    exp = exported(a.library)
    mapped, nodes = map_names(a.map)
    decl = declared(a.include)

    exp_names = set(exp)
    for what, s1, s2 in (("exported but not in csp.map", exp_names, mapped),
                         ("in csp.map but not exported", mapped, exp_names),
                         ("exported but not declared CSP_API", exp_names, decl),
                         ("declared CSP_API but not exported", decl, exp_names)):
        diff = sorted(s1 - s2)
        if diff:
            errors.append(f"{what}: {', '.join(diff)}")
    for name, (kind, version) in sorted(exp.items()):
        if not name.startswith("csp_"):
            errors.append(f"export without the csp_ prefix: {name}")
        if kind != "T":
            errors.append(f"export {name} is not a function (nm kind {kind})")
        if version not in nodes:
            errors.append(f"export {name} has no version node from csp.map ({version or 'none'})")
    so = soname(a.library)
    if so != a.soname:
        errors.append(f"soname is {so}, expected {a.soname}")

    core = (pathlib.Path(a.include) / "core.h").read_text()
    ver = {k: re.search(rf"#define CSP_VERSION_{k} (\d+)", core).group(1)
           for k in ("MAJOR", "MINOR", "PATCH")}
    header_version = f"{ver['MAJOR']}.{ver['MINOR']}.{ver['PATCH']}"
    if header_version != a.version:
        errors.append(f"header version {header_version} != project version {a.version}")
    if f'#define CSP_VERSION_STRING "{a.version}"' not in core:
        errors.append("CSP_VERSION_STRING does not match the project version")
    abi = re.search(r"#define CSP_ABI_VERSION (\d+)", core).group(1)
    if a.soname != f"libcsp.so.{abi}":
        errors.append(f"CSP_ABI_VERSION {abi} does not match soname {a.soname}")

    if errors:
        print("\n".join(errors))
        return 1
    print(f"{len(exp)} exported functions in {len(nodes)} version node(s), "
          f"all declared CSP_API and listed in csp.map; soname {so}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
