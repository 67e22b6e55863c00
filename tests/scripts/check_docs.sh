#!/bin/sh
# The API reference built by the `docs` target (docs/api) is complete and
# clean: Doxygen warned about nothing, the HTML has its index, every function
# of lib/csp.map has a man page that resolves, and no page is named after
# anything but libcsp (csp_*, CSP_*).
#   check_docs.sh DOCS_BUILD_DIR CSP_MAP
set -eu
out=$1 map=$2
fail() { echo "doxygen: $*" >&2; exit 1; }
log="$out/doxygen-warnings.log"
[ -f "$log" ] || fail "no $log: was the docs target built?"
if [ -s "$log" ]; then
    cat "$log" >&2
    fail "Doxygen warned $(grep -c 'warning:' "$log") times (above); fix the comments in include/csp/"
fi
[ -f "$out/html/index.html" ] || fail "no html/index.html"
man="$out/man3"
missing=""
n=0
for sym in $(sed -n 's/^[[:space:]]*\(csp_[a-z0-9_]*\);.*/\1/p' "$map"); do
    n=$((n + 1))
    page="$man/$sym.3"
    if [ ! -f "$page" ]; then
        missing="$missing $sym"
        continue
    fi
    target=$(sed -n '1s|^\.so man3/||p' "$page")
    [ -z "$target" ] || [ -f "$man/$target" ] || fail "$sym.3 points to a missing man3/$target"
done
[ "$n" -gt 0 ] || fail "no symbols read from $map"
[ -z "$missing" ] || fail "no man page for:$missing"
stray=$(cd "$man" && ls | grep -v -e '^csp_' -e '^CSP_' -e '^csp\.h\.3$' || true)
[ -z "$stray" ] || fail "man pages not named after libcsp: $stray"
echo "doxygen: no warnings; $(ls "$man" | wc -l) man pages, one for each of the $n exported functions"
