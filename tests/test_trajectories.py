"""Video SDS geometry and arithmetic (guidance/trajectories.py, guidance/sds.py): the trajectories start where the
conditioning image was taken, go around the orbit (not through the scene), and the SDS loss only moves the renders."""

from __future__ import annotations

import math

import numpy as np
import torch

from fourreal_ns.demo_scene import ORBIT_RADIUS, TARGET, freeze_angles, orbit_camera
from fourreal_ns.guidance.sds import SDSConfig, annealed_sigma, sample_model_view, sds_loss
from fourreal_ns.guidance.trajectories import (
    interpolate_cameras,
    multiview_trajectory,
    orbit_axis,
    orbit_centre,
    temporal_trajectory,
)


def demo_orbit(num: int = 32) -> torch.Tensor:
    angles = freeze_angles(num, 180.0, num // 2)
    return torch.tensor(np.stack([orbit_camera(float(a))[:3] for a in angles]), dtype=torch.float32)


def test_orbit_centre_and_axis():
    centre = orbit_centre(demo_orbit())
    assert torch.allclose(centre, torch.tensor(TARGET, dtype=torch.float32), atol=1e-4)
    assert torch.allclose(orbit_axis(demo_orbit()), torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)  # the demo's y axis


def test_multiview_trajectory_starts_at_the_canonical_camera_and_stays_on_the_orbit():
    orbit = demo_orbit()
    canonical = orbit[16]
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        trajectory = multiview_trajectory(canonical, orbit, 0.25, 16, 0.15, generator, condition_image_index=7,
                                          start_index=16)  # fmt: skip
        assert trajectory.kind == "multiview" and trajectory.num_frames == 16
        assert torch.allclose(trajectory.camera_to_worlds[0], canonical, atol=1e-5)
        assert torch.all(trajectory.times == 0.25) and trajectory.condition_image_index == 7
        rotations = trajectory.camera_to_worlds[:, :3, :3]
        assert torch.allclose(rotations @ rotations.transpose(1, 2), torch.eye(3).expand(16, 3, 3), atol=1e-4)
        assert torch.allclose(torch.linalg.det(rotations), torch.ones(16), atol=1e-4)
        # Around the orbit: never closer to the scene centre than the perturbation allows (a chord between
        # cameras half an orbit apart would pass through the scene).
        distances = (trajectory.camera_to_worlds[:, :3, 3] - torch.tensor(TARGET, dtype=torch.float32)).norm(dim=-1)
        assert distances.min() > 0.8 * float(orbit[0, :3, 3].norm())
        # The end is a perturbed freeze camera: within 15 % of its distance of one of them, and not the start.
        end = trajectory.camera_to_worlds[-1, :3, 3]
        gaps = (orbit[:, :3, 3] - end).norm(dim=-1)
        assert gaps.min() <= 0.15 * ORBIT_RADIUS * 1.2 + 1e-4
        # The last camera still looks at the scene (it is aimed at the orbit's centre).
        forward = -trajectory.camera_to_worlds[-1, :3, 2]
        to_centre = -end / end.norm()
        assert torch.dot(forward, to_centre) > math.cos(math.radians(1.0))


def test_interpolation_is_uniform_in_angle():
    a, b = torch.tensor(orbit_camera(-60.0)[:3], dtype=torch.float32), torch.tensor(orbit_camera(60.0)[:3],
                                                                                   dtype=torch.float32)  # fmt: skip
    cameras = interpolate_cameras(a, b, torch.zeros(3), orbit_axis(demo_orbit()), 5)
    expected = [torch.tensor(orbit_camera(angle)[:3], dtype=torch.float32) for angle in (-60, -30, 0, 30, 60)]
    for camera, target in zip(cameras, expected):
        assert torch.allclose(camera, target, atol=1e-4)


def test_temporal_trajectory_is_a_fixed_camera_at_sorted_times_from_zero():
    camera = demo_orbit()[3]
    generator = torch.Generator().manual_seed(1)
    trajectory = temporal_trajectory(camera, 16, generator)
    assert trajectory.kind == "temporal"
    assert torch.all(trajectory.camera_to_worlds == camera)
    times = trajectory.times
    assert times.shape == (16,) and times[0] == 0.0
    assert torch.all(times[1:] > times[:-1]) and times[-1] <= 1.0
    assert times[-1] > 14 / 15  # one time in each of the 15 strata: the clip is covered to its end


def test_noise_level_is_annealed_from_high_to_low():
    config = SDSConfig(sigma_max=0.9, sigma_min=0.1)
    sigmas = [annealed_sigma(step, 100, 200, config) for step in range(100, 200)]
    assert sigmas[0] == 0.9 and abs(sigmas[-1] - 0.1) < 1e-9
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    assert sigmas[25] < 0.9 - 0.8 * 0.25  # square-root schedule: faster early (HiFA)


def test_model_view_is_a_shift_or_a_half_crop_then_the_model_size():
    generator = torch.Generator().manual_seed(0)
    kinds = set()
    for _ in range(40):
        view = sample_model_view(54, 96, (27, 48), generator)
        if view.height == 54 - 1 and view.width == 96 - 1:
            kinds.add("shift")  # scale 2: shifted by up to 1 pixel
            assert view.top in (0, 1) and view.left in (0, 1)
        else:
            kinds.add("crop")
            assert (view.height, view.width) == (27, 48)
        frames = torch.rand(3, 3, 54, 96)
        assert view.apply(frames).shape == (3, 3, 27, 48)
    assert kinds == {"shift", "crop"}


def test_sds_loss_moves_the_renders_towards_the_targets_and_not_the_conditioning_frame():
    renders = torch.rand(4, 3, 8, 8, requires_grad=True)
    targets = torch.rand(4, 3, 8, 8, requires_grad=True)
    loss = sds_loss(renders, targets)
    loss.backward()
    assert targets.grad is None  # stopgrad(x0)
    assert torch.all(renders.grad[0] == 0)
    expected = 2 * (renders[1:] - targets[1:]).detach() / renders[1:].numel()
    assert torch.allclose(renders.grad[1:], expected)
