#!/usr/bin/env bash
# torch-compare.sh: our CPU backend against PyTorch on the same machine, in
# one run, at the same shapes, fp32, random values:
#   1. the op suite of `lorastudio bench ops` (matmuls, 3×3 conv, self and
#      cross attention, group norm), each op's best time in both;
#   2. with diffusers importable, the SDXL base 1.0 UNet step with CFG
#      (batch 2) and the VAE decode at --size, our `bench generate` against
#      diffusers' UNet2DConditionModel / AutoencoderKL built from SDXL base
#      1.0's config with random weights (fp32, about 10 GB of host memory);
#   3. with --train, the LoRA training step (batch 1, rank 8, alpha 16 on
#      to_q/to_k/to_v/to_out.0, AdamW) with gradient checkpointing on and
#      off: our `bench train` against the same UNet in PyTorch with LoRA
#      layers (peft's when peft imports, else the same math in a few lines:
#      base(x) + B(A(x))·alpha/r, A kaiming-uniform, B zero).
# It prints ours / torch for each row (above 1: we are slower).
#
# Usage: scripts/torch-compare.sh [--size N] [--no-model] [--train] [--bin PATH]
#   --size N    image side for the model rows (default 256; a latent of N/8)
#   --no-model  only the op rows
#   --train     also the training-step rows (several more minutes)
#   --bin PATH  our binary (default ./bin/lorastudio, built with `make build`
#               when missing)
#   --keep DIR  keep our JSON results there (ops.json, gen.json, train.json:
#               the per-op breakdowns included)
# Needs: a python3 that imports torch (Debian: apt-get install python3-torch;
# large, so neither CI nor the Makefile installs it; PYTHON=... picks one)
# and, for the model rows, diffusers on PYTHONPATH. Without pip, a source
# checkout in a temporary folder works, as the README's figures were made:
# diffusers v0.26.3's src/ and huggingface_hub v0.20.3's src/ (plus Debian's
# python3-requests, -filelock, -regex, -importlib-metadata, -tqdm, -yaml,
# -fsspec, -packaging), and a two-file stand-in for the Rust safetensors
# package (nothing here reads or writes a safetensors file). Threads: both
# sides use every core (OMP_NUM_THREADS and GOMAXPROCS default to nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "torch-compare: $*" >&2; exit 1; }

size=256 model=1 train=0 bin=./bin/lorastudio keep=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--size) [[ $# -ge 2 ]] || die "--size needs a value"; size=$2; shift 2 ;;
	--no-model) model=0; shift ;;
	--train) train=1; shift ;;
	--keep) [[ $# -ge 2 ]] || die "--keep needs a folder"; keep=$2; shift 2 ;;
	--bin) [[ $# -ge 2 ]] || die "--bin needs a value"; bin=$2; shift 2 ;;
	-h|--help) sed -n '2,33p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ "$size" =~ ^[0-9]+$ && $((size % 32)) -eq 0 && $size -gt 0 ]] || die "--size $size: want a positive multiple of 32"

. scripts/torch-python.sh
py=$(torch_python torch) || die "no python3 here imports torch: apt-get install python3-torch (or pip install torch), or set PYTHON"
if [[ ! -x "$bin" ]]; then
	echo "== building $bin (make build)"
	make build >/dev/null
fi
threads=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads} GOMAXPROCS=${GOMAXPROCS:-$threads}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -n "$keep" ]]; then
	mkdir -p "$keep" || die "cannot create $keep"
	trap 'cp "$tmp"/*.json "$keep"/ 2>/dev/null; rm -rf "$tmp"' EXIT
fi

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads, load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "== ours: $("$bin" info --device cpu 2>/dev/null | sed -n 's/^renderer: *//p')"
echo "== ours: $bin bench ops --device cpu"
"$bin" bench ops --device cpu --json >"$tmp/ops.json"
if [[ $model -eq 1 ]]; then
	echo "== ours: $bin bench generate --device cpu --size ${size}x$size --steps 1 (minutes)"
	"$bin" bench generate --device cpu --size "${size}x$size" --steps 1 --no-ops --json >"$tmp/gen.json"
fi
if [[ $train -eq 1 ]]; then
	echo "== ours: $bin bench train --device cpu --size $size --rank 8 --runs 2 (minutes)"
	"$bin" bench train --device cpu --size "$size" --rank 8 --runs 2 --no-ops --json >"$tmp/train.json"
fi

echo "== PyTorch on the same shapes"
"$py" - "$tmp" "$size" "$model" "$train" <<'PY'
import json, os, sys, time
import torch
import torch.nn.functional as F

tmp, size, model, train = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
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

if not (model or train):
    sys.exit(0)
try:
    from diffusers import AutoencoderKL, UNet2DConditionModel
except ImportError as e:
    print(f"diffusers is not importable ({e}): model rows skipped (see --help)")
    sys.exit(0)
import resource

def max_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def sdxl_unet():
    """SDXL base 1.0's unet/config.json (the values our engine/sdxl
    SDXLBase() reads from the same file), random fp32 weights."""
    return UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(320, 640, 1280), transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816, flip_sin_to_cos=True, freq_shift=0,
    )

side = size // 8
def unet_inputs(batch):
    return (torch.randn(batch, 4, side, side), torch.randn(batch, 77, 2048),
            {"text_embeds": torch.randn(batch, 1280),
             "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch, dtype=torch.float32)})

rows = []  # (name, ours s, torch s)
if model:
    gen = json.load(open(os.path.join(tmp, "gen.json")))
    unet = sdxl_unet().eval()
    x, ctx, cond = unet_inputs(2)
    step = best(lambda: unet(x, 500, encoder_hidden_states=ctx, added_cond_kwargs=cond), min_time=0, min_runs=2)
    del unet
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=1024,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512), scaling_factor=0.13025,
    ).eval()
    z = torch.randn(1, 4, side, side)
    decode = best(lambda: vae.decode(z), min_time=0, min_runs=2)
    del vae
    rows += [("UNet step with CFG (batch 2)", gen["step_seconds"], step), ("VAE decode", gen["decode_seconds"], decode)]
    print(f"host peak: ours {gen.get('host_peak_bytes', 0) / 2**30:.1f} GiB (max RSS, fp16 weights), "
          f"PyTorch {max_rss_gib():.1f} GiB (max RSS so far, fp32 weights)")

if train:
    ours = {t["checkpointing"]: t["seconds"] for t in json.load(open(os.path.join(tmp, "train.json")))["timings"]}
    unet = sdxl_unet()
    unet.requires_grad_(False)
    rank, alpha = 8, 16
    lora_note = "peft"
    try:
        from peft import LoraConfig
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True,
                                    target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    except ImportError:
        lora_note = "peft-equivalent layers (peft is not importable)"

        class LoRALinear(torch.nn.Module):
            """peft's LoRA Linear without dropout: base(x) + B(A(x))·alpha/r."""
            def __init__(self, base):
                super().__init__()
                self.base = base
                self.down = torch.nn.Linear(base.in_features, rank, bias=False)
                self.up = torch.nn.Linear(rank, base.out_features, bias=False)
                torch.nn.init.kaiming_uniform_(self.down.weight, a=5 ** 0.5)
                torch.nn.init.zeros_(self.up.weight)
            def forward(self, x, *_):  # diffusers passes its LoRA scale too
                return self.base(x) + self.up(self.down(x)) * (alpha / rank)

        for mod in list(unet.modules()):
            if type(mod).__name__ == "Attention":
                for n in ("to_q", "to_k", "to_v"):
                    setattr(mod, n, LoRALinear(getattr(mod, n)))
                mod.to_out[0] = LoRALinear(mod.to_out[0])
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    unet.train()
    x, ctx, cond = unet_inputs(1)
    noise = torch.randn_like(x)

    def train_step():
        with torch.enable_grad():
            pred = unet(x, 500, encoder_hidden_states=ctx, added_cond_kwargs=cond).sample
            loss = F.mse_loss(pred.float(), noise.float())
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for ckpt in (True, False):
        if ckpt:
            unet.enable_gradient_checkpointing()
        else:
            unet.disable_gradient_checkpointing()
        t = best(train_step, min_time=0, min_runs=2)
        rows.append((f"LoRA train step, checkpointing {'on' if ckpt else 'off'}", ours[ckpt], t))
    print(f"training: LoRA r{rank} alpha {alpha} on to_q/to_k/to_v/to_out.0 via {lora_note}, "
          f"{sum(p.numel() for p in params)} trainable parameters; PyTorch max RSS {max_rss_gib():.1f} GiB")

print(f"{'model (' + str(size) + '²)':<40} {'ours s':>8} {'torch s':>8} {'ours/torch':>10}")
for name, ours_s, theirs in rows:
    print(f"{name:<40} {ours_s:>8.2f} {theirs:>8.2f} {ours_s / theirs:>10.2f}")
PY
