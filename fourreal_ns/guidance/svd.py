"""Stable Video Diffusion (img2vid) guidance: EDM preconditioning, image-embedding + image-latent conditioning.

SVD is an image-to-video latent UNet without text: the prompt is ignored. The known frame ``I_c`` conditions the
model the way SVD was trained:

* its CLIP image embedding (``image_encoder(...).image_embeds``) is the cross-attention context;
* its VAE latent (posterior mode, slightly noise-augmented, *not* scaled) is concatenated channel-wise to the noisy
  latent of every frame (UNet input = 4 noisy + 4 image channels);
* micro-conditioning ``added_time_ids = [fps - 1, motion_bucket_id, noise_aug_strength]``.

Classifier-free guidance uses zero image embedding and zero image latents as the unconditional branch (as the
diffusers pipeline does, but with one scale for all frames instead of its 1 -> 3 ramp).

Noise (EDM / Karras et al., variance exploding, ``sigma_data = 1``, v-prediction as in SVD's scheduler):
``x = z + s eps``, ``x0 = c_skip x + c_out F(c_in x, c_noise)`` with ``c_in = 1/sqrt(s^2+1)``,
``c_skip = 1/(s^2+1)``, ``c_out = -s/sqrt(s^2+1)``, ``c_noise = 0.25 log s``.

Sigma mapping: our ``sigma`` in (0, 1] is the flow-matching weight of ``x_t = (1 - sigma) x0 + sigma eps``. Dividing
by ``1 - sigma`` gives ``x0 + sigma/(1 - sigma) eps``, a variance-exploding sample with the *same signal-to-noise
ratio*, so ``s = sigma / (1 - sigma)``, clipped to the scheduler's ``[sigma_min, sigma_max]`` = [0.002, 700]
(sigma = 0.5 -> s = 1; sigma = 1 -> s = 700). All backends therefore see the same SNR for the same ``sigma``.
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fourreal_ns.guidance.base import VideoGuidance, classifier_free_guidance
from fourreal_ns.model_registry import register_guidance

logger = logging.getLogger(__name__)


def flow_sigma_to_edm(sigma: float, sigma_min: float, sigma_max: float) -> float:
    """Same-SNR map from a flow-matching noise level in (0, 1] to an EDM sigma, clipped to the model's range."""
    edm = sigma_max if sigma >= 1.0 else sigma / (1.0 - sigma)
    return float(min(max(edm, sigma_min), sigma_max))


def edm_preconditioning(sigma: float) -> Tuple[float, float, float, float]:
    """``(c_in, c_skip, c_out, c_noise)`` of EDM with ``sigma_data = 1`` and v-prediction (SVD)."""
    c_in = 1.0 / math.sqrt(sigma ** 2 + 1.0)
    c_skip = 1.0 / (sigma ** 2 + 1.0)
    c_out = -sigma / math.sqrt(sigma ** 2 + 1.0)
    c_noise = 0.25 * math.log(sigma)
    return c_in, c_skip, c_out, c_noise


@register_guidance("svd")
class SVDGuidance(VideoGuidance):
    """Stable Video Diffusion img2vid(-xt) through diffusers. The text prompt is ignored."""

    default_sds_size = (320, 576)
    default_guidance_scale = 3.0
    size_multiple = 64
    required_components = ("vae", "unet", "image_encoder", "feature_extractor")
    #: micro-conditioning, SVD pipeline defaults (the UNet was trained on fps - 1)
    fps: int = 7
    motion_bucket_id: int = 127
    #: Gaussian noise added to the conditioning image before VAE encoding (SVD pipeline default)
    noise_aug_strength: float = 0.02

    def _load(self) -> None:
        pipe = self.pipe
        self.denoiser = pipe.unet
        self.image_encoder = pipe.image_encoder
        self.size_multiple = 8 * 2 ** (len(self.denoiser.config.block_out_channels) - 1)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        scheduler = pipe.scheduler.config
        self.sigma_min = float(scheduler.get("sigma_min", None) or 0.002)
        self.sigma_max = float(scheduler.get("sigma_max", None) or 700.0)
        extractor = pipe.feature_extractor
        self.clip_mean = torch.tensor(extractor.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.clip_std = torch.tensor(extractor.image_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.clip_size = int(self.image_encoder.config.image_size)
        if self.prompt:
            logger.info("SVD guidance has no text conditioning: the prompt is ignored")

    def _extra_modules(self) -> List[nn.Module]:
        return [self.image_encoder]

    # ------------------------------------------------------------------ conditioning
    def image_embedding(self, image: Tensor) -> Tensor:
        """CLIP image embedding ``[1, 1, D]`` of ``image`` ``[3, H, W]`` in [0, 1] (antialiased resize to 224)."""
        x = image.unsqueeze(0) * 2.0 - 1.0
        x = F.interpolate(x, size=(self.clip_size, self.clip_size), mode="bicubic", antialias=True,
                          align_corners=False)
        x = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
        x = (x - self.clip_mean.to(x.device)) / self.clip_std.to(x.device)
        return self.image_encoder(x.to(self.dtype)).image_embeds.unsqueeze(1)

    def image_latents(self, image: Tensor) -> Tensor:
        """Noise-augmented, unscaled VAE latent ``[1, 4, h, w]`` of the conditioning image (as SVD expects)."""
        x = image.unsqueeze(0) * 2.0 - 1.0
        x = x + self.noise_aug_strength * torch.randn_like(x)
        return self.vae.encode(x.to(self.vae_dtype)).latent_dist.mode()

    def added_time_ids(self, batch: int, device: torch.device) -> Tensor:
        ids = torch.tensor([[self.fps - 1, self.motion_bucket_id, self.noise_aug_strength]], device=device)
        return ids.to(self.dtype).expand(batch, -1)

    # ------------------------------------------------------------------ latent space
    def encode_latents(self, frames: Tensor) -> Tensor:
        """Frames ``[F, 3, H, W]`` in [0, 1] -> scaled latents ``[1, F, 4, h, w]`` (float32)."""
        latents = self.vae.encode((frames * 2.0 - 1.0).to(self.vae_dtype)).latent_dist.mode().float()
        return (latents * self.scaling_factor).unsqueeze(0)

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Scaled latents ``[1, F, 4, h, w]`` -> frames ``[F, 3, H, W]`` in [0, 1] (float32)."""
        z = (latents[0] / self.scaling_factor).to(self.vae_dtype)
        video = self.vae.decode(z, num_frames=z.shape[0]).sample
        return (video.float() + 1.0) / 2.0

    # ------------------------------------------------------------------ x0
    def _predict_x0(self, frames: Tensor, cond_frame: Optional[Tensor], sigma: float) -> Tensor:
        image = cond_frame if cond_frame is not None else frames[0]
        clean = self.encode_latents(frames)
        s = flow_sigma_to_edm(sigma, self.sigma_min, self.sigma_max)
        c_in, c_skip, c_out, c_noise = edm_preconditioning(s)
        noisy = clean + s * torch.randn_like(clean)

        embedding = self.image_embedding(image)
        cond_latents = self.image_latents(image).unsqueeze(1).expand(-1, frames.shape[0], -1, -1, -1)
        if self.do_cfg:  # batch [uncond, cond]: zero image embedding and zero image latents
            embedding = torch.cat([torch.zeros_like(embedding), embedding])
            cond_latents = torch.cat([torch.zeros_like(cond_latents), cond_latents])
        batch = embedding.shape[0]
        model_input = torch.cat([(c_in * noisy).to(self.dtype).expand(batch, -1, -1, -1, -1),
                                 cond_latents.to(self.dtype)], dim=2)
        timestep = torch.tensor([c_noise], device=frames.device, dtype=torch.float32)
        out = self.denoiser(model_input, timestep, encoder_hidden_states=embedding.to(self.dtype),
                            added_time_ids=self.added_time_ids(batch, frames.device), return_dict=False)[0].float()
        if self.do_cfg:
            uncond, cond = out.chunk(2)
            out = classifier_free_guidance(uncond, cond, self.guidance_scale)
        x0 = c_skip * noisy + c_out * out
        return self.decode_latents(x0)
