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

CANONICAL_STEPS = 20000  # appendix C.1 and section 4: 20k iterations per stage
MOTION_STEPS = 20000  # C.2: motion fit 10k + growth 5k + joint fine-tune 5k (with SDS), steps 20k-40k of the run


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
    """What both stages share: nerfstudio's trainer with our optimisers (D.4), CUDA where present, no AMP."""
    return TrainerConfig(
        method_name=method_name,
        steps_per_eval_image=500,
        steps_per_eval_batch=0,
        steps_per_save=2000,
        steps_per_eval_all_images=5000,
        max_num_iterations=steps,
        mixed_precision=False,
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
        ),
    )


fourreal_motion = MethodSpecification(
    config=motion_trainer_config(),
    description="4Real stage 2: temporal deformation of canonical Gaussians fitted to the reference video (paper 3.4)",
)


SHORT_SCHEDULE_MEANS_LR = ["--optimizers.means.optimizer.lr=1.6e-3", "--optimizers.means.scheduler.lr-final=1.6e-5"]
"""10x D.4's means learning rate, for short schedules whose decay is compressed from 20k steps into a few hundred:
at 1.6e-4 -> 1.6e-6 the rate is 1.6e-5 halfway through and the Gaussians barely move (method_configs.md)."""


def short_cpu_schedule(steps: int = 600, deformation_start: Optional[int] = None) -> List[str]:
    """`ns-train 4real-canonical` options that fit the CPU: a small scene (about 96 x 54) in a few minutes.

    The paper's schedule scaled down: warm-up, deformation and densification in proportion, a smaller MLP (the
    8 x 256 network costs ~0.3 s a step on two cores), densification from step 100 every 50 steps, SH degree raised
    every 100 steps, half resolution for the first third, the per-frame deformation from 5 % of the steps on with a
    5x learning rate, a 10x means learning rate (both decays are compressed from 20k steps into `steps`).
    method_configs.md lists each change.
    """
    if deformation_start is None:
        deformation_start = steps // 20
    return [
        f"--max-num-iterations={steps}",
        f"--pipeline.model.deformation-start-step={deformation_start}",
        f"--pipeline.model.stop-split-at={int(steps * 0.75)}",
        f"--pipeline.model.multiview-sds-start-step={int(steps * 0.75)}",
        f"--pipeline.model.multiview-sds-end-step={steps}",
        "--pipeline.model.deformation.depth=4",
        "--pipeline.model.deformation.width=64",
        "--pipeline.model.deformation.skip-layer=2",
        "--pipeline.model.densify-grad-thresh=0.0006",
        "--pipeline.model.warmup-length=100",
        "--pipeline.model.refine-every=50",
        "--pipeline.model.reset-alpha-every=1000",
        "--pipeline.model.sh-degree-interval=100",
        "--pipeline.model.num-downscales=1",
        f"--pipeline.model.resolution-schedule={steps // 3}",
        "--pipeline.model.compute-lpips=False",
        "--pipeline.guidance.enabled=False",  # no video model on a CPU: the SDS window trains without SDS
        *SHORT_SCHEDULE_MEANS_LR,
        f"--optimizers.means.scheduler.max-steps={steps}",
        "--optimizers.deformation.optimizer.lr=5e-3",
        "--optimizers.deformation.scheduler.lr-final=5e-5",
        f"--optimizers.deformation.scheduler.max-steps={steps}",
        f"--optimizers.camera-opt.scheduler.max-steps={steps}",
        "--optimizers.camera-opt.scheduler.warmup-steps=0",
    ]


def short_cpu_motion_schedule(steps: int = 600, with_canonical: bool = True) -> List[str]:
    """`ns-train 4real-motion` options for the CPU: the paper's stage proportions (10k / 5k / 5k of 20k) scaled to
    `steps`, the test-size MLP, densification every 50 steps, a 5x deformation learning rate (its decay is
    compressed from 20k steps to `steps`). method_configs.md lists each change."""
    motion_fit, growth = int(steps * 0.5), int(steps * 0.25)
    return [
        f"--max-num-iterations={steps}",
        f"--pipeline.model.motion-fit-steps={motion_fit}",
        f"--pipeline.model.growth-steps={growth}",
        f"--pipeline.model.static-warmup-steps={int(steps * 0.15) if not with_canonical else 0}",
        f"--pipeline.model.stop-split-at={int(steps * 0.5)}",
        f"--pipeline.model.sds-start-step={motion_fit + growth}",
        f"--pipeline.model.sds-end-step={steps}",
        "--pipeline.model.deformation.depth=4",
        "--pipeline.model.deformation.width=64",
        "--pipeline.model.deformation.skip-layer=2",
        "--pipeline.model.regularizer-samples=2048",
        "--pipeline.model.densify-grad-thresh=0.0006",
        "--pipeline.model.warmup-length=50",
        "--pipeline.model.refine-every=50",
        "--pipeline.model.reset-alpha-every=1000",
        "--pipeline.model.sh-degree-interval=100",
        "--pipeline.model.num-downscales=0",
        "--pipeline.model.compute-lpips=False",
        "--pipeline.guidance.enabled=False",  # no video model on a CPU: the SDS window trains without SDS
        f"--optimizers.means.scheduler.max-steps={steps}",
        "--optimizers.deformation.optimizer.lr=5e-3",
        "--optimizers.deformation.scheduler.lr-final=5e-5",
        f"--optimizers.deformation.scheduler.max-steps={steps}",
    ]


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
