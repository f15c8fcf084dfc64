"""Every default of the fourreal methods, in one place. method_configs.md explains each with its paper section.

Registered with nerfstudio through entry points (pyproject.toml):
- `4real-canonical`: stage 1, canonical Gaussians + per-frame deformation from the freeze-time video (paper 3.3);
- `4real-motion`: stage 2, temporal deformation fitted to the reference video (paper 3.4);
(The `fourreal-data` dataparser is registered from fourreal_ns/data/dataparser.py.)
"""

from __future__ import annotations

from typing import List, Optional

import torch

from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from fourreal_ns.data.dataparser import FourRealDataParserConfig
from fourreal_ns.data.datamanager import FreezeTimeDataManagerConfig, ReferenceVideoDataManagerConfig
from fourreal_ns.guidance.config import GuidanceConfig
from fourreal_ns.guidance.sds import SDSConfig
from fourreal_ns.models.canonical import FourRealCanonicalModelConfig
from fourreal_ns.models.deformation import DeformationFieldConfig
from fourreal_ns.models.motion import FourRealMotionModelConfig
from fourreal_ns.pipeline import FourRealPipelineConfig
from fourreal_ns.schedulers import ExponentialDecayConfig
from fourreal_ns.trainer import FourRealTrainerConfig

CANONICAL_STEPS = 20000  # appendix C.1 and section 4: 20k iterations per stage
MOTION_STEPS = 20000  # C.2: motion fit 10k + growth 5k + joint fine-tune 5k (with SDS), steps 20k-40k of the run
MAX_GAUSSIANS = 1_000_000
"""The Gaussian budget of the paper schedules (ours; the paper gives none): the 8 x 256 deformation MLP keeps about
25 kB of activations per Gaussian for a rendered camera (float32, forward and backward), so 1M Gaussians take about
25 GB beside the video model on the paper's 80 GB A100 (method_configs.md)."""


def default_device() -> str:
    """Train where the machine can: CUDA when present, else our CPU rasterizer."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def gaussian_optimizers(max_steps: int) -> dict:
    """Adam for the Gaussians (appendix D.4; the colour and opacity rates are 3DGS's, as splatfacto's)."""
    return {
        "means": {
            "optimizer": AdamOptimizerConfig(lr=1.6e-4, eps=1e-15),
            "scheduler": ExponentialDecayConfig(lr_final=1.6e-6, max_steps=max_steps),
        },
        "features_dc": {"optimizer": AdamOptimizerConfig(lr=0.0025, eps=1e-15), "scheduler": None},
        "features_rest": {"optimizer": AdamOptimizerConfig(lr=0.0025 / 20, eps=1e-15), "scheduler": None},
        "opacities": {"optimizer": AdamOptimizerConfig(lr=0.05, eps=1e-15), "scheduler": None},
        "scales": {"optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15), "scheduler": None},
        "quats": {"optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15), "scheduler": None},
        "camera_opt": {
            "optimizer": AdamOptimizerConfig(lr=1e-4, eps=1e-15),
            "scheduler": ExponentialDecayConfig(lr_final=5e-7, max_steps=max_steps, warmup_steps=1000),
        },
        "appearance": {"optimizer": AdamOptimizerConfig(lr=5e-3, eps=1e-15), "scheduler": None},  # ours, appearance.py
        "bilateral_grid": {
            "optimizer": AdamOptimizerConfig(lr=2e-3, eps=1e-15),
            "scheduler": ExponentialDecayConfig(lr_final=1e-4, max_steps=max_steps, warmup_steps=1000),
        },
    }


def deformation_optimizer(max_steps: int) -> dict:
    """Adam for a deformation MLP, 1e-3 decaying to 1e-5 (appendix D.4)."""
    return {
        "optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15),
        "scheduler": ExponentialDecayConfig(lr_final=1e-5, max_steps=max_steps),
    }


def trainer_config(method_name: str, steps: int, datamanager, model) -> TrainerConfig:
    """What both stages share: nerfstudio's trainer with our fault handling (trainer.py) and optimisers (D.4), CUDA
    where present, no AMP."""
    return FourRealTrainerConfig(
        method_name=method_name,
        steps_per_eval_image=500,
        steps_per_eval_batch=0,
        steps_per_save=2000,
        steps_per_eval_all_images=5000,
        max_num_iterations=steps,
        mixed_precision=False,
        keep_checkpoints=2,
        nonfinite_patience=20,
        machine=MachineConfig(device_type=default_device()),
        pipeline=FourRealPipelineConfig(
            datamanager=datamanager,
            model=model,
            # Video SDS (3.3 eqs. 4-6, 3.4, D.1, E.1); method_configs.md "Video SDS".
            guidance=GuidanceConfig(enabled=True, backend="ltx", model_id=None, prompt=None, dtype="bfloat16"),
            sds=SDSConfig(num_frames=16, sigma_max=0.98, sigma_min=0.02, anneal_power=0.5, perturb_radius=0.15,
                          log_every=100),  # fmt: skip
        ),
        optimizers={**gaussian_optimizers(steps), "deformation": deformation_optimizer(steps)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


def canonical_trainer_config() -> TrainerConfig:
    return trainer_config(
        "4real-canonical",
        CANONICAL_STEPS,
        datamanager=FreezeTimeDataManagerConfig(
            dataparser=FourRealDataParserConfig(videos=("freeze",)),
            cache_images_type="uint8",
        ),
        model=FourRealCanonicalModelConfig(
            deformation=DeformationFieldConfig(depth=8, width=256, skip_layer=4, position_freqs=10, code_freqs=6),
            deformation_start_step=3000,
            small_motion_weight=0.01,
            small_motion_reduction="mean",
            undeformed_fraction=0.2,
            anchor_canonical_camera=True,
            stop_split_at=15000,
            densify_grad_thresh=2e-4,
            cull_alpha_thresh=5e-3,
            multiview_sds_start_step=15000,
            multiview_sds_end_step=CANONICAL_STEPS,
            multiview_sds_weight=5.0,
            max_gaussians=MAX_GAUSSIANS,
        ),
    )


fourreal_canonical = MethodSpecification(
    config=canonical_trainer_config(),
    description="4Real stage 1: canonical Gaussians + per-frame deformation from a freeze-time video (paper 3.3)",
)


def motion_trainer_config() -> TrainerConfig:
    return trainer_config(
        "4real-motion",
        MOTION_STEPS,
        datamanager=ReferenceVideoDataManagerConfig(
            dataparser=FourRealDataParserConfig(videos=("reference", "freeze", "grid")),
            cache_images_type="uint8",
        ),
        model=FourRealMotionModelConfig(
            deformation=DeformationFieldConfig(depth=8, width=256, skip_layer=4, position_freqs=10, code_freqs=6),
            motion_fit_steps=10000,
            growth_steps=5000,
            growth_cull_alpha_thresh=1e-2,
            time_curriculum=0.5,
            static_warmup_steps=3000,
            anchor_canonical_time=True,
            densify_grad_thresh=2e-4,
            cull_alpha_thresh=5e-3,
            stop_split_at=15000,
            norm_weight=0.01,
            diff_weight=0.01,
            rigid_weight=0.01,
            rot_weight=0.01,
            num_neighbours=20,
            regularizer_samples=None,
            sds_start_step=15000,
            sds_end_step=MOTION_STEPS,
            temporal_sds_weight=20.0,
            multiview_sds_weight=5.0,
            max_gaussians=MAX_GAUSSIANS,
        ),
    )


fourreal_motion = MethodSpecification(
    config=motion_trainer_config(),
    description="4Real stage 2: temporal deformation of canonical Gaussians fitted to the reference video (paper 3.4)",
)


SHORT_SCHEDULE_MEANS_LR = ["--optimizers.means.optimizer.lr=1.6e-3", "--optimizers.means.scheduler.lr-final=1.6e-5"]
"""10x D.4's means learning rate, for short schedules whose decay is compressed from 20k steps into a few hundred:
at 1.6e-4 -> 1.6e-6 the rate is 1.6e-5 halfway through and the Gaussians barely move (method_configs.md)."""


# ----------------------------------------------------------------------------------------------------------------
# Schedules for small scenes: one typed config per stage, scaled by one function (gsplat's Config.adjust_steps)
# ----------------------------------------------------------------------------------------------------------------

SCALED_TRAINER_STEPS = ("max_num_iterations", "steps_per_save", "steps_per_eval_image", "steps_per_eval_all_images")
SCALED_MODEL_STEPS = (
    # both stages (splatfacto): densification, SH degree, resolution schedule
    "warmup_length", "refine_every", "stop_split_at", "stop_screen_size_at", "sh_degree_interval",
    "resolution_schedule",
    # 4real-canonical
    "deformation_start_step", "multiview_sds_start_step", "multiview_sds_end_step",
    # 4real-motion
    "motion_fit_steps", "growth_steps", "static_warmup_steps", "sds_start_step", "sds_end_step",
)
"""Every step count of a 4real config (reset_alpha_every counts refinements, so it scales with refine_every)."""
AT_LEAST_ONE = ("refine_every", "sh_degree_interval", "steps_per_save", "steps_per_eval_image",
                "steps_per_eval_all_images")
"""Intervals: never scaled below one step."""


def adjust_steps(config: TrainerConfig, steps: int) -> TrainerConfig:
    """Scale every step count of a 4real TrainerConfig to a run of `steps` iterations, in place, and return it.

    The one place schedules are scaled (as gsplat's `Config.adjust_steps`): the run's length, the stage boundaries,
    the densification intervals, the SH-degree and resolution schedules and every learning-rate schedule keep their
    fractions of the run. Settings that are not step counts are left as they are."""
    factor = steps / config.max_num_iterations

    def scaled(name: str, value: int) -> int:
        result = int(value * factor + 1e-9)  # floor, as the short schedules always rounded
        return max(result, 1) if name in AT_LEAST_ONE and value > 0 else result

    for name in SCALED_TRAINER_STEPS:
        setattr(config, name, scaled(name, getattr(config, name)))
    config.max_num_iterations = steps
    model = config.pipeline.model
    for name in SCALED_MODEL_STEPS:
        if hasattr(model, name):
            setattr(model, name, scaled(name, getattr(model, name)))
    for group in config.optimizers.values():
        scheduler = group.get("scheduler")
        if scheduler is not None:
            scheduler.max_steps = scaled("max_steps", scheduler.max_steps)
            scheduler.warmup_steps = scaled("warmup_steps", scheduler.warmup_steps)
    return config


def small_scene_settings(config: TrainerConfig, warmup_length: int) -> TrainerConfig:
    """The settings of a small scene on a CPU (about 96 x 54 to 160 x 107 pixels) that are not fractions of the run:
    a 4 x 64 MLP (the 8 x 256 one costs ~0.3 s a step on two cores), densification every 50 steps from
    `warmup_length` on at 3x the gradient threshold, no opacity reset, an SH degree more every 100 steps, 5x the
    deformation learning rate (its decay is compressed from 20k steps), no LPIPS, and video SDS only where CUDA is
    (no video model runs on a CPU in minutes). The intervals are in steps, not fractions of the run: a small scene's
    frames are each seen every few dozen steps whatever its length. method_configs.md ("Small scenes") has more."""
    model = config.pipeline.model
    model.deformation.depth, model.deformation.width, model.deformation.skip_layer = 4, 64, 2
    model.densify_grad_thresh = 6e-4
    model.warmup_length = warmup_length
    model.refine_every = 50
    model.reset_alpha_every = 1000  # refinements: never within the run
    model.sh_degree_interval = 100
    model.stop_screen_size_at = config.max_num_iterations
    model.compute_lpips = False
    config.pipeline.guidance.enabled = default_device() == "cuda"
    config.optimizers["deformation"]["optimizer"].lr = 5e-3
    config.optimizers["deformation"]["scheduler"].lr_final = 5e-5
    return config


def small_canonical_config(steps: int = 600, deformation_start: Optional[int] = None) -> TrainerConfig:
    """`4real-canonical` for a small scene in `steps` iterations: the paper's schedule scaled by `adjust_steps`, with
    the per-frame deformation from 5 % of the run (the drifting object's ghost must not form first), half
    resolution for the first third, the 10x means learning rate, no warm-up of pose refinement, and
    `small_scene_settings` (densification from step 100)."""
    config = canonical_trainer_config()
    model = config.pipeline.model
    model.deformation_start_step = CANONICAL_STEPS // 20
    model.num_downscales = 1
    model.resolution_schedule = round(CANONICAL_STEPS / 3)
    config.optimizers["means"]["optimizer"].lr = 1.6e-3
    config.optimizers["means"]["scheduler"].lr_final = 1.6e-5
    config.optimizers["camera_opt"]["scheduler"].warmup_steps = 0
    small_scene_settings(adjust_steps(config, steps), warmup_length=100)
    if deformation_start is not None:
        model.deformation_start_step = deformation_start
    return config


def small_motion_config(steps: int = 600, with_canonical: bool = True) -> TrainerConfig:
    """`4real-motion` for a small scene in `steps` iterations: the paper's stage proportions (motion fit 50 %,
    growth 25 %, joint 25 %) scaled by `adjust_steps`, densification until the end of the motion fit, full
    resolution, 2048 sampled Gaussians per regulariser step, a static warm-up of 15 % only from scratch (a canonical
    run is already static), and `small_scene_settings` (densification from step 50)."""
    config = motion_trainer_config()
    model = config.pipeline.model
    model.stop_split_at = MOTION_STEPS // 2
    model.static_warmup_steps = 3000 if not with_canonical else 0
    model.from_scratch = not with_canonical
    model.num_downscales = 0
    model.regularizer_samples = 2048
    small_scene_settings(adjust_steps(config, steps), warmup_length=50)
    # Pose refinement keeps the paper's schedule here (20k steps, 1k warm-up), as every short motion run measured so
    # far had it: the motion stage's cameras are SfM's and stage 1's, and its rate stays in the warm-up.
    camera = config.optimizers["camera_opt"]["scheduler"]
    camera.max_steps, camera.warmup_steps = MOTION_STEPS, 1000
    return config


CANONICAL_SCHEDULE_OPTIONS = (
    "max_num_iterations", "pipeline.model.deformation_start_step", "pipeline.model.stop_split_at",
    "pipeline.model.multiview_sds_start_step", "pipeline.model.multiview_sds_end_step",
    "pipeline.model.deformation.depth", "pipeline.model.deformation.width", "pipeline.model.deformation.skip_layer",
    "pipeline.model.densify_grad_thresh", "pipeline.model.warmup_length", "pipeline.model.refine_every",
    "pipeline.model.reset_alpha_every", "pipeline.model.sh_degree_interval", "pipeline.model.stop_screen_size_at",
    "pipeline.model.num_downscales", "pipeline.model.resolution_schedule", "pipeline.model.compute_lpips",
    "pipeline.guidance.enabled", "optimizers.means.optimizer.lr", "optimizers.means.scheduler.lr_final",
    "optimizers.means.scheduler.max_steps", "optimizers.deformation.optimizer.lr",
    "optimizers.deformation.scheduler.lr_final", "optimizers.deformation.scheduler.max_steps",
    "optimizers.camera_opt.scheduler.max_steps", "optimizers.camera_opt.scheduler.warmup_steps",
)
"""The options of a small canonical config that differ from 4real-canonical's (for `ns-train` command lines)."""
MOTION_SCHEDULE_OPTIONS = (
    "max_num_iterations", "pipeline.model.from_scratch", "pipeline.model.motion_fit_steps",
    "pipeline.model.growth_steps", "pipeline.model.static_warmup_steps", "pipeline.model.stop_split_at",
    "pipeline.model.sds_start_step",
    "pipeline.model.sds_end_step", "pipeline.model.deformation.depth", "pipeline.model.deformation.width",
    "pipeline.model.deformation.skip_layer", "pipeline.model.regularizer_samples",
    "pipeline.model.densify_grad_thresh", "pipeline.model.warmup_length", "pipeline.model.refine_every",
    "pipeline.model.reset_alpha_every", "pipeline.model.sh_degree_interval", "pipeline.model.stop_screen_size_at",
    "pipeline.model.num_downscales", "pipeline.model.compute_lpips", "pipeline.guidance.enabled",
    "optimizers.means.scheduler.max_steps", "optimizers.deformation.optimizer.lr",
    "optimizers.deformation.scheduler.lr_final", "optimizers.deformation.scheduler.max_steps",
    "optimizers.camera_opt.scheduler.max_steps",
)


def config_arguments(config: TrainerConfig, options) -> List[str]:
    """`ns-train` options (`--a.b-c=value`) that set these dotted fields of `config` on the command line."""
    arguments = []
    for option in options:
        value = config
        for part in option.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        flag = ".".join(part.replace("_", "-") for part in option.split("."))
        arguments.append(f"--{flag}={value}")
    return arguments


def short_cpu_schedule(steps: int = 600, deformation_start: Optional[int] = None) -> List[str]:
    """`ns-train 4real-canonical` options of `small_canonical_config(steps)`: the tests' and the demo's schedule (a
    96 x 54 scene in a few minutes on two cores). method_configs.md lists each change."""
    return config_arguments(small_canonical_config(steps, deformation_start), CANONICAL_SCHEDULE_OPTIONS)


def short_cpu_motion_schedule(steps: int = 600, with_canonical: bool = True) -> List[str]:
    """`ns-train 4real-motion` options of `small_motion_config(steps, with_canonical)` (tests and the demo)."""
    return config_arguments(small_motion_config(steps, with_canonical), MOTION_SCHEDULE_OPTIONS)


def short_cpu_dnerf_schedule(steps: int = 1500) -> List[str]:
    """`ns-train 4real-motion` options for an imported D-NeRF scene on the CPU (tests/test_dnerf_e2e.py): the short
    motion schedule from scratch, D-NeRF's black background, its one video, and the 10x means learning rate of
    SHORT_SCHEDULE_MEANS_LR (the short motion schedule keeps D.4's: from a canonical run, 10x measured no gain)."""
    return [
        *short_cpu_motion_schedule(steps, with_canonical=False),
        "--pipeline.model.background-color=black",
        "--pipeline.datamanager.dataparser.videos=reference",
        *SHORT_SCHEDULE_MEANS_LR,
    ]


# ----------------------------------------------------------------------------------------------------------------
# Named presets for small scenes (nerfstudio's -big / -huge naming): `ns-train 4real-canonical-small --data SCENE`
# ----------------------------------------------------------------------------------------------------------------

SMALL_CANONICAL_STEPS = 1500
"""4real-canonical-small's length, chosen on real footage at about 160 px (docs/your_own_video.md, method_configs.md)."""
SMALL_MOTION_STEPS = 1500
SMALL_MAX_GAUSSIANS = 40000
"""The presets' Gaussian budget (`--pipeline.model.max-gaussians`), measured on real footage (method_configs.md)."""


def small_preset(config: TrainerConfig, method_name: str) -> TrainerConfig:
    """A small-scene config as a named method: its own name and the Gaussian budget."""
    config.method_name = method_name
    config.pipeline.model.max_gaussians = SMALL_MAX_GAUSSIANS
    return config


fourreal_canonical_small = MethodSpecification(
    config=small_preset(small_canonical_config(SMALL_CANONICAL_STEPS), "4real-canonical-small"),
    description=f"4real-canonical for small scenes (about 160 px) in {SMALL_CANONICAL_STEPS} steps: minutes on a CPU",
)
fourreal_motion_small = MethodSpecification(
    config=small_preset(small_motion_config(SMALL_MOTION_STEPS), "4real-motion-small"),
    description=f"4real-motion for small scenes (about 160 px) in {SMALL_MOTION_STEPS} steps: minutes on a CPU",
)
