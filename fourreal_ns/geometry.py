"""Camera geometry shared by the demo world, nominal poses, camera paths and seed points (numpy, OpenGL axes:
a camera looks down its -z with +y up, nerfstudio's convention).

Kept free of any scene: targets, radii and fields of view are arguments. (guidance/trajectories.py has its own
look-at on torch tensors, differentiable and on the model's device.)
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

Y_UP = np.array([0.0, 1.0, 0.0])
"""The up axis of the scenes this project writes (and of nerfstudio's viewer)."""


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = Y_UP) -> np.ndarray:
    """OpenGL camera-to-world (4 x 4) at `position` looking at `target` (the camera looks down its -z)."""
    backward = position - target
    backward = backward / np.linalg.norm(backward)
    right = np.cross(up, backward)
    right = right / np.linalg.norm(right)
    true_up = np.cross(backward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, backward, position
    return pose


def orbit_camera(angle_degrees: float, radius: float, height: float, target: np.ndarray = np.zeros(3)) -> np.ndarray:
    """OpenGL camera-to-world on the circle of `radius` around the vertical axis through `target`, `height` above it
    (angle 0: on +z), looking at `target`."""
    angle = math.radians(angle_degrees)
    position = np.asarray(target, dtype=np.float64) + np.array([radius * math.sin(angle), height,
                                                                  radius * math.cos(angle)])  # fmt: skip
    return look_at(position, np.asarray(target, dtype=np.float64))


def intrinsics(width: int, height: int, horizontal_fov_degrees: float) -> np.ndarray:
    """3 x 3 pinhole K with square pixels and the principal point at the image centre."""
    focal = 0.5 * width / math.tan(math.radians(horizontal_fov_degrees) / 2)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def project_opengl(points: np.ndarray, camera_to_world: np.ndarray, focal: float, cx: float, cy: float
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Pixel coordinates (u, v) and depth of world points seen by an OpenGL camera (looks down -z, +y up)."""
    world_to_camera = np.linalg.inv(camera_to_world)
    in_camera = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    depth = -in_camera[:, 2]
    safe_depth = np.where(depth > 1e-6, depth, 1.0)
    u = focal * in_camera[:, 0] / safe_depth + cx
    v = -focal * in_camera[:, 1] / safe_depth + cy
    return u, v, depth
