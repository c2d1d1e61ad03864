#!/usr/bin/env bash
# gpu-check.sh: on a machine with an NVIDIA GPU and Go, check the OpenGL
# compute backend on the real GPU and measure it.
#   1. the GL parity tests (engine/gl against the CPU reference) with
#      LORASTUDIO_REQUIRE_GL=1, through EGL's device platform (so the NVIDIA
#      GPU is used even where Mesa's llvmpipe is installed too);
#   2. the op benchmark table (engine/bench's suite, the same cases as
#      `lorastudio bench ops`), each GFLOP/s shown against the card's fp32
#      peak (OpenGL has no tensor cores: fp32 ALU peak is the ceiling).
# Usage: scripts/gpu-check.sh            (PEAK_TFLOPS=NN overrides the peak)
# Needs: go, nvidia-smi, the NVIDIA driver's EGL (libnvidia-egl*), and
# pkg-config with libegl-dev to build (apt-get install libegl-dev pkg-config).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "gpu-check: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not on PATH"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
pkg-config --exists egl || die "pkg-config cannot find egl: apt-get install libegl-dev pkg-config"

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1)
echo "== GPU: $gpu (driver $driver)"

# fp32 peak in TFLOP/s (boost clock, dense, no tensor cores).
peak=${PEAK_TFLOPS:-}
if [[ -z "$peak" ]]; then
	case "$gpu" in
		*H200*) peak=67 ;;
		*H100*PCIe*) peak=51 ;;
		*H100*) peak=67 ;;
		*A100*) peak=19.5 ;;
		*L40S*) peak=91.6 ;;
		*L4*) peak=30.3 ;;
		*A10*) peak=31.2 ;;
		*4090*) peak=82.6 ;;
		*T4*) peak=8.1 ;;
		*) peak=0 ;;
	esac
fi

export LORASTUDIO_REQUIRE_GL=1
export LORASTUDIO_EGL_PLATFORM=device
export GOFLAGS="${GOFLAGS:-} -count=1"

echo "== context"
out=$(go test -run 'TestDeviceLimits' -v ./engine/gl/ 2>&1) || { echo "$out"; die "no GL context on the GPU"; }
echo "$out" | grep -E 'renderer' || true
if echo "$out" | grep -qiE 'llvmpipe|softpipe'; then
	die "EGL gave a software renderer, not the NVIDIA GPU (is libnvidia-egl installed? see /usr/share/glvnd/egl_vendor.d)"
fi

echo "== parity (GL vs CPU) and GL tests"
go test -v ./engine/gl/ ./engine/device/ 2>&1 | grep -E '^(=== RUN|--- FAIL|FAIL|ok|PASS)|max abs err|optest.go' | grep -v '=== RUN' || true
go test ./engine/gl/ ./engine/device/ >/dev/null 2>&1 || die "GL tests failed (rerun: LORASTUDIO_REQUIRE_GL=1 LORASTUDIO_EGL_PLATFORM=device go test -v ./engine/gl/)"
echo "all GL tests pass"

echo "== benchmarks (engine/bench suite on GL; fp32 peak ${peak} TFLOP/s)"
bench=$(go test -run '^$' -bench 'Suite|MatMul|Conv3x3|Attention|GroupNorm' -benchtime 1x ./engine/gl/ 2>&1) || { echo "$bench"; die "benchmarks failed"; }
echo "$bench" | awk -v peak="$peak" '
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		ms = ""; gf = ""
		for (i = 2; i < NF; i++) {
			if ($(i+1) == "ms") ms = $i
			if ($(i+1) == "GFLOP/s") gf = $i
		}
		if (gf == "") next
		pct = (peak > 0) ? sprintf("%5.1f%%", 100 * gf / (peak * 1000)) : "  n/a"
		printf "%-44s %10s ms %10.1f GFLOP/s  %s of fp32 peak\n", name, ms, gf, pct
	}'
