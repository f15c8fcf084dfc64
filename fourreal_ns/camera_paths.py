"""Camera paths in the JSON format of `ns-render camera-path` (the one the viewer writes).

Keyframes are world-space OpenGL camera-to-world matrices (our dataparser applies no transform, so scene
coordinates are world coordinates), a vertical field of view in degrees, and optionally a `render_time`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """OpenGL camera-to-world (4 x 4) at `position` looking at `target` (the camera looks down its -z)."""
    backward = position - target
    backward = backward / np.linalg.norm(backward)
    right = np.cross(up, backward)
    right = right / np.linalg.norm(right)
    true_up = np.cross(backward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, backward, position
    return pose


def orbit_through_poses(poses: Sequence[np.ndarray], num_frames: int, target: Optional[np.ndarray] = None) -> list:
    """`num_frames` cameras sweeping the arc of `poses` (ordered along the orbit): positions on the circle through
    their mean radius and height around `target` (default: the point the cameras look at, least squares)."""
    positions = np.stack([p[:3, 3] for p in poses])
    if target is None:
        target = closest_point_to_axes(poses)
    offsets = positions - target
    angles = np.unwrap(np.arctan2(offsets[:, 0], offsets[:, 2]))
    radius = float(np.mean(np.linalg.norm(offsets[:, [0, 2]], axis=1)))
    height = float(np.mean(offsets[:, 1]))
    path = []
    for angle in np.linspace(angles[0], angles[-1], num_frames):
        position = target + np.array([radius * math.sin(angle), height, radius * math.cos(angle)])
        path.append(look_at(position, target))
    return path


def closest_point_to_axes(poses: Sequence[np.ndarray]) -> np.ndarray:
    """The point nearest, in least squares, to every camera's optical axis: what an orbit looks at."""
    lhs, rhs = np.zeros((3, 3)), np.zeros(3)
    for pose in poses:
        direction = -pose[:3, 2] / np.linalg.norm(pose[:3, 2])
        projector = np.eye(3) - np.outer(direction, direction)
        lhs += projector
        rhs += projector @ pose[:3, 3]
    return np.linalg.lstsq(lhs, rhs, rcond=None)[0]


def camera_path_json(
    poses: Sequence[np.ndarray],
    width: int,
    height: int,
    vertical_fov_degrees: float,
    seconds: float,
    times: Optional[Sequence[float]] = None,
) -> dict:
    """The dictionary `ns-render camera-path --camera-path-filename` reads."""
    keyframes = []
    for index, pose in enumerate(poses):
        keyframe = {"camera_to_world": np.asarray(pose, dtype=float).reshape(-1).tolist(), "fov": vertical_fov_degrees,
                    "aspect": width / height}
        if times is not None:
            keyframe["render_time"] = float(times[index])
        keyframes.append(keyframe)
    return {
        "camera_type": "perspective",
        "render_width": width,
        "render_height": height,
        "seconds": seconds,
        "camera_path": keyframes,
    }


def write_camera_path(path: Path, camera_path: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(camera_path, indent=1))
    return path


def vertical_fov_degrees(focal_y: float, height: int) -> float:
    return math.degrees(2.0 * math.atan(height / (2.0 * focal_y)))
