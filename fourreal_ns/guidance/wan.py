"""Wan 2.2 TI2V-5B guidance: clean first latent frame with a per-token timestep, flow matching.

Why this Wan variant: Wan2.2-TI2V-5B is a single 5B text+image-to-video DiT whose image conditioning is the same
mechanism as LTX's -- the first latent frame is the clean VAE encoding of the known image and its tokens get
timestep 0 (diffusers: ``expand_timesteps=True``, a ``[batch, tokens]`` timestep). It needs no extra image encoder.
Wan2.1-I2V (14B) instead concatenates a 4-channel frame mask and the encoded conditioning video to the noisy latents
(36 input channels) and adds CLIP image tokens, and Wan2.2-I2V-A14B uses two 14B experts: both are far heavier for a
per-iteration SDS step. Wan 2.1/2.2 text-to-video checkpoints (same latent layout, no image channels) also load
here, but were not trained with a clean first frame.

Wan 2.2's VAE compresses 16x spatially (with a 2x2 pixel patchify) and 4x in time (``4k + 1`` frames); the
transformer uses ``(1, 2, 2)`` patches. One SDS step:

1. ``z = (E(frames) - mean) / std`` with 16 frames padded to 17 (last frame repeated), latent frame 0 replaced by
   the encoding of ``cond_frame`` (the causal encoder sees frame 0 alone);
2. ``z_t = (1 - sigma) z + sigma eps`` except the clean first latent frame;
3. velocity ``v`` from the transformer with per-token timestep ``1000 sigma`` (0 for first-frame tokens) and
   classifier-free guidance (two passes, like the diffusers pipeline);
4. ``x0 = z_t - sigma v`` (first frame kept clean), de-normalised and decoded, padded frame dropped.

``sigma`` is used as is: Wan's sampling "shift" only re-spaces the sampling schedule, it does not change
``x_t = (1 - sigma) x0 + sigma eps``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from fourreal_ns.guidance.base import VideoGuidance, classifier_free_guidance, pad_frames
from fourreal_ns.guidance.errors import GuidanceConfigError
from fourreal_ns.model_registry import register_guidance


@register_guidance("wan")
class WanGuidance(VideoGuidance):
    """Wan 2.2 TI2V-5B (diffusers layout) through diffusers."""

    default_sds_size = (352, 640)
    default_guidance_scale = 5.0
    size_multiple = 32
    required_components = ("vae", "transformer", "text_encoder", "tokenizer")
    #: tokens of the UMT5 prompt (Wan pipelines use 512)
    max_sequence_length: int = 512

    def _fp32_pinned_classes(self) -> Tuple[type, ...]:
        from diffusers import WanTransformer3DModel

        return (WanTransformer3DModel,)

    def _load(self) -> None:
        pipe = self.pipe
        config = pipe.transformer.config
        if config.in_channels != self.vae.config.z_dim or getattr(config, "image_dim", None) is not None:
            raise GuidanceConfigError(
                f"'{self.model_id}' is a Wan image-to-video model with concatenated mask/image channels "
                f"(transformer in_channels={config.in_channels}, VAE z_dim={self.vae.config.z_dim}); the wan "
                "guidance backend supports Wan 2.2 TI2V-5B (and text-to-video Wan checkpoints).")
        self.patch = tuple(int(p) for p in config.patch_size)
        self._adopt_transformer(self.vae.config.scale_factor_spatial, self.vae.config.scale_factor_temporal,
                                self.patch[1], self.patch[0])  # fmt: skip
        self.latents_mean = torch.tensor(self.vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(self.vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        pos, neg = pipe.encode_prompt(
            prompt=self._text_prompt(), negative_prompt=self.negative_prompt, do_classifier_free_guidance=self.do_cfg,
            num_videos_per_prompt=1, max_sequence_length=self.max_sequence_length, device=self.device,
            dtype=self.dtype)
        self.prompt_embeds = pos.detach()
        self.negative_prompt_embeds = neg.detach() if neg is not None else None

    # ------------------------------------------------------------------ latent space
    def _encode(self, video: Tensor) -> Tensor:
        """``[1, 3, T, H, W]`` in [0, 1] -> normalised latents (posterior mode, float32)."""
        latents = self.vae.encode((video * 2.0 - 1.0).to(self.vae_dtype)).latent_dist.mode().float()
        mean, std = self.latents_mean.to(latents.device), self.latents_std.to(latents.device)
        return (latents - mean) / std

    def encode_latents(self, frames: Tensor, cond_frame: Optional[Tensor]) -> Tensor:
        """Clean normalised latents of ``frames`` ``[F, 3, H, W]`` (padded to 4k+1), frame 0 from ``cond_frame``."""
        video = pad_frames(frames.permute(1, 0, 2, 3).unsqueeze(0), self.temporal_ratio)
        latents = self._encode(video)
        if cond_frame is not None:
            latents[:, :, :1] = self._encode(cond_frame[None, :, None])
        return latents

    def decode_latents(self, latents: Tensor, num_frames: int) -> Tensor:
        """Normalised latents ``[1, C, t, h, w]`` -> frames ``[num_frames, 3, H, W]`` in [0, 1] (float32)."""
        mean, std = self.latents_mean.to(latents.device), self.latents_std.to(latents.device)
        video = self.vae.decode((latents * std + mean).to(self.vae_dtype), return_dict=False)[0]
        return (video[0, :, :num_frames].permute(1, 0, 2, 3).float() + 1.0) / 2.0

    # ------------------------------------------------------------------ x0
    def _predict_x0(self, frames: Tensor, cond_frame: Optional[Tensor], sigma: float) -> Tensor:
        clean = self.encode_latents(frames, cond_frame)
        known = torch.zeros_like(clean[:, :1])
        if cond_frame is not None:
            known[:, :, 0] = 1.0
        noise = torch.randn_like(clean)
        noisy = known * clean + (1.0 - known) * ((1.0 - sigma) * clean + sigma * noise)

        # per-token noise level, tokens in (frame, row, column) order of the (1, p, p) patch embedding
        _, ph, pw = self.patch
        token_sigma = (sigma * (1.0 - known[0, 0, :, ::ph, ::pw])).flatten().unsqueeze(0)
        velocity = self._velocity(noisy, token_sigma)
        x0 = noisy - sigma * velocity
        x0 = known * clean + (1.0 - known) * x0
        return self.decode_latents(x0, frames.shape[0])

    def _velocity(self, noisy: Tensor, token_sigma: Tensor) -> Tensor:
        hidden = noisy.to(self.dtype)
        timestep = (token_sigma * self.num_train_timesteps).float()
        cond = self.denoiser(hidden_states=hidden, timestep=timestep, encoder_hidden_states=self.prompt_embeds,
                             return_dict=False)[0].float()
        if not self.do_cfg:
            return cond
        uncond = self.denoiser(hidden_states=hidden, timestep=timestep,
                               encoder_hidden_states=self.negative_prompt_embeds, return_dict=False)[0].float()
        return classifier_free_guidance(uncond, cond, self.guidance_scale)
