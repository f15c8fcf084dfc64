"""GS growth for motion compensation (paper appendix C.2b, D.2, E.2).

Once the temporal deformation has been fitted with the Gaussians frozen, moving objects uncover parts of the scene
that the canonical Gaussians never had to explain. 4Real grows new Gaussians there while the canonical ones stay as
stage 1 left them:

1. At the start of growth, new Gaussians are introduced "according to the gradients derived from the canonical
   Gaussians": every canonical Gaussian whose screen-space gradient, averaged over the motion fit, exceeds the
   threshold gets a copy (`introduce_new_gaussians`). The copies are free; the originals stay frozen.
2. During growth, splitting, cloning and pruning act on the new Gaussians only (`FrozenPrefixStrategy`), with a
   higher opacity threshold (1e-2) to avoid redundant Gaussians, and without gsplat's opacity reset, which would
   change the frozen ones.

Which Gaussians are frozen is a count, not a mask: the canonical Gaussians are the first `num_frozen` rows of every
per-Gaussian tensor. gsplat's operations keep that true: duplicates and split children are appended at the end,
and removals keep the order of the rest; frozen Gaussians are never split or removed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

import torch
from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import duplicate, remove


@dataclass
class FrozenPrefixStrategy(DefaultStrategy):
    """gsplat's DefaultStrategy restricted to the Gaussians after the first `num_frozen`, without opacity resets."""

    num_frozen: int = 0

    def step_post_backward(self, params, optimizers, state: Dict[str, Any], step: int, info: Dict[str, Any],
                           packed: bool = False) -> None:  # fmt: skip
        if step >= self.refine_stop_iter:
            return
        self._update_state(params, state, info, packed=packed)
        for key in ("grad2d", "count", "radii"):
            if state.get(key) is not None:
                state[key][: self.num_frozen] = 0  # frozen Gaussians neither grow nor count
        if step > self.refine_start_iter and step % self.refine_every == 0:
            self._grow_gs(params, optimizers, state, step)
            self._prune_gs(params, optimizers, state, step)
            reset_statistics(state)

    @torch.no_grad()
    def _prune_gs(self, params, optimizers, state: Dict[str, Any], step: int) -> int:
        """DefaultStrategy's pruning (low opacity, too large) for the free Gaussians only."""
        is_prune = torch.sigmoid(params["opacities"].flatten()) < self.prune_opa
        if step > self.reset_every:
            is_too_big = torch.exp(params["scales"]).max(dim=-1).values > self.prune_scale3d * state["scene_scale"]
            if step < self.refine_scale2d_stop_iter:
                is_too_big |= state["radii"] > self.prune_scale2d
            is_prune = is_prune | is_too_big
        is_prune[: self.num_frozen] = False
        num_pruned = int(is_prune.sum().item())
        if num_pruned > 0:
            remove(params=params, optimizers=optimizers, state=state, mask=is_prune)
        return num_pruned


def reset_statistics(state: Dict[str, Any]) -> None:
    """Start accumulating screen-space gradients afresh (after a refinement)."""
    for key in ("grad2d", "count", "radii"):
        if state.get(key) is not None:
            state[key].zero_()


@torch.no_grad()
def introduce_new_gaussians(params, optimizers, state: Dict[str, Any], grad_threshold: float) -> int:
    """Copy every Gaussian whose mean screen-space gradient (accumulated in `state`) exceeds `grad_threshold`;
    the copies are appended after the originals. Returns the number of copies."""
    if state.get("grad2d") is None:
        return 0
    mean_grad = state["grad2d"] / state["count"].clamp_min(1)
    selected = mean_grad > grad_threshold
    num = int(selected.sum().item())
    if num > 0:
        duplicate(params=params, optimizers=optimizers, state=state, mask=selected)
    reset_statistics(state)
    return num
