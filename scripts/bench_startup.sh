#!/usr/bin/env bash
# Start-up of the songlines entry point (issue 16, bar I1): wall time and peak RSS of `help`, `--version`,
# `help generate` (handed to the full binary) and `features --device cpu` on a 1-second file, each the median of
# N runs of /usr/bin/time (default 10).
#   scripts/bench_startup.sh [BINARY] [N]      (BINARY default: build/songlines)
set -euo pipefail
BIN=${1:-build/songlines}
N=${2:-10}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# A 1-second 22.05 kHz tone (Python's wave module: no dependencies).
python3 - "$TMP/one_second.wav" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)
    w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / 22050))) for i in range(22050)))
PY
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
run() {
  local label=$1; shift
  : > "$TMP/times"
  for _ in $(seq "$N"); do
    rm -f "$TMP/f.h5"
    /usr/bin/time -f "%e %M" -o "$TMP/one" "$BIN" "$@" > /dev/null 2>&1
    cat "$TMP/one" >> "$TMP/times"
  done
  printf "%-44s wall %6.3f s (median of %d)   max RSS %6.1f MB\n" "$label" \
    "$(cut -d' ' -f1 "$TMP/times" | median)" "$N" "$(cut -d' ' -f2 "$TMP/times" | median | awk '{print $1/1024}')"
}
echo "binary: $BIN ($("$BIN" --version)); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run "songlines help" help
run "songlines --version" --version
run "songlines help generate (a libtorch command)" help generate
run "songlines features --device cpu (1 s file)" features --device cpu --input "$TMP/one_second.wav" --output "$TMP/f.h5"
