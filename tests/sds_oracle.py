"""A test-only video guidance that knows the true demo scene: its "denoised frames" are the ground-truth renders of
the cameras and times the pipeline asked for, seen through the same crop and resize (guidance/sds.py).

With it, video SDS is plain supervision at the trajectory's cameras: if the pipeline's trajectories, camera
convention, times, crop or loss were wrong, the renders would be pulled towards the wrong images and the scene
would not get better off the freeze-time orbit (test_sds.py).

`train(...)` runs `ns-train 4real-canonical` in this process with the oracle as guidance; test_sds.py calls it in
a subprocess (`python -c "import sds_oracle; sds_oracle.train(...)"`), so nerfstudio's global state stays out of
the test process and the saved config.yml names this module.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch

from fourreal_ns.demo_scene import render_true
from fourreal_ns.guidance.config import GuidanceConfig
from fourreal_ns.guidance.sds import ModelView
from fourreal_ns.guidance.trajectories import Trajectory


class OracleGuidance:
    """Ground truth as the video model's x0 (the `targets_for_trajectory` hook of FourRealPipeline)."""

    def __init__(self, scene: Path, sds_size: Tuple[int, int]) -> None:
        transforms = json.loads((Path(scene) / "transforms.json").read_text())
        self.width, self.height = int(transforms["w"]), int(transforms["h"])
        self.K = np.array([[transforms["fl_x"], 0, transforms["cx"]], [0, transforms["fl_y"], transforms["cy"]],
                           [0, 0, 1]], dtype=np.float64)  # fmt: skip
        self.seed = int(transforms["generation"]["seed"])
        self.sds_size = sds_size
        self.calls = 0
        self.times_seen: List[List[float]] = []
        """Each call's trajectory times: temporal trajectories sweep time, multi-view ones hold it."""

    def predict_x0(self, frames, cond_frame, sigma):
        raise AssertionError("the pipeline must ask the oracle through targets_for_trajectory")

    def targets_for_trajectory(self, trajectory: Trajectory, view: ModelView) -> torch.Tensor:
        self.calls += 1
        self.times_seen.append([float(time) for time in trajectory.times])
        frames = []
        for camera_to_world, time in zip(trajectory.camera_to_worlds, trajectory.times):
            pose = np.eye(4)
            pose[:3] = camera_to_world.detach().cpu().double().numpy()
            image = render_true(pose, self.K, self.width, self.height, float(time), seed=self.seed, supersample=1)
            frames.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1))  # uint8 image
        return view.apply(torch.stack(frames))


@dataclass
class OracleGuidanceConfig(GuidanceConfig):
    """Builds the oracle instead of a video model."""

    oracle_scene: Path = Path(".")
    oracle_size: Tuple[int, int] = (27, 48)

    def check_available(self) -> None:
        pass  # nothing to load

    def build(self, prompt: str, device) -> OracleGuidance:
        return OracleGuidance(self.oracle_scene, self.oracle_size)


def train(scene: str, output: str, name: str, args: List[str], num_frames: int = 8,
          method: str = "4real-canonical") -> None:  # fmt: skip
    """`ns-train METHOD` (4real-canonical or 4real-motion) with `args`, the oracle as guidance (SDS on) and
    `num_frames`-frame videos."""
    import tyro

    from nerfstudio.engine.trainer import TrainerConfig
    from nerfstudio.scripts.train import _set_random_seed

    from fourreal_ns.method_configs import fourreal_canonical, fourreal_motion

    method_config = {"4real-canonical": fourreal_canonical, "4real-motion": fourreal_motion}[method].config
    config = tyro.cli(tyro.conf.FlagConversionOff[TrainerConfig], default=copy.deepcopy(method_config), args=[
        "--data", scene, "--output-dir", output, "--experiment-name", name, "--timestamp", "run",
        "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True", *args,
    ])  # fmt: skip
    config.pipeline.datamanager.data = config.data  # as ns-train's main() does
    config.pipeline.guidance = OracleGuidanceConfig(oracle_scene=Path(scene))
    config.pipeline.sds.num_frames = num_frames
    config.save_config()
    _set_random_seed(config.machine.seed)  # as ns-train's train_loop does; unseeded runs differ by up to 0.45 dB
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    guidance = trainer.pipeline.get_guidance()
    print("oracle calls:", guidance.calls)
    sweeps = sum(1 for times in guidance.times_seen if max(times) - min(times) > 1e-6)
    print("oracle calls sweeping time:", sweeps)
