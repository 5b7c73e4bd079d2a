#!/usr/bin/env python3
"""Side-by-side diffusion merge benchmark: diffusers vs `tlora merge` vs the disk floor.

Builds (once, outside the repository) an SDXL-shaped pipeline whose UNet is made by diffusers from SDXL's
UNet configuration (2.57 B parameters, random weights, fp16, one 5.1 GB file as SDXL ships it; the text
encoders and VAE are the tiny fixture's, which the LoRA does not touch), and a rank-32 kohya LoCon made by
sd-scripts' own `networks/lora.py` (dim 32 / alpha 16 on every Transformer2DModel linear and 1×1 conv,
conv_dim 32 / conv_alpha 16 on every ResnetBlock2D, Downsample2D and Upsample2D 3×3 conv), randomised and
saved in fp16 by its `save_weights`. Then times, in interleaved rounds on this machine:

  floor:     cp -r BASE OUT && sync                                   (the disk's own cost of the output)
  tlora:     tlora merge LOCON --base BASE -o OUT                     (fsyncs what it writes)
  tlora-avx2: the same with TLORA_SIMD=avx2                           (the AVX2 path on an AVX-512 CPU)
  diffusers: StableDiffusionXLPipeline.from_pretrained(fp16) + load_lora_weights + fuse_lora(scale 1)
             + unload_lora_weights + save_pretrained + sync, in a fresh process

with each one's peak RSS (GNU time), and compares the two merged UNets.

Usage: benchmarks/diffusion_merge_bench.py --sd-scripts DIR [--work /tmp/tlora-diffusion-bench]
           [--tlora .build/release/tlora] [--repeat 3] [--only floor tlora tlora-avx2] [--clean]
(--only: more rounds of some runs without diffusers' nine minutes; the outputs are then not compared.)
"""
import argparse, json, os, shutil, subprocess, sys

from merge_bench import peak_rss_run  # time and peak RSS of one command alone, by GNU time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Fixtures")

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json (the fields that set its shapes).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048, norm_num_groups=32,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)


def make_base(path):
    if os.path.exists(os.path.join(path, "model_index.json")):
        return
    import torch
    from diffusers import UNet2DConditionModel, StableDiffusionXLPipeline
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)  # build in fp16: 5 GB, not 10
    unet = UNet2DConditionModel(**SDXL_UNET)
    torch.set_default_dtype(torch.float32)
    print(f"UNet parameters: {sum(p.numel() for p in unet.parameters()) / 1e9:.3f} B", flush=True)
    tiny = StableDiffusionXLPipeline.from_pretrained(os.path.join(FIXTURES, "diffusion", "sdxl-tiny"), torch_dtype=torch.float16)
    pipe = StableDiffusionXLPipeline(vae=tiny.vae, text_encoder=tiny.text_encoder, text_encoder_2=tiny.text_encoder_2,
                                     tokenizer=tiny.tokenizer, tokenizer_2=tiny.tokenizer_2, unet=unet, scheduler=tiny.scheduler)
    pipe.save_pretrained(path, max_shard_size="10GB")


LOCON_SCRIPT = r'''
import json, os, sys, torch
sys.path.insert(0, os.path.join(sys.argv[4], "..", "Fixtures"))
import diffusion_fixtures as d
d.sd_scripts_env(sys.argv[3])
import lora as kohya_lora
from diffusers import StableDiffusionXLPipeline
pipe = StableDiffusionXLPipeline.from_pretrained(sys.argv[1], torch_dtype=torch.float16)
torch.manual_seed(1)
net = kohya_lora.create_network(1.0, 32, 16.0, pipe.vae, [pipe.text_encoder, pipe.text_encoder_2], pipe.unet, conv_dim=32, conv_alpha=16.0)
net.apply_to([pipe.text_encoder, pipe.text_encoder_2], pipe.unet, apply_text_encoder=False, apply_unet=True)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.randn_like(p) * 0.01)
net.save_weights(sys.argv[2], torch.float16, {"ss_network_module": "networks.lora", "ss_network_dim": "32", "ss_network_alpha": "16.0",
                 "ss_network_args": json.dumps({"conv_dim": "32", "conv_alpha": "16.0"}), "ss_base_model_version": "sdxl_base_v1-0"})
print(len(net.unet_loras), "modules")
'''

DIFFUSERS_SCRIPT = r'''
import os, sys, torch
from diffusers import StableDiffusionXLPipeline
base, locon, out = sys.argv[1:4]
pipe = StableDiffusionXLPipeline.from_pretrained(base, torch_dtype=torch.float16)
pipe.load_lora_weights(locon)
pipe.fuse_lora(lora_scale=1.0)
pipe.unload_lora_weights()
pipe.save_pretrained(out, max_shard_size="10GB")
os.sync()
'''


def make_locon(base, path, sd_scripts, work):
    if os.path.exists(path):
        return
    script = os.path.join(work, "make_locon.py")
    open(script, "w").write(LOCON_SCRIPT)
    subprocess.run([sys.executable, script, base, path, sd_scripts, HERE], check=True)


def unet_files(d):
    """Tensor name → file, over a pipeline's UNet files."""
    from safetensors import safe_open
    out = {}
    u = os.path.join(d, "unet")
    for f in sorted(os.listdir(u)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(u, f), "pt") as h:
                out.update({k: os.path.join(u, f) for k in h.keys()})
    return out


def compare(a, b, base):
    """Per changed tensor: the largest difference in f16 units in the last place between two merged UNets
    (one tensor of each at a time: three 5 GB UNets do not fit beside other work)."""
    import torch
    from safetensors import safe_open
    fa, fb, f0 = unet_files(a), unet_files(b), unet_files(base)
    def tensor(files, k):
        with safe_open(files[k], "pt") as h:
            return h.get_tensor(k)
    def ordered(x):
        i = x.view(torch.int16).to(torch.int32)
        return torch.where(i < 0, -32768 - i, i)
    worst, changed = 0, 0
    for k in fa:
        x = tensor(fa, k)
        if torch.equal(x, tensor(f0, k)):
            continue
        changed += 1
        worst = max(worst, (ordered(x) - ordered(tensor(fb, k))).abs().max().item())
    return changed, worst


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/tlora-diffusion-bench")
    p.add_argument("--tlora", default=os.path.join(HERE, "..", ".build", "release", "tlora"))
    p.add_argument("--sd-scripts", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", nargs="*", default=None, help="run only these (floor, tlora, tlora-avx2, diffusers)")
    p.add_argument("--clean", action="store_true", help="delete the work folder afterwards (about 20 GB)")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    base = os.path.join(args.work, "sdxl-fp16")
    locon = os.path.join(args.work, "sdxl-locon-r32.safetensors")
    make_base(base)
    make_locon(base, locon, args.sd_scripts, args.work)
    outs = {k: os.path.join(args.work, "out-" + k) for k in ("floor", "tlora", "tlora-avx2", "diffusers")}
    script = os.path.join(args.work, "diffusers_merge.py")
    open(script, "w").write(DIFFUSERS_SCRIPT)
    commands = {
        "floor": ["sh", "-c", f"cp -r '{base}' '{outs['floor']}' && sync"],
        "tlora": [args.tlora, "merge", locon, "--base", base, "-o", outs["tlora"]],
        "tlora-avx2": ["env", "TLORA_SIMD=avx2", args.tlora, "merge", locon, "--base", base, "-o", outs["tlora-avx2"]],
        "diffusers": [sys.executable, script, base, locon, outs["diffusers"]],
    }
    if args.only:
        commands = {k: v for k, v in commands.items() if k in args.only}
    results = {k: [] for k in commands}
    loads = []
    for _ in range(args.repeat):
        for k, cmd in commands.items():
            shutil.rmtree(outs[k], ignore_errors=True)
            subprocess.run(["sync"])
            loads.append(os.getloadavg()[0])
            results[k].append(peak_rss_run(cmd))
            print(k, results[k][-1], flush=True)
            if k in ("floor", "tlora-avx2") or (k == "tlora" and "diffusers" not in commands):
                # 5 GB each; only tlora's and diffusers' outputs are compared. Removing the others also
                # starts every timed run from the same page cache (no other tool's output in it).
                shutil.rmtree(outs[k])
    compared = "diffusers" in commands and "tlora" in commands
    if compared:
        changed, worst = compare(outs["tlora"], outs["diffusers"], base)
    best = {k: min(v, key=lambda t: t[0]) for k, v in results.items()}
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(base) for f in fs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU {cpu}, {os.cpu_count()} cores; base {size / 1e9:.2f} GB; LoCon {os.path.getsize(locon) / 1e6:.0f} MB; "
          f"load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'':10} {'best s':>8} {'runs s':>26} {'peak RSS':>10}")
    for k in commands:
        print(f"{k:10} {best[k][0]:8.2f} {' '.join(f'{t:.2f}' for t, _ in results[k]):>26} {best[k][1] / 1e9:8.2f} GB")
    for t in (t for t in ("tlora", "tlora-avx2") if t in commands and "floor" in commands and "diffusers" in commands):
        print(f"{t}: / floor {best[t][0] / best['floor'][0]:.2f}x; diffusers / {t} {best['diffusers'][0] / best[t][0]:.1f}x; "
              f"RSS {t} / diffusers {best[t][1] / best['diffusers'][1]:.3f}x")
    for t in (t for t in ("tlora", "tlora-avx2") if t in commands and "floor" in commands and "diffusers" not in commands):
        print(f"{t} / floor {best[t][0] / best['floor'][0]:.2f}x")
    if compared:
        print(f"UNet tensors changed: {changed}; largest difference tlora vs diffusers: {worst} f16 ulp "
              f"(diffusers fuses in f16, tlora in f32 rounded once)")
    print(json.dumps({k: {"best_s": best[k][0], "runs_s": [t for t, _ in results[k]], "peak_rss": best[k][1]} for k in commands}))
    if args.clean:
        shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
