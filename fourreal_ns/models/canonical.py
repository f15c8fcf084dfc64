"""Stage 1 of 4Real: canonical Gaussians from a noisy freeze-time video (paper 3.3, appendix C.1).

A generated freeze-time video is not a perfect orbit around a frozen scene: objects drift and jitter, and the
geometry is not quite consistent from frame to frame. 4Real explains those imperfections by a per-frame
deformation w_mv(x, k) = (dx, dq, ds) of one set of canonical Gaussians, learned together with them (eq. 2),
kept small (eq. 3, weight 0.01) and exactly zero at the canonical frame k_c, the frame that shows the reference
video's canonical image. What is kept for stage 2 are the canonical Gaussians; the deformation is thrown away.

Ours, not in the paper: 20 % of the training steps render their frame without the deformation
(`undeformed_fraction`). Eq. 2 deforms every frame but k_c, so a common offset of the whole scene costs nothing but
eq. 3, and the field learns one; the undeformed steps pin what the video shows consistently.
Also ours: pose refinement leaves the canonical frame's camera as it is (`anchor_canonical_camera`), so that the
cameras cannot drift together with the scene away from the reference camera.

Schedule (appendix C.1, all in the config): a warm-up without deformation (the MLP is not evaluated, so its
weights do not change), then deformation on; densification until `stop_split_at`; a multi-view SDS window at the
end (FourRealPipeline adds the SDS term).

Which cameras are deformed: freeze-time frames (their `view` gives the frame code k / (K - 1)), also held-out ones
at evaluation; any camera without frame metadata (the viewer, ns-render, ground-truth cameras) renders the
canonical scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from torch import Tensor
from torch.nn import Parameter

from nerfstudio.cameras.cameras import Cameras

from fourreal_ns.data.scene import VIDEO_IDS
from fourreal_ns.models.appearance import FrameAppearance
from fourreal_ns.models.deformation import DeformationField, DeformationFieldConfig, Deltas
from fourreal_ns.models.regularizers import small_motion_loss
from fourreal_ns.models.splats import DeformableSplatModel, DeformableSplatModelConfig


@dataclass
class FourRealCanonicalModelConfig(DeformableSplatModelConfig):
    """4real-canonical: canonical Gaussians + per-frame deformation (defaults: method_configs.py / .md)."""

    _target: Type = field(default_factory=lambda: FourRealCanonicalModel)
    deformation: DeformationFieldConfig = field(default_factory=DeformationFieldConfig)
    """The per-frame deformation MLP w_mv (appendix D.3)."""
    deformation_start_step: int = 3000
    """Warm-up: steps before this train the Gaussians alone (appendix C.1a)."""
    small_motion_weight: float = 0.01
    """Weight of the small-motion loss, eq. 3 (appendix E.1)."""
    small_motion_reduction: Literal["sum", "mean"] = "mean"
    """Eq. 3 summed over Gaussians (as the paper writes it) or averaged over them (our default: the sum holds the
    field at about zero; method_configs.md)."""
    multiview_sds_start_step: int = 15000
    """First step of multi-view SDS (appendix C.1c)."""
    multiview_sds_end_step: int = 20000
    """Step at which multi-view SDS ends (the paper runs it over the last 5k of 20k steps)."""
    multiview_sds_weight: float = 5.0
    """Weight of the multi-view SDS loss (appendix E.1)."""
    undeformed_fraction: float = 0.2
    """Fraction of training steps whose freeze-time frame is rendered without its deformation (our addition, not in
    the paper). Those steps ask the canonical Gaussians to explain the frame as the video shows it, which pins
    everything the video shows consistently; the deformation is left to absorb what is inconsistent. With every
    frame but k_c deformed, the field also learns a common offset of the whole scene that the canonical Gaussians
    then carry (see method_configs.md). 0 is the paper's eq. 2."""
    anchor_canonical_camera: bool = True
    """Keep the canonical frame's camera out of pose refinement (our addition). With every camera refined, the
    cameras can drift together and the scene with them: nothing then ties the canonical Gaussians to the canonical
    frame's camera, which is the reference video's camera in stage 2 (and the ground truth's frame). One fixed camera
    fixes that freedom; the others are still refined relative to it."""
    deform_eval_frames: bool = True
    """Render held-out freeze-time frames with their per-frame deformation (as the video shows them); False renders
    them canonical."""
    appearance_correction: bool = False
    """A per-frame affine colour transform of the freeze frames' renders, learned in training (ours; appearance.py):
    generated videos flicker in exposure and colour. Held-out frames use the transform interpolated from their
    neighbours, the viewer and ns-render the canonical appearance."""


class FourRealCanonicalModel(DeformableSplatModel):
    """Splatfacto + the per-frame deformation of the freeze-time video."""

    config: FourRealCanonicalModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        metadata = self.kwargs.get("metadata", {}) or {}
        canonical = metadata.get("canonical", {"freeze_frame": 0})
        self.num_freeze_views = int(metadata.get("num_freeze_views", 1))
        self.canonical_view = int(canonical["freeze_frame"])
        self.deformation: DeformationField = self.config.deformation.setup(
            canonical_code=self.frame_code(self.canonical_view)
        )
        self.appearance: Optional[FrameAppearance] = None
        if self.config.appearance_correction:
            self.appearance = FrameAppearance(self.num_freeze_views, self.canonical_view)

    def frame_code(self, view):
        """The per-frame code of freeze frame `view`: its position along the orbit in [0, 1]."""
        return view / max(self.num_freeze_views - 1, 1)

    def deformation_active(self) -> bool:
        return not self.training or self.step >= self.config.deformation_start_step

    def in_multiview_sds_window(self, step: int) -> bool:
        return self.config.multiview_sds_start_step <= step < self.config.multiview_sds_end_step

    # Video SDS (read by FourRealPipeline): multi-view only, on canonical renders (3.3 eq. 4).
    def sds_kind(self, step: int) -> Optional[str]:
        return "multiview" if self.in_multiview_sds_window(step) else None

    def sds_window(self) -> Tuple[int, int]:
        return self.config.multiview_sds_start_step, self.config.multiview_sds_end_step

    def sds_weight(self, kind: str) -> float:
        return self.config.multiview_sds_weight

    @staticmethod
    def freeze_view(camera: Cameras) -> Optional[int]:
        """The freeze-time frame k that `camera` shows (its frame metadata), or None for any other camera."""
        metadata = camera.metadata or {}
        if "view" not in metadata or "video_id" not in metadata:
            return None
        if int(metadata["video_id"].flatten()[0]) != VIDEO_IDS["freeze"]:
            return None
        return int(metadata["view"].flatten()[0])

    def is_fixed_camera(self, camera: Cameras) -> bool:
        return self.config.anchor_canonical_camera and self.freeze_view(camera) == self.canonical_view

    def deltas_for_camera(self, camera: Cameras) -> Optional[Deltas]:
        view = self.freeze_view(camera)
        if view is None or not self.deformation_active():
            return None
        if not self.training and not self.config.deform_eval_frames:
            return None
        if self.training and float(torch.rand(())) < self.config.undeformed_fraction:
            return None  # this step fits the canonical Gaussians to the frame directly
        if view == self.canonical_view:
            return None  # exactly the canonical scene (paper 3.3)
        code = self.frame_code(float(view))
        # Like Deformable 3DGS, the field reads the canonical positions without moving them.
        return self.deformation(self.means.detach(), code)

    def get_outputs(self, camera: Cameras):
        outputs = super().get_outputs(camera)
        view = self.freeze_view(camera) if isinstance(camera, Cameras) else None
        if self.appearance is not None and view is not None and outputs and not self._guidance_render:
            outputs["rgb"] = self.appearance(outputs["rgb"], view, self.training).clamp(0.0, 1.0)
        return outputs

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)
        if self.training and self.last_deltas is not None:
            small_motion = small_motion_loss(self.last_deltas, self.config.small_motion_reduction)
            loss_dict["small_motion"] = self.config.small_motion_weight * small_motion
        return loss_dict

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = super().get_param_groups()
        groups["deformation"] = list(self.deformation.parameters())
        if self.appearance is not None:
            groups["appearance"] = list(self.appearance.parameters())
        return groups
