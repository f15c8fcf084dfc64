"""Per-frame appearance correction of the freeze-time video (ours, not in the paper).

Generated videos change exposure and colour from frame to frame; the per-frame deformation of 3.3 moves geometry
and cannot absorb that, so the canonical Gaussians would average the flicker into their colours or grow floaters
that tint single frames. Here every freeze frame k gets an affine colour transform of the render,

    rgb_k = rgb + rgb @ A_k^T + b_k        (A_k a 3 x 3 matrix, b_k a colour; both start at zero),

learned with the Gaussians. Twelve numbers per frame can shift exposure, white balance and contrast, but cannot
paint structure into one frame (gsplat's bilateral grid, splatfacto's `use_bilateral_grid`, can: its grid is
spatial; it is the other choice measured in docs/experiments.md). The canonical frame k_c keeps the identity, so
the canonical Gaussians carry the canonical frame's appearance, the one the reference video shares in stage 2.

Where it applies: training renders of freeze frames. A held-out freeze frame is rendered with the transform
interpolated linearly between the nearest trained frames before and after it along the orbit (its neighbours in
the video, whose exposure it shares); the viewer, ns-render and every camera without frame metadata render the
canonical appearance.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FrameAppearance(nn.Module):
    """Affine colour transforms of `num_views` freeze frames; the frame `canonical_view` keeps the identity."""

    def __init__(self, num_views: int, canonical_view: int) -> None:
        super().__init__()
        self.canonical_view = int(canonical_view)
        self.transforms = nn.Parameter(torch.zeros(max(int(num_views), 1), 3, 4))
        """Per frame [A | b]: the change of the render's colour (zero: unchanged)."""
        self.register_buffer("trained", torch.zeros(max(int(num_views), 1), dtype=torch.bool))
        """Which frames a training step has rendered (their transforms were learned); kept in checkpoints."""

    def transform_for(self, view: int, training: bool) -> Tensor:
        """[3, 4] transform of frame `view`: its own while training, else its own where trained, otherwise the
        interpolation between the nearest trained frames around it."""
        if training:
            self.trained[view] = True
            return self.transforms[view]
        if bool(self.trained[view]):
            return self.transforms[view].detach()
        trained = torch.nonzero(self.trained).flatten().tolist()
        before = [k for k in trained if k < view]
        after = [k for k in trained if k > view]
        if not before and not after:
            return torch.zeros_like(self.transforms[view])
        if not before or not after:
            return self.transforms[before[-1] if before else after[0]].detach()
        low, high = before[-1], after[0]
        weight = (view - low) / (high - low)
        return ((1 - weight) * self.transforms[low] + weight * self.transforms[high]).detach()

    def forward(self, rgb: Tensor, view: int, training: bool) -> Tensor:
        """The render `rgb` [..., 3] in frame `view`'s appearance (the canonical frame's is the render itself)."""
        if view == self.canonical_view or not 0 <= view < self.transforms.shape[0]:
            return rgb
        transform = self.transform_for(view, training)
        return rgb + rgb @ transform[:, :3].T + transform[:, 3]
