"""End to end on the CPU: `ns-train 4real-canonical` on the demo scene, for real, and the nerfstudio tools on it.

The session's demo scene and 4real-canonical run (conftest.py) plus two runs of this module:
- `without_deformation`: the same schedule with the per-frame deformation never switched on (the paper's ablation);
- `resumed`: 300 steps, then `--load-dir` for 150 more (measured: 17432 Gaussians at the pause, 32237 after).
Thresholds were calibrated on this machine; see the numbers in each assertion's comment.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CANONICAL_STEPS, run_ns, train_canonical

pytestmark = pytest.mark.e2e

STEPS = CANONICAL_STEPS


@pytest.fixture(scope="module")
def scene(demo_scene) -> Path:
    return demo_scene


@pytest.fixture(scope="module")
def with_deformation(canonical_run) -> Path:
    return canonical_run


@pytest.fixture(scope="module")
def without_deformation(demo_scene, canonical_runs) -> Path:
    return train_canonical(demo_scene, canonical_runs, "without_deformation",
                           [f"--pipeline.model.deformation-start-step={STEPS + 1}"])


def latest_checkpoint(config: Path) -> dict:
    checkpoint = sorted((config.parent / "nerfstudio_models").glob("step-*.ckpt"))[-1]
    return torch.load(checkpoint, map_location="cpu")  # weights_only=True: our checkpoints must load this way


def test_heldout_freeze_frames_with_ns_eval(with_deformation, tmp_path):
    """ns-eval writes metrics; the held-out freeze frames (every 8th, with their per-frame deformation) reach the
    threshold."""
    output = tmp_path / "eval.json"
    run_ns(["ns-eval", "--load-config", str(with_deformation), "--output-path", str(output)])
    metrics = json.loads(output.read_text())["results"]
    print("held-out freeze-frame metrics:", metrics)
    # Measured 24.0 dB (seed 0, short CPU schedule). The held-out frames carry per-frame jitter that no model can
    # predict from their neighbours, which caps this number; the 1.5 dB margin leaves room for platform noise
    # (runs of one seed agree to 0.1 dB here) and none for a broken render or training path.
    assert metrics["psnr"] > 22.5


def test_per_frame_deformation_ablation(with_deformation, without_deformation, scene):
    """The paper's ablation (3.3, Figure 9): canonical renders (no deformation) at held-out cameras against the
    true scene, whole image and the moving object's region, with and without per-frame deformation in training.

    Measured (seed 0, short CPU schedule): whole image 22.57 dB with, 22.53 dB without; object region 23.43 vs
    23.35 dB. The paper's gain does not show on this scene: its injected inconsistencies are at most 9 % of the
    object's size (under 1.5 pixels at 96 x 54), too small to blur the canonical object. What the test does pin
    down is that the deformation does not spoil the canonical scene: with eq. 3 averaged over Gaussians instead of
    summed, the deformation explained away the whole scene and the canonical renders fell to 19.9 dB. (Summed, the
    field's position offsets stay at about 1e-6, so the two runs nearly agree. On a scene with a larger drift, the
    true offsets applied as an oracle gain 0.8 dB, but the learned field does not: README, "Results".)"""
    from fourreal_ns.evaluation import evaluate_ground_truth

    with_deformation = evaluate_ground_truth(with_deformation, scene, "canonical")
    without = evaluate_ground_truth(without_deformation, scene, "canonical")
    print(f"canonical vs the true scene: with deformation {with_deformation['psnr']:.2f} dB "
          f"(object region {with_deformation['object_region_psnr']:.2f}), without {without['psnr']:.2f} dB "
          f"(object region {without['object_region_psnr']:.2f})")  # fmt: skip
    assert with_deformation["psnr"] > 21.0
    assert with_deformation["psnr"] > without["psnr"] - 0.5
    assert with_deformation["object_region_psnr"] > without["object_region_psnr"] - 0.5


def test_warmup_leaves_the_deformation_untouched(with_deformation, without_deformation):
    """A run that never leaves the warm-up still has the zero-initialised heads; the normal run has moved them."""
    for name in ("head_means", "head_quats", "head_scales"):
        untouched = latest_checkpoint(without_deformation)["pipeline"][f"_model.deformation.{name}.weight"]
        assert torch.count_nonzero(untouched) == 0
    trained = latest_checkpoint(with_deformation)["pipeline"]["_model.deformation.head_means.weight"]
    assert torch.count_nonzero(trained) > 0


def test_canonical_frame_is_exactly_undeformed(with_deformation):
    from fourreal_ns.evaluation import load_pipeline

    pipeline = load_pipeline(with_deformation)
    model = pipeline.model
    cameras = pipeline.datamanager.train_dataset.cameras
    views = cameras.metadata["view"].flatten().tolist()
    canonical_index = views.index(model.canonical_view)
    other_index = next(i for i, view in enumerate(views) if view != model.canonical_view)
    assert model.deltas_for_camera(cameras[canonical_index : canonical_index + 1]) is None
    at_canonical = model.deformation(model.means, model.frame_code(float(model.canonical_view)))
    assert all(torch.count_nonzero(offset) == 0 for offset in at_canonical)
    moved = model.deltas_for_camera(cameras[other_index : other_index + 1])
    assert moved is not None and moved.means.abs().max() > 0


def test_ns_render_camera_path_writes_frames(with_deformation, scene, tmp_path):
    from fourreal_ns.demo import render_orbit

    frames_dir = tmp_path / "frames"
    path = tmp_path / "orbit.json"
    # render_orbit writes an mp4 with ns-render; here we also ask for the image frames.
    video = render_orbit(with_deformation, scene, tmp_path / "orbit.mp4", num_frames=8)
    assert video.exists() and video.stat().st_size > 1000
    run_ns([
        "ns-render", "camera-path", "--load-config", str(with_deformation), "--camera-path-filename",
        str(video.with_suffix(".json")), "--output-path", str(frames_dir), "--output-format", "images",
    ])  # fmt: skip
    frames = sorted(frames_dir.glob("*.jpg")) + sorted(frames_dir.glob("*.png"))
    assert len(frames) == 8
    del path


def test_ns_export_gaussian_splat_ply_reads_back(with_deformation, tmp_path):
    from plyfile import PlyData

    run_ns(["ns-export", "gaussian-splat", "--load-config", str(with_deformation), "--output-dir", str(tmp_path)])
    ply = PlyData.read(str(tmp_path / "splat.ply"))
    vertices = ply["vertex"]
    means = latest_checkpoint(with_deformation)["pipeline"]["_model.gauss_params.means"]
    assert vertices.count > 0.9 * means.shape[0]  # the exporter drops non-finite Gaussians only
    for name in ("x", "y", "z", "opacity", "scale_0", "rot_0", "f_dc_0"):
        assert np.all(np.isfinite(vertices[name]))


def test_resume_keeps_densifying(demo_scene, canonical_runs):
    """Train to step 299, resume with --load-dir to 449: refinements at steps 350 and 400 (before stop-split-at 450)
    still change the set of Gaussians, i.e. the optimisers were rebound to the live tensors after the load."""
    first = ["--max-num-iterations=300", "--save-only-latest-checkpoint=False"]
    config = train_canonical(demo_scene, canonical_runs, "resumed", first)
    checkpoints = config.parent / "nerfstudio_models"
    at_pause = torch.load(checkpoints / "step-000000299.ckpt", map_location="cpu")["pipeline"]
    # nerfstudio counts --max-num-iterations from the resumed step.
    train_canonical(demo_scene, canonical_runs, "resumed",
                    ["--max-num-iterations=150", "--save-only-latest-checkpoint=False", "--load-dir", str(checkpoints)])
    resumed = torch.load(checkpoints / "step-000000449.ckpt", map_location="cpu")["pipeline"]
    before, after = at_pause["_model.gauss_params.means"].shape[0], resumed["_model.gauss_params.means"].shape[0]
    print(f"Gaussians at the pause (step 299): {before}, after resuming to step 449: {after}")
    assert after != before
    assert torch.isfinite(resumed["_model.gauss_params.means"]).all()
