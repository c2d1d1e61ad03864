#!/usr/bin/env bash
# gpu-on-device.sh: on an NVIDIA GPU machine with no Go, run what
# scripts/gpu-bundle.sh built: the GL backend's parity tests against the CPU,
# the GL goldens of the UNet training step, the op benchmarks against the
# card's fp32 peak, the full-size SDXL benchmarks, and (when PyTorch is there)
# the same fp32 matmul in PyTorch for comparison. Prints one log; with $OUT set
# it also writes $OUT/log. Usage: scripts/gpu-on-device.sh [PEAK_TFLOPS]
set -uo pipefail
cd "$(dirname "$0")/.."
log=${OUT:-/tmp}/log
exec > >(tee "$log") 2>&1
for f in .gl/*.deb; do dpkg -x "$f" /; done
mkdir -p /tmp/x11; for f in .gl/x11/*.deb; do dpkg -x "$f" /tmp/x11; done
ldconfig
export LD_LIBRARY_PATH=/tmp/x11/usr/lib/x86_64-linux-gnu:/tmp/x11/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export LORASTUDIO_REQUIRE_GL=1 LORASTUDIO_EGL_PLATFORM=device
bin=/tmp/lsbin; mkdir -p $bin
for f in .devbin/*.gz; do gunzip -c "$f" > "$bin/$(basename "$f" .gz)"; chmod +x "$bin/$(basename "$f" .gz)"; done
[ -f .devbin/fixtures.tgz ] && tar -xzf .devbin/fixtures.tgz
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
peak=${1:-67}
ls=$bin/lorastudio
section() { echo; echo "== $* ($(date +%T))"; }
section "device"; timeout 60 $ls info --device gl
section "GL parity and edge tests (engine/gl vs the CPU reference)"
(cd engine/gl && timeout 150 $bin/gl.test -test.count=1 2>&1 | tail -n 25)
for t in unet lora train; do
	[ -x $bin/$t.test ] || continue
	section "GL goldens: engine/$t (training step)"
	(cd engine/$t && timeout 90 $bin/$t.test -test.count=1 -test.v -test.run 'Train|Golden|Network' 2>&1 | grep -E '^(--- |ok|FAIL|PASS)|loss|worst|gradients|_test.go:' | head -60)
done
section "GL op benchmarks (fp32 peak ${peak} TFLOP/s)"
(cd engine/gl && timeout 120 $bin/gl.test -test.run '^$' -test.bench 'Suite|MatMul|Conv3x3|Attention|GroupNorm' -test.benchtime 1x 2>&1) | awk -v peak="$peak" '
	/^Benchmark/ { name=$1; sub(/-[0-9]+$/,"",name); sub(/^Benchmark/,"",name); ms=""; gf="";
		for (i=2;i<NF;i++) { if ($(i+1)=="ms") ms=$i; if ($(i+1)=="GFLOP/s") gf=$i }
		if (gf=="") next; printf "%-44s %10s ms %10.1f GFLOP/s %6.1f%% of fp32 peak\n", name, ms, gf, 100*gf/(peak*1000) }'
section "lorastudio bench generate --device gl --size 1024x1024 --steps 2 --ops"; timeout 150 $ls bench generate --device gl --size 1024x1024 --steps 2 --ops
section "lorastudio bench train --device gl --size 1024 --rank 8 --runs 1"; timeout 200 $ls bench train --device gl --size 1024 --rank 8 --runs 1
if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
	section "PyTorch fp32 matmul on the same GPU (TF32 off), for comparison"
	python3 - <<'PY'
import torch, time
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for (m, k, n) in [(4096, 1280, 1280), (4096, 640, 640), (1024, 1280, 5120), (16384, 320, 320)]:
    a = torch.randn(m, k, device="cuda"); b = torch.randn(k, n, device="cuda")
    for _ in range(3): a @ b
    torch.cuda.synchronize(); t = time.perf_counter(); r = 20
    for _ in range(r): a @ b
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / r
    print(f"torch matmul {m}x{k}x{n}: {dt*1e3:.3f} ms {2*m*k*n/dt/1e9:.1f} GFLOP/s")
x = torch.randn(2, 640, 64, 64, device="cuda"); w = torch.randn(640, 640, 3, 3, device="cuda")
for _ in range(3): torch.nn.functional.conv2d(x, w, padding=1)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): torch.nn.functional.conv2d(x, w, padding=1)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 20
print(f"torch conv3x3 2x640x64x64: {dt*1e3:.3f} ms {2*2*640*640*9*64*64/dt/1e9:.1f} GFLOP/s")
PY
fi
section "done"
