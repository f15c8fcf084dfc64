"""Every video backend at its published size, with random weights, run once on the CPU (issue 32).

For each backend the script builds the real transformer / UNet and VAE from their published configs (below, next to
`bench_sds.py`'s, which it reuses) with random weights in bfloat16, a one-layer text encoder of the real output
width in place of T5 / UMT5-XXL (the encoders run once per prompt and matter neither for shapes nor for time per
step), and writes the pipeline with `save_pretrained`. Each call then runs in its own process, loading that folder
through the same `from_pretrained` code a user's machine runs with the real weights, so memory is freed between
calls and each call's peak RSS is its own:

- `vae`: one VAE encode / decode of a short clip at the smallest size the model takes;
- `sds`: one `VideoGuidance.predict_x0` of a 16-frame render (the paper's M) at the smallest SDS size, the loss
  `||render - sg(x0)||^2` backpropagated into the render (the guidance backends: ltx, wan, svd);
- `generation`: one denoising step through the generator classes `fourreal generate` uses: text-to-video and the
  known-frame video (LTX, Wan 2.2), or the orbit backends' image-to-video with their LoRA (a random LoRA of the
  published rank, saved in diffusers' format and loaded with `load_lora_weights` + `fuse_lora`).

Prints one JSON object: per backend the parameters (millions, per component, at the full published size), the
bf16 weights in GB, the build / save seconds, and per call the load and call seconds, the peak RSS and the error, if
any. Wan2.1-I2V-14B does not fit this machine in bf16 (its transformer alone is about 33 GB); it runs at its real
width with `--wan21-layers` of its 40 blocks (default 8), and its parameters are counted at full depth on the meta
device.

    python benchmarks/real_architectures_cpu.py                        # every backend, about 17 minutes, 2 cores
    python benchmarks/real_architectures_cpu.py --backends ltx svd --calls vae sds
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tiny_orbit.save_tiny_lora: the LoRA writer the tests use
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_sds import (LTX_TRANSFORMER, SVD_CLIP, SVD_SCHEDULER, SVD_VAE, WAN_TRANSFORMER, WAN_VAE,  # noqa: E402
                       _text_stand_in)

PROMPT = "a corgi running on a beach, waves in the background, golden hour"
SDS_FRAMES = 16
CALLS = ("vae", "sds", "generation")

# ---------------------------------------------------------------------------------------------- published configs
#: LTX-Video 0.9.5's VAE (diffusers scripts/convert_ltx_to_diffusers.py, get_vae_config("0.9.5")): a deeper
#: encoder with separate spatial / temporal downsampling and a timestep-conditioned decoder. Its transformer is the
#: 2B one of 0.9.1 (bench_sds.LTX_TRANSFORMER), its scheduler flow matching without dynamic shifting.
LTX_095_VAE = dict(in_channels=3, out_channels=3, latent_channels=128, block_out_channels=(128, 256, 512, 1024, 2048),
                   down_block_types=("LTXVideo095DownBlock3D",) * 4, decoder_block_out_channels=(256, 512, 1024),
                   layers_per_block=(4, 6, 6, 2, 2), decoder_layers_per_block=(5, 5, 5, 5),
                   spatio_temporal_scaling=(True, True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
                   decoder_inject_noise=(False, False, False, False),
                   downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
                   upsample_residual=(True, True, True), upsample_factor=(2, 2, 2), timestep_conditioning=True,
                   patch_size=4, patch_size_t=1, resnet_norm_eps=1e-6, scaling_factor=1.0, encoder_causal=True,
                   decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)
#: CogVideoX-5B-I2V (diffusers scripts/convert_cogvideox_to_diffusers.py, 5B: 42 layers, 48 heads, RoPE, the image
#: latent concatenated: 32 input channels; learned positions for 49 frames at 480 x 720, so it runs only at that size).
COGVIDEOX_I2V_TRANSFORMER = dict(
    num_attention_heads=48, attention_head_dim=64, in_channels=32, out_channels=16, num_layers=42,
    use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True, ofs_embed_dim=None, patch_size=2,
    patch_size_t=None, sample_height=60, sample_width=90, sample_frames=49, text_embed_dim=4096, time_embed_dim=512,
    max_text_seq_length=226, temporal_compression_ratio=4)
COGVIDEOX_VAE = dict(scaling_factor=0.7, invert_scale_latents=False)  # the rest: AutoencoderKLCogVideoX's defaults
COGVIDEOX_SCHEDULER = dict(snr_shift_scale=1.0, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                           clip_sample=False, num_train_timesteps=1000, prediction_type="v_prediction",
                           rescale_betas_zero_snr=True, set_alpha_to_one=True, timestep_spacing="trailing")
#: Wan2.1-I2V-14B-480P (diffusers scripts/convert_wan_to_diffusers.py, "Wan-I2V-14B-480p"): 36 input channels (noise,
#: the encoded condition video, a 4-channel frame mask), CLIP ViT-H/14 tokens through added key / value projections.
#: AutoencoderKLWan's defaults are Wan 2.1's VAE (z 16, 8x8x4).
WAN21_I2V_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36,
                             out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40,
                             cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280,
                             added_kv_proj_dim=5120, rope_max_seq_len=1024)
WAN21_VAE: Dict[str, Any] = {}
WAN21_CLIP = SVD_CLIP  # the same CLIP ViT-H/14 (open_clip's ViT-H-14: width 1280, 32 layers, 16 heads, patch 14)
#: SVD-xt's UNet: UNetSpatioTemporalConditionModel's defaults with the published sample size and frame count.
SVD_XT_UNET = dict(sample_size=96, num_frames=25)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Networks built directly in `dtype`: a 5B model in float32 first would need twice the memory."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def depth(config: Dict[str, Any], layers: Optional[int]) -> Dict[str, Any]:
    return {**config, "num_layers": layers} if layers else config


# Each builder makes the networks inside `place()` (the meta device when only counting) and the rest outside it.
def build_ltx(layers: Optional[int] = None, place=contextlib.nullcontext):
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,
                           LTXVideoTransformer3DModel)
    from transformers import ByT5Tokenizer

    with place():
        transformer = LTXVideoTransformer3DModel(**depth(LTX_TRANSFORMER, layers))
        vae, text_encoder = AutoencoderKLLTXVideo(**LTX_095_VAE), _text_stand_in("t5")
    return LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False), vae=vae,
                       text_encoder=text_encoder, tokenizer=ByT5Tokenizer(), transformer=transformer)


def build_wan22(layers: Optional[int] = None, place=contextlib.nullcontext):
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import ByT5Tokenizer

    with place():
        transformer = WanTransformer3DModel(**depth(WAN_TRANSFORMER, layers))
        vae, text_encoder = AutoencoderKLWan(**WAN_VAE), _text_stand_in("umt5")
    return WanPipeline(tokenizer=ByT5Tokenizer(), text_encoder=text_encoder, vae=vae,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer,
                       expand_timesteps=True)


def build_svd(layers: Optional[int] = None, place=contextlib.nullcontext):
    import transformers
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)

    with place():
        vae, unet = AutoencoderKLTemporalDecoder(**SVD_VAE), UNetSpatioTemporalConditionModel(**SVD_XT_UNET)
        image_encoder = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**SVD_CLIP))
    return StableVideoDiffusionPipeline(vae=vae, unet=unet, image_encoder=image_encoder,
                                        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
                                        feature_extractor=transformers.CLIPImageProcessor())


def build_cogvideox_i2v(layers: Optional[int] = None, place=contextlib.nullcontext):
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)
    from transformers import ByT5Tokenizer

    with place():
        transformer = CogVideoXTransformer3DModel(**depth(COGVIDEOX_I2V_TRANSFORMER, layers))
        vae, text_encoder = AutoencoderKLCogVideoX(**COGVIDEOX_VAE), _text_stand_in("t5")
    return CogVideoXImageToVideoPipeline(tokenizer=ByT5Tokenizer(), text_encoder=text_encoder, vae=vae,
                                         transformer=transformer,
                                         scheduler=CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER))


def build_wan21_i2v(layers: Optional[int] = None, place=contextlib.nullcontext):
    import transformers
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    with place():
        transformer = WanTransformer3DModel(**depth(WAN21_I2V_TRANSFORMER, layers))
        vae, text_encoder = AutoencoderKLWan(**WAN21_VAE), _text_stand_in("umt5")
        image_encoder = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**WAN21_CLIP))
    return WanImageToVideoPipeline(
        tokenizer=transformers.ByT5Tokenizer(), text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
        image_encoder=image_encoder,
        image_processor=transformers.CLIPImageProcessor(crop_size={"height": 224, "width": 224},
                                                        size={"shortest_edge": 224}))


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    build: Callable[..., Any]
    """(layers=None: the published depth, place=a context for the networks) -> the pipeline"""
    guidance: Optional[str]
    """`--pipeline.guidance.backend` name, or None (not an SDS backend)."""
    generator: Optional[str]
    """`fourreal generate --backend` name, `--freeze-backend` name (orbit), or None (guidance only)."""
    size: Tuple[int, int]
    """(height, width): the smallest the VAE x patch grid takes (CogVideoX-5B-I2V: its learned positions' size)."""
    vae_frames: int
    full_layers: int
    lora_rank: int = 0
    """Orbit backends: the rank of the random LoRA (the published LoRA's, where known)."""


BACKENDS: Dict[str, Backend] = {backend.name: backend for backend in [
    Backend("ltx", "LTX-Video 0.9.5 (2B transformer, timestep-conditioned VAE)", build_ltx, "ltx", "ltx",
            (32, 32), 9, LTX_TRANSFORMER["num_layers"]),
    Backend("wan", "Wan 2.2 TI2V-5B (48-channel 16x16x4 VAE, per-token timesteps)", build_wan22, "wan", "wan",
            (32, 32), 5, WAN_TRANSFORMER["num_layers"]),
    Backend("svd", "Stable Video Diffusion img2vid-xt (UNet, CLIP ViT-H image encoder)", build_svd, "svd", None,
            (64, 64), 4, 0),
    Backend("cogvideox-dimensionx", "CogVideoX-5B-I2V + a DimensionX-rank (256) orbit LoRA", build_cogvideox_i2v,
            None, "cogvideox-dimensionx", (480, 720), 5, COGVIDEOX_I2V_TRANSFORMER["num_layers"], lora_rank=256),
    Backend("wan21-orbit", "Wan2.1-I2V-14B-480P + an orbit LoRA", build_wan21_i2v, None, "wan21-orbit",
            (32, 32), 5, WAN21_I2V_TRANSFORMER["num_layers"], lora_rank=32),
]}  # fmt: skip


# ---------------------------------------------------------------------------------------------- measuring
def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # Linux: KiB


def millions(module: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 1)


def component_parameters(pipe) -> Dict[str, float]:
    return {name: millions(module) for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)}


def full_size_parameters(backend: Backend) -> Dict[str, float]:
    """Parameters per component at the published depth, built on the meta device (no memory)."""
    with contextlib.redirect_stdout(sys.stderr):
        return component_parameters(backend.build(None, lambda: torch.device("meta")))


def build_and_save(backend: Backend, folder: Path, layers: Optional[int]) -> Dict[str, Any]:
    """The random-weight pipeline in bf16, written with save_pretrained (plus the orbit LoRA file)."""
    torch.manual_seed(0)
    start = time.perf_counter()
    with default_dtype(torch.bfloat16), contextlib.redirect_stdout(sys.stderr):
        pipe = backend.build(layers)
    built = time.perf_counter() - start
    report: Dict[str, Any] = {"parameters_millions_built": component_parameters(pipe), "build_s": round(built, 1)}
    start = time.perf_counter()
    pipe.save_pretrained(str(folder / "pipeline"), max_shard_size="2GB")  # safetensors copies a shard to write it
    report["save_s"] = round(time.perf_counter() - start, 1)
    if backend.lora_rank:  # after saving: peft leaves its wrappers (`...to_k.base_layer.weight`) in the transformer
        from tiny_orbit import save_tiny_lora

        lora = save_tiny_lora(type(pipe), pipe.transformer, folder / "lora", "orbit_lora.safetensors",
                              rank=backend.lora_rank, scale=0.01)
        report["lora_mb"] = round(lora.stat().st_size / 2**20, 1)
    report["on_disk_gb"] = round(sum(f.stat().st_size for f in (folder / "pipeline").rglob("*") if f.is_file())
                                 / 2**30, 2)
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def random_frames(count: int, size: Tuple[int, int]):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (count, *size, 3), dtype=np.uint8)


def call_vae(backend: Backend, pipeline: Path) -> Dict[str, Any]:
    """One encode / decode of `vae_frames` frames at the backend's size, through the loaded pipeline's VAE."""
    from diffusers import DiffusionPipeline

    start = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(str(pipeline), dtype=torch.bfloat16)
    loaded = time.perf_counter() - start
    vae = pipe.vae
    h, w = backend.size
    with torch.no_grad():
        start = time.perf_counter()
        if backend.name == "svd":  # an image VAE with a temporal decoder: frames are the batch
            video = torch.rand(backend.vae_frames, 3, h, w, dtype=vae.dtype) * 2 - 1
            latents = vae.encode(video).latent_dist.mode()
            encoded = time.perf_counter() - start
            decoded = vae.decode(latents, num_frames=backend.vae_frames).sample
        else:
            video = torch.rand(1, 3, backend.vae_frames, h, w, dtype=vae.dtype) * 2 - 1
            latents = vae.encode(video).latent_dist.mode()
            encoded = time.perf_counter() - start
            extra = {}
            if getattr(vae.config, "timestep_conditioning", False):
                extra["temb"] = torch.zeros(1, dtype=latents.dtype)
            decoded = vae.decode(latents, return_dict=False, **extra)[0]
        total = time.perf_counter() - start
    return {"load_s": round(loaded, 1), "encode_s": round(encoded, 2), "decode_s": round(total - encoded, 2),
            "latents": list(latents.shape), "decoded": list(decoded.shape), "dtype": str(latents.dtype),
            "finite": bool(torch.isfinite(decoded).all())}


def call_sds(backend: Backend, pipeline: Path) -> Dict[str, Any]:
    """`GuidanceConfig.build` from the saved folder, then one predict_x0 + backward into a leaf render."""
    from fourreal_ns.guidance import GuidanceConfig

    h, w = backend.size
    config = GuidanceConfig(backend=backend.guidance, model_id=str(pipeline), dtype="bfloat16", device="cpu",
                            sds_height=h, sds_width=w)
    start = time.perf_counter()
    guidance = config.build(PROMPT, "cpu")
    loaded = time.perf_counter() - start
    torch.manual_seed(0)
    render = torch.rand(SDS_FRAMES, 3, h, w, requires_grad=True)
    start = time.perf_counter()
    x0 = guidance.predict_x0(render, render[0].detach(), 0.5)
    predicted = time.perf_counter() - start
    loss = ((render - x0.detach()) ** 2).mean()
    loss.backward()
    total = time.perf_counter() - start
    return {"load_s": round(loaded, 1), "predict_x0_s": round(predicted, 2), "step_s": round(total, 2),
            "sds_size": [h, w], "frames": SDS_FRAMES, "x0_finite": bool(torch.isfinite(x0).all()),
            "render_grad_norm": round(float(render.grad.norm()), 4)}


def call_generation(backend: Backend, pipeline: Path, folder: Path) -> Dict[str, Any]:
    """One denoising step of `fourreal generate`'s generator: known frames (and text-to-video where it has it)."""
    h, w = backend.size
    start = time.perf_counter()
    if backend.lora_rank:
        from fourreal_ns.generate.orbit_backends import OrbitGenerator, OrbitSettings, check_orbit_inputs

        settings = OrbitSettings(backend=backend.generator, model_id=str(pipeline),
                                 lora=str(folder / "lora" / "orbit_lora.safetensors"), width=w, height=h,
                                 orbit_width=w, orbit_height=h, num_inference_steps=1, dtype="bfloat16",
                                 device="cpu")  # fmt: skip
        check_orbit_inputs(settings)
        generator = OrbitGenerator(settings)
    else:
        from fourreal_ns.generate.video_models import GeneratorSettings, load_generator

        generator = load_generator(GeneratorSettings(backend=backend.generator, model_id=str(pipeline), width=w,
                                                     height=h, num_inference_steps=1, dtype="bfloat16",
                                                     device="cpu"))  # fmt: skip
    report: Dict[str, Any] = {"load_s": round(time.perf_counter() - start, 1), "size": [h, w]}
    new = backend.vae_frames - 1
    start = time.perf_counter()
    frames = generator.continue_video(PROMPT, "", random_frames(1, (h, w)), new, seed=0)
    report["known_frame_step_s"] = round(time.perf_counter() - start, 2)
    report["known_frame_output"] = list(frames.shape)
    if not backend.lora_rank:
        start = time.perf_counter()
        frames = generator.text_to_video(PROMPT, "", backend.vae_frames, seed=0)
        report["text_to_video_step_s"] = round(time.perf_counter() - start, 2)
        report["text_to_video_output"] = list(frames.shape)
    return report


def run_call(backend: Backend, call: str, folder: Path) -> Dict[str, Any]:
    """One call in this (child) process; the JSON result names the error instead of raising."""
    torch.manual_seed(0)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if call == "vae":
                result = call_vae(backend, folder / "pipeline")
            elif call == "sds":
                result = call_sds(backend, folder / "pipeline")
            else:
                result = call_generation(backend, folder / "pipeline", folder)
    except Exception as error:  # noqa: BLE001 - the report names every defect
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {str(error)[:600]}"}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def applicable(backend: Backend, call: str) -> Optional[str]:
    """Why `call` does not apply to `backend`, or None."""
    if call == "sds" and backend.guidance is None:
        return "not an SDS backend (docs/generate.md: why the orbit models' weights are not wired to the guidance)"
    if call == "generation" and backend.generator is None:
        return "guidance only (no prompt: SVD is image-to-video without text)"
    return None


def child(args: List[str]) -> Dict[str, Any]:
    """Run this script's `--_child` in a fresh process; its last stdout line is its JSON."""
    process = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = process.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {process.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def layers_for(backend: Backend, wan21_layers: int) -> Optional[int]:
    return wan21_layers if backend.name == "wan21-orbit" and wan21_layers < backend.full_layers else None


def measure_backend(backend: Backend, calls: List[str], wan21_layers: int, scratch: Path) -> Dict[str, Any]:
    report: Dict[str, Any] = {"description": backend.description}
    with contextlib.redirect_stdout(sys.stderr):
        full = full_size_parameters(backend)
    report["parameters_millions"] = full
    report["bf16_weights_gb"] = round(2 * 1e6 * sum(full.values()) / 2**30, 1)
    layers = layers_for(backend, wan21_layers)
    if layers:
        report["run_at"] = f"{layers} of {backend.full_layers} transformer blocks, every width as published"
    folder = scratch / backend.name
    try:
        report["build"] = child(["--_child", backend.name, "--_call", "build", "--_folder", str(folder),
                                 "--wan21-layers", str(wan21_layers)])  # fmt: skip
        for call in calls:
            reason = applicable(backend, call)
            report[call] = {"skipped": reason} if reason else child(
                ["--_child", backend.name, "--_call", call, "--_folder", str(folder)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--calls", nargs="+", choices=CALLS, default=list(CALLS))
    parser.add_argument("--wan21-layers", type=int, default=8,
                        help="Wan2.1-I2V-14B's transformer blocks to build (40: all, about 33 GB in bf16)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the saved pipelines (deleted)")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_call", help=argparse.SUPPRESS)
    parser.add_argument("--_folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        backend = BACKENDS[args._child]
        if args._call == "build":
            args._folder.mkdir(parents=True, exist_ok=True)
            result = build_and_save(backend, args._folder, layers_for(backend, args.wan21_layers))
        else:
            result = run_call(backend, args._call, args._folder)
        print(json.dumps(result))
        return result

    report: Dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "dtype": "bfloat16"}
    import diffusers

    report["diffusers"] = diffusers.__version__
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="real_architectures_", dir=args.scratch) as scratch:
        for name in args.backends:
            began = time.perf_counter()
            report[name] = measure_backend(BACKENDS[name], args.calls, args.wan21_layers, Path(scratch))
            report[name]["seconds"] = round(time.perf_counter() - began, 1)
            print(f"{name}: {report[name]['seconds']} s", file=sys.stderr)
            gc.collect()
    report["total_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
