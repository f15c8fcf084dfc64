"""Evaluation against ground truth: render a trained run at the demo scene's held-out cameras and times.

The demo scene's `ground_truth/` renders of the true scene are never trained on. Its `canonical` split (canonical
time, cameras off the training frames) measures the canonical Gaussians of stage 1; its `dynamic` split (held-out
cameras and times) measures the 4D result of stage 2.

Besides the whole image, the canonical split is also scored in the object's region: the square around the moving
object's true position at the canonical time, 1.5 object sizes wide either side. That is where the freeze-time
video is inconsistent (the demo scene moves the object from frame to frame) and where stage 1's per-frame
deformation should help (paper 3.3, Figure 9); the room around it is consistent and dominates whole-image PSNR.
"""

from __future__ import annotations

import json
import math
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


def frame_image(frame: SceneFrame) -> torch.Tensor:
    """A frame's image as [H, W, 3] floats in [0, 1]."""
    return torch.from_numpy(np.asarray(Image.open(frame.image_path).convert("RGB"), dtype=np.float32) / 255.0)


def frame_psnrs(pipeline, frames: List[SceneFrame], use_time: bool = True) -> List[float]:
    """PSNR (dB) of each frame's render (at its camera, and at its time if `use_time`) against its image."""
    renders = render_frames(pipeline, frames, use_time)
    return [psnr(render, frame_image(frame)) for frame, render in zip(frames, renders)]


def evaluate_ground_truth(config: Path, scene: Path, split: str = "canonical", pipeline=None) -> Dict[str, object]:
    """Mean PSNR (dB) of the run's renders against the ground truth of `split` ("canonical" or "dynamic")."""
    frames = [frame for frame in load_ground_truth(Path(scene)) if frame.split == split]
    if not frames:
        raise ValueError(f"{Path(scene) / 'ground_truth' / 'transforms.json'} has no frames of split '{split}'.")
    pipeline = pipeline if pipeline is not None else load_pipeline(config)
    renders = render_frames(pipeline, frames, use_time=split != "canonical")
    per_frame, object_region = [], []
    canonical_object = object_at_canonical_time(Path(scene)) if split == "canonical" else None
    for frame, render in zip(frames, renders):
        target = frame_image(frame)
        per_frame.append(psnr(render, target))
        if canonical_object is not None:
            window = object_window(frame, *canonical_object)
            if window is not None:
                rows, cols = window
                object_region.append(psnr(render[rows, cols], target[rows, cols]))
    result = {"psnr": float(np.mean(per_frame)), "per_frame_psnr": per_frame, "split": split,
              "num_frames": len(frames)}  # fmt: skip
    if object_region:
        result["object_region_psnr"] = float(np.mean(object_region))
        result["object_region_frames"] = len(object_region)
    return result


def object_at_canonical_time(scene: Path) -> Optional[tuple]:
    """(centre [3], size) of the demo scene's moving object at t_c, from its `demo_scene` block; None elsewhere."""
    block = json.loads((Path(scene) / "transforms.json").read_text()).get("demo_scene")
    if not block or "object_center_at_canonical_time" not in block:
        return None
    return np.asarray(block["object_center_at_canonical_time"], dtype=np.float64), float(block["object_size"])


def object_window(frame: SceneFrame, centre: np.ndarray, size: float, margin: float = 1.5):
    """Row and column slices of the square around `centre` seen by `frame`, `margin` object sizes either side;
    None when the object is behind the camera or the square is off the image."""
    world_to_camera = np.linalg.inv(np.asarray(frame.transform_matrix, dtype=np.float64))
    x, y, z = world_to_camera[:3, :3] @ centre + world_to_camera[:3, 3]
    if z >= 0:  # OpenGL: the camera looks down -z
        return None
    u, v = frame.cx + frame.fl_x * x / -z, frame.cy - frame.fl_y * y / -z
    half = frame.fl_x * margin * size / -z
    left, right = max(int(u - half), 0), min(int(math.ceil(u + half)), frame.width)
    top, bottom = max(int(v - half), 0), min(int(math.ceil(v + half)), frame.height)
    if right - left < 2 or bottom - top < 2:
        return None
    return slice(top, bottom), slice(left, right)
