"""Milliseconds and peak memory per video-SDS step for each guidance backend (ltx, wan, svd).

One SDS step = ``guidance.predict_x0(render, cond, sigma)`` on a 16-frame video at the backend's SDS size plus the
loss ``||render - stopgrad(x0)||^2`` backpropagated into a leaf ``render`` tensor (the Gaussian rasteriser is not
included). Prints one JSON object to stdout; per backend: ``ms_per_step`` (median, mean, min), a one-step breakdown
(VAE encode / denoiser / VAE decode, measured with synchronising hooks in a separate pass), and peak memory
(CUDA: ``torch.cuda.max_memory_allocated`` during the timed steps, and its increase over the memory held before;
CPU: the process's peak RSS from ``resource.getrusage`` and its increase during the steps; every backend runs in its
own subprocess so the peaks do not mix).

Modes:

* default: tiny random-weight pipelines (``tests/tiny_diffusers.py``) saved to a temporary folder and loaded with
  ``GuidanceConfig.build`` -- the same path as real weights -- at 32 x 32 (cheap, runs anywhere);
* ``--real-architecture`` (CUDA): the published architectures (LTX-Video 2B with the 0.9.1 VAE, Wan 2.2 TI2V-5B,
  SVD-xt with CLIP ViT-H/14) built from their configs (written below) with random weights -- compute does not depend
  on the weights, nothing is downloaded -- timed at each backend's real SDS size. The T5/UMT5-XXL text encoders are
  replaced by a 1-layer encoder of the same output width: they run once at construction and never per step.
  ``--check-configs`` only instantiates them on the ``meta`` device and prints parameter counts (no GPU needed).

Goal reported against: <= 100 ms per SDS step for LTX 2B with 16 frames on an H100.

    python benchmarks/bench_sds.py                                   # tiny, CPU
    python benchmarks/bench_sds.py --device cuda --real-architecture --backends ltx --repeats 20
    python benchmarks/bench_sds.py --real-architecture --check-configs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

BACKENDS = ("ltx", "wan", "svd")
PROMPT = "a corgi running on a beach, waves in the background, golden hour"
NUM_FRAMES = 16

# ---------------------------------------------------------------------------------------------- real configs
#: LTX-Video 2B transformer (0.9.0 / 0.9.1 / 0.9.5 share it).
LTX_TRANSFORMER = dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
                       attention_head_dim=64, cross_attention_dim=2048, num_layers=28, caption_channels=4096,
                       qk_norm="rms_norm_across_heads")
#: LTX-Video 0.9.1 VAE (diffusers' scripts/convert_ltx_to_diffusers.py); 0.9.5's VAE is of similar cost.
LTX_VAE = dict(in_channels=3, out_channels=3, latent_channels=128, block_out_channels=(128, 256, 512, 512),
               decoder_block_out_channels=(256, 512, 1024), layers_per_block=(4, 3, 3, 3, 4),
               decoder_layers_per_block=(5, 6, 7, 8), spatio_temporal_scaling=(True, True, True, False),
               decoder_spatio_temporal_scaling=(True, True, True), decoder_inject_noise=(False, True, True, True),
               upsample_residual=(True, True, True), upsample_factor=(2, 2, 2), timestep_conditioning=True,
               patch_size=4, patch_size_t=1, resnet_norm_eps=1e-6, scaling_factor=1.0, encoder_causal=True,
               decoder_causal=False)
#: Wan 2.2 TI2V-5B transformer (dim 3072 = 24 x 128, ffn 14336, 30 layers) and Wan 2.2 VAE (16x16x4, z 48).
WAN_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48,
                       out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
                       qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, rope_max_seq_len=1024)
WAN_VAE = dict(base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
               temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
               out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
               latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
#: SVD-xt: diffusers' UNetSpatioTemporalConditionModel defaults are SVD's UNet; the VAE is SD's KL-f8 encoder with a
#: temporal decoder.
SVD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
               block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=768,
               scaling_factor=0.18215, force_upcast=True)
SVD_CLIP = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")
SVD_SCHEDULER = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
                     num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                     steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True)


def _text_stand_in(kind: str):
    """1-layer T5/UMT5 with the real 4096-wide output (the XXL encoders run once at construction only)."""
    import transformers

    kwargs = dict(vocab_size=384, d_model=4096, d_kv=64, d_ff=256, num_layers=1, num_heads=2,
                  relative_attention_num_buckets=8, dropout_rate=0.0)
    if kind == "umt5":
        return transformers.UMT5EncoderModel(transformers.UMT5Config(**kwargs))
    return transformers.T5EncoderModel(transformers.T5Config(**kwargs))


def real_ltx(device: torch.device):
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,
                           LTXVideoTransformer3DModel)
    from transformers import ByT5Tokenizer

    with torch.device(device):  # networks only: schedulers compute on the CPU at construction
        vae, transformer = AutoencoderKLLTXVideo(**LTX_VAE), LTXVideoTransformer3DModel(**LTX_TRANSFORMER)
        text_encoder = _text_stand_in("t5")
    return LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                       tokenizer=ByT5Tokenizer(), transformer=transformer)


def real_wan(device: torch.device):
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import ByT5Tokenizer

    with torch.device(device):
        vae, transformer = AutoencoderKLWan(**WAN_VAE), WanTransformer3DModel(**WAN_TRANSFORMER)
        text_encoder = _text_stand_in("umt5")
    return WanPipeline(tokenizer=ByT5Tokenizer(), text_encoder=text_encoder, vae=vae,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer,
                       expand_timesteps=True)


def real_svd(device: torch.device):
    import transformers
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)

    with torch.device(device):
        vae, unet = AutoencoderKLTemporalDecoder(**SVD_VAE), UNetSpatioTemporalConditionModel()
        image_encoder = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**SVD_CLIP))
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=image_encoder, unet=unet,
                                        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
                                        feature_extractor=transformers.CLIPImageProcessor())


REAL_BUILDERS: Dict[str, Callable] = {"ltx": real_ltx, "wan": real_wan, "svd": real_svd}


# ---------------------------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def build_guidance(backend: str, real: bool, device: torch.device, dtype: str, folder: Path):
    from fourreal_ns.guidance import GuidanceConfig, backend_class

    if real:
        config = GuidanceConfig(backend=backend, dtype=dtype, model_id=f"<random {backend} architecture>")
        pipe = REAL_BUILDERS[backend](device)
        pipe.to(dtype={"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype])
        return backend_class(backend)(config, PROMPT, device, pipe=pipe)
    from tiny_diffusers import TINY_SAVERS, TINY_SDS_SIZE

    TINY_SAVERS[backend](folder / backend)
    h, w = TINY_SDS_SIZE
    config = GuidanceConfig(backend=backend, model_id=str(folder / backend), dtype=dtype, sds_height=h, sds_width=w)
    return config.build(PROMPT, device)


def sds_step(guidance, render: torch.Tensor, cond: torch.Tensor, sigma: float) -> None:
    x0 = guidance.predict_x0(render, cond, sigma)
    loss = ((render - x0.detach()) ** 2).mean()
    loss.backward()
    render.grad = None


def breakdown(guidance, render, cond, device) -> Dict[str, float]:
    """One extra step with synchronising timers around VAE encode/decode and the denoiser."""
    totals: Dict[str, float] = {"vae_encode_ms": 0.0, "denoiser_ms": 0.0, "vae_decode_ms": 0.0}

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            _sync(device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(device)
            totals[key] += 1000 * (time.perf_counter() - start)
            return out
        return wrapper

    vae, denoiser = guidance.vae, guidance.denoiser
    vae.encode, vae.decode = timed("vae_encode_ms", vae.encode), timed("vae_decode_ms", vae.decode)
    denoiser_forward = denoiser.forward
    denoiser.forward = timed("denoiser_ms", denoiser_forward)
    try:
        sds_step(guidance, render, cond, 0.5)
    finally:
        del vae.encode, vae.decode, denoiser.forward
    return {k: round(v, 2) for k, v in totals.items()}


def run_backend(backend: str, real: bool, device: torch.device, dtype: str, repeats: int, warmup: int) -> Dict:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench_sds_") as tmp, contextlib.redirect_stdout(sys.stderr):
        start = time.perf_counter()
        guidance = build_guidance(backend, real, device, dtype, Path(tmp))
        build_s = time.perf_counter() - start
    h, w = guidance.sds_size
    render = torch.rand(NUM_FRAMES, 3, h, w, device=device).requires_grad_(True)
    cond = torch.rand(3, h, w, device=device)
    for _ in range(warmup):
        sds_step(guidance, render, cond, 0.5)
    _sync(device)
    if device.type == "cuda":
        held = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _rss_mb()
    times = []
    for i in range(repeats):
        sigma = 0.2 + 0.6 * i / max(repeats - 1, 1)
        _sync(device)
        start = time.perf_counter()
        sds_step(guidance, render, cond, sigma)
        _sync(device)
        times.append(1000 * (time.perf_counter() - start))
    result: Dict[str, Any] = {
        "mode": "real-architecture" if real else "tiny", "device": str(device), "dtype": dtype,
        "sds_size": [h, w], "frames": NUM_FRAMES, "guidance_scale": guidance.guidance_scale,
        "ms_per_step": {"median": round(statistics.median(times), 2), "mean": round(statistics.mean(times), 2),
                        "min": round(min(times), 2)},
        "repeats": repeats, "build_s": round(build_s, 2),
        "parameters_millions": round(sum(p.numel() for p in guidance.parameters()) / 1e6, 2),
    }
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        result["peak_memory_mb"] = round(peak / 2**20, 1)
        result["peak_increase_over_weights_mb"] = round((peak - held) / 2**20, 1)
        result["gpu"] = torch.cuda.get_device_name(device)
    else:
        result["peak_rss_mb"] = round(_rss_mb(), 1)
        result["peak_rss_increase_during_steps_mb"] = round(_rss_mb() - rss_before, 1)
        result["torch_threads"] = torch.get_num_threads()
    result["breakdown_one_step"] = breakdown(guidance, render, cond, device)
    return result


def check_configs() -> Dict[str, Any]:
    """Instantiate the real architectures on the meta device (no memory, no compute) and count parameters."""
    counts = {}
    for name, builder in REAL_BUILDERS.items():
        with contextlib.redirect_stdout(sys.stderr):
            pipe = builder(torch.device("meta"))
        counts[name] = {key: round(sum(p.numel() for p in module.parameters()) / 1e6, 1)
                        for key, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    return {"parameters_millions_meta": counts}


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
                        help="default: float32 on CPU, bfloat16 on CUDA")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per backend")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--real-architecture", action="store_true", help="real architectures, random weights (CUDA)")
    parser.add_argument("--check-configs", action="store_true", help="with --real-architecture: meta-device check")
    parser.add_argument("--threads", type=int, default=None, help="CPU: torch threads (default 1 for tiny)")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.real_architecture and args.check_configs:
        report = check_configs()
        print(json.dumps(report, indent=2))
        return report
    device = torch.device(args.device)
    if args.real_architecture and device.type != "cuda":
        parser.error("--real-architecture needs --device cuda (use --check-configs to validate the configs)")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("CUDA is not available")
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if device.type == "cpu":
        # tiny models gain nothing from intra-op threads; on shared machines oversubscription distorts timings
        torch.set_num_threads(args.threads or (1 if not args.real_architecture else torch.get_num_threads()))

    if args._child:  # one backend, in its own process, result as one JSON line
        print(json.dumps(run_backend(args._child, args.real_architecture, device, dtype, args.repeats,
                                     args.warmup)))
        return {}

    report: Dict[str, Any] = {"torch": torch.__version__, "goal": "<= 100 ms per SDS step, LTX 2B, 16 frames, H100"}
    raw = [arg for arg in (argv if argv is not None else sys.argv[1:]) if not arg.startswith("--backends=")]
    passthrough = _drop_option_values(raw, "--backends", BACKENDS)
    for backend in args.backends:
        proc = subprocess.run([sys.executable, __file__, *passthrough, "--_child", backend],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            report[backend] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            print(proc.stderr, file=sys.stderr)
            continue
        report[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))
    return report


def _drop_option_values(args: List[str], option: str, values) -> List[str]:
    """Remove ``option`` and the values that follow it."""
    out, skipping = [], False
    for arg in args:
        if arg == option:
            skipping = True
            continue
        if skipping and arg in values:
            continue
        skipping = False
        out.append(arg)
    return out


if __name__ == "__main__":
    main()
