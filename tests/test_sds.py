"""Video SDS inside the trainer, end to end on the CPU: the wiring proved by an oracle (sds_oracle.py).

`with_oracle_sds`: the session's 4real-canonical schedule (conftest.py) with multi-view SDS on over its last quarter,
the oracle as the video model (ground-truth renders of the demo scene at the trajectory's cameras) and 8-frame
trajectories instead of 16 (half the CPU time; the geometry is the same). The session's `canonical_run` is the
same schedule with SDS off.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CANONICAL_STEPS

pytestmark = pytest.mark.e2e

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def with_oracle_sds(demo_scene, canonical_runs) -> Path:
    from fourreal_ns.method_configs import short_cpu_schedule

    args = [*short_cpu_schedule(CANONICAL_STEPS), "--steps-per-save",
            str(CANONICAL_STEPS)]  # fmt: skip
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import sds_oracle; "
            f"sds_oracle.train({str(demo_scene)!r}, {str(canonical_runs)!r}, 'oracle_sds', {args!r})")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    calls = [line for line in result.stdout.splitlines() if line.startswith("oracle calls:")]
    # One call per step of the SDS window [450, 600).
    assert calls and int(calls[-1].split(":")[1]) == CANONICAL_STEPS - int(CANONICAL_STEPS * 0.75), result.stdout[-2000:]
    return canonical_runs / "oracle_sds" / "4real-canonical" / "run" / "config.yml"


def off_orbit_psnr(config: Path, scene: Path) -> float:
    """Mean PSNR of canonical renders against the true scene at 8 cameras off the freeze-time orbit (lower and
    closer, between the orbit's cameras; within the SDS trajectories' perturbation radius) at the canonical time."""
    import json

    from nerfstudio.cameras.cameras import Cameras, CameraType

    from fourreal_ns.demo_scene import ORBIT_HEIGHT, ORBIT_RADIUS, freeze_angles, orbit_camera, render_true
    from fourreal_ns.evaluation import load_pipeline
    from fourreal_ns.models.splats import psnr

    transforms = json.loads((scene / "transforms.json").read_text())
    width, height = int(transforms["w"]), int(transforms["h"])
    K = np.array([[transforms["fl_x"], 0, transforms["cx"]], [0, transforms["fl_y"], transforms["cy"]], [0, 0, 1]])
    canonical_time = float(transforms["canonical"]["time"])
    freeze = freeze_angles(32, 180.0, 16)
    angles = (freeze[:-1] + np.diff(freeze) / 2)[1::4]  # halfway between freeze cameras, across the arc
    pipeline = load_pipeline(config)
    scores = []
    for angle in angles:
        pose = orbit_camera(float(angle), radius=0.92 * ORBIT_RADIUS, height=ORBIT_HEIGHT + 0.12)
        camera = Cameras(camera_to_worlds=torch.tensor(pose[:3], dtype=torch.float32)[None], fx=float(K[0, 0]),
                         fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]), width=width, height=height,
                         camera_type=CameraType.PERSPECTIVE)  # fmt: skip
        with torch.no_grad():
            render = pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))["rgb"].clamp(0, 1).cpu()
        truth = render_true(pose, K, width, height, canonical_time, seed=0, supersample=3)
        scores.append(psnr(render, torch.from_numpy(np.asarray(truth, dtype=np.float32) / 255.0)))  # uint8 image
    return float(np.mean(scores))


def test_oracle_sds_improves_views_off_the_orbit(with_oracle_sds, canonical_run, demo_scene):
    """SDS with ground truth as the video model's x0 must raise PSNR at cameras off the freeze-time orbit over the
    same schedule without SDS. A wrong camera convention, trajectory, time or crop would pull the renders towards
    the wrong images instead.

    Measured (seed 0, 8-frame trajectories, SDS over the last 150 of 600 steps): 26.16 dB with oracle SDS, 25.56 dB
    without (24.19 / 23.53 with D.4's means learning rate, before the short schedule raised it 10x). The gain is
    bounded by the low-resolution targets (27 x 48, the model's view, as the paper's low-res SDS) and the short
    window; runs of one seed agree to about 0.1 dB, so 0.3 dB separates a working wiring from one that only adds
    noise."""
    with_sds = off_orbit_psnr(with_oracle_sds, demo_scene)
    without = off_orbit_psnr(canonical_run, demo_scene)
    print(f"off-orbit canonical PSNR: with oracle SDS {with_sds:.2f} dB, without SDS {without:.2f} dB")
    assert with_sds > without + 0.3


def test_sds_checkpoint_holds_no_guidance(with_oracle_sds):
    checkpoint = sorted((with_oracle_sds.parent / "nerfstudio_models").glob("step-*.ckpt"))[-1]
    state = torch.load(checkpoint, map_location="cpu")
    names = list(state["pipeline"].keys())
    assert names and not [name for name in names if "guidance" in name or "oracle" in name.lower()]


def test_sds_targets_are_logged_as_images(with_oracle_sds):
    """Renders and SDS targets reach the run's tensorboard every `--pipeline.sds.log-every` (100) steps."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(with_oracle_sds.parent), size_guidance={"images": 0})
    events.Reload()
    assert "SDS/multiview" in events.Tags()["images"]
    steps = [image.step for image in events.Images("SDS/multiview")]
    assert steps == [500], steps  # the window is [450, 600)
