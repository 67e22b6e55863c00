#!/bin/sh
# The whole performance table in one command (bench/README.md, "bench/run.sh"):
#   sh bench/run.sh [--quick] [--out DIR]
# Builds libcsp in release mode (build-bench/), describes the machine, runs
# every benchmark with its baselines in the same run (memcpy, qsort, numpy,
# PyTorch, scikit-learn, OpenBLAS where installed) and ends with the summary
# table of issues 17 and 15: each figure next to its goal and its baseline.
# Single-threaded (OPENBLAS_NUM_THREADS=1) unless a row says otherwise.
# --quick: smaller sizes and fewer repetitions (minutes; the figures are
# noisier and the training shares are upper bounds: fewer epochs, the same
# events). Every program's full output is kept in DIR (default
# build-bench/bench-out) next to summary.txt.
set -eu
cd "$(dirname "$0")/.."
quick=0
out=build-bench/bench-out
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) out=$2; shift ;;
        *) echo "usage: sh bench/run.sh [--quick] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
py=/usr/bin/python3
[ -x "$py" ] || py=python3
export OPENBLAS_NUM_THREADS=1
# One thread on a shared machine: bench_gmp and bench_select.py time process
# CPU time (the scheduler's gaps to other jobs left out); CSP_BENCH_CLOCK=wall
# asks for the wall clock.
export CSP_BENCH_CLOCK="${CSP_BENCH_CLOCK:-cpu}"

sh tools/deps.sh build >/dev/null
if [ -d build-bench/meson-private ]; then
    meson setup --reconfigure build-bench --buildtype=release -Dtests=disabled \
        -Ddocs=disabled -Dexamples=enabled -Dbench=enabled >/dev/null
else
    meson setup build-bench --buildtype=release -Dtests=disabled -Ddocs=disabled \
        -Dexamples=enabled -Dbench=enabled >/dev/null
fi
ninja -C build-bench >/dev/null
mkdir -p "$out"
b=build-bench/bench

if [ $quick = 1 ]; then
    n=2000000; reps=3; cost="1024 1e6 5 1"; csp_reps=3; epochs=3; subset=400
else
    n=10000000; reps=9; cost="4096 1e8 20 3"; csp_reps=9; epochs=20; subset=0
fi

{
    echo "== machine"
    date -u +"%Y-%m-%d %H:%M UTC"
    lscpu 2>/dev/null | sed -n 's/^\(Model name\|CPU(s)\|Thread(s) per core\|L2 cache\|L3 cache\|Flags\):\s*/\1: /p' |
        sed 's/^\(Flags: \).*\(avx512f\).*/\1... avx512f .../; s/^\(Flags: \).*\(avx2\).*/\1... avx2 .../'
    awk '/MemTotal/ {printf "Memory: %.1f GiB\n", $2 / 1048576}' /proc/meminfo
    echo "Load average: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share the machine: compare ratios)"
    echo "Compiler: $(${CC:-cc} --version | head -n 1)"
    echo "OpenBLAS: $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || echo unknown)"
    echo "Clock: $CSP_BENCH_CLOCK (bench_gmp, bench_select.py); the others: wall"
    echo "libcsp: $(git describe --always --dirty 2>/dev/null || echo unknown), release build"
} | tee "$out/machine.txt"

run() { # run NAME CMD...: full output to $out/NAME.txt, echoed
    name=$1; shift
    echo; echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt" || echo "($name failed)"
}

run gmp "$b/bench_gmp" "$n" "$reps" 1
if "$py" -c 'import numpy' 2>/dev/null; then
    run select "$py" bench/bench_select.py --bench "$b/bench_gmp" --n "$n" --reps "$reps"
fi
run csp "$b/bench_csp" "$csp_reps" 1
if "$py" -c 'import sklearn' 2>/dev/null; then
    run omp "$py" bench/omp_vs_sklearn.py "$b/bench_omp"
fi
[ -x "$b/bench_gemm" ] && run gemm "$b/bench_gemm" "$csp_reps"
[ -x "$b/bench_sweep" ] && run sweep "$b/bench_sweep"
[ -x "$b/bench_sparse" ] && run sparse "$b/bench_sparse"
# shellcheck disable=SC2086
run cost "$b/bench_cost" $cost
if "$py" -c 'import torch' 2>/dev/null; then
    run torch env CSP_LIBRARY=build-bench/lib/libcsp.so.0 PYTHONPATH=python \
        "$py" bench/torch_step.py
fi

# Training overhead: csp_step() (events, re-applies, observation, gradient
# masking) as a share of the speech demo's training time, per method.
demo=build-bench/examples/speech/speech_demo
: >"$out/share.txt"
if [ -x "$demo" ]; then
    for m in gmp csp csp-obs csp-gauss csp-act csp-act-refit; do
        echo "== share $m (speech_demo --epochs $epochs)"
        "$demo" --method "$m" --epochs "$epochs" --subset "$subset" --quiet 2>&1 |
            tee "$out/share-$m.txt" | grep '^RESULT' |
            sed -n "s/.*\"csp_share\": *\([0-9.e+-]*\).*/share $m \1/p" | tee -a "$out/share.txt"
    done
fi

kv() { # kv KEY [FILE]: the value of a `kv KEY VALUE` line (default: bench_gmp's)
    sed -n "s/^kv $1 \([0-9.e+-]*\)$/\1/p" "${2:-$out/gmp.txt}" | head -n 1
}
{
    echo
    echo "== summary (1 thread; ratios are against baselines of this run)"
    printf '%-52s %12s %12s %-6s %s\n' "what" "libcsp" "goal" "status" "baseline in the same run"
    row() { # row WHAT VALUE GOAL BASELINE: status "met" / "gap" for a goal "<= X" or ">= X"
        st=$(awk -v v="$2" -v g="$3" 'BEGIN {
            if (g !~ /^[<>]= /) { print ""; exit }
            up = g ~ /^>= /
            sub(/^[<>]= /, "", g); sub(/[ %x]+$/, "", g); sub(/[ %x]+$/, "", v)
            if (v == "" || v + 0 != v + 0) print "?"
            else print ((up ? v + 0 >= g + 0 : v + 0 <= g + 0) ? "met" : "gap") }')
        printf '%-52s %12s %12s %-6s %s\n' "$1" "$2" "$3" "$st" "$4"
    }
    memcpy=$(kv memcpy_ns)
    row "memcpy (ns/weight, read + write)" "$memcpy" "" ""
    row "select per tensor (ns/weight)" "$(kv select_ns)" "" "qsort $(kv qsort_ns) ns"
    row "select row-balanced, rows of 1000 (ns/weight)" "$(kv rows_1000_ns)" "<= 1.5" "per tensor $(kv select_ns) ns"
    row "select N:M 2:4 (ns/weight)" "$(kv nm_2_4_ns)" "<= 1.5" "per tensor $(kv select_ns) ns"
    row "csp_step event per tensor (ns/weight)" "$(kv event_tensor_ns)" "<= 2" "memcpy $memcpy ns"
    row "csp_step re-apply (x memcpy bandwidth)" "$(kv apply_vs_memcpy)" "" "memcpy $(kv memcpy_gbs) GB/s"
    if [ -s "$out/share.txt" ]; then
        while read -r _ m s; do
            row "share of training in csp_step, $m" "$(awk -v s="$s" 'BEGIN {printf "%.1f %%", 100 * s}')" "<= 5 %" "speech_demo, $epochs epochs"
        done <"$out/share.txt"
    fi
    if [ -f "$out/sweep.txt" ] && [ -n "$(kv omp_refit_time_ratio "$out/sweep.txt")" ]; then
        sw="$out/sweep.txt"
        shape="$(kv n "$sw")x$(kv n "$sw")"
        row "CSP event $shape, OMP + full correction (x sweep)" \
            "$(awk -v r="$(kv omp_refit_time_ratio "$sw")" 'BEGIN {printf "%.1fx", r}')" "<= 2x" \
            "$(awk -v t="$(kv sweep_s "$sw")" -v e="$(kv omp_refit_error_ratio "$sw")" \
                'BEGIN {printf "sweep %.2f s; error %.2fx the sweep'"'"'s", t, e}')"
        row "CSP event $shape, sweep + full correction (x sweep)" \
            "$(awk -v r="$(kv sweep_refit_time_ratio "$sw")" 'BEGIN {printf "%.1fx", r}')" "<= 2x" \
            "$(awk -v e="$(kv sweep_refit_error_ratio "$sw")" \
                'BEGIN {printf "error %.2fx the sweep'"'"'s", e}')"
    fi
    if [ -s "$out/sparse.txt" ]; then
        # The sparse-inference goals (issue 15), from bench_sparse's table:
        # shape s B format kernel dense_us sparse_us speedup bound frac.
        sp=$out/sparse.txt
        for shape in 2048x512 4096x1024 4096x4096; do
            for sg in "0.90 4" "0.95 7"; do
                set -- $sg
                # speedup and dense_us of the row, one read of the table
                vd=$(awk -v sh="$shape" -v s="$1" '$1 == sh && $2 == s && $3 == 1 {print $8, $6; exit}' "$sp")
                [ -n "$vd" ] && row "sparse W x, $shape at $1, batch 1 (x sgemv)" "${vd%% *}x" ">= $2x" \
                    "OpenBLAS sgemv ${vd#* } us"
            done
        done
        # 2048 x 512 (4 MiB dense) sits in this class of machine's caches:
        # docs/results/inference.md counts it with the cache-resident shapes.
        for cls in DRAM cache; do
            if [ $cls = DRAM ]; then pat='^4096x'; else pat='^(512x[0-9]+|2048x512)$'; fi
            v=$(awk -v pat="$pat" 'NR > 2 && $1 ~ pat && $2 >= 0.7 && $3 == 1 {
                    if (m == "" || $8 < m) { m = $8; w = $1 " at " $2 } }
                END { if (m != "") print m " " w }' "$sp")
            [ -n "$v" ] && row "sparse W x, slowest at s >= 0.7, batch 1, $cls-resident (x sgemv)" \
                "${v%% *}x" ">= 1x" "${v#* }"
        done
    fi
    grep 'grows as' "$out/cost.txt" | sed 's/^/cost: /'
    echo "gap: a goal missed in this run; bench/README.md (\"Goals and gaps\") gives each gap's cause"
} | tee "$out/summary.txt"
echo
echo "full outputs in $out/"
