"""What `ns-train` of a 4real method checks before it prints its config or makes a run folder.

A run should not train for an hour and then fail on something that was knowable at start-up. Before step 0
(`FourRealTrainerConfig.set_timestamp`, fourreal_ns/trainer.py) these are checked, cheapest first:

- the scene folder reads (data/scene.py; its errors name the file, the frame and the fix);
- the device: CUDA asked for where there is none;
- 4real-motion: a static scene (nothing to animate); a canonical run that does not load; training from scratch on
  a scene that has a freeze-time video without `--pipeline.model.from-scratch True` (an error rather than a warning:
  stage 1's run would go unused without a word, and a warning scrolls away under the config dump, while the
  intended case costs one option);
- video SDS, when its window falls inside the run: the guidance weights (a local folder, the Hugging Face cache,
  or a hub that answers), the prompt it needs, and CPU offload only with CUDA.

Each problem is a FourRealError whose message says what to do; the trainer prints it alone and exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import torch

from fourreal_ns.data.scene import Scene, load_scene
from fourreal_ns.errors import FourRealError
from fourreal_ns.guidance.config import GuidanceConfig
from fourreal_ns.guidance.errors import GuidanceConfigError
from fourreal_ns.models.canonical import FourRealCanonicalModelConfig
from fourreal_ns.models.motion import (
    OPTION,
    FourRealMotionModelConfig,
    MotionConfigError,
    StaticSceneError,
    load_canonical_gaussians,
)


class PreflightError(FourRealError, ValueError):
    """A run that cannot work as configured; the message names the option and the fix."""


def check_training_run(config) -> Scene:
    """Everything a 4real run will need later (module docstring); returns the scene. Raises a FourRealError."""
    data = config.pipeline.datamanager.data or config.data
    if data is None:
        raise PreflightError("No scene given: pass --data SCENE (a fourreal scene folder, docs/scene_format.md).")
    scene = load_scene(Path(data))
    check_device(config)
    model = config.pipeline.model
    if isinstance(model, FourRealMotionModelConfig):
        check_motion_start(model, scene)
    guidance = getattr(config.pipeline, "guidance", None)
    if guidance is not None and guidance.enabled and sds_window_in_run(model, config.max_num_iterations):
        check_guidance(guidance, scene, config.machine.device_type)
    if config.gradient_accumulation_steps:
        raise PreflightError("--gradient-accumulation-steps is not supported by the 4real trainer (its NaN guard "
                             "steps every optimiser each step): leave it empty.")  # fmt: skip
    return scene


def check_device(config) -> None:
    if config.machine.device_type == "cuda" and not torch.cuda.is_available():
        raise PreflightError(
            "--machine.device-type cuda, but PyTorch sees no CUDA device on this machine. Train on the CPU with "
            "--machine.device-type cpu (our CPU rasterizer; slow, fine for small scenes and the -small presets), or "
            "check the driver with `nvidia-smi` and that torch.cuda.is_available() is true."
        )


def check_motion_start(model: FourRealMotionModelConfig, scene: Scene) -> None:
    """Where 4real-motion starts from: a canonical run that loads, or from scratch on purpose."""
    if scene.is_static:
        raise StaticSceneError(str(scene.folder))
    if model.canonical_checkpoint is not None:
        load_canonical_gaussians(model.canonical_checkpoint)  # raises MissingCanonicalRunError / MotionConfigError
        return
    if scene.frames_of("freeze") and not model.from_scratch:
        raise MotionConfigError(
            f"{scene.folder} has a freeze-time video, but no {OPTION} was given, so 4real-motion would train the "
            "canonical Gaussians from scratch and leave stage 1 unused. Give the 4real-canonical run: "
            f"`ns-train 4real-motion --data {scene.folder} {OPTION} outputs/.../4real-canonical/RUN`, or, if "
            "from scratch is what you want, add --pipeline.model.from-scratch True."
        )


def sds_window(model) -> Optional[Tuple[int, int]]:
    """The steps of a model's video SDS, [start, end); None for a model without SDS."""
    if isinstance(model, FourRealCanonicalModelConfig):
        return model.multiview_sds_start_step, model.multiview_sds_end_step
    if isinstance(model, FourRealMotionModelConfig):
        return model.sds_start_step, model.sds_end_step
    return None


def sds_window_in_run(model, max_steps: int) -> bool:
    window = sds_window(model)
    return window is not None and window[0] < min(window[1], max_steps)


def check_guidance(guidance: GuidanceConfig, scene: Scene, device_type: str) -> None:
    """Video SDS will run: its device, its prompt and its weights."""
    if guidance.cpu_offload and (device_type != "cuda" or not torch.cuda.is_available()):
        raise GuidanceConfigError(
            "--pipeline.guidance.cpu-offload True needs a CUDA device (it moves each network to the GPU while it "
            "runs). Leave it off on the CPU."
        )
    if guidance.backend != "svd" and not guidance.prompt and not scene.generation.get("prompt"):
        raise PreflightError(
            f"Video SDS needs a text prompt: {scene.transforms_path} has no generation.prompt. Pass "
            "--pipeline.guidance.prompt 'TEXT', or turn SDS off with --pipeline.guidance.enabled False."
        )
    guidance.check_available()
