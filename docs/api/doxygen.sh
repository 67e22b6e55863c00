#!/bin/sh
# Run Doxygen for the `docs` target (docs/api/meson.build) and tidy its man
# pages for installation into <mandir>/man3:
#   doxygen.sh DOXYGEN DOXYFILE OUTDIR LOG
# Doxygen's standard error (its warnings) is shown and kept in LOG.
# MAN_LINKS gives a one-line `.so` page for every documented name; those
# named after struct members (alloc.3, free.3, log.3, ...) would shadow other
# libraries' pages and go. The file pages get the csp_ prefix (core.h.3 ->
# csp_core.h.3), and the `.so` lines name their target as man expects
# (relative to the man root: man3/...).
set -u
doxygen=$1 doxyfile=$2 out=$3 log=$4
rm -rf "$out/html" "$out/man3"
"$doxygen" "$doxyfile" 2>"$log"
status=$?
cat "$log" >&2
[ "$status" -eq 0 ] || exit "$status"
cd "$out/man3" || exit 1
for page in *.3; do
    case $page in
        csp_* | CSP_* | csp.h.3) ;;
        *.h.3) mv "$page" "csp_$page" ;;
        *) if head -n 1 "$page" | grep -q '^\.so '; then rm -f "$page"; fi ;;
    esac
done
for page in *.3; do
    if head -n 1 "$page" | grep -q '^\.so '; then
        target=$(head -n 1 "$page" | sed 's|^\.so \./||')
        case $target in
            csp_* | CSP_* | csp.h.3) ;;
            *) target="csp_$target" ;;
        esac
        [ -f "$target" ] || { echo "doxygen.sh: $page points to a missing $target" >&2; exit 1; }
        printf '.so man3/%s\n' "$target" >"$page"
    fi
done
