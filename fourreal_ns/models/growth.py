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

Everything here is built on gsplat's public operations (`gsplat.strategy.ops`: duplicate, split, remove) and its
public `Strategy` base; the statistics (mean screen-space gradient, visible count, screen radius) are accumulated
by `accumulate_statistics`, in the state layout gsplat's DefaultStrategy uses, so that stage 1's state carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

import torch
from gsplat.strategy import Strategy
from gsplat.strategy.ops import duplicate, remove, split


def accumulate_statistics(state: Dict[str, Any], info: Dict[str, Any], num_gaussians: int, absgrad: bool = False,
                          packed: bool = False, track_radii: bool = False) -> None:  # fmt: skip
    """Add one render's screen-space gradients (in [-1, 1] screen units), visibility counts and, with
    `track_radii`, the largest screen radius (in image sizes) of each Gaussian to `state` (after the backward)."""
    means2d = info["means2d"]
    grads = (means2d.absgrad if absgrad else means2d.grad).clone()
    grads[..., 0] *= info["width"] / 2.0 * info["n_cameras"]
    grads[..., 1] *= info["height"] / 2.0 * info["n_cameras"]
    for key in ("grad2d", "count") + (("radii",) if track_radii else ()):
        if state.get(key) is None:
            state[key] = torch.zeros(num_gaussians, device=grads.device)
    if packed:
        ids, radii = info["gaussian_ids"], info["radii"]
    else:
        visible = info["radii"] > 0.0
        if visible.dim() == grads.dim():  # gsplat >= 1.5 gives a radius per axis
            visible = visible.all(dim=-1)
        ids, grads, radii = torch.where(visible)[-1], grads[visible], info["radii"][visible]
    if radii.dim() > 1:
        radii = radii.max(dim=-1).values
    state["grad2d"].index_add_(0, ids, grads.norm(dim=-1))
    state["count"].index_add_(0, ids, torch.ones_like(ids, dtype=torch.float32))
    if track_radii:
        largest = torch.maximum(state["radii"][ids], radii.float() / float(max(info["width"], info["height"])))
        state["radii"][ids] = largest


def reset_statistics(state: Dict[str, Any]) -> None:
    """Start accumulating screen-space gradients afresh (after a refinement)."""
    for key in ("grad2d", "count", "radii"):
        if state.get(key) is not None:
            state[key].zero_()


@dataclass
class FrozenPrefixStrategy(Strategy):
    """Densification (clone small, split large, prune transparent or too large: the rules of gsplat's
    DefaultStrategy, with its argument names) of the Gaussians after the first `num_frozen`, without opacity
    resets, between `refine_start_iter` and `refine_stop_iter`."""

    prune_opa: float = 0.005
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01
    grow_scale2d: float = 0.05
    prune_scale3d: float = 0.1
    prune_scale2d: float = 0.15
    refine_scale2d_stop_iter: int = 0
    refine_start_iter: int = 500
    refine_stop_iter: int = 15_000
    reset_every: int = 3000
    refine_every: int = 100
    pause_refine_after_reset: int = 0
    absgrad: bool = False
    revised_opacity: bool = False
    verbose: bool = False
    num_frozen: int = 0

    def initialize_state(self, scene_scale: float = 1.0) -> Dict[str, Any]:
        return {"grad2d": None, "count": None, "radii": None, "scene_scale": scene_scale}

    def step_pre_backward(self, params, optimizers, state: Dict[str, Any], step: int, info: Dict[str, Any]) -> None:
        info["means2d"].retain_grad()

    def step_post_backward(self, params, optimizers, state: Dict[str, Any], step: int, info: Dict[str, Any],
                           packed: bool = False) -> None:  # fmt: skip
        if step >= self.refine_stop_iter:
            return
        accumulate_statistics(state, info, params["means"].shape[0], self.absgrad, packed,
                              track_radii=self.refine_scale2d_stop_iter > 0)  # fmt: skip
        for key in ("grad2d", "count", "radii"):
            if state.get(key) is not None:
                state[key][: self.num_frozen] = 0  # frozen Gaussians neither grow nor count
        if step > self.refine_start_iter and step % self.refine_every == 0:
            self.grow(params, optimizers, state, step)
            self.prune(params, optimizers, state, step)
            reset_statistics(state)

    @torch.no_grad()
    def grow(self, params, optimizers, state: Dict[str, Any], step: int) -> int:
        """Clone the small free Gaussians whose mean screen-space gradient is high, split the large ones."""
        mean_grad = state["grad2d"] / state["count"].clamp_min(1)
        is_high = mean_grad > self.grow_grad2d
        is_high[: self.num_frozen] = False
        is_small = torch.exp(params["scales"]).max(dim=-1).values <= self.grow_scale3d * state["scene_scale"]
        is_clone, is_split = is_high & is_small, is_high & ~is_small
        if step < self.refine_scale2d_stop_iter and state.get("radii") is not None:
            is_split |= state["radii"] > self.grow_scale2d
            is_split[: self.num_frozen] = False
        num_clone, num_split = int(is_clone.sum()), int(is_split.sum())
        if num_clone > 0:
            duplicate(params=params, optimizers=optimizers, state=state, mask=is_clone)
        if num_split > 0:  # clones (appended) are not split
            is_split = torch.cat([is_split, torch.zeros(num_clone, dtype=torch.bool, device=is_split.device)])
            split(params=params, optimizers=optimizers, state=state, mask=is_split,
                  revised_opacity=self.revised_opacity)  # fmt: skip
        return num_clone + num_split

    @torch.no_grad()
    def prune(self, params, optimizers, state: Dict[str, Any], step: int) -> int:
        """Remove the free Gaussians that are nearly transparent or too large."""
        is_prune = torch.sigmoid(params["opacities"].flatten()) < self.prune_opa
        if step > self.reset_every:
            is_too_big = torch.exp(params["scales"]).max(dim=-1).values > self.prune_scale3d * state["scene_scale"]
            if step < self.refine_scale2d_stop_iter and state.get("radii") is not None:
                is_too_big |= state["radii"] > self.prune_scale2d
            is_prune = is_prune | is_too_big
        is_prune[: self.num_frozen] = False
        num_pruned = int(is_prune.sum().item())
        if num_pruned > 0:
            remove(params=params, optimizers=optimizers, state=state, mask=is_prune)
        return num_pruned


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
