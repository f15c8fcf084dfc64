"""Regularisers on the deformation fields (paper eq. 3 and appendix B).

Stage 1 uses the small-motion loss: among the many pairs of (canonical scene, per-frame deformation) that explain
the freeze-time video equally well, prefer the one that moves the Gaussians least.
"""

from __future__ import annotations

from torch import Tensor

from fourreal_ns.models.deformation import Deltas


def small_motion_loss(deltas: Deltas) -> Tensor:
    """Eq. 3, ||dx||_1 + ||dq||_1, averaged over Gaussians (the paper sums over Gaussians; a mean keeps the weight
    0.01 of appendix E.1 meaningful whatever the number of Gaussians)."""
    return deltas.means.abs().sum(dim=-1).mean() + deltas.quats.abs().sum(dim=-1).mean()
