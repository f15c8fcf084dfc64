"""FourRealPipeline: nerfstudio's VanillaPipeline plus what the 4Real stages need from the training loop.

- Before each training step it tells the datamanager which videos the model's current stage trains on
  (`model.training_videos(step)`; paper C.2: reference frames first, every frame in the joint fine-tune) and
  within which time of t_c (`model.training_time_window(step)`: the motion fit's time curriculum).
- Inside the model's SDS windows it adds the video score distillation term to the loss (paper 3.3 eqs. 4-6, 3.4,
  D.1; guidance/): it renders a 16-frame trajectory (guidance/trajectories.py), shows it to the video model
  (guidance/sds.py) and pulls the renders towards the model's denoised frames. The model says which kind of SDS a
  step runs (`sds_kind`: "multiview" or "temporal"), its window and its weight.

The video model is built on the first SDS step, so ns-viewer, ns-render, ns-export and ns-eval never build it, and
it is kept outside the module tree (never in a checkpoint). Data still flows one way: the pipeline reads the
model's schedule and the datamanager's frames and hands renders to the model's loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Protocol, Sequence, Tuple, Type

import torch
from torch import Tensor

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils import writer

from fourreal_ns.data.scene import VIDEO_IDS
from fourreal_ns.guidance.config import GuidanceConfig
from fourreal_ns.guidance.sds import SDSConfig, annealed_sigma, sample_model_view, sds_loss
from fourreal_ns.guidance.trajectories import Trajectory, multiview_trajectory, temporal_trajectory


@dataclass
class FourRealPipelineConfig(VanillaPipelineConfig):
    """VanillaPipeline with the 4Real stage schedule relayed to the datamanager and video SDS in the SDS windows."""

    _target: Type = field(default_factory=lambda: FourRealPipeline)
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    """The video model of score distillation (paper 3.3, 3.4; guidance/)."""
    sds: SDSConfig = field(default_factory=SDSConfig)
    """How an SDS step samples its video and noise level (appendix D.1)."""


class StagedModel(Protocol):
    """What the pipeline asks its model each step (DeformableSplatModel has the defaults: no stages, no SDS)."""

    canonical_checkpoint_error: Optional[Exception]
    moves_in_time: bool

    def training_videos(self, step: int) -> Optional[Sequence[str]]: ...
    def training_time_window(self, step: int) -> Optional[float]: ...
    def sds_kind(self, step: int) -> Optional[str]: ...
    def sds_window(self) -> Tuple[int, int]: ...
    def sds_weight(self, kind: str) -> float: ...
    def render_for_guidance(self, camera: Cameras) -> Tensor: ...


class FourRealPipeline(VanillaPipeline):
    config: FourRealPipelineConfig
    model: StagedModel

    def __init__(self, config: FourRealPipelineConfig, *args, **kwargs) -> None:
        # A config.yml written before SDS existed has neither block: it loads with SDS off.
        if not hasattr(config, "guidance"):
            config.guidance = GuidanceConfig(enabled=False)
        if not hasattr(config, "sds"):
            config.sds = SDSConfig()
        super().__init__(config, *args, **kwargs)
        if self.test_mode == "val" and self.model.canonical_checkpoint_error is not None:
            raise self.model.canonical_checkpoint_error  # training needs stage 1's Gaussians; a finished run does not
        if self.test_mode == "val" and config.guidance.enabled and self.model.sds_window()[1] > 0:
            config.guidance.check_available()  # training: missing weights fail now, not at the first SDS step
        self._sds_generator = torch.Generator().manual_seed(config.sds.seed)
        object.__setattr__(self, "_guidance", None)  # not registered as a submodule: never in a checkpoint

    # ---------------------------------------------------------------- the training step
    def get_train_loss_dict(self, step: int):
        self.datamanager.use_videos(self.model.training_videos(step), self.model.training_time_window(step))
        model_outputs, loss_dict, metrics_dict = super().get_train_loss_dict(step)
        kind = self.model.sds_kind(step)
        if kind is not None and self.config.guidance.enabled:
            loss, sigma = self.score_distillation(step, kind)
            loss_dict[f"sds_{kind}"] = self.model.sds_weight(kind) * loss
            metrics_dict["sds_sigma"] = sigma
        return model_outputs, loss_dict, metrics_dict

    def get_guidance(self):
        """The video model, built on first use (only ever inside a training step). A method, not a property: the
        viewer reads every attribute of the pipeline (`parse_object`) and would build the model."""
        if self._guidance is None:
            object.__setattr__(self, "_guidance", self.config.guidance.build(self.guidance_prompt(), self.device))
        return self._guidance

    def guidance_prompt(self) -> Optional[str]:
        """--pipeline.guidance.prompt, else the scene's generation prompt (svd takes none)."""
        if self.config.guidance.prompt:
            return self.config.guidance.prompt
        generation = self.datamanager.train_dataparser_outputs.metadata.get("generation") or {}
        if generation.get("prompt"):
            return str(generation["prompt"])
        if self.config.guidance.backend == "svd":
            return None
        raise ValueError(
            "Video SDS needs a text prompt: this scene's transforms.json has no generation.prompt. Pass "
            "--pipeline.guidance.prompt 'TEXT', or turn SDS off with --pipeline.guidance.enabled False."
        )

    # ---------------------------------------------------------------- one SDS step
    def score_distillation(self, step: int, kind: str):
        """Eqs. 4-6 for one trajectory of `kind`; returns (unweighted loss, sigma)."""
        guidance = self.get_guidance()
        trajectory = self.sample_trajectory(kind)
        renders = self.render_trajectory(trajectory)  # [F, 3, H, W]
        if trajectory.condition_image_index is not None:
            condition = self.training_image(trajectory.condition_image_index)
        else:
            condition = renders[0].detach()
        view = sample_model_view(renders.shape[-2], renders.shape[-1], tuple(guidance.sds_size), self._sds_generator)
        frames = view.apply(renders)
        condition_view = view.apply(condition[None])[0]
        sigma = annealed_sigma(step, *self.model.sds_window(), self.config.sds)
        with torch.no_grad():
            targets = guidance.targets_for_trajectory(trajectory, view)  # None unless the guidance knows the scene
            if targets is None:
                targets = guidance.predict_x0(frames.detach(), condition_view, sigma)
        targets = targets.to(frames)
        if self.config.sds.log_every > 0 and step % self.config.sds.log_every == 0:
            self.log_sds_images(step, kind, frames.detach(), targets)
        return sds_loss(frames, targets), sigma

    def orbit_cameras(self) -> Dict[str, object]:
        """Training cameras the trajectories start from and aim at: the freeze-time cameras (all training cameras
        of a scene without a freeze-time video), the canonical/reference start camera and their indices."""
        cameras = self.datamanager.train_dataset.cameras
        video_ids = cameras.metadata["video_id"].flatten().tolist()
        freeze = [i for i, v in enumerate(video_ids) if v == VIDEO_IDS["freeze"]] or list(range(len(video_ids)))
        reference = [i for i, v in enumerate(video_ids) if v == VIDEO_IDS["reference"]]
        canonical = self.datamanager.canonical_train_index
        start = canonical if canonical is not None else (reference[0] if reference else freeze[0])
        return {"freeze": freeze, "reference": reference, "start": start}

    def sample_trajectory(self, kind: str) -> Trajectory:
        """Multi-view: from the canonical camera at the canonical time (stage 1), or from the reference camera at a
        reference frame's time conditioned on that frame (stage 2, 3.4); temporal: a freeze-time camera."""
        cameras = self.datamanager.train_dataset.cameras
        c2w = cameras.camera_to_worlds
        times = cameras.times.flatten() if cameras.times is not None else torch.zeros(len(c2w))
        indices = self.orbit_cameras()
        generator, num_frames = self._sds_generator, self.config.sds.num_frames
        orbit = c2w[indices["freeze"]]
        canonical_time = float(self.datamanager.train_dataparser_outputs.metadata.get("canonical", {}).get("time", 0))
        if kind == "multiview":
            start = indices["start"]
            if self.model.moves_in_time and indices["reference"]:
                start = indices["reference"][int(torch.randint(len(indices["reference"]), (), generator=generator))]
            start_in_orbit = indices["freeze"].index(start) if start in indices["freeze"] else None
            return multiview_trajectory(c2w[start], orbit, float(times[start]), num_frames,
                                        self.config.sds.perturb_radius, generator, condition_image_index=start,
                                        start_index=start_in_orbit)  # fmt: skip
        chosen = indices["freeze"][int(torch.randint(len(indices["freeze"]), (), generator=generator))]
        # Frame 0 is at time 0: the real image of that camera conditions the model when it shows time 0.
        condition = chosen if abs(float(times[chosen])) < 1e-6 and canonical_time == 0.0 else None
        return temporal_trajectory(c2w[chosen], num_frames, generator, condition_image_index=condition)

    def render_trajectory(self, trajectory: Trajectory) -> Tensor:
        """The model's renders of the trajectory's frames, [F, 3, H, W], with gradients (intrinsics of the start
        camera)."""
        template = self.datamanager.train_dataset.cameras[self.orbit_cameras()["start"]]
        frames = []
        for camera_to_world, time in zip(trajectory.camera_to_worlds, trajectory.times):
            camera = Cameras(
                camera_to_worlds=camera_to_world[None].to(template.camera_to_worlds),
                fx=template.fx.reshape(1, 1), fy=template.fy.reshape(1, 1),
                cx=template.cx.reshape(1, 1), cy=template.cy.reshape(1, 1),
                width=template.width.reshape(1, 1), height=template.height.reshape(1, 1),
                camera_type=template.camera_type.reshape(1, 1), times=time.reshape(1, 1).to(template.fx),
            ).to(self.device)  # fmt: skip
            frames.append(self.model.render_for_guidance(camera).permute(2, 0, 1))
        return torch.stack(frames)

    def training_image(self, index: int) -> Tensor:
        """Training image `index` as [3, H, W] floats in [0, 1] on the model's device."""
        image = self.datamanager.cached_train[index]["image"]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return image[..., :3].permute(2, 0, 1).to(self.device)

    def log_sds_images(self, step: int, kind: str, frames: Tensor, targets: Tensor, columns: int = 4) -> None:
        """Renders (top row) and SDS targets (bottom row) of a few frames to tensorboard/wandb."""
        picks = torch.linspace(0, frames.shape[0] - 1, min(columns, frames.shape[0])).round().long()
        top = torch.cat(list(frames[picks]), dim=-1)
        bottom = torch.cat(list(targets[picks].clamp(0, 1)), dim=-1)
        writer.put_image(name=f"SDS/{kind}", image=torch.cat([top, bottom], dim=-2).permute(1, 2, 0).cpu(), step=step)
