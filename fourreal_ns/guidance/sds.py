"""Video score distillation (paper 3.3 eqs. 5-6, appendix D.1): the noise level, the view given to the video model,
and the loss.

One SDS step, as the pipeline runs it:
1. render the trajectory's 16 frames (trajectories.py) at the training resolution;
2. give the video model a random view of them (D.1, p = 0.5 each): either the whole frame shifted by up to S - 1
   pixels (S: the downsampling scale) or a random half-size crop; then downsample to the model's SDS size. The same
   view for every frame and for the conditioning image, so the video stays a video;
3. x0 = the model's one-step denoised frames at noise level sigma, given the real conditioning image (eq. 5);
   sigma is annealed from high to low over the SDS window, as HiFA does (the paper's section 4 "Implementation
   details");
4. loss = ||render - stopgrad(x0)||^2 (eq. 6) over the frames after the conditioning one, averaged over pixels (so
   the weights 5 and 20 of E.1 are relative to the per-pixel reconstruction loss). No gradient goes through the
   video model, its VAE or its text encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class SDSConfig:
    """Settings of the video score distillation step (D.1); the windows and weights are the model's."""

    num_frames: int = 16
    """Frames per SDS video (D.1: M = 16)."""
    sigma_max: float = 0.98
    """Noise level at the start of each SDS window (flow-matching sigma in (0, 1])."""
    sigma_min: float = 0.02
    """Noise level at the end of each SDS window."""
    anneal_power: float = 0.5
    """sigma = sigma_max - (sigma_max - sigma_min) * progress ** power; HiFA's square-root schedule is 0.5."""
    perturb_radius: float = 0.15
    """Radius of the random perturbation of the sampled freeze-time camera, as a fraction of its distance to the
    orbit's centre (D.1)."""
    log_every: int = 100
    """Write the rendered frames and the SDS targets to the run's tensorboard/wandb every this many steps (0: never)."""
    seed: int = 0
    """Seed of the trajectory and view sampling (the noise is the video model's)."""


def annealed_sigma(step: int, start: int, end: int, config: SDSConfig) -> float:
    """The noise level at `step` of the window [start, end): high to low (HiFA)."""
    progress = min(max((step - start) / max(end - start - 1, 1), 0.0), 1.0)
    return config.sigma_max - (config.sigma_max - config.sigma_min) * progress ** config.anneal_power


@dataclass
class ModelView:
    """Which part of the rendered frames the video model sees: a crop box, then a resize to its SDS size."""

    top: int
    left: int
    height: int
    width: int
    size: Tuple[int, int]
    """(height, width) the crop is resized to."""

    def apply(self, frames: Tensor) -> Tensor:
        """[F, 3, H, W] frames -> [F, 3, *size]: crop, then an antialiased resize (differentiable)."""
        crop = frames[:, :, self.top: self.top + self.height, self.left: self.left + self.width]
        if tuple(crop.shape[-2:]) == tuple(self.size):
            return crop
        return F.interpolate(crop, size=self.size, mode="bilinear", antialias=True, align_corners=False)


def sample_model_view(height: int, width: int, size: Tuple[int, int], generator: torch.Generator) -> ModelView:
    """D.1's preprocessing for frames of height x width going to a model of `size` (h, w), p = 0.5 each:
    a shift by up to S - 1 pixels (S = the downsampling scale: the frame loses S - 1 rows and columns at a random
    offset, so the sampling grid moves by a fraction of an output pixel) or a random half-size crop."""
    if torch.rand((), generator=generator) < 0.5:
        scale = max(1, int(math.floor(min(height / size[0], width / size[1]))))
        shift = scale - 1
        top = int(torch.randint(shift + 1, (), generator=generator))
        left = int(torch.randint(shift + 1, (), generator=generator))
        return ModelView(top, left, height - shift, width - shift, size)
    crop_h, crop_w = max(height // 2, 1), max(width // 2, 1)
    top = int(torch.randint(height - crop_h + 1, (), generator=generator))
    left = int(torch.randint(width - crop_w + 1, (), generator=generator))
    return ModelView(top, left, crop_h, crop_w, size)


def sds_loss(frames: Tensor, targets: Tensor) -> Tensor:
    """Eq. 6: mean squared difference between the model's view of the renders [F, 3, h, w] and the denoised frames,
    over every frame after the conditioning frame 0 (its target is the real image itself)."""
    return ((frames[1:] - targets[1:].detach()) ** 2).mean()
