#!/usr/bin/env bash
# metal-check.sh: run on a Mac with Apple Silicon (macOS 11+, Go 1.26, Xcode command line
# tools) to check the Metal backend, which has not yet run on Apple hardware by us:
#   1. the engine's parity table on Metal against the CPU reference (go test ./engine/metal/),
#      and that --device auto takes Metal (go test ./engine/device/),
#   2. lorastudio info --device, which must say "backend: metal",
#   3. the full-size benchmarks bench generate (1024², 25 steps) and bench train (1024², rank 8),
# and prints one table at the end. Send the table (and metal-check.log beside it) back.
#   scripts/metal-check.sh            everything (the benchmarks take minutes)
#   scripts/metal-check.sh --quick    parity and info only
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ "$(uname -s)" != Darwin ]; then
  echo "metal-check: this is for macOS (engine/metal is darwin only); on Linux, 'make test-darwin' vets and builds it" >&2
  exit 2
fi
log=metal-check.log
: >"$log"
export LORASTUDIO_REQUIRE_METAL=1

echo "== parity: go test ./engine/metal/ ./engine/device/" | tee -a "$log"
go test -count=1 -v -timeout 30m ./engine/metal/ ./engine/device/ >>"$log" 2>&1
parity_rc=$?
pass=$(grep -c -- '^    --- PASS\|^--- PASS' "$log")
fail=$(grep -c -- '^    --- FAIL\|^--- FAIL' "$log")
first_fail=$(grep -m1 -A3 -- '--- FAIL' "$log" | tr '\n' ' ' | cut -c1-160)

echo "== build" | tee -a "$log"
go build -o bin/lorastudio ./app >>"$log" 2>&1 || { echo "metal-check: build failed, see $log" >&2; exit 1; }

echo "== info --device" | tee -a "$log"
info_json=$(./bin/lorastudio info --device --json 2>>"$log")
echo "$info_json" >>"$log"

gen_json="" train_json=""
if [ $quick = 0 ]; then
  echo "== bench generate (minutes)" | tee -a "$log"
  gen_json=$(./bin/lorastudio bench generate --device metal --json 2>>"$log")
  echo "$gen_json" >>"$log"
  echo "== bench train (minutes)" | tee -a "$log"
  train_json=$(./bin/lorastudio bench train --device metal --json 2>>"$log")
  echo "$train_json" >>"$log"
fi

field() { # field JSON EXPR: a value from JSON with python3, or "?" without it
  command -v python3 >/dev/null || { echo "?"; return; }
  python3 -c "import json,sys
try:
    d=json.loads(sys.argv[1]); print($2)
except Exception as e:
    print('?')" "$1"
}
mib='/1048576'
echo
echo "| check | result |"
echo "|---|---|"
echo "| machine | $(sysctl -n machdep.cpu.brand_string 2>/dev/null), macOS $(sw_vers -productVersion 2>/dev/null) |"
echo "| backend | $(field "$info_json" "d['backend']+': '+d['renderer']") |"
echo "| recommended working set | $(field "$info_json" "'%d MiB' % (d.get('recommended_working_set',0)$mib)") |"
echo "| parity and device (go test ./engine/metal/ ./engine/device/) | $([ $parity_rc = 0 ] && echo ok || echo FAILED): $pass passed, $fail failed ${first_fail:+— $first_fail} |"
if [ $quick = 0 ]; then
  echo "| generate 1024², 25 steps: UNet step (CFG) | $(field "$gen_json" "'%.2f s' % d['step_seconds']") |"
  echo "| generate: whole image | $(field "$gen_json" "'%.1f s' % d['image_seconds']") |"
  echo "| generate: device peak | $(field "$gen_json" "'%d MiB' % (d['device_peak_bytes']$mib)") |"
  echo "| train 1024² step, checkpointing on / off | $(field "$train_json" "' / '.join('%.2f s (%d MiB)' % (t['seconds'], t['device_peak_bytes']$mib) for t in d['timings'])") |"
fi
echo
echo "details: $log"
[ $parity_rc = 0 ]
