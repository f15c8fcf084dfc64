"""The 16-frame videos rendered for video score distillation (paper 3.3 eq. 4, 3.4, appendix D.1).

Two kinds of trajectory, both starting at a frame whose real image is known, so that image can condition the video
model (eq. 5):
- multi-view (a freeze-time video at one time): pick a freeze-time camera P_k other than the start camera, perturb
  it within a radius to P^ (D.1: "within a specified radius of a circle centered on the sampled pose"), and
  interpolate uniformly from the start camera (the canonical camera, which is also the reference camera) to P^;
- temporal (a fixed-viewpoint video): one camera, sorted times starting at 0 (3.4: the first frame is the
  undeformed canonical render, so it can condition the model).

Cameras are nerfstudio camera-to-world matrices [3, 4] (OpenGL: the camera looks down -z). Interpolation goes
around the orbit (its centre: the point nearest every freeze camera's optical axis; its axis: the normal of the
plane of the camera centres), not along the chord: the chord between two cameras half an orbit apart passes
through the scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Trajectory:
    """Cameras and times of one SDS video. Frame 0 is the conditioning frame."""

    kind: str
    """"multiview" or "temporal"."""
    camera_to_worlds: Tensor
    """[F, 3, 4] camera-to-world matrices."""
    times: Tensor
    """[F] scene times of the frames."""
    condition_image_index: Optional[int] = None
    """Training image that shows frame 0 (None: frame 0's own render, detached, conditions the model)."""

    @property
    def num_frames(self) -> int:
        return int(self.camera_to_worlds.shape[0])


def orbit_centre(camera_to_worlds: Tensor) -> Tensor:
    """The point nearest (least squares) to the optical axes of these cameras [N, 3, 4]: what the orbit circles.

    For cameras whose axes are (nearly) parallel the system is degenerate; then the centre is the point one mean
    camera distance in front of the mean camera."""
    origins = camera_to_worlds[:, :3, 3].double()
    directions = -camera_to_worlds[:, :3, 2].double()
    directions = directions / directions.norm(dim=-1, keepdim=True)
    projectors = torch.eye(3, dtype=torch.float64) - directions[:, :, None] * directions[:, None, :]
    system = projectors.sum(0)
    if torch.linalg.matrix_rank(system, tol=1e-6) < 3 or len(origins) < 2:
        spread = (origins - origins.mean(0)).norm(dim=-1).mean().clamp_min(1.0)
        return (origins.mean(0) + spread * directions.mean(0)).to(camera_to_worlds.dtype)
    centre = torch.linalg.solve(system, (projectors @ origins[:, :, None]).sum(0))[:, 0]
    return centre.to(camera_to_worlds.dtype)


def look_at(position: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """Camera-to-world [3, 4] at `position` looking at `target` (OpenGL axes), rolled so `up` stays up."""
    forward = target - position
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up)
    if right.norm() < 1e-6:  # looking straight along `up`: any right vector will do
        right = torch.linalg.cross(forward, torch.tensor([1.0, 0.0, 0.0], dtype=position.dtype))
    right = right / right.norm()
    true_up = torch.linalg.cross(right, forward)
    return torch.stack([right, true_up, -forward, position], dim=1)


def perturb_camera(camera_to_world: Tensor, centre: Tensor, radius: float, generator: torch.Generator) -> Tensor:
    """A virtual camera near `camera_to_world`: its position moved by a random offset of up to `radius` times its
    distance to `centre` (uniform in a ball), then aimed at `centre` with the original camera's up direction."""
    position = camera_to_world[:, 3]
    distance = (position - centre).norm()
    direction = torch.randn(3, generator=generator, dtype=position.dtype)
    direction = direction / direction.norm()
    length = radius * distance * torch.rand((), generator=generator, dtype=position.dtype) ** (1 / 3)
    return look_at(position + length * direction, centre, camera_to_world[:, 1])


def _rotation_to_quaternion(rotation: Tensor) -> Tensor:
    """Unit quaternion (w, x, y, z) of a 3x3 rotation (Shepperd's method, numerically stable branch)."""
    m = rotation.double()
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * torch.sqrt(trace + 1.0)
        q = torch.stack([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * torch.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = torch.stack([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * torch.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = torch.stack([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * torch.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = torch.stack([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    return q / q.norm()


def _quaternion_to_rotation(q: Tensor) -> Tensor:
    w, x, y, z = q
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)]),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)]),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]),
    ])  # fmt: skip


def _slerp(a: Tensor, b: Tensor, fraction: float) -> Tensor:
    """Spherical interpolation between unit vectors (or quaternions) a and b."""
    cosine = torch.clamp((a * b).sum(), -1.0, 1.0)
    angle = torch.arccos(cosine)
    if angle < 1e-6:
        return a + fraction * (b - a)
    return (torch.sin((1 - fraction) * angle) * a + torch.sin(fraction * angle) * b) / torch.sin(angle)


def orbit_axis(camera_to_worlds: Tensor) -> Tensor:
    """The axis the orbit turns around: the normal of the plane through the camera centres, pointing the way the
    cameras' up vectors do (their mean up vector when the centres do not span a plane)."""
    up = camera_to_worlds[:, :3, 1].double().mean(0)
    up = up / up.norm()
    origins = camera_to_worlds[:, :3, 3].double()
    if len(origins) >= 3:
        _, singular_values, vh = torch.linalg.svd(origins - origins.mean(0))
        if singular_values[1] > 1e-6 * max(float(singular_values[0]), 1e-12):
            normal = vh[2]
            return (normal if torch.dot(normal, up) >= 0 else -normal).to(camera_to_worlds.dtype)
    return up.to(camera_to_worlds.dtype)


def _rotate_about(vector: Tensor, axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues' rotation of `vector` about the unit `axis`."""
    return (vector * torch.cos(angle) + torch.linalg.cross(axis, vector) * torch.sin(angle)
            + axis * torch.dot(axis, vector) * (1 - torch.cos(angle)))  # fmt: skip


def interpolate_cameras(start: Tensor, end: Tensor, centre: Tensor, axis: Tensor, num_frames: int) -> Tensor:
    """`num_frames` cameras [F, 3, 4] from `start` to `end` (both included) around the orbit: uniform in the angle
    about `axis` through `centre`, linear in height along the axis and in distance from it; rotations by quaternion
    slerp. Two cameras of one orbit give cameras on that orbit."""
    dtype = start.dtype
    centre, axis = centre.double(), axis.double() / axis.double().norm()
    offset_a, offset_b = (start[:, 3] - centre).double(), (end[:, 3] - centre).double()
    height_a, height_b = torch.dot(offset_a, axis), torch.dot(offset_b, axis)
    radial_a, radial_b = offset_a - height_a * axis, offset_b - height_b * axis
    radius_a, radius_b = radial_a.norm(), radial_b.norm()
    turn = torch.atan2(torch.dot(axis, torch.linalg.cross(radial_a, radial_b)), torch.dot(radial_a, radial_b))
    q_a, q_b = _rotation_to_quaternion(start[:, :3]), _rotation_to_quaternion(end[:, :3])
    if (q_a * q_b).sum() < 0:
        q_b = -q_b  # the shorter way round
    cameras = []
    for i in range(num_frames):
        fraction = i / max(num_frames - 1, 1)
        if radius_a < 1e-9 or radius_b < 1e-9:  # a camera on the axis: straight line
            position = (1 - fraction) * start[:, 3].double() + fraction * end[:, 3].double()
        else:
            direction = _rotate_about(radial_a / radius_a, axis, fraction * turn)
            position = (centre + ((1 - fraction) * height_a + fraction * height_b) * axis
                        + ((1 - fraction) * radius_a + fraction * radius_b) * direction)  # fmt: skip
        q = _slerp(q_a, q_b, fraction)
        rotation = _quaternion_to_rotation(q / q.norm())
        cameras.append(torch.cat([rotation, position[:, None]], dim=1))
    return torch.stack(cameras).to(dtype)


def multiview_trajectory(start_camera: Tensor, orbit_cameras: Tensor, time: float, num_frames: int, radius: float,
                         generator: torch.Generator, condition_image_index: Optional[int] = None,
                         start_index: Optional[int] = None) -> Trajectory:
    """A freeze-time video at `time` from `start_camera` [3, 4] to a perturbed camera of `orbit_cameras` [N, 3, 4]
    (not the one at `start_index`, when that is one of them), uniformly interpolated (eq. 4, D.1)."""
    choices = [i for i in range(len(orbit_cameras)) if i != start_index] or list(range(len(orbit_cameras)))
    chosen = choices[int(torch.randint(len(choices), (), generator=generator))]
    centre = orbit_centre(orbit_cameras)
    end = perturb_camera(orbit_cameras[chosen], centre, radius, generator)
    cameras = interpolate_cameras(start_camera, end, centre, orbit_axis(orbit_cameras), num_frames)
    times = torch.full((num_frames,), float(time))
    return Trajectory("multiview", cameras, times, condition_image_index)


def temporal_times(num_frames: int, generator: torch.Generator) -> Tensor:
    """Sorted times in [0, 1] starting at 0: 0, then one uniform sample in each of num_frames - 1 equal strata (so
    the video covers the whole clip)."""
    strata = (torch.arange(num_frames - 1, dtype=torch.float32)
              + torch.rand(num_frames - 1, generator=generator)) / max(num_frames - 1, 1)  # fmt: skip
    return torch.cat([torch.zeros(1), strata])


def temporal_trajectory(camera: Tensor, num_frames: int, generator: torch.Generator,
                        condition_image_index: Optional[int] = None) -> Trajectory:
    """A fixed-viewpoint video: `camera` [3, 4] at sorted times starting at 0 (3.4)."""
    cameras = camera[None].expand(num_frames, 3, 4).clone()
    return Trajectory("temporal", cameras, temporal_times(num_frames, generator), condition_image_index)
