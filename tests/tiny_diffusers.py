"""Tiny random-weight diffusers pipelines for tests and CPU benchmarks.

Each ``save_tiny_*`` function builds a pipeline of the same classes a real checkpoint uses (LTX-Video, Wan 2.2
TI2V, Stable Video Diffusion), but from tiny configs with seeded random weights, and writes it with
``pipe.save_pretrained(folder)``. Tests then load it through exactly the ``from_pretrained`` code path that a user's
machine runs with real weights from the Hugging Face hub; nothing is downloaded.

Text encoders are small ``T5EncoderModel`` / ``UMT5EncoderModel`` instances built from configs, tokenised by
``transformers.ByT5Tokenizer()``, which needs no vocabulary file (it works on UTF-8 bytes).

The shapes mirror the real models where it matters for the guidance code: LTX's VAE compresses 8x in time
(``8k + 1`` frames) and the transformer uses patch size 1; Wan's VAE compresses 4x in time with the Wan 2.2 style
pixel patchification and the transformer uses a ``(1, 2, 2)`` patch; SVD's UNet takes 8 input channels (4 noisy
latent + 4 image latent) and a CLIP vision tower provides the image embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

PathLike = Union[str, Path]

#: (height, width) the tiny pipelines are meant to be run at (multiples of every tiny compression factor).
TINY_SDS_SIZE = (32, 32)


def _tiny_t5_encoder(kind: str = "t5"):
    """A 1-layer T5 (or UMT5) encoder whose vocabulary covers ByT5's byte tokens."""
    import transformers

    kwargs = dict(vocab_size=384, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                  relative_attention_num_buckets=8, dropout_rate=0.0)
    if kind == "umt5":
        return transformers.UMT5EncoderModel(transformers.UMT5Config(**kwargs)).eval()
    return transformers.T5EncoderModel(transformers.T5Config(**kwargs)).eval()


def _tokenizer():
    import transformers

    return transformers.ByT5Tokenizer()


def build_tiny_ltx(seed: int = 0):
    """An ``LTXPipeline`` with a 1-layer transformer, an 8x/8x-compressing tiny causal VAE and a tiny T5."""
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,
                           LTXVideoTransformer3DModel)

    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=1, caption_channels=16,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8,
        block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    # Non-trivial latent statistics so the (de)normalisation is exercised.
    vae.latents_mean.copy_(torch.linspace(-0.2, 0.2, 8))
    vae.latents_std.copy_(torch.linspace(0.5, 1.5, 8))
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae.eval(), text_encoder=_tiny_t5_encoder("t5"),
        tokenizer=_tokenizer(), transformer=transformer.eval(),
    )


def build_tiny_wan(seed: int = 0):
    """A ``WanPipeline`` in the Wan 2.2 TI2V layout (``expand_timesteps=True``) with tiny transformer/VAE/UMT5."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(seed)
    z_dim = 8
    vae = AutoencoderKLWan(
        base_dim=8, decoder_base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1, attn_scales=[],
        temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
        scale_factor_temporal=4, scale_factor_spatial=16,
        latents_mean=torch.linspace(-0.2, 0.2, z_dim).tolist(), latents_std=torch.linspace(0.5, 1.5, z_dim).tolist(),
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=z_dim, out_channels=z_dim,
        text_dim=16, freq_dim=32, ffn_dim=32, num_layers=1, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        tokenizer=_tokenizer(), text_encoder=_tiny_t5_encoder("umt5"), vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer.eval(), expand_timesteps=True,
    )


def build_tiny_svd(seed: int = 0):
    """A ``StableVideoDiffusionPipeline`` with a 2-level spatio-temporal UNet, tiny temporal VAE and tiny CLIP."""
    import transformers
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=4, in_channels=8, out_channels=4, block_out_channels=(32, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=16, num_attention_heads=(2, 2), transformer_layers_per_block=1,
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=24, num_frames=16,
    )
    vae = AutoencoderKLTemporalDecoder(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32), layers_per_block=1, latent_channels=4,
    )
    image_encoder = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        hidden_size=16, projection_dim=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        image_size=16, patch_size=4,
    ))
    feature_extractor = transformers.CLIPImageProcessor(crop_size={"height": 16, "width": 16},
                                                        size={"shortest_edge": 16})
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True,
    )
    return StableVideoDiffusionPipeline(
        vae=vae.eval(), image_encoder=image_encoder.eval(), unet=unet.eval(), scheduler=scheduler,
        feature_extractor=feature_extractor,
    )


def _save(pipe, folder: PathLike) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(folder))
    return folder


def save_tiny_ltx(folder: PathLike, seed: int = 0) -> Path:
    """Write a tiny random LTX-Video pipeline to ``folder`` (``from_pretrained``-loadable) and return the folder."""
    return _save(build_tiny_ltx(seed), folder)


def save_tiny_wan(folder: PathLike, seed: int = 0) -> Path:
    """Write a tiny random Wan 2.2 TI2V-style pipeline to ``folder`` and return the folder."""
    return _save(build_tiny_wan(seed), folder)


def save_tiny_svd(folder: PathLike, seed: int = 0) -> Path:
    """Write a tiny random Stable Video Diffusion pipeline to ``folder`` and return the folder."""
    return _save(build_tiny_svd(seed), folder)


#: backend name -> saver, for parametrised tests and the benchmark.
TINY_SAVERS = {"ltx": save_tiny_ltx, "wan": save_tiny_wan, "svd": save_tiny_svd}
