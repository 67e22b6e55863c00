#!/bin/sh
# gen_espeak_digits.sh - synthetic spoken-digit fallback for the libcsp
# speech example, for machines without the Free Spoken Digit Dataset.
#
# Usage: gen_espeak_digits.sh OUT_DIR [PER_DIGIT_PER_VOICE]   (default 50)
#
# Writes {digit}_{voice}_{index}.wav (8 kHz, 16-bit mono PCM, leading and
# trailing silence trimmed, peak-normalised to -3 dBFS) for the words
# "zero".."nine", 5 espeak-ng voices (the "speakers"), index 0..N-1 each with
# its own pitch and speed, i.e. the same layout and official split
# (index 0-4 test) as FSDD. OUT_DIR must be a build/cache directory, never
# the repository. Needs: apt-get install espeak-ng sox
# Deterministic: the same N gives the same files (espeak-ng/sox versions
# permitting). About 12 ms per file; N=50 makes 2,500 files.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUT_DIR [PER_DIGIT_PER_VOICE]" >&2
    exit 2
fi
out=$1
per=${2:-50}
case $per in
    ''|*[!0-9]*) echo "$0: PER_DIGIT_PER_VOICE must be a positive integer" >&2; exit 2 ;;
esac
if [ "$per" -lt 1 ]; then
    echo "$0: PER_DIGIT_PER_VOICE must be >= 1" >&2
    exit 2
fi
for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found (apt-get install espeak-ng sox)" >&2
        exit 1
    fi
done
mkdir -p "$out"

words="zero one two three four five six seven eight nine"
# "speaker" name (no underscore) and espeak-ng voice+variant
voices="usm3:en-us+m3 gbf3:en-gb+f3 scm7:en-gb-scotland+m7 cbf2:en-029+f2 rpm1:en-gb-x-rp+m1"

tmp=$(mktemp "${TMPDIR:-/tmp}/espeak_digit.XXXXXX")
trap 'rm -f "$tmp"' EXIT INT TERM
count=0
v=0
for spec in $voices; do
    name=${spec%%:*}
    voice=${spec#*:}
    d=0
    for word in $words; do
        i=0
        while [ "$i" -lt "$per" ]; do
            # Spread pitch (0-99 scale) and speed (words/min) over the takes.
            pitch=$(( 25 + (i * 37 + v * 11 + d * 7) % 50 ))
            speed=$(( 120 + (i * 53 + v * 17 + d * 13) % 90 ))
            espeak-ng -v "$voice" -p "$pitch" -s "$speed" -w "$tmp" "$word"
            sox -q "$tmp" -r 8000 -b 16 -c 1 -e signed-integer \
                "$out/${d}_${name}_${i}.wav" \
                silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse norm -3
            i=$((i + 1))
            count=$((count + 1))
        done
        d=$((d + 1))
    done
    v=$((v + 1))
done
# Mark the directory as synthetic, so that speech_demo says so in every run.
{
    echo "Synthetic spoken digits made by gen_espeak_digits.sh with espeak-ng and sox:"
    echo "$per takes per digit and voice; voices: $voices"
    espeak-ng --version 2>/dev/null || true
    echo "Not real speech: results on it say nothing about real recordings."
} > "$out/SYNTHETIC-ESPEAK.txt"
echo "wrote $count files to $out"
