"""Evaluation against ground truth: render a trained run at the demo scene's held-out cameras and times.

The demo scene's `ground_truth/` renders of the true scene are never trained on. Its `canonical` split (canonical
time, cameras off the training frames) measures the canonical Gaussians of stage 1; its `dynamic` split (held-out
cameras and times) measures the 4D result of stage 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from nerfstudio.cameras.cameras import Cameras, CameraType

from fourreal_ns.data.scene import SceneFrame, load_ground_truth
from fourreal_ns.models.splats import psnr


def load_pipeline(config: Path):
    """A trained run's pipeline, as ns-viewer / ns-render load it (no training-only parts)."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(Path(config), test_mode="inference")
    pipeline.eval()
    return pipeline


def frame_camera(frame: SceneFrame, time: Optional[float] = None) -> Cameras:
    """One frame's camera, with no frame metadata: the model renders the scene (canonical, or at `time`)."""
    return Cameras(
        camera_to_worlds=torch.tensor(np.asarray(frame.transform_matrix)[:3], dtype=torch.float32)[None],
        fx=float(frame.fl_x),
        fy=float(frame.fl_y),
        cx=float(frame.cx),
        cy=float(frame.cy),
        width=int(frame.width),
        height=int(frame.height),
        camera_type=CameraType.PERSPECTIVE,
        times=None if time is None else torch.tensor([[float(time)]]),
    )


@torch.no_grad()
def render_frames(pipeline, frames: List[SceneFrame], use_time: bool) -> List[torch.Tensor]:
    images = []
    for frame in frames:
        camera = frame_camera(frame, frame.time if use_time else None).to(pipeline.device)
        images.append(pipeline.model.get_outputs_for_camera(camera)["rgb"].clamp(0, 1).cpu())
    return images


def evaluate_ground_truth(config: Path, scene: Path, split: str = "canonical", pipeline=None) -> Dict[str, object]:
    """Mean PSNR (dB) of the run's renders against the ground truth of `split` ("canonical" or "dynamic")."""
    frames = [frame for frame in load_ground_truth(Path(scene)) if frame.split == split]
    if not frames:
        raise ValueError(f"{Path(scene) / 'ground_truth' / 'transforms.json'} has no frames of split '{split}'.")
    pipeline = pipeline if pipeline is not None else load_pipeline(config)
    renders = render_frames(pipeline, frames, use_time=split != "canonical")
    per_frame = []
    for frame, render in zip(frames, renders):
        target = torch.from_numpy(np.asarray(Image.open(frame.image_path).convert("RGB"), dtype=np.float32) / 255.0)
        per_frame.append(psnr(render, target))
    return {"psnr": float(np.mean(per_frame)), "per_frame_psnr": per_frame, "split": split, "num_frames": len(frames)}
