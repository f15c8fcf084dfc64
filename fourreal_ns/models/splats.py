"""Deformable Gaussian splats on top of nerfstudio's splatfacto, on CPU and CUDA alike.

`DeformableSplatModel` keeps splatfacto's Gaussians, losses, densification (gsplat's DefaultStrategy) and camera
optimiser, and changes what 4Real and a CPU machine need:

- rendering goes through `fourreal_ns.rendering.rasterize` (gsplat on CUDA, our compositor on CPU) after the
  Gaussians are moved by `deltas_for_camera` (subclasses: per-frame or temporal deformation);
- nothing calls `.cuda()` and `get_viewmat` is not `torch.compile`d (on CPU that compiles C++ for 15 s);
- LPIPS is built lazily at evaluation and skipped with a warning when its weights cannot be loaded (offline);
- `load_state_dict` resizes the Gaussian parameters in place, so optimisers built before a `--load-dir` resume
  keep pointing at the live tensors and densification goes on after the resume.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import Tensor
from torch.nn import Parameter

from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import remove
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.models.splatfacto import (
    RGB2SH,
    SplatfactoModel,
    SplatfactoModelConfig,
    num_sh_bases,
    random_quat_tensor,
)

from fourreal_ns.models.deformation import Deltas
from fourreal_ns.rendering import rasterize


def get_viewmat(camera_to_worlds: Tensor) -> Tensor:
    """OpenGL camera-to-world [C, 3, 4] -> gsplat (OpenCV) world-to-camera [C, 4, 4]: flip y and z, invert."""
    rotation = camera_to_worlds[:, :3, :3] * torch.tensor([1.0, -1.0, -1.0], device=camera_to_worlds.device)
    translation = camera_to_worlds[:, :3, 3:4]
    rotation_inv = rotation.transpose(1, 2)
    viewmat = torch.zeros(camera_to_worlds.shape[0], 4, 4, device=camera_to_worlds.device, dtype=camera_to_worlds.dtype)
    viewmat[:, 3, 3] = 1.0
    viewmat[:, :3, :3] = rotation_inv
    viewmat[:, :3, 3:4] = -torch.bmm(rotation_inv, translation)
    return viewmat


@dataclass
class DeformableSplatModelConfig(SplatfactoModelConfig):
    """Splatfacto's options with 4Real's Gaussian settings (paper appendix D.4, E.2)."""

    _target: Type = field(default_factory=lambda: DeformableSplatModel)
    densify_grad_thresh: float = 2e-4
    """Gradient threshold for densification, tau_grad (appendix E.2)."""
    use_absgrad: bool = False
    """4Real follows 3DGS [23]: plain screen-space gradients, for which 2e-4 is the threshold."""
    cull_alpha_thresh: float = 5e-3
    """Opacity threshold for pruning, tau_alpha (appendix E.2)."""
    stop_split_at: int = 15000
    """Densify (split, clone, prune) until this step (appendix C.1b)."""
    camera_optimizer: CameraOptimizerConfig = field(default_factory=lambda: CameraOptimizerConfig(mode="SO3xR3"))
    """Poses from SfM are refined jointly with the Gaussians (paper 3.3, eq. 2)."""
    compute_lpips: bool = True
    """Report LPIPS at evaluation when its network weights are available (skipped with a warning otherwise)."""
    max_gaussians: int = 0
    """A budget: after each densification the least opaque Gaussians beyond this count are removed (0: no cap; ours,
    not in the paper). Real footage keeps splitting (4.5k seed points grew to 148k in 1500 steps), and the step
    time grows with the count."""


class DeformableSplatModel(SplatfactoModel):
    """Splatfacto whose Gaussians can be moved per rendered camera before rasterisation."""

    config: DeformableSplatModelConfig

    # ---------------------------------------------------------------- construction
    def populate_modules(self) -> None:
        """Splatfacto's Gaussians and strategy, built on the CPU without LPIPS (see module docstring)."""
        if self.seed_points is not None and not self.config.random_init:
            means = self.seed_points[0].float().clone()
        else:
            warnings.warn("No seed points in the scene: initialising the Gaussians at random (paper: SfM points).")
            means = (torch.rand((self.config.num_random, 3)) - 0.5) * self.config.random_scale
        distances, _ = self.k_nearest_sklearn(means, 3)
        avg_dist = torch.from_numpy(distances).mean(dim=-1, keepdim=True).clamp_min(1e-7)
        num_points = means.shape[0]
        dim_sh = num_sh_bases(self.config.sh_degree)
        features_dc = torch.rand(num_points, 3)
        features_rest = torch.zeros(num_points, dim_sh - 1, 3)
        if self.seed_points is not None and not self.config.random_init and self.seed_points[1].shape[0] > 0:
            colours = self.seed_points[1].float() / 255.0
            if self.config.sh_degree > 0:
                features_dc = RGB2SH(colours)
            else:
                features_dc = torch.logit(colours, eps=1e-10)
        self.gauss_params = torch.nn.ParameterDict(
            {
                "means": Parameter(means),
                "scales": Parameter(torch.log(avg_dist.repeat(1, 3))),
                "quats": Parameter(random_quat_tensor(num_points)),
                "features_dc": Parameter(features_dc),
                "features_rest": Parameter(features_rest),
                "opacities": Parameter(torch.logit(0.1 * torch.ones(num_points, 1))),
            }
        )
        self.camera_optimizer = self.config.camera_optimizer.setup(num_cameras=self.num_train_data, device="cpu")

        from nerfstudio.model_components.lib_bilagrid import BilateralGrid
        from pytorch_msssim import SSIM
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = SSIM(data_range=1.0, size_average=True, channel=3)
        self._lpips_state: Dict[str, object] = {}  # not a module: never in a checkpoint
        self.step = 0
        self.crop_box = None
        self.last_deltas: Optional[Deltas] = None
        self._guidance_render = False
        if self.config.background_color == "random":
            self.background_color = torch.tensor([0.1490, 0.1647, 0.2157])  # the viewer's background
        else:
            from nerfstudio.utils.colors import get_color

            self.background_color = get_color(self.config.background_color)
        if self.config.use_bilateral_grid:
            self.bil_grids = BilateralGrid(
                num=self.num_train_data,
                grid_X=self.config.grid_shape[0],
                grid_Y=self.config.grid_shape[1],
                grid_W=self.config.grid_shape[2],
            )
        self.strategy = self.make_strategy()
        self.strategy_state = self.strategy.initialize_state(scene_scale=1.0)

    def strategy_settings(self) -> Dict[str, object]:
        """gsplat DefaultStrategy arguments with splatfacto's settings (split, clone, prune, opacity reset)."""
        return dict(
            prune_opa=self.config.cull_alpha_thresh,
            grow_grad2d=self.config.densify_grad_thresh,
            grow_scale3d=self.config.densify_size_thresh,
            grow_scale2d=self.config.split_screen_size,
            prune_scale3d=self.config.cull_scale_thresh,
            prune_scale2d=self.config.cull_screen_size,
            refine_scale2d_stop_iter=self.config.stop_screen_size_at,
            refine_start_iter=self.config.warmup_length,
            refine_stop_iter=self.config.stop_split_at,
            reset_every=self.config.reset_alpha_every * self.config.refine_every,
            refine_every=self.config.refine_every,
            pause_refine_after_reset=self.num_train_data + self.config.refine_every,
            absgrad=self.config.use_absgrad,
            revised_opacity=False,
            verbose=False,
        )

    def make_strategy(self) -> DefaultStrategy:
        """gsplat's densification, as splatfacto runs it."""
        return DefaultStrategy(**self.strategy_settings())

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):  # type: ignore[override]
        """Resize the Gaussians in place to the checkpoint's count, then load.

        Splatfacto replaces the Parameters instead; optimisers built before the checkpoint is loaded (ns-train
        --load-dir) would then step stale tensors and densification would act on them."""
        self.step = 30000  # as splatfacto: a loaded model renders with every SH degree
        num = state_dict["gauss_params.means"].shape[0]
        for param in self.gauss_params.values():
            param.data = param.data.new_zeros((num,) + tuple(param.shape[1:]))
        return torch.nn.Module.load_state_dict(self, state_dict, strict=strict)

    # ---------------------------------------------------------------- the stage schedule (read by FourRealPipeline)
    canonical_checkpoint_error: Optional[Exception] = None
    """A start-up problem that only matters when training (4real-motion's missing canonical run)."""
    moves_in_time: bool = False
    """Whether the model deforms the scene with time (4real-motion)."""

    def training_videos(self, step: int) -> Optional[Sequence[str]]:
        """Which videos the datamanager draws from at `step` (None: all it loaded)."""
        return None

    def training_time_window(self, step: int) -> Optional[float]:
        """The largest |t - t_c| of the frames drawn at `step` (None: every time)."""
        return None

    def sds_kind(self, step: int) -> Optional[str]:
        """The video SDS of `step`: "multiview", "temporal" or None (no SDS)."""
        return None

    def sds_window(self) -> Tuple[int, int]:
        """The steps of video SDS, [start, end)."""
        return 0, 0

    def sds_weight(self, kind: str) -> float:
        return 0.0

    # ---------------------------------------------------------------- deformation hooks
    def deltas_for_camera(self, camera: Cameras) -> Optional[Deltas]:
        """Offsets of every Gaussian for this camera (its frame or time); None renders the canonical scene."""
        return None

    def deltas_for_time(self, time: Optional[float]) -> Optional[Deltas]:
        """Offsets of every Gaussian at scene time `time` (None: the canonical time); None: no motion."""
        return None

    @torch.no_grad()
    def gaussians_at_time(self, time: Optional[float]) -> Dict[str, Tensor]:
        """The Gaussian parameters (splatfacto's pre-activation layout: log-scales, raw quaternions, logit
        opacities, SH coefficients) of the scene at `time`: what a 4D export writes per time step."""
        params = {name: value.detach().clone() for name, value in self.gauss_params.items()}
        deltas = self.deltas_for_time(time)
        if deltas is not None:
            params["means"] = params["means"] + deltas.means
            params["quats"] = params["quats"] + deltas.quats
            params["scales"] = params["scales"] + deltas.scales
        return params

    # ---------------------------------------------------------------- rendering
    def gaussians_for_rendering(self) -> Dict[str, Tensor]:
        """The per-Gaussian tensors a render uses; a subclass may detach those it keeps frozen."""
        return dict(self.gauss_params.items())

    def active_sh_degree(self) -> int:
        """Splatfacto's schedule: one more spherical-harmonics degree every `sh_degree_interval` steps."""
        return min(self.step // self.config.sh_degree_interval, self.config.sh_degree)

    def is_fixed_camera(self, camera: Cameras) -> bool:
        """Whether pose refinement leaves this training camera as it is (none here; 4real-canonical fixes its
        canonical frame's). Our own test, not CameraOptimizer's `non_trainable_camera_indices`: nerfstudio 1.1.5
        applies those to positions in the batch it is given rather than to camera indices, which is wrong for the
        one camera a splat step renders."""
        return False

    def get_outputs(self, camera: Cameras) -> Dict[str, Union[Tensor, List]]:
        if not isinstance(camera, Cameras):
            return {}
        if self.training:
            assert camera.shape[0] == 1, "Only one camera at a time"
            if self.is_fixed_camera(camera):
                camera_to_worlds = camera.camera_to_worlds  # its pose adjustment gets no gradient and stays zero
            else:
                camera_to_worlds = self.camera_optimizer.apply_to_camera(camera)
        else:
            camera_to_worlds = camera.camera_to_worlds

        deltas = self.deltas_for_camera(camera)
        self.last_deltas = deltas
        gaussians = self.gaussians_for_rendering()
        means, quats, scales = gaussians["means"], gaussians["quats"], gaussians["scales"]
        if deltas is not None:
            means, quats, scales = means + deltas.means, quats + deltas.quats, scales + deltas.scales
        opacities, features_dc, features_rest = gaussians["opacities"], gaussians["features_dc"], gaussians["features_rest"]

        if self.crop_box is not None and not self.training:
            crop_ids = self.crop_box.within(means).squeeze()
            if crop_ids.sum() == 0:
                return self.get_empty_outputs(int(camera.width.item()), int(camera.height.item()), self.background_color)
            means, quats, scales = means[crop_ids], quats[crop_ids], scales[crop_ids]
            opacities, features_dc, features_rest = opacities[crop_ids], features_dc[crop_ids], features_rest[crop_ids]
        colors = torch.cat((features_dc[:, None, :], features_rest), dim=1)

        scale_factor = self._get_downscale_factor()
        camera.rescale_output_resolution(1 / scale_factor)
        viewmat = get_viewmat(camera_to_worlds)
        Ks = camera.get_intrinsics_matrices().to(self.device)
        width, height = int(camera.width.item()), int(camera.height.item())
        self.last_size = (height, width)
        camera.rescale_output_resolution(scale_factor)

        render_mode = "RGB+ED" if (self.config.output_depth_during_training or not self.training) else "RGB"
        if self.config.sh_degree > 0:
            sh_degree = self.active_sh_degree()
        else:
            colors = torch.sigmoid(colors).squeeze(1)
            sh_degree = None

        render, alpha, self.info = rasterize(
            means=means,
            quats=quats,
            scales=torch.exp(scales),
            opacities=torch.sigmoid(opacities).squeeze(-1),
            colors=colors,
            viewmats=viewmat,
            Ks=Ks,
            width=width,
            height=height,
            packed=False,
            near_plane=0.01,
            far_plane=1e10,
            render_mode=render_mode,
            sh_degree=sh_degree,
            sparse_grad=False,
            absgrad=self.strategy.absgrad,
            rasterize_mode=self.config.rasterize_mode,
        )
        if self.training and self.info["means2d"].requires_grad and not self._guidance_render:
            # (not when every Gaussian is frozen (stage 2), nor for the extra renders of video SDS)
            self.strategy.step_pre_backward(self.gauss_params, self.optimizers, self.strategy_state, self.step, self.info)

        background = self.background_color.to(self.device) if self._guidance_render else self._get_background_color()
        rgb = torch.clamp(render[..., :3] + (1 - alpha) * background, 0.0, 1.0)
        if self.config.use_bilateral_grid and self.training and camera.metadata and "cam_idx" in camera.metadata:
            rgb = self._apply_bilateral_grid(rgb, camera.metadata["cam_idx"], height, width)
        depth = None
        if render_mode == "RGB+ED":
            depth = render[..., 3:4]
            depth = torch.where(alpha > 0, depth, depth.detach().max()).squeeze(0)
        if not self.training:
            background = background.expand(height, width, 3)
        return {"rgb": rgb.squeeze(0), "depth": depth, "accumulation": alpha.squeeze(0), "background": background}

    def render_for_guidance(self, camera: Cameras) -> Tensor:
        """An extra render inside a training step, for video SDS (pipeline.py): [H, W, 3], differentiable.

        The step's main render keeps what it left for densification (`info`) and for the regularisers
        (`last_deltas`, `last_time`), and the background is the fixed one: a random background per frame (splatfacto's
        training default) would make the video flicker."""
        saved = {name: getattr(self, name, None) for name in ("info", "last_deltas", "last_time", "last_size")}
        self._guidance_render = True
        try:
            return self.get_outputs(camera)["rgb"]
        finally:
            self._guidance_render = False
            for name, value in saved.items():
                setattr(self, name, value)

    def step_post_backward(self, step: int) -> None:
        """Densification after the optimiser step (splatfacto's), skipped for a render nothing could learn from, then
        the Gaussian budget (`max_gaussians`)."""
        if not self.info["means2d"].requires_grad:
            return
        super().step_post_backward(step)
        self.enforce_gaussian_budget()

    def num_frozen_gaussians(self) -> int:
        """How many leading Gaussians no densification may touch (4real-motion's frozen canonical ones)."""
        return 0

    @torch.no_grad()
    def enforce_gaussian_budget(self) -> int:
        """Remove the least opaque Gaussians beyond `max_gaussians` (never frozen ones); returns how many went."""
        budget, count = self.config.max_gaussians, self.means.shape[0]
        if budget <= 0 or count <= budget:
            return 0
        opacity = self.opacities.detach().flatten().clone()
        opacity[: self.num_frozen_gaussians()] = float("inf")
        excess = min(count - budget, count - self.num_frozen_gaussians())
        if excess <= 0:
            return 0
        drop = torch.zeros(count, dtype=torch.bool, device=opacity.device)
        drop[torch.topk(opacity, excess, largest=False).indices] = True
        remove(self.gauss_params, self.optimizers, self.strategy_state, drop)
        return excess

    # ---------------------------------------------------------------- metrics
    def _lpips(self):
        """LPIPS network, built once on first use; None (with one warning) where its weights cannot be loaded."""
        if not self.config.compute_lpips:
            return None
        if "model" not in self._lpips_state:
            try:
                from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

                self._lpips_state["model"] = LearnedPerceptualImagePatchSimilarity(normalize=True).to(self.device)
            except Exception as error:  # offline: the AlexNet weights cannot be downloaded
                warnings.warn(f"LPIPS is not reported: its network weights could not be loaded ({error}).")
                self._lpips_state["model"] = None
        return self._lpips_state["model"]

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        gt_rgb = self.composite_with_background(self.get_gt_img(batch["image"]), outputs["background"])
        predicted_rgb = outputs["rgb"]
        combined_rgb = torch.cat([gt_rgb, predicted_rgb], dim=1)
        gt = torch.moveaxis(gt_rgb, -1, 0)[None]
        predicted = torch.moveaxis(predicted_rgb, -1, 0)[None]
        metrics = {"psnr": float(self.psnr(gt, predicted).item()), "ssim": float(self.ssim(gt, predicted))}
        lpips = self._lpips()
        if lpips is not None:
            metrics["lpips"] = float(lpips(gt, predicted))
        return metrics, {"img": combined_rgb}


def psnr(prediction: Tensor, target: Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = torch.mean((prediction.float() - target.float()) ** 2).item()
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)
