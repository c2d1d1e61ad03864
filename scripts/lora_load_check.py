"""Load LoRA files with the LoRA loaders of ComfyUI and of AUTOMATIC1111's
stable-diffusion-webui, from checkouts the user provides, against SDXL base
1.0's UNet, and report which keys each loader consumed.

Run it through scripts/lora-load-check.sh (which finds a python with torch).
Only the parts of those programs that need a GPU, a UI, model weights or
packages this python lacks are replaced by stand-ins (each is named where it is
made, and listed in the output); the key matching and the weight-update math
are theirs. The model is SDXL base 1.0's UNet built without weights: ComfyUI's
own UNetModel on the meta device, and for A1111 a module tree of the UNet's
transformer Linears (the layers a LoRA of this project targets) under the
names sgm's UNet gives them, checked against ComfyUI's where both are given.

Exit status 0 when every key of every file was consumed and every update has
the target's shape and alpha/rank · up·down's values; 1 otherwise; 2 on a usage
or import error.
"""

import argparse
import ast
import contextlib
import importlib
import json
import logging
import os
import sys
import tempfile
import types

import numpy as np
import torch

# SDXL base 1.0's UNet in the Stability layout: channels per level, transformer
# depth per level, cross-attention width.
SDXL_CHANNELS = (320, 640, 1280)
SDXL_DEPTH = (0, 2, 10)
SDXL_CONTEXT = 2048

# The config ComfyUI derives for SDXL base (model_detection's SDXL entry; the
# keys are its UNetModel's arguments).
COMFY_SDXL_UNET_CONFIG = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
    "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4,
    "model_channels": 320, "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
    "channel_mult": [1, 2, 4], "transformer_depth_middle": 10, "use_linear_in_transformer": True,
    "context_dim": 2048, "num_head_channels": 64, "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
    "use_temporal_attention": False, "use_temporal_resblock": False,
}

DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64}


def read_safetensors(path):
    """Our own reader (the safetensors package may be missing): tensors as
    float32 torch tensors, and the metadata."""
    if os.path.isdir(path):  # a peft adapter folder
        path = os.path.join(path, "adapter_model.safetensors")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        raw = data[lo:hi]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]]).astype(np.float32)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out, meta, path


def sdxl_linears():
    """Every Linear of SDXL base's transformers, Stability-layout name →
    (out, in) weight shape."""
    shapes = {}

    def transformer(prefix, c, depth):
        shapes[prefix + ".proj_in"] = (c, c)  # linear projections in SDXL
        shapes[prefix + ".proj_out"] = (c, c)
        for t in range(depth):
            b = "%s.transformer_blocks.%d" % (prefix, t)
            for attn, kv in (("attn1", c), ("attn2", SDXL_CONTEXT)):
                shapes[b + "." + attn + ".to_q"] = (c, c)
                shapes[b + "." + attn + ".to_k"] = (c, kv)
                shapes[b + "." + attn + ".to_v"] = (c, kv)
                shapes[b + "." + attn + ".to_out.0"] = (c, c)
            shapes[b + ".ff.net.0.proj"] = (8 * c, c)  # GEGLU: value and gate
            shapes[b + ".ff.net.2"] = (c, 4 * c)

    n = 1
    for level, (c, depth) in enumerate(zip(SDXL_CHANNELS, SDXL_DEPTH)):
        for _ in range(2):  # two ResNet(+transformer) blocks per level
            if depth:
                transformer("input_blocks.%d.1" % n, c, depth)
            n += 1
        n += 1  # the downsampler
    transformer("middle_block.1", SDXL_CHANNELS[-1], SDXL_DEPTH[-1])
    n = 0
    for c, depth in reversed(list(zip(SDXL_CHANNELS, SDXL_DEPTH))):
        for _ in range(3):
            if depth:
                transformer("output_blocks.%d.1" % n, c, depth)
            n += 1
    return shapes


def module_tree(shapes):
    """A torch module tree holding a meta-device Linear at each name."""
    root = torch.nn.Module()
    for name, (out_f, in_f) in shapes.items():
        parent = root
        parts = name.split(".")
        for p in parts[:-1]:
            child = getattr(parent, p, None)
            if child is None:
                child = torch.nn.Module()
                parent.add_module(p, child)
            parent = child
        parent.add_module(parts[-1], torch.nn.Linear(in_f, out_f, device="meta"))
    return root


def expected_update(sd, prefix, up_name, down_name):
    """scale · up · down as the file means it (scale alpha/rank where the file
    has alpha, else 1), as an (out, in) matrix; None if the factors do not
    chain."""
    up, down = sd[prefix + up_name], sd[prefix + down_name]
    up, down = up.reshape(up.shape[0], -1), down.reshape(down.shape[0], -1)
    if up.shape[1] != down.shape[0]:
        return None
    scale = 1.0
    if prefix + ".alpha" in sd:
        scale = sd[prefix + ".alpha"].item() / down.shape[0]
    return scale * (up @ down)


def factor_names(sd, key):
    """For a key naming the LoRA's up factor: (prefix, up suffix, down suffix)."""
    for up, down in ((".lora_up.weight", ".lora_down.weight"), (".lora.up.weight", ".lora.down.weight"),
                     (".lora_B.weight", ".lora_A.weight")):
        if key.endswith(up) and key[:-len(up)] + down in sd:
            return key[:-len(up)], up, down
    return None


def rel_diff(got, want):
    scale = want.abs().max().item() or 1.0
    return (got - want).abs().max().item() / scale


def stub(name, **attrs):
    """Registers a stand-in module (only for what cannot be imported here)."""
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(importlib.import_module(parent), child, m)
    STUBBED.append(name)
    return m


STUBBED = []


def ensure_importable(name, **attrs):
    """Imports name, or puts a stand-in in its place when the package is
    missing from this python (safetensors, einops, gradio ...)."""
    try:
        __import__(name)
    except ImportError:
        stub(name, **attrs)


class Captured(logging.Handler):
    """Keeps the log records the loaders emit."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def captured_logs():
    h = Captured()
    root = logging.getLogger()
    old = root.level, root.handlers
    root.handlers = [h]  # counted and summarised here, not printed one by one
    root.setLevel(logging.DEBUG)
    try:
        yield h.records
    finally:
        root.setLevel(old[0])
        root.handlers = old[1]


# ---------------------------------------------------------------- ComfyUI

def setup_comfyui(path):
    sys.path.insert(0, path)
    ensure_importable("safetensors")
    ensure_importable("safetensors.torch")
    ensure_importable("einops", rearrange=None, repeat=None)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True  # model_management: no GPU here
    try:
        import comfy.model_base  # noqa: F401
    except ImportError:
        # It imports every model family (torchvision, transformers ...);
        # lora.py uses it only for isinstance tests of non-SDXL families, so a
        # module whose every class is a new, unrelated class stands in.
        m = stub("comfy.model_base")
        m.__getattr__ = lambda name: type(name, (), {})
    import comfy.lora
    import comfy.ops
    import comfy.utils
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    unet = UNetModel(**COMFY_SDXL_UNET_CONFIG, dtype=torch.float32, device="meta",
                     operations=comfy.ops.disable_weight_init)
    model = torch.nn.Module()  # comfy.model_base.BaseModel's layout
    model.add_module("diffusion_model", unet)
    model.model_config = types.SimpleNamespace(unet_config=dict(COMFY_SDXL_UNET_CONFIG, dtype=torch.float32))
    return model


def comfy_update(patch, weight, key):
    """The weight ComfyUI makes from a zero weight and one patch at strength 1."""
    import comfy.lora
    ident = lambda a: a  # noqa: E731
    if hasattr(patch, "calculate_weight"):  # weight_adapter classes (2025 on)
        return patch.calculate_weight(weight, key, 1.0, 1.0, None, ident)
    return comfy.lora.calculate_weight([(1.0, patch, 1.0, None, None)], weight, key)


def check_comfyui(model, sd):
    import comfy.lora
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    sd_conv = dict(sd)
    try:  # comfy.sd.load_lora_for_models converts the keys first (2024 on)
        import comfy.lora_convert
        sd_conv = comfy.lora_convert.convert_lora(sd_conv)
    except ImportError:
        pass
    with captured_logs() as logs:
        patches = comfy.lora.load_lora(sd_conv, key_map)
    not_loaded = sorted(r.getMessage().split(": ", 1)[1] for r in logs
                        if r.getMessage().startswith("lora key not loaded: "))
    # target weight → the LoRA prefix that patches it, to compare with the file
    prefix_of = {}
    for k in sd_conv:
        names = factor_names(sd_conv, k)
        if names and names[0] in key_map:
            prefix_of[key_map[names[0]]] = names
    weights = model.state_dict()
    bad = []
    for target, patch in patches.items():
        shape = tuple(weights[target].shape)
        got = comfy_update(patch, torch.zeros(shape), target)
        names = prefix_of.get(target)
        if tuple(got.shape) != shape or names is None:
            bad.append("%s: update %s for weight %s" % (target, tuple(got.shape), shape))
            continue
        want = expected_update(sd_conv, *names)
        if want is None or tuple(want.shape) != shape:
            bad.append("%s: the file's factors do not make a %s update" % (target, shape))
            continue
        if rel_diff(got, want) > 1e-5:
            bad.append("%s: update differs from alpha/rank·up·down by %.3g" % (target, rel_diff(got, want)))
    return len(sd), len(sd) - len(not_loaded), not_loaded, len(patches), bad


# ---------------------------------------------------------------- A1111

def setup_a1111(path, unet_tree):
    lora_dir = os.path.join(path, "extensions-builtin", "Lora")
    sys.path.insert(0, path)
    sys.path.insert(0, lora_dir)
    ensure_importable("einops", rearrange=None, repeat=None)
    ensure_importable("gradio", Warning=print)  # UI

    class Model:  # sgm's DiffusionEngine as A1111 holds it: no text encoders here
        is_sdxl = True
        conditioner = types.SimpleNamespace(embedders=[])

    sd_model = Model()
    empty = tempfile.mkdtemp(prefix="lora-load-check-")
    sd_model.model = torch.nn.Module()  # OpenAIWrapper: .diffusion_model
    sd_model.model.add_module("diffusion_model", unet_tree)
    # The webui's own modules need the running app (options, the loaded
    # model, devices, hashing caches): stand-ins with what the loader reads.
    stub("modules.shared", sd_model=sd_model,
         opts=types.SimpleNamespace(lora_functional=False, lora_preferred_name="Alias from file",
                                    lora_bundled_ti_to_infotext=True, lora_in_memory_limit=0,
                                    lora_not_found_warning_console=False, lora_not_found_gradio_warning=False),
         # the Lora folder networks.py lists on import: empty here, the files
         # are given to load_network directly
         cmd_opts=types.SimpleNamespace(lora_dir=empty, lyco_dir_backcompat=empty),
         walk_files=lambda *a, **k: iter(()))
    stub("modules.devices", cpu=torch.device("cpu"), device=torch.device("cpu"), dtype=torch.float32,
         torch_gc=lambda: None, cond_cast_unet=lambda x: x)

    def read_state_dict(filename, *a, **k):  # the file is read by our reader
        return read_safetensors(filename)[0]

    def read_metadata_from_safetensors(filename):
        return read_safetensors(filename)[1]

    stub("modules.sd_models", read_state_dict=read_state_dict,
         read_metadata_from_safetensors=read_metadata_from_safetensors)
    stub("modules.errors", display=lambda e, msg: print(msg, e), report=lambda *a, **k: None)
    stub("modules.scripts")
    stub("modules.sd_hijack", model_hijack=types.SimpleNamespace(comments=[]))
    stub("modules.cache", cached_data_for_file=lambda sub, title, filename, func: func())
    stub("modules.hashes", sha256_from_cache=lambda *a, **k: None, sha256=lambda *a, **k: "")
    stub("modules.textual_inversion")
    stub("modules.textual_inversion.textual_inversion")
    try:
        import modules.models.sd3.mmdit  # noqa: F401
    except ImportError:
        # SD3's model (transformers ...): network*.py only test isinstance
        # against its QkvLinear, which SDXL has none of.
        stub("modules.models.sd3.mmdit", QkvLinear=type("QkvLinear", (torch.nn.Linear,), {}))
    import networks
    return networks, sd_model


def check_a1111(networks, sd_model, path, sd):
    import network
    nod = network.NetworkOnDisk(os.path.splitext(os.path.basename(path))[0], path)
    with captured_logs() as logs:
        net = networks.load_network(nod.name, nod)
    failed = {}
    for r in logs:  # load_network logs keys_failed_to_match at debug level
        msg = r.getMessage()
        if msg.startswith("Network ") and " didn't match keys: " in msg:
            failed = ast.literal_eval(msg.split(" didn't match keys: ", 1)[1])
    bad = []
    for key, module in net.modules.items():
        weight = module.sd_module.weight
        try:  # network_apply_weights counts a RuntimeError here as a failed layer
            got, _ = module.calc_updown(torch.zeros(weight.shape))
        except RuntimeError as e:
            bad.append("%s: %s" % (key, e))
            continue
        prefix = module.network_key.split(".", 1)[0]
        names = next((factor_names(sd, prefix + up) for up in (".lora_up.weight", ".lora_B.weight")
                      if factor_names(sd, prefix + up)), None)
        if tuple(got.shape) != tuple(weight.shape) or names is None:
            bad.append("%s: update %s for weight %s" % (key, tuple(got.shape), tuple(weight.shape)))
            continue
        want = expected_update(sd, *names)
        if want is None or tuple(want.shape) != tuple(weight.shape):
            bad.append("%s: the file's factors do not make a %s update" % (key, tuple(weight.shape)))
            continue
        if rel_diff(got, want) > 1e-5:
            bad.append("%s: update differs from alpha/rank·up·down by %.3g" % (key, rel_diff(got, want)))
    return len(sd), len(sd) - len(failed), sorted(failed), len(net.modules), bad, nod.sd_version.name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comfyui", help="a ComfyUI checkout")
    ap.add_argument("--a1111", help="a stable-diffusion-webui checkout")
    ap.add_argument("--show", type=int, default=10, help="list at most this many unmatched keys per file")
    ap.add_argument("files", nargs="+", help="LoRA .safetensors files (or peft adapter folders)")
    a = ap.parse_args()
    if not a.comfyui and not a.a1111:
        ap.error("give --comfyui DIR and/or --a1111 DIR")

    shapes = sdxl_linears()
    ok = True
    comfy_model = None
    if a.comfyui:
        comfy_model = setup_comfyui(os.path.abspath(a.comfyui))
        theirs = {}
        for k, v in comfy_model.state_dict().items():
            linear = k.endswith(".weight") and v.dim() == 2
            if linear and (".transformer_blocks." in k or k.endswith((".proj_in.weight", ".proj_out.weight"))):
                theirs[k[len("diffusion_model."):-len(".weight")]] = tuple(v.shape)
        if theirs != shapes:
            print("ComfyUI's SDXL UNet and this script's SDXL Linears differ: %d vs %d, e.g. %s"
                  % (len(theirs), len(shapes), sorted(set(theirs.items()) ^ set(shapes.items()))[:3]))
            ok = False
        else:
            print("ComfyUI's SDXL UNet (meta device, %d parameters) has the %d transformer Linears this script lists"
                  % (sum(v.numel() for v in comfy_model.state_dict().values()), len(shapes)))
    a1111 = setup_a1111(os.path.abspath(a.a1111), module_tree(shapes)) if a.a1111 else None
    print("stand-ins (not importable here, or app state):", ", ".join(STUBBED) or "none")

    for path in a.files:
        sd, meta, _ = read_safetensors(path)
        print("\n%s: %d tensors, metadata ss_base_model_version=%s ss_network_dim=%s ss_network_alpha=%s"
              % (path, len(sd), meta.get("ss_base_model_version"), meta.get("ss_network_dim"),
                 meta.get("ss_network_alpha")))
        results = []
        if comfy_model is not None:
            results.append(("ComfyUI", check_comfyui(comfy_model, sd)))
        if a1111 is not None:
            r = check_a1111(a1111[0], a1111[1], path if not os.path.isdir(path)
                            else os.path.join(path, "adapter_model.safetensors"), sd)
            print("  A1111 reads the metadata as SdVersion.%s" % r[5])
            results.append(("A1111", r[:5]))
        for tool, (n, matched, unmatched, modules, bad) in results:
            print("  %-7s keys matched %d / %d, unmatched %d; %d modules patched; %d updates wrong"
                  % (tool, matched, n, len(unmatched), modules, len(bad)))
            for k in unmatched[:a.show]:
                print("    unmatched: " + k)
            for b in bad[:a.show]:
                print("    wrong: " + b)
            if unmatched or bad or modules == 0:
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
