#!/usr/bin/env bash
# torch-compare.sh: our CPU backend against PyTorch on the same machine, in
# one run, at the same shapes, fp32, random values:
#   1. the op suite of `lorastudio bench ops` (matmuls, 3×3 conv, self and
#      cross attention, group norm), each op's best time in both;
#   2. with diffusers importable, the SDXL base 1.0 UNet step with CFG
#      (batch 2) and the VAE decode at --size, our `bench generate` against
#      diffusers' UNet2DConditionModel / AutoencoderKL built from SDXL base
#      1.0's config with random weights (fp32, about 10 GB of host memory).
# It prints ours / torch for each row (above 1: we are slower).
#
# Usage: scripts/torch-compare.sh [--size N] [--no-model] [--bin PATH]
#   --size N    image side for the model rows (default 256; a latent of N/8)
#   --no-model  only the op rows
#   --bin PATH  our binary (default ./bin/lorastudio, built with `make build`
#               when missing)
# Needs: python3 with torch (Debian: apt-get install python3-torch; large,
# so neither CI nor the Makefile installs it) and, for the model rows,
# diffusers (pip, or PYTHONPATH pointing at a diffusers source checkout in a
# temporary folder). Threads: both sides use every core (OMP_NUM_THREADS and
# GOMAXPROCS default to nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "torch-compare: $*" >&2; exit 1; }

size=256 model=1 bin=./bin/lorastudio
while [[ $# -gt 0 ]]; do
	case "$1" in
	--size) [[ $# -ge 2 ]] || die "--size needs a value"; size=$2; shift 2 ;;
	--no-model) model=0; shift ;;
	--bin) [[ $# -ge 2 ]] || die "--bin needs a value"; bin=$2; shift 2 ;;
	-h|--help) sed -n '2,23p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ "$size" =~ ^[0-9]+$ && $((size % 32)) -eq 0 && $size -gt 0 ]] || die "--size $size: want a positive multiple of 32"

command -v python3 >/dev/null || die "python3 is not on PATH"
python3 -c 'import torch' 2>/dev/null || die "python3 cannot import torch: apt-get install python3-torch (or pip install torch)"
if [[ ! -x "$bin" ]]; then
	echo "== building $bin (make build)"
	make build >/dev/null
fi
threads=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads} GOMAXPROCS=${GOMAXPROCS:-$threads}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ours: $bin bench ops --device cpu"
"$bin" bench ops --device cpu --json >"$tmp/ops.json"
if [[ $model -eq 1 ]]; then
	echo "== ours: $bin bench generate --device cpu --size ${size}x$size --steps 1 (minutes)"
	"$bin" bench generate --device cpu --size "${size}x$size" --steps 1 --no-ops --json >"$tmp/gen.json"
fi

echo "== PyTorch on the same shapes"
python3 - "$tmp" "$size" "$model" <<'PY'
import json, os, sys, time
import torch
import torch.nn.functional as F

tmp, size, model = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
torch.manual_seed(1)

def best(fn, min_time=1.0, min_runs=3):
    """The best time of fn over at least min_runs runs and min_time seconds."""
    with torch.no_grad():
        fn()  # warm-up: first-call allocations and oneDNN kernel choices
        times, start = [], time.perf_counter()
        while len(times) < min_runs or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(times)

def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    s = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
    return s @ v

def torch_op(op, shape):
    """A function running op at the shape string of `bench ops`, or None."""
    r = torch.randn
    if op == "matmul":
        m, k, n = map(int, shape.split("x"))
        a, b = r(m, k), r(k, n)
        return lambda: a @ b
    if op == "conv2d_3x3":
        n, c, h, w = map(int, shape.split("x"))
        x, wt, bias = r(n, c, h, w), r(c, c, 3, 3), r(c)
        return lambda: F.conv2d(x, wt, bias, padding=1)
    if op in ("attention_self", "attention_cross"):
        heads, nq, nk, d = map(int, shape.split("x"))
        q, k, v = r(1, heads, nq, d), r(1, heads, nk, d), r(1, heads, nk, d)
        return lambda: attention(q, k, v)
    if op == "groupnorm":
        dims, groups = shape.split("/")
        n, c, h, w = map(int, dims.split("x"))
        x, g, b = r(n, c, h, w), r(c), r(c)
        return lambda: F.group_norm(x, int(groups), g, b, 1e-5)
    return None

rows = json.load(open(os.path.join(tmp, "ops.json")))
print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
print(f"{'op':<16} {'shape':<18} {'ours ms':>10} {'torch ms':>10} {'ours/torch':>10}")
for row in rows:
    if row["device"] != "cpu":
        continue
    fn = torch_op(row["op"], row["shape"])
    if fn is None:
        print(f"{row['op']:<16} {row['shape']:<18} {row['ms']:>10.2f} {'-':>10} {'-':>10}  (no PyTorch twin)")
        continue
    ms = best(fn) * 1e3
    print(f"{row['op']:<16} {row['shape']:<18} {row['ms']:>10.2f} {ms:>10.2f} {row['ms'] / ms:>10.2f}")

if not model:
    sys.exit(0)
try:
    from diffusers import AutoencoderKL, UNet2DConditionModel
except ImportError:
    print("diffusers is not importable: model rows skipped (pip install diffusers, or PYTHONPATH to its source)")
    sys.exit(0)
gen = json.load(open(os.path.join(tmp, "gen.json")))
# SDXL base 1.0's unet/config.json and vae/config.json (the values our
# engine/sdxl SDXLBase() reads from the same files).
unet = UNet2DConditionModel(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
    addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, flip_sin_to_cos=True, freq_shift=0,
).eval()
side = size // 8
x, ctx = torch.randn(2, 4, side, side), torch.randn(2, 77, 2048)
cond = {"text_embeds": torch.randn(2, 1280), "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, dtype=torch.float32)}
step = best(lambda: unet(x, 500, encoder_hidden_states=ctx, added_cond_kwargs=cond), min_time=0, min_runs=2)
del unet
vae = AutoencoderKL(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=1024,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), scaling_factor=0.13025,
).eval()
z = torch.randn(1, 4, side, side)
decode = best(lambda: vae.decode(z), min_time=0, min_runs=2)
print(f"{'model (' + str(size) + '²)':<35} {'ours s':>8} {'torch s':>8} {'ours/torch':>10}")
for name, ours, theirs in (("UNet step with CFG (batch 2)", gen["step_seconds"], step), ("VAE decode", gen["decode_seconds"], decode)):
    print(f"{name:<35} {ours:>8.2f} {theirs:>8.2f} {ours / theirs:>10.2f}")
PY
