"""Tiny random-weight pipelines `fourreal refine` needs beyond tests/tiny_diffusers.py.

`save_tiny_ltx_upsampler(folder)` writes an `LTXLatentUpsamplePipeline` (the LTX-Video latent upsampler's layout on
the hub: a `latent_upsampler` component) whose upsampler works on the 8-channel latents of tiny_diffusers' tiny LTX
VAE, with `save_pretrained`, so tests load it through the same `from_pretrained` path as real weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch


def save_tiny_ltx_upsampler(folder: Union[str, Path], seed: int = 0) -> Path:
    from diffusers import LTXLatentUpsamplePipeline
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
    from tiny_diffusers import build_tiny_ltx

    torch.manual_seed(seed)
    upsampler = LTXLatentUpsamplerModel(in_channels=8, mid_channels=32, num_blocks_per_stage=1, dims=3,
                                        spatial_upsample=True, temporal_upsample=False).eval()
    pipe = LTXLatentUpsamplePipeline(vae=build_tiny_ltx(seed).vae, latent_upsampler=upsampler)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(folder))
    return folder
