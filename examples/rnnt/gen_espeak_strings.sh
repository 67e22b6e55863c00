#!/bin/sh
# gen_espeak_strings.sh - synthetic connected-digit strings for the RNN-T
# example (rnnt_data.h) on machines without the Free Spoken Digit Dataset.
#
# Usage: gen_espeak_strings.sh OUT_DIR [STRINGS_PER_VOICE]   (default 150)
#
# Writes {digits}_{voice}_{index}.wav (8 kHz, 16-bit mono PCM, silence
# trimmed, peak-normalised to -3 dBFS): whole strings of 1-7 digits spoken
# as words ("three zero seven") in one go, so with espeak-ng's own
# coarticulation, by 10 voice+variant combinations (the "speakers"), each
# string with its own pitch, rate, word gap and pitch range. The digits of
# string i of a voice come from a fixed LCG, so the same arguments give the
# same files (espeak-ng/sox versions permitting). rnnt_data.c adds pauses
# at both ends, gain and noise, and splits by i (i % 10 == 0 test, == 1
# valid). OUT_DIR must be a build/cache directory, never the repository.
# Needs: apt-get install espeak-ng sox. About 0.1 s of CPU per file.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUT_DIR [STRINGS_PER_VOICE]" >&2
    exit 2
fi
out=$1
per=${2:-150}
case $per in
    ''|*[!0-9]*) echo "$0: STRINGS_PER_VOICE must be a positive integer" >&2; exit 2 ;;
esac
if [ "$per" -lt 10 ]; then
    echo "$0: STRINGS_PER_VOICE must be >= 10" >&2
    exit 2
fi
for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found (apt-get install espeak-ng sox)" >&2
        exit 1
    fi
done
mkdir -p "$out"
rm -f "$out/COMPLETE-RNNT-ESPEAK.txt"

set -- zero one two three four five six seven eight nine
words="$*"
# "speaker" name (letters/digits only) and espeak-ng voice+variant
voices="usm3:en-us+m3 gbf3:en-gb+f3 scm7:en-gb-scotland+m7 cbf2:en-029+f2 rpm1:en-gb-x-rp+m1 usf4:en-us+f4 lam2:en-gb-x-gbclan+m2 wmf1:en-gb-x-gbcwmd+f1 nym5:en-us-nyc+m5 gbf5:en-gb+f5"

tmp=$(mktemp "${TMPDIR:-/tmp}/espeak_str.XXXXXX")
trap 'rm -f "$tmp" "$out/.part.$$"' EXIT INT TERM
count=0
v=0
for spec in $voices; do
    name=${spec%%:*}
    voice=${spec#*:}
    state=$((v * 7919 + 17))
    i=0
    while [ "$i" -lt "$per" ]; do
        state=$(( (state * 1103515245 + 12345) % 2147483648 ))
        len=$(( 1 + (state / 65536) % 7 ))
        text=""
        digits=""
        k=0
        while [ "$k" -lt "$len" ]; do
            state=$(( (state * 1103515245 + 12345) % 2147483648 ))
            d=$(( (state / 65536) % 10 ))
            # shellcheck disable=SC2086
            w=$(echo $words | cut -d' ' -f$((d + 1)))
            text="$text $w"
            digits="$digits$d"
            k=$((k + 1))
        done
        pitch=$(( 20 + (i * 37 + v * 11) % 60 ))
        speed=$(( 130 + (i * 53 + v * 17) % 110 ))
        gap=$(( (i * 7 + v * 3) % 9 ))
        espeak-ng -v "$voice" -p "$pitch" -s "$speed" -g "$gap" -w "$tmp" "$text"
        # Written beside its final name, then renamed: another process
        # filling the same cache (tests run in parallel) or reading it never
        # sees a partly written file.
        part="$out/.part.$$"
        sox -q "$tmp" -r 8000 -b 16 -c 1 -e signed-integer -t wav "$part" \
            silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse norm -3
        mv -f "$part" "$out/${digits}_${name}_${i}.wav"
        i=$((i + 1))
        count=$((count + 1))
    done
    v=$((v + 1))
done
# Mark the set as complete and synthetic (rnnt_data.c checks and reports it).
{
    echo "Synthetic connected-digit strings made by gen_espeak_strings.sh with espeak-ng and sox:"
    echo "$per strings per voice; voices: $voices"
    espeak-ng --version 2>/dev/null || true
    echo "Not real speech: results on it say nothing about real recordings."
} > "$out/COMPLETE-RNNT-ESPEAK.txt"
echo "wrote $count files to $out"
