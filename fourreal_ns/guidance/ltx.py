"""LTX-Video guidance (default backend): token-level known-frame conditioning with flow matching.

LTX-Video is a text-to-video DiT on the latents of a causal video VAE (32x spatial, 8x temporal compression,
``8k + 1`` frames, patch size 1 so one latent pixel is one token). Image-to-video in LTX works by *clean tokens*:
the latent frame of the known image is not noised and its tokens get timestep 0, while all other tokens get the
current noise level -- exactly the paper's masked known-frame conditioning (appendix A) with ``I_c`` as known frame.

One SDS step (paper eq. 5):

1. ``z = normalize(E(frames))`` with the 16 frames padded to 17 by repeating the last one (8k+1 rule), latent
   frame 0 replaced by ``normalize(E(cond_frame))`` (the causal encoder sees frame 0 alone, so it has the same shape);
2. flow matching noise: ``z_t = (1 - sigma) z + sigma eps`` for latent frames >= 1, frame 0 stays clean;
3. the transformer predicts the velocity ``v = eps - z`` from the packed tokens, with per-token timesteps
   ``1000 * sigma`` (0 on the known frame's tokens), the prompt embeddings and classifier-free guidance;
4. ``x0 = z_t - sigma v`` (known frame kept clean), denormalised, decoded, the padded frame dropped.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from fourreal_ns.guidance.base import VideoGuidance, classifier_free_guidance, pad_frames
from fourreal_ns.model_registry import register_guidance


@register_guidance("ltx")
class LTXGuidance(VideoGuidance):
    """LTX-Video 0.9.x (2B, non-distilled) through diffusers."""

    # Default weights (model_registry): LTX-Video 0.9.5, trained with frame conditioning (clean tokens at timestep
    # 0); "Lightricks/LTX-Video-0.9.1" (2B) and "Lightricks/LTX-Video" (0.9.0) load the same way.
    default_sds_size = (288, 512)
    default_guidance_scale = 3.0
    size_multiple = 32
    required_components = ("vae", "transformer", "text_encoder", "tokenizer")
    #: frame rate used for the temporal RoPE scale (LTX pipelines default to 25 fps)
    frame_rate: float = 25.0
    #: tokens of the T5 prompt (LTX pipelines use 128)
    max_sequence_length: int = 128

    def _load(self) -> None:
        pipe = self.pipe
        config = pipe.transformer.config  # temporal patch 1: true for all LTX-Video 0.9.x
        self.patch_size = int(config.patch_size)
        self._adopt_transformer(self.vae.spatial_compression_ratio, self.vae.temporal_compression_ratio,
                                config.patch_size, config.patch_size_t)  # fmt: skip
        self.scaling_factor = float(self.vae.config.scaling_factor)
        pos, pos_mask, neg, neg_mask = pipe.encode_prompt(
            prompt=self._text_prompt(), negative_prompt=self.negative_prompt, do_classifier_free_guidance=self.do_cfg,
            num_videos_per_prompt=1, max_sequence_length=self.max_sequence_length, device=self.device,
            dtype=self.dtype)
        if self.do_cfg:  # one batched pass: [uncond, cond]
            self.prompt_embeds = torch.cat([neg, pos]).detach()
            self.prompt_mask = torch.cat([neg_mask, pos_mask]).detach()
        else:
            self.prompt_embeds, self.prompt_mask = pos.detach(), pos_mask.detach()

    # ------------------------------------------------------------------ latent space
    def _latent_stats(self, like: Tensor) -> Tuple[Tensor, Tensor]:
        mean = self.vae.latents_mean.view(1, -1, 1, 1, 1).to(like.device, like.dtype)
        std = self.vae.latents_std.view(1, -1, 1, 1, 1).to(like.device, like.dtype)
        return mean, std

    def _encode(self, video: Tensor) -> Tensor:
        """``[1, 3, T, H, W]`` in [0, 1] -> normalised latents ``[1, C, t, h, w]`` (posterior mode) in float32."""
        posterior = self.vae.encode((video * 2.0 - 1.0).to(self.vae_dtype)).latent_dist
        latents = posterior.mode().float()
        mean, std = self._latent_stats(latents)
        return (latents - mean) * self.scaling_factor / std

    def encode_latents(self, frames: Tensor, cond_frame: Optional[Tensor]) -> Tensor:
        """Clean normalised latents of ``frames`` ``[F, 3, H, W]`` (padded to 8k+1), frame 0 from ``cond_frame``."""
        video = pad_frames(frames.permute(1, 0, 2, 3).unsqueeze(0), self.temporal_ratio)
        latents = self._encode(video)
        if cond_frame is not None:
            latents[:, :, :1] = self._encode(cond_frame[None, :, None])
        return latents

    def decode_latents(self, latents: Tensor, num_frames: int) -> Tensor:
        """Normalised latents ``[1, C, t, h, w]`` -> frames ``[num_frames, 3, H, W]`` in [0, 1] (float32)."""
        mean, std = self._latent_stats(latents)
        latents = (latents * std / self.scaling_factor + mean).to(self.vae_dtype)
        temb = None
        if getattr(self.vae.config, "timestep_conditioning", False):
            temb = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)  # decode as clean
        video = self.vae.decode(latents, temb, return_dict=False)[0]
        return ((video[0, :, :num_frames].permute(1, 0, 2, 3).float() + 1.0) / 2.0)

    # ------------------------------------------------------------------ tokens
    def pack(self, latents: Tensor) -> Tensor:
        """``[B, C, t, h, w]`` -> tokens ``[B, t*h/p*w/p, C*p*p]`` in (frame, row, column) order."""
        b, c, t, h, w = latents.shape
        p = self.patch_size
        x = latents.reshape(b, c, t, h // p, p, w // p, p)
        return x.permute(0, 2, 3, 5, 1, 4, 6).reshape(b, t * (h // p) * (w // p), c * p * p)

    def unpack(self, tokens: Tensor, shape: torch.Size) -> Tensor:
        """Inverse of :meth:`pack` for latents of ``shape``."""
        b, c, t, h, w = shape
        p = self.patch_size
        x = tokens.reshape(b, t, h // p, w // p, c, p, p)
        return x.permute(0, 4, 1, 2, 5, 3, 6).reshape(b, c, t, h, w)

    # ------------------------------------------------------------------ x0
    def _predict_x0(self, frames: Tensor, cond_frame: Optional[Tensor], sigma: float) -> Tensor:
        clean = self.encode_latents(frames, cond_frame)
        known = torch.zeros_like(clean[:, :1])  # [1, 1, t, h, w], 1 where the latent is known (clean)
        if cond_frame is not None:
            known[:, :, 0] = 1.0
        noise = torch.randn_like(clean)
        noisy = (1.0 - sigma) * clean + sigma * noise
        noisy = known * clean + (1.0 - known) * noisy

        tokens = self.pack(noisy)
        token_sigma = sigma * (1.0 - self.pack(known).squeeze(-1))  # [1, S]: 0 on known tokens
        velocity = self._velocity(tokens, token_sigma, noisy.shape)
        x0_tokens = tokens - token_sigma.unsqueeze(-1) * velocity
        x0 = self.unpack(x0_tokens, noisy.shape)
        x0 = known * clean + (1.0 - known) * x0
        return self.decode_latents(x0, frames.shape[0])

    def _velocity(self, tokens: Tensor, token_sigma: Tensor, latent_shape: torch.Size) -> Tensor:
        """Transformer velocity for packed tokens, with classifier-free guidance (one batched pass)."""
        _, _, t, h, w = latent_shape
        batch = 2 if self.do_cfg else 1
        hidden = tokens.to(self.dtype).expand(batch, -1, -1)
        timestep = (token_sigma * self.num_train_timesteps).float().expand(batch, -1)
        rope_scale = (self.temporal_ratio / self.frame_rate, self.spatial_ratio, self.spatial_ratio)
        out = self.denoiser(
            hidden_states=hidden, encoder_hidden_states=self.prompt_embeds, timestep=timestep,
            encoder_attention_mask=self.prompt_mask, num_frames=t, height=h // self.patch_size,
            width=w // self.patch_size, rope_interpolation_scale=rope_scale, return_dict=False)[0].float()
        if self.do_cfg:
            uncond, cond = out.chunk(2)
            return classifier_free_guidance(uncond, cond, self.guidance_scale)
        return out
