"""Stage 2 of 4Real: temporal deformation of the canonical Gaussians, fitted to the reference video (paper 3.4,
appendices B, C.2, D.2, E).

The scene at time t is the canonical Gaussians moved by a temporal deformation field w_t(x, t) = (dx, dq, ds)
(eq. 1), an MLP of the same shape as stage 1's per-frame field with time as its code, exactly zero at the canonical
time t_c. It is fitted to the reference video with L1 + SSIM and kept plausible by the regularisers of appendix B
(L_norm, L_diff, L_rigid, L_rot; `regularizers.py`), each weighted 0.01.

Two ways to start (the phases: `motion_phases.py`, the one place that knows their boundaries):
- from a 4real-canonical run (`canonical_checkpoint`; the paper's pipeline). The Gaussians are loaded inside
  `populate_modules`, before the optimisers exist, and the schedule of appendix C.2 runs (steps counted from the
  start of this stage):
    motion fit    [0, motion_fit_steps)              reference frames, Gaussians frozen, only w_t learns; over
                                                     its first `time_curriculum` the frames drawn widen from
                                                     t_c's neighbours to the whole video (ours);
    growth        [.., + growth_steps)               reference frames, canonical Gaussians frozen, new ones are
                                                     introduced and densified (growth.py, D.2, E.2);
    joint         [.., max steps)                    every frame, every parameter;
    SDS window    [sds_start_step, sds_end_step)     joint temporal + multi-view SDS (FourRealPipeline).
- from scratch (no checkpoint; plain dynamic data such as D-NeRF): a static warm-up trains the Gaussians alone
  for `static_warmup_steps`, then Gaussians and w_t train together on every frame, densifying as stage 1 does.

Rendering at time t deforms, then rasterises; a camera without a time (ns-render interpolate, the viewer without
its time slider) sees the canonical time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor
from torch.nn import Parameter

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.cameras.cameras import Cameras

from fourreal_ns.checkpoints import CheckpointError, checkpoint_files, load_newest_checkpoint, read_checkpoint
from fourreal_ns.errors import FourRealError
from fourreal_ns.models.deformation import DeformationField, DeformationFieldConfig, Deltas
from fourreal_ns.models.growth import FrozenPrefixStrategy, accumulate_statistics, introduce_new_gaussians
from fourreal_ns.models.motion_phases import GROWTH, MOTION_FIT, MotionPhases
from fourreal_ns.models.regularizers import (
    NeighbourGraph,
    diff_loss,
    nearest_neighbours,
    norm_loss,
    rigid_loss,
    rotation_loss,
)
from fourreal_ns.models.splats import DeformableSplatModel, DeformableSplatModelConfig

GAUSSIAN_NAMES = ("means", "scales", "quats", "features_dc", "features_rest", "opacities")
OPTION = "--pipeline.model.canonical-checkpoint"


@dataclass
class FourRealMotionModelConfig(DeformableSplatModelConfig):
    """4real-motion: temporal deformation of canonical Gaussians (defaults: method_configs.py / .md)."""

    _target: Type = field(default_factory=lambda: FourRealMotionModel)
    canonical_checkpoint: Optional[Path] = None
    """A 4real-canonical run (its folder, its config.yml, its nerfstudio_models folder or a .ckpt file). None
    trains canonical Gaussians and motion together from a static warm-up (plain dynamic data such as D-NeRF)."""
    from_scratch: bool = False
    """Say that training without `canonical_checkpoint` on a scene with a freeze-time video is meant: without it
    `ns-train` stops before training (fourreal_ns/preflight.py), since stage 1's work would be silently unused.
    Scenes without a freeze-time video (D-NeRF, a handheld video) train from scratch without it."""
    deformation: DeformationFieldConfig = field(default_factory=DeformationFieldConfig)
    """The temporal deformation MLP w_t (appendix D.3); its code is time."""
    motion_fit_steps: int = 10000
    """With a canonical run: steps fitting the motion with the Gaussians frozen (appendix C.2a)."""
    growth_steps: int = 5000
    """With a canonical run: steps growing new Gaussians with the canonical ones frozen (C.2b, D.2)."""
    growth_cull_alpha_thresh: float = 1e-2
    """Opacity threshold for pruning during growth, tau_alpha (appendix E.2)."""
    static_warmup_steps: int = 3000
    """Without a canonical run: steps training the Gaussians alone before the motion starts."""
    time_curriculum: float = 0.5
    """With a canonical run: over this fraction of the motion fit, the frames drawn widen from t_c's neighbours to
    the whole video (0: every frame from the start, as the paper). A frame is drawn once its time is within the
    window around t_c, so the field follows a moving object frame by frame, where its render still overlaps the
    image, instead of meeting its far-away positions first (ours; method_configs.md)."""
    anchor_canonical_time: bool = True
    """w_t is exactly zero at the canonical time (3.4: the motion starts from the canonical Gaussians at t_c).
    False, only without a canonical run: the field is free at every time and the Gaussians are a latent canonical
    space (Deformable 3DGS), better where few frames show the canonical time (D-NeRF: one camera at t = 0)."""
    norm_weight: float = 0.01
    """Weight of L_norm, eq. 7 (appendix E.1)."""
    diff_weight: float = 0.01
    """Weight of L_diff, eq. 8 (E.1)."""
    rigid_weight: float = 0.01
    """Weight of L_rigid, eqs. 9-11 (E.1)."""
    rot_weight: float = 0.01
    """Weight of L_rot, eq. 12 (E.1)."""
    num_neighbours: int = 20
    """k of the k-nearest-neighbour graph over canonical positions (appendix B; [33] uses 20)."""
    neighbour_falloff: Optional[float] = None
    """lambda_w of eq. 9. None: 1 / mean squared neighbour distance (the paper gives no value; it depends on the
    scene's units)."""
    regularizer_samples: Optional[int] = None
    """Evaluate L_rigid, L_rot and L_diff on this many random Gaussians (and their neighbours) per step, an
    unbiased estimate of the mean over all; None: every Gaussian (the paper). The CPU schedule sets it."""
    regularizer_time_step: Optional[float] = None
    """The gap between t-1 and t in eqs. 8, 10, 12. None: one reference frame (1 / (frames - 1))."""
    sds_start_step: int = 15000
    """First step of joint temporal + multi-view SDS (C.2d: from 35k of the whole run = 15k into this stage)."""
    sds_end_step: int = 20000
    """Step at which the SDS window ends (C.2d: it lasts 5k steps)."""
    temporal_sds_weight: float = 20.0
    """Weight of the temporal SDS loss (E.1)."""
    multiview_sds_weight: float = 5.0
    """Weight of the multi-view SDS loss (E.1)."""
    camera_optimizer: CameraOptimizerConfig = field(default_factory=lambda: CameraOptimizerConfig(mode="off"))
    """Off: the reference camera is static and stage 1 already refined the poses."""


class MotionConfigError(FourRealError, ValueError):
    """A 4real-motion option or canonical run that cannot work; the message names the option and the fix."""


class MissingCanonicalRunError(FourRealError, FileNotFoundError):
    """--pipeline.model.canonical-checkpoint names nothing that holds a checkpoint."""


def resolve_canonical_checkpoint(path: Path) -> Path:
    """The checkpoints folder (or .ckpt file) of a 4real-canonical run given as a run folder, its config.yml, its
    nerfstudio_models folder or a .ckpt file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingCanonicalRunError(
            f"{OPTION} {path}: no such file or folder. Give the output folder of a finished `ns-train "
            "4real-canonical` run (the one holding config.yml and nerfstudio_models/)."
        )
    if path.is_file() and path.suffix == ".ckpt":
        return path
    if path.is_file() and path.name == "config.yml":
        path = path.parent
    folder = path if path.name == "nerfstudio_models" else path / "nerfstudio_models"
    if not checkpoint_files(folder):
        raise MissingCanonicalRunError(
            f"{OPTION} {path}: no checkpoint (nerfstudio_models/step-*.ckpt) there. Give the output folder of a "
            "finished `ns-train 4real-canonical` run, its config.yml, or a .ckpt file."
        )
    return folder


def load_canonical_gaussians(path: Path) -> Dict[str, Tensor]:
    """The canonical Gaussians (splatfacto's parameter layout) of a 4real-canonical run: its newest checkpoint that
    loads (fourreal_ns/checkpoints.py)."""
    source = resolve_canonical_checkpoint(path)
    try:
        if source.is_dir():
            checkpoint_file, state = load_newest_checkpoint(source)
        else:
            checkpoint_file, state = source, read_checkpoint(source)
    except CheckpointError as error:
        raise MotionConfigError(f"{OPTION} {path}: {error}") from None
    pipeline_state = state["pipeline"]
    if any(key.startswith("_model.temporal_deformation.") for key in pipeline_state):
        raise MotionConfigError(
            f"{OPTION} {checkpoint_file} is a 4real-motion run; stage 2 starts from a 4real-canonical run."
        )
    if "_model.gauss_params.means" not in pipeline_state or "_model.deformation.canonical_code" not in pipeline_state:
        raise MotionConfigError(
            f"{OPTION} {checkpoint_file} is not a 4real-canonical checkpoint (no canonical Gaussians and per-frame "
            "deformation in it). Train stage 1 first: `ns-train 4real-canonical --data SCENE`."
        )
    return {name: pipeline_state[f"_model.gauss_params.{name}"].float() for name in GAUSSIAN_NAMES}


def curriculum_time_window(step: int, ramp_steps: float, canonical_time: float, frame_step: float) -> Optional[float]:
    """The time curriculum of the motion fit (`time_curriculum`): the largest |t - t_c| drawn at `step`, widening in
    whole frames from t_c's neighbours at step 0 to the farthest time of [0, 1] at `ramp_steps`; None from then on
    (and for ramp_steps <= 0): every time."""
    if ramp_steps <= 0 or step >= ramp_steps:
        return None
    farthest = max(canonical_time, 1.0 - canonical_time)
    return frame_step * math.ceil(farthest * (step + 1) / ramp_steps / frame_step - 1e-9)


class StaticSceneError(FourRealError, ValueError):
    """4real-motion asked to train a scene in which nothing moves."""

    def __init__(self, scene: str) -> None:
        super().__init__(
            f"{scene} is a static scene (a freeze-time or orbit video alone, no reference video): 4real-motion has "
            f"nothing to animate. Train it with `ns-train 4real-canonical --data {scene}` and look at that run, or "
            "make a scene with a reference video: `fourreal process --freeze FREEZE --reference REFERENCE --out "
            "SCENE`."
        )


class FourRealMotionModel(DeformableSplatModel):
    """Splatfacto + the temporal deformation of 4Real's stage 2."""

    config: FourRealMotionModelConfig
    moves_in_time = True

    # ---------------------------------------------------------------- construction
    def populate_modules(self) -> None:
        self.has_canonical = self.config.canonical_checkpoint is not None
        if self.has_canonical and self.config.from_scratch:
            raise MotionConfigError(
                f"--pipeline.model.from-scratch True and {OPTION} {self.config.canonical_checkpoint}: give one of the "
                "two (from a canonical run, the paper's pipeline; or from scratch)."
            )
        if self.has_canonical and not self.config.anchor_canonical_time:
            raise MotionConfigError(
                "--pipeline.model.anchor-canonical-time False needs training from scratch: the Gaussians of "
                f"{OPTION} are the scene at the canonical time, so the motion must be zero there."
            )
        if not 0.0 <= self.config.time_curriculum <= 1.0:
            raise MotionConfigError(
                f"--pipeline.model.time-curriculum {self.config.time_curriculum:g}: give the fraction of the motion "
                "fit over which the frames drawn widen to the whole video, in [0, 1] (0 turns the curriculum off)."
            )
        metadata = self.kwargs.get("metadata", {}) or {}
        if metadata.get("static"):
            raise StaticSceneError(metadata.get("scene", "the scene"))
        self.phases = MotionPhases(self.has_canonical, self.config.motion_fit_steps, self.config.growth_steps,
                                   self.config.static_warmup_steps, self.config.sds_start_step,
                                   self.config.sds_end_step)  # fmt: skip
        super().populate_modules()  # builds the strategy (make_strategy), which reads the phases
        self.canonical_time = float(metadata.get("canonical", {}).get("time", 0.0))
        # The time between reference frames (1 / 16 where a scene has a single time): eqs. 8-12's t - 1, the curriculum.
        self.reference_time_step = float(metadata.get("reference_time_step", 0.0)) or 1.0 / 16
        anchor = self.canonical_time if self.config.anchor_canonical_time else None
        self.temporal_deformation: DeformationField = self.config.deformation.setup(canonical_code=anchor)
        # How many leading Gaussians are frozen (growth.py); a buffer so that a resumed run keeps it.
        self.register_buffer("num_frozen", torch.zeros((), dtype=torch.long))
        self.canonical_checkpoint_error: Optional[MissingCanonicalRunError] = None
        self._neighbours: Optional[NeighbourGraph] = None
        self._neighbours_positions: Optional[Tensor] = None  # the positions the graph was built from
        self.last_time: Optional[float] = None
        if self.has_canonical:
            self._load_canonical()

    def _load_canonical(self) -> None:
        try:
            gaussians = load_canonical_gaussians(self.config.canonical_checkpoint)
        except MissingCanonicalRunError as error:
            # A finished run opened by ns-viewer, ns-render, ns-eval or ns-export: its own checkpoint replaces every
            # Gaussian, so stage 1's run may have moved or gone (a run copied to another machine). Training raises
            # this error at setup (FourRealPipeline).
            self.canonical_checkpoint_error = error
            return
        expected = self.gauss_params["features_rest"].shape[1:]
        if gaussians["features_rest"].shape[1:] != expected:
            raise MotionConfigError(
                f"{OPTION} {self.config.canonical_checkpoint}: its Gaussians have "
                f"{gaussians['features_rest'].shape[1] + 1} spherical-harmonics coefficients, this model "
                f"{expected[0] + 1}. Set --pipeline.model.sh-degree as in the canonical run."
            )
        for name, value in gaussians.items():
            self.gauss_params[name] = Parameter(value.clone())

    def make_strategy(self):
        if not self.config.canonical_checkpoint:
            return super().make_strategy()
        # Growth (D.2, E.2): only during the growth stage, only the new Gaussians, the higher opacity threshold.
        settings = self.strategy_settings()
        first, end = self.phases.growth_window()
        settings.update(prune_opa=self.config.growth_cull_alpha_thresh, refine_scale2d_stop_iter=0,
                        refine_start_iter=first, refine_stop_iter=end)  # fmt: skip
        return FrozenPrefixStrategy(**settings)

    # ---------------------------------------------------------------- schedule
    def stage(self, step: int) -> str:
        """"static-warm-up", "motion-fit", "growth" or "joint" (motion_phases.py)."""
        return self.phases.phase(step)

    def training_videos(self, step: int) -> Optional[Sequence[str]]:
        """Which videos the datamanager draws from at `step` (None: all); read by FourRealPipeline."""
        # 4Real-Video grid frames are reference frames seen from several cameras: they fit the motion too.
        return ("reference", "grid") if self.phases.reference_frames_only(step) else None

    def training_time_window(self, step: int) -> Optional[float]:
        """The largest |t - t_c| of the frames drawn at `step` (None: every time); read by FourRealPipeline."""
        if self.phases.phase(step) != MOTION_FIT:
            return None
        ramp_steps = self.config.time_curriculum * self.config.motion_fit_steps
        return curriculum_time_window(step, ramp_steps, self.canonical_time, self.reference_time_step)

    # Video SDS (read by FourRealPipeline): temporal and multi-view, alternating per step (D.1).
    def sds_kind(self, step: int) -> Optional[str]:
        return self.phases.sds_kind(step)

    def sds_window(self) -> Tuple[int, int]:
        return self.phases.sds_window()

    def sds_weight(self, kind: str) -> float:
        return self.config.temporal_sds_weight if kind == "temporal" else self.config.multiview_sds_weight

    def motion_active(self) -> bool:
        return not self.training or self.phases.moves(self.step)

    def active_sh_degree(self) -> int:
        # Canonical Gaussians arrive with every SH degree trained.
        return self.config.sh_degree if self.has_canonical else super().active_sh_degree()

    # ---------------------------------------------------------------- deformation
    def deltas_for_time(self, time: Optional[float]) -> Optional[Deltas]:
        if time is None:
            time = self.canonical_time
        if time == self.canonical_time and self.config.anchor_canonical_time:
            return None
        # As in stage 1, the field reads the canonical positions without moving them.
        return self.temporal_deformation(self.means.detach(), float(time))

    def deltas_for_camera(self, camera: Cameras) -> Optional[Deltas]:
        time = None if camera.times is None else float(camera.times.flatten()[0])
        self.last_time = time
        if not self.motion_active():
            return None
        return self.deltas_for_time(time)

    def gaussians_for_rendering(self) -> Dict[str, Tensor]:
        """During motion fit every Gaussian is frozen, during growth the first `num_frozen` (growth.py)."""
        gaussians = super().gaussians_for_rendering()
        if not self.training or not self.has_canonical:
            return gaussians
        phase = self.phases.phase(self.step)
        if phase == MOTION_FIT:
            return {name: value.detach() for name, value in gaussians.items()}
        if phase == GROWTH:
            frozen = int(self.num_frozen)
            return {name: torch.cat([value[:frozen].detach(), value[frozen:]]) for name, value in gaussians.items()}
        return gaussians

    def num_frozen_gaussians(self) -> int:
        return int(self.num_frozen)

    def step_post_backward(self, step: int) -> None:
        if self.phases.introduces_gaussians(step):
            # The last motion-fit step: the growth stage starts with copies of the canonical Gaussians whose
            # gradients were high during the motion fit (D.2); the canonical ones stay frozen from here on.
            num_canonical = self.means.shape[0]
            if self.info["means2d"].requires_grad:  # not for a frame at the canonical time: nothing moved there
                accumulate_statistics(self.strategy_state, self.info, num_canonical, self.strategy.absgrad)
            introduce_new_gaussians(self.gauss_params, self.optimizers, self.strategy_state,
                                    self.config.densify_grad_thresh)  # fmt: skip
            self.num_frozen.fill_(num_canonical)
            return
        if isinstance(self.strategy, FrozenPrefixStrategy):
            self.strategy.num_frozen = int(self.num_frozen)
        if not self.phases.densifies(step):
            return  # no densification in the joint fine-tune (C.2c)
        super().step_post_backward(step)

    # ---------------------------------------------------------------- regularisers
    def neighbours(self) -> NeighbourGraph:
        """kNN over canonical positions, recomputed when the set of Gaussians has changed."""
        means = self.gauss_params["means"]
        built_from = self._neighbours_positions
        # gsplat's densification and a resume replace the tensor. Holding the one the graph was built from keeps its
        # memory from being handed to a new set of the same size (CUDA's caching allocator would), so a new
        # address always means a new set.
        if built_from is None or means.shape != built_from.shape or means.data_ptr() != built_from.data_ptr():
            self._neighbours = nearest_neighbours(means.detach(), self.config.num_neighbours,
                                                  self.config.neighbour_falloff)  # fmt: skip
            self._neighbours_positions = means.detach()
        return self._neighbours

    def previous_time(self, time: float) -> float:
        """t - 1 of eqs. 8, 10 and 12: one reference frame earlier (later when that would be before 0)."""
        step = self.config.regularizer_time_step or self.reference_time_step
        return time - step if time - step >= 0.0 else time + step

    def regularizer_losses(self, deltas: Deltas, time: float) -> Dict[str, Tensor]:
        """Appendix B's four losses at `time`, each weighted as E.1; gradients reach the deformation field only.

        L_norm uses every Gaussian's offsets (already computed for the render). The others need the offsets one
        time step earlier too: they are evaluated for the sampled Gaussians and their neighbours only."""
        losses = {}
        if self.config.norm_weight > 0:
            losses["motion_norm"] = self.config.norm_weight * norm_loss(deltas)
        if self.config.diff_weight <= 0 and self.config.rigid_weight <= 0 and self.config.rot_weight <= 0:
            return losses
        graph = self.neighbours()
        num = deltas.means.shape[0]
        if self.config.regularizer_samples is not None and self.config.regularizer_samples < num:
            anchors = torch.randperm(num, device=deltas.means.device)[: self.config.regularizer_samples]
        else:
            anchors = torch.arange(num, device=deltas.means.device)
        # The Gaussians involved (anchors and their neighbours), and the neighbour graph re-indexed into them.
        involved, inverse = torch.unique(torch.cat([anchors, graph.indices[anchors].flatten()]), return_inverse=True)
        local = NeighbourGraph(inverse[len(anchors):].reshape(len(anchors), -1), graph.weights[anchors], len(involved))
        means, quats = self.means.detach()[involved], self.quats.detach()[involved]
        now = Deltas(deltas.means[involved], deltas.quats[involved], deltas.scales[involved])
        time_before = self.previous_time(time)
        if time_before == self.canonical_time and self.config.anchor_canonical_time:
            before = Deltas.zeros(len(involved), means.device, means.dtype)
        else:
            before = self.temporal_deformation(means, time_before)
        anchor_rows = inverse[: len(anchors)]
        if self.config.diff_weight > 0:
            losses["motion_diff"] = self.config.diff_weight * diff_loss(now.means[anchor_rows], before.means[anchor_rows])
        quats_now, quats_before = quats + now.quats, quats + before.quats
        if self.config.rigid_weight > 0:
            losses["motion_rigid"] = self.config.rigid_weight * rigid_loss(
                means + now.means, quats_now, means + before.means, quats_before, local, anchor_rows
            )
        if self.config.rot_weight > 0:
            losses["motion_rot"] = self.config.rot_weight * rotation_loss(quats_now, quats_before, local, anchor_rows)
        return losses

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)
        if not self.training:
            return loss_dict
        if self.last_deltas is not None and self.last_time is not None:
            loss_dict.update(self.regularizer_losses(self.last_deltas, self.last_time))
        elif not loss_dict["main_loss"].requires_grad:
            # A reference frame at the canonical time while every Gaussian is frozen: nothing here can learn from
            # it (the motion is exactly zero at t_c). A zero term keeps the trainer's backward pass valid.
            loss_dict["main_loss"] = loss_dict["main_loss"] + 0.0 * next(self.temporal_deformation.parameters()).sum()
        return loss_dict

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        metrics = super().get_metrics_dict(outputs, batch)
        if self.training:
            metrics["num_frozen_gaussians"] = int(self.num_frozen)
        return metrics

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = super().get_param_groups()
        groups["deformation"] = list(self.temporal_deformation.parameters())
        return groups
