"""Tiny random-weight image-to-video pipelines and orbit LoRAs for the freeze-time backends' tests
(fourreal_ns/generate/orbit_backends.py).

- `save_tiny_cogvideox_i2v(folder)`: a `CogVideoXImageToVideoPipeline` (CogVideoX-5B-I2V's layout: the image latent
  concatenated to the noisy latent, rotary positions, a 4x temporal / 8x spatial causal VAE) with a 1-layer
  transformer and a tiny T5;
- `save_tiny_wan21_i2v(folder)`: a `WanImageToVideoPipeline` in Wan 2.1 I2V's layout (a CLIP image encoder whose
  hidden states reach the transformer through added key/value projections, noise + condition + 4 mask channels, the
  4x / 8x Wan 2.1 VAE);
- `save_tiny_lora(pipe_class, transformer, folder, ...)`: a random LoRA on the transformer's attention projections,
  written with the pipeline class's `save_lora_weights` (diffusers' format, peft keys), as the public LoRAs are.

All written with `save_pretrained`, so the tests load them through the same `from_pretrained` / `load_lora_weights`
code a user's machine runs with the real weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from tiny_diffusers import _save, _tiny_t5_encoder, _tokenizer

PathLike = Union[str, Path]
TINY_ORBIT_SIZE = (32, 32)
"""(height, width) the tiny orbit pipelines run at (a multiple of 16: the 8x VAE and the 2x2 patch)."""


def build_tiny_cogvideox_i2v(seed: int = 0):
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)

    torch.manual_seed(seed)
    latent = 4
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=2 * latent, out_channels=latent,
        time_embed_dim=8, text_embed_dim=16, num_layers=1, sample_width=4, sample_height=4, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=False,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, latent_channels=latent,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    return CogVideoXImageToVideoPipeline(
        tokenizer=_tokenizer(), text_encoder=_tiny_t5_encoder("t5"), vae=vae.eval(), transformer=transformer.eval(),
        scheduler=CogVideoXDDIMScheduler(timestep_spacing="trailing"),
    )


def build_tiny_wan21_i2v(seed: int = 0):
    import transformers
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline,
                           WanTransformer3DModel)

    torch.manual_seed(seed)
    z_dim = 8
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1, attn_scales=[],
        temperal_downsample=[False, True, True],
        latents_mean=torch.linspace(-0.2, 0.2, z_dim).tolist(), latents_std=torch.linspace(0.5, 1.5, z_dim).tolist(),
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=2 * z_dim + 4,
        out_channels=z_dim, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=1, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=16, added_kv_proj_dim=24,
    )
    image_encoder = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
        hidden_size=16, projection_dim=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        image_size=16, patch_size=4,
    ))
    image_processor = transformers.CLIPImageProcessor(crop_size={"height": 16, "width": 16},
                                                      size={"shortest_edge": 16})
    return WanImageToVideoPipeline(
        tokenizer=_tokenizer(), text_encoder=_tiny_t5_encoder("umt5"), vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=transformer.eval(),
        image_encoder=image_encoder.eval(), image_processor=image_processor,
    )


def save_tiny_cogvideox_i2v(folder: PathLike, seed: int = 0) -> Path:
    return _save(build_tiny_cogvideox_i2v(seed), folder)


def save_tiny_wan21_i2v(folder: PathLike, seed: int = 0) -> Path:
    return _save(build_tiny_wan21_i2v(seed), folder)


def save_tiny_lora(pipe_class, transformer, folder: PathLike, weight_name: str, rank: int = 4, seed: int = 1,
                   scale: float = 0.5) -> Path:
    """A random LoRA (rank `rank`, both matrices non-zero) on the transformer's attention projections, in the
    diffusers LoRA format; returns the file. The adapter is deleted afterwards, but peft's wrappers stay (parameter
    names `...to_k.base_layer.weight`): save the pipeline before making its LoRA."""
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    names = {name.split(".")[-1] for name, module in transformer.named_modules()
             if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("to_q", "to_k", "to_v")}
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=sorted(names), init_lora_weights=False))
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn_like(parameter) * scale)
    layers = get_peft_model_state_dict(transformer)
    transformer.delete_adapters(transformer.active_adapters())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe_class.save_lora_weights(str(folder), transformer_lora_layers=layers, weight_name=weight_name)
    return folder / weight_name
