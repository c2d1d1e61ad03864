#!/usr/bin/env bash
# lora-load-check.sh: load LoRA files with the real LoRA loaders of ComfyUI
# and/or AUTOMATIC1111's stable-diffusion-webui against SDXL base 1.0's UNet,
# and check that every key of each file is consumed and every weight update
# has its target's shape and alpha/rank · up·down's values.
#   ComfyUI: comfy.lora.model_lora_keys_unet, comfy.lora_convert.convert_lora,
#     comfy.lora.load_lora (its "lora key not loaded" list) and each patch's
#     calculate_weight, on ComfyUI's own SDXL UNetModel built on the meta device.
#   A1111: extensions-builtin/Lora's network.NetworkOnDisk (metadata →
#     SdVersion) and networks.load_network (convert_diffusers_name_to_compvis,
#     network_layer_mapping, the lora_unet → diffusion_model fallback; its
#     keys_failed_to_match) and each module's calc_updown, on a module tree of
#     SDXL's transformer Linears under sgm's names.
# No weights and no GPU are needed; what those programs need of a running app
# (GPU/device state, UI, options, the loaded model) or of packages this python
# lacks (safetensors, einops, gradio, torchvision ...) is replaced by
# stand-ins, listed in the output. scripts/lora_load_check.py is the check.
#
# Usage: scripts/lora-load-check.sh [--comfyui DIR] [--a1111 DIR] [--show N] FILE...
#   --comfyui DIR  a ComfyUI checkout (git clone https://github.com/comfyanonymous/ComfyUI)
#   --a1111 DIR    a stable-diffusion-webui checkout
#   --show N       list at most N unmatched keys or wrong updates per file (default 10)
#   FILE           a LoRA .safetensors file or a peft adapter folder
# At least one of --comfyui and --a1111. Prints matched/unmatched key counts
# per tool and file; exits 1 if any key is unmatched or any update is wrong.
# Needs: python3 with torch and numpy (Debian: apt-get install python3-torch).
# Example (files as `lorastudio train` writes them):
#   scripts/lora-load-check.sh --comfyui ~/src/ComfyUI --a1111 ~/src/stable-diffusion-webui \
#     ~/loras/oracle_diagrams.safetensors
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "lora-load-check: $*" >&2; exit 2; }
[[ $# -gt 0 ]] || die "no arguments (see --help)"
args=() tools=0 files=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--comfyui|--a1111)
		[[ $# -ge 2 ]] || die "$1 needs a folder"
		[[ -d "$2" ]] || die "$1 $2: not a folder"
		args+=("$1" "$2"); tools=$((tools + 1)); shift 2 ;;
	--show) [[ $# -ge 2 ]] || die "--show needs a number"; args+=("$1" "$2"); shift 2 ;;
	-h|--help) sed -n '2,29p' "$0"; exit 0 ;;
	-*) die "unknown flag $1 (see --help)" ;;
	*) [[ -e "$1" ]] || die "$1: no such file"; args+=("$1"); files=$((files + 1)); shift ;;
	esac
done
[[ $tools -gt 0 ]] || die "give --comfyui DIR and/or --a1111 DIR"
[[ $files -gt 0 ]] || die "no LoRA file given"

. "$here/torch-python.sh"
py=$(torch_python "torch, numpy") || die "no python with torch and numpy found (set PYTHON, or apt-get install python3-torch)"
exec "$py" "$here/lora_load_check.py" "${args[@]}"
