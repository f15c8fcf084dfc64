"""D-NeRF lego (100 x 100, ../shared/data) end to end on the CPU: `ns-train 4real-motion` without a canonical run
(static warm-up, then Gaussians and motion together) on frames 0-49, test PSNR on frames 61-80.

The schedule is the short CPU one with DNERF_STEPS steps and the test-size MLP (4 x 64); the Gaussians start at
the importer's seed points, 5000 points carved from the train frames' silhouettes (fourreal_ns/data/
silhouette_seeds.py; D-NeRF has no SfM points), on a black background. Two learning rates differ from the paper's,
both because 1500 steps compress decays meant for 20k-40k:
- means 1.6e-3 -> 1.6e-5 (10x, method_configs.short_cpu_dnerf_schedule): at 1.6e-4 decaying to 1.6e-6 the
  Gaussians barely move (random start 22.45 -> 23.0 dB; from the carved seeds 23.62 -> 24.32 dB);
- deformation 5e-3 -> 5e-5 (5x, the short motion schedule's): at 1e-3 the field never learned the shovel's motion,
  so the shovel blurred (23.0 -> 24.07 dB; 1e-2 gave 24.03).
Everything tried on this schedule without gain (seed points, step counts, densification, frequencies, SSIM
weight, SH degree, regularisers, warm-up, anchors, supersampling, alpha supervision, ...) is listed with its number
in docs/experiments.md.
Lego's test frames after t = 0.6 disagree with its train frames (the shovel's angle; found by the authors of
Deformable 3D Gaussians, measured by benchmarks/dnerf_split_consistency.py): trained on together with frames 0-49,
the test frames before t = 0.6 reach 26.64 dB (train frames of those times 27.04), the later ones only 24.67 (train
26.58). docs/experiments.md has the table.
ns-eval reports the held-out frames (the scene's val + test frames); the test frames alone are rendered here.
"""

from __future__ import annotations


from pathlib import Path

import numpy as np
import pytest

from conftest import run_ns, shared_data_file

pytestmark = pytest.mark.e2e

DNERF_STEPS = 1500
TEST_PSNR_THRESHOLD = 23.8
"""Measured 24.30 and 24.35 dB on frames 61-80 (min 22.2) here (runs on two threads differ a little), 24.32 in the
experiments on one thread (runs of one seed repeat to 0.01 dB; settings near these gave 24.25-24.50); the frozen
scene (no motion) scores 22.97 and the paper's means learning rate 23.6, so a motion field that does not learn
falls below. Random seed points (24.13) would pass: test_dnerf_import checks the carved ones. The issue expects
25 dB; this schedule does not reach it (README, "Not there yet")."""


NS_EVAL_AGREEMENT_DB = 0.3
"""ns-eval and our evaluation render the same frames the same way (both are the model's eval render; ns-eval's
camera carries the frame metadata)."""


@pytest.fixture(scope="module")
def dnerf_run(tmp_path_factory) -> tuple:
    from fourreal_ns.data.dnerf_import import import_dnerf
    from fourreal_ns.method_configs import short_cpu_dnerf_schedule

    scene = tmp_path_factory.mktemp("dnerf") / "lego"
    import_dnerf(shared_data_file("tiny_dnerf_data.npz"), scene)
    output = tmp_path_factory.mktemp("dnerf_runs")
    run_ns([
        "ns-train", "4real-motion", "--data", str(scene), "--output-dir", str(output), "--experiment-name", "lego",
        "--timestamp", "run", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
        "--steps-per-save", str(DNERF_STEPS), *short_cpu_dnerf_schedule(DNERF_STEPS),
    ], timeout=1800)  # fmt: skip
    return scene, output / "lego" / "4real-motion" / "run" / "config.yml"


def test_dnerf_lego_test_psnr(dnerf_run):
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.evaluation import frame_psnrs, load_pipeline

    scene, config = dnerf_run
    test_frames = [frame for frame in load_scene(scene).frames if frame.split == "test"]
    assert len(test_frames) == 20
    values = frame_psnrs(load_pipeline(config), test_frames, use_time=True)
    mean = float(np.mean(values))
    times = np.array([frame.time for frame in test_frames])
    early, late = np.array(values)[times < 0.6], np.array(values)[times >= 0.6]
    print(f"D-NeRF lego, frames 61-80, {DNERF_STEPS} CPU steps: test PSNR {mean:.2f} dB "
          f"(min {min(values):.2f}, max {max(values):.2f}; t < 0.6: {early.mean():.2f}, "
          f"t >= 0.6, where the shovel has moved most: {late.mean():.2f})")  # fmt: skip
    assert mean > TEST_PSNR_THRESHOLD


def test_dnerf_ns_eval_renders_each_frame_at_its_time(dnerf_run, tmp_path):
    """ns-eval's held-out PSNR (val + test frames) is our own per-frame PSNR of the same frames rendered at their
    times, and clearly above the same frames rendered at the canonical time (an ns-eval that dropped or rescaled
    time would score near that)."""
    import json

    from fourreal_ns.data.dataparser import FourRealDataParserConfig
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.evaluation import frame_psnrs, load_pipeline

    scene, config = dnerf_run
    output = tmp_path / "eval.json"
    run_ns(["ns-eval", "--load-config", str(config), "--output-path", str(output)])
    metrics = json.loads(output.read_text())["results"]
    held_out = FourRealDataParserConfig(data=scene, videos=("reference",)).setup().get_dataparser_outputs("val")
    names = {Path(name).resolve() for name in held_out.image_filenames}
    frames = [frame for frame in load_scene(scene).frames if frame.image_path.resolve() in names]
    assert len(frames) == len(names) > 0
    pipeline = load_pipeline(config)
    at_their_times = float(np.mean(frame_psnrs(pipeline, frames, use_time=True)))
    undeformed = float(np.mean(frame_psnrs(pipeline, frames, use_time=False)))
    print(f"D-NeRF held-out ({len(frames)} frames): ns-eval {metrics['psnr']:.2f} dB, ours at their times "
          f"{at_their_times:.2f}, at the canonical time {undeformed:.2f}; all ns-eval metrics: {metrics}")
    assert abs(metrics["psnr"] - at_their_times) < NS_EVAL_AGREEMENT_DB
    assert at_their_times > undeformed + 1.0
