"""The phases of a 4real-motion run (paper appendix C.2), in one place.

Steps are counted from the start of stage 2. From a 4real-canonical run:

    motion-fit   [0, motion_fit_steps)                      Gaussians frozen, only w_t learns (C.2a)
    growth       [motion_fit_steps, + growth_steps)         canonical Gaussians frozen, new ones grown (C.2b, D.2)
    joint        [motion_fit_steps + growth_steps, end)     every parameter, no densification (C.2c)
    SDS          [sds_start_step, sds_end_step)             joint temporal + multi-view SDS (C.2d), any phase

From scratch (no canonical run): static-warm-up [0, static_warmup_steps), then joint (with densification, as
stage 1). The model, its densification strategy and the SDS schedule all ask this object, so a phase boundary
lives here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

MOTION_FIT, GROWTH, JOINT, STATIC_WARM_UP = "motion-fit", "growth", "joint", "static-warm-up"


@dataclass(frozen=True)
class MotionPhases:
    has_canonical: bool
    motion_fit_steps: int
    growth_steps: int
    static_warmup_steps: int
    sds_start_step: int
    sds_end_step: int

    def phase(self, step: int) -> str:
        """MOTION_FIT, GROWTH or JOINT from a canonical run; STATIC_WARM_UP or JOINT from scratch."""
        if not self.has_canonical:
            return STATIC_WARM_UP if step < self.static_warmup_steps else JOINT
        if step < self.motion_fit_steps:
            return MOTION_FIT
        return GROWTH if step < self.growth_window()[1] else JOINT

    def growth_window(self) -> Tuple[int, int]:
        """[first, end) of the growth phase: where the densification strategy refines (from a canonical run)."""
        return self.motion_fit_steps, self.motion_fit_steps + self.growth_steps

    def introduces_gaussians(self, step: int) -> bool:
        """The last motion-fit step: copies of the high-gradient canonical Gaussians start the growth (D.2)."""
        return self.has_canonical and step == self.motion_fit_steps - 1

    def densifies(self, step: int) -> bool:
        """Whether the densification strategy runs after this step's backward (not in the joint fine-tune of a
        canonical run, C.2c)."""
        return not (self.has_canonical and self.phase(step) == JOINT)

    def moves(self, step: int) -> bool:
        """Whether the temporal deformation is applied in training at this step (not in the static warm-up)."""
        return self.phase(step) != STATIC_WARM_UP

    def reference_frames_only(self, step: int) -> bool:
        """Motion fit and growth see the reference video (and 4Real-Video grid frames) only."""
        return self.phase(step) in (MOTION_FIT, GROWTH)

    def sds_window(self) -> Tuple[int, int]:
        return self.sds_start_step, self.sds_end_step

    def sds_kind(self, step: int) -> Optional[str]:
        """"temporal" or "multiview", alternating per step inside the SDS window (D.1); None outside it."""
        if not self.sds_start_step <= step < self.sds_end_step:
            return None
        return ("temporal", "multiview")[(step - self.sds_start_step) % 2]
