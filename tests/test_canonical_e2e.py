"""End to end on the CPU: `ns-train 4real-canonical` on the demo scene, for real, and the nerfstudio tools on it.

The session's demo scene and 4real-canonical run (conftest.py) plus three runs of this module:
- `drifting_runs`: the paper's ablation on a scene whose freeze-time video has moderate object motion, with the
  per-frame deformation and without it (never switched on), ABLATION_STEPS long;
- `without_deformation`: the session run's schedule without the per-frame deformation, 300 steps, then resumed
  with `--load-dir` to the end (the resume test and the consistent-scene test's other arm).
Thresholds were calibrated on this machine; see the numbers in each assertion's comment.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CANONICAL_STEPS, run_ns, train_canonical, train_canonical_side_by_side

pytestmark = pytest.mark.e2e

STEPS = CANONICAL_STEPS
ABLATION_STEPS = 1500
"""The per-frame deformation's gain shows when training is long enough for a run without it to fit each frame's
drifted object: at 600 steps it was +0.27 dB (object region +0.69; fraction 0.3), at 1500 +0.91 to +0.96 (+0.88
to +1.11)."""
ABLATION_OPTIONS = ["--pipeline.model.stop-screen-size-at=0"]
"""Without splatfacto's screen-size split a 1500-step run on 96 x 54 images keeps 46k Gaussians instead of 105k
and takes 4 instead of 14 minutes (one core), for the same gain (+0.85 against +0.91 dB, seed 0, undeformed
fraction 0.3)."""
PERTURBED_POSES = {"pose_noise_degrees": 0.3, "pose_noise_translation": 0.007}
"""SfM-like errors (std per axis; the orbit radius is 1.35) for the pose-refinement test."""
MEDIAN_MARGIN = 0.5
"""How much lower the median held-out camera may score with the per-frame deformation than without it."""
MEAN_MARGIN = 1.5
"""The same for the mean, which one floater in front of one camera moves by 1 dB (test_deformation_keeps_...)."""
PERTURBED_MARGIN = 0.5
PERTURBED_THRESHOLD = 22.3


@pytest.fixture(scope="module")
def scene(demo_scene) -> Path:
    return demo_scene


@pytest.fixture(scope="module")
def with_deformation(canonical_run) -> Path:
    return canonical_run


@pytest.fixture(scope="module")
def drifting_scene(tmp_path_factory) -> Path:
    """The demo scene with the moderate object motion that the paper says generated freeze-time videos still show
    (3.2): the ball drifts by half its size towards the ends of the orbit and jitters by 8 % of it (up to 0.14 in
    all, 8 pixels). The default scene's inconsistencies (at most 12 % of the ball, under 1.5 pixels) are too small
    for the per-frame deformation to matter."""
    from fourreal_ns.demo_scene import make_demo_scene

    return make_demo_scene(tmp_path_factory.mktemp("drifting") / "scene", seed=0, object_drift=0.5,
                           object_jitter=0.08)


@pytest.fixture(scope="module")
def drifting_runs(drifting_scene, tmp_path_factory) -> dict:
    """4real-canonical on the drifting scene with the per-frame deformation and without it (never switched on)."""
    output = tmp_path_factory.mktemp("drifting_runs")
    never = [f"--pipeline.model.deformation-start-step={ABLATION_STEPS + 1}"]
    runs = train_canonical_side_by_side(drifting_scene, output, {"with_deformation": ABLATION_OPTIONS,
                                                                 "without_deformation": ABLATION_OPTIONS + never},
                                        steps=ABLATION_STEPS)  # fmt: skip
    return {"with": runs["with_deformation"], "without": runs["without_deformation"]}


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
    # Measured 25.81 dB (seed 0, short CPU schedule; 24.23 with D.4's means learning rate). The held-out frames
    # carry per-frame jitter that no model can predict from their neighbours, which caps this number; the 1.8 dB
    # margin leaves room for platform noise (runs of one seed agree to 0.1 dB here) and none for a broken render or
    # training path.
    assert metrics["psnr"] > 24.0


def test_per_frame_deformation_ablation(drifting_runs, drifting_scene):
    """The paper's ablation (3.3, Figure 9): canonical renders (no deformation) at held-out cameras against the
    true scene, whole image and the moving object's region, with and without per-frame deformation in training
    (ABLATION_STEPS, screen-size split off).

    Measured with / without (one thread): seed 0 23.37 / 22.45 dB, object region 23.07 / 21.45 (+0.92 / +1.62);
    seed 1 23.67 / 22.42, 22.67 / 20.99 (+1.25 / +1.68). In the suite (two threads, seed 0): 23.46 / 22.45,
    23.21 / 21.45 (+1.01 / +1.76). Exact offsets instead of the learned field (an oracle,
    seed 0, on the scene of before 2026-11-25) gave +1.27 (+2.33).
    Until 2026-11-25 the drifting scene's offsets held a part that looks from the orbit like the ball at another
    depth along the canonical camera's ray (demo_scene.py: `_without_canonical_depth_ambiguity`); no method could
    place the canonical ball where the ground truth has it, and the gain was +0.51 / +0.99 (object region +0.75 /
    +1.27). A field that learns nothing scores like `without`; one that moves the whole scene (eq. 3 averaged at
    0.1 without the undeformed steps) scored 19.1-19.8 dB at 600 steps."""
    from fourreal_ns.evaluation import evaluate_ground_truth

    with_deformation = evaluate_ground_truth(drifting_runs["with"], drifting_scene, "canonical")
    without = evaluate_ground_truth(drifting_runs["without"], drifting_scene, "canonical")
    print(f"canonical vs the true scene: with deformation {with_deformation['psnr']:.2f} dB "
          f"(object region {with_deformation['object_region_psnr']:.2f}), without {without['psnr']:.2f} dB "
          f"(object region {without['object_region_psnr']:.2f})")  # fmt: skip
    assert with_deformation["object_region_psnr"] > without["object_region_psnr"] + 1.0
    assert with_deformation["psnr"] > without["psnr"] + 0.6


def test_deformation_keeps_a_consistent_scene(with_deformation, without_deformation, scene):
    """On the default scene (inconsistencies under 1.5 pixels) the per-frame deformation must not spoil the
    canonical Gaussians: against the same schedule without it, at held-out cameras against the true scene.
    Measured before (600 steps, one thread unless said): 23.39 dB with it (the suite, seed 0), of which the farther
    off-orbit camera 14.08: two opaque Gaussians of the far wall's texture float 0.04 from it (frames 27-31 see them
    2-2.5 units away, where the wall is 3.8); the other seven cameras average 24.72. Without deformation 24.38 (seed
    0) and 24.56 (seed 1). One floater decides the mean, so the test compares the median camera (robust to it) and
    the mean with a margin for it. A field that explains the whole scene away (eq. 3 averaged, every frame but k_c
    deformed) gave 19.9 dB at D.4's means learning rate."""
    from fourreal_ns.evaluation import evaluate_ground_truth

    with_field = evaluate_ground_truth(with_deformation, scene, "canonical")
    without = evaluate_ground_truth(without_deformation[0], scene, "canonical")
    for name, result in (("with", with_field), ("without", without)):
        print(f"canonical vs the true scene (default demo scene), {name} deformation: {result['psnr']:.2f} dB, "
              f"median camera {np.median(result['per_frame_psnr']):.2f}, per camera "
              f"{[round(value, 2) for value in result['per_frame_psnr']]}")  # fmt: skip
    assert np.median(with_field["per_frame_psnr"]) > np.median(without["per_frame_psnr"]) - MEDIAN_MARGIN
    assert with_field["psnr"] > without["psnr"] - MEAN_MARGIN


@pytest.fixture(scope="module")
def perturbed_pose_runs(tmp_path_factory) -> tuple:
    """The default demo scene with SfM-like errors in the freeze frames' written poses (PERTURBED_POSES; k_c exact),
    trained with pose refinement (the default) and without it."""
    from fourreal_ns.demo_scene import make_demo_scene

    scene = make_demo_scene(tmp_path_factory.mktemp("perturbed") / "scene", seed=0, **PERTURBED_POSES)
    output = tmp_path_factory.mktemp("perturbed_runs")
    return scene, train_canonical_side_by_side(scene, output, {
        "refined": [], "unrefined": ["--pipeline.model.camera-optimizer.mode=off"]}, steps=STEPS)


def test_pose_refinement_recovers_perturbed_poses(perturbed_pose_runs):
    """Pose refinement (eq. 2's poses refined with the Gaussians) corrects poses that are off like an SfM result's:
    canonical renders against the true scene at held-out cameras, with and without refinement.

    Measured 23.34 dB refined, 22.46 not refined (seed 0, two threads; from the exact poses the same schedule gives
    23.39 with a floater, 24.5 without: see test_deformation_keeps_a_consistent_scene). Before 2026-11-25 (the
    scene's offsets then held a depth-ambiguous part, demo_scene.py) 22.85 / 21.51, when the margin was 0.8.
    PERTURBED_MARGIN and PERTURBED_THRESHOLD leave about 0.4 and 1 dB for platform noise; refinement that does
    nothing scores like `unrefined` and fails the margin."""
    from fourreal_ns.evaluation import evaluate_ground_truth

    scene, runs = perturbed_pose_runs
    refined = evaluate_ground_truth(runs["refined"], scene, "canonical")["psnr"]
    unrefined = evaluate_ground_truth(runs["unrefined"], scene, "canonical")["psnr"]
    print(f"perturbed poses, canonical vs the true scene: refined {refined:.2f} dB, not refined {unrefined:.2f} dB")
    assert refined > unrefined + PERTURBED_MARGIN
    assert refined > PERTURBED_THRESHOLD


def test_warmup_leaves_the_deformation_untouched(with_deformation, drifting_runs):
    """A run that never leaves the warm-up still has the zero-initialised heads; the normal run has moved them."""
    for name in ("head_means", "head_quats", "head_scales"):
        untouched = latest_checkpoint(drifting_runs["without"])["pipeline"][f"_model.deformation.{name}.weight"]
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


def test_canonical_camera_is_not_refined(with_deformation):
    """Pose refinement leaves the canonical frame's camera where it is (its adjustment stays exactly zero) and
    refines the others relative to it."""
    from fourreal_ns.evaluation import load_pipeline

    pipeline = load_pipeline(with_deformation)
    model, cameras = pipeline.model, pipeline.datamanager.train_dataset.cameras
    views = cameras.metadata["view"].flatten().tolist()
    canonical_index = views.index(model.canonical_view)
    other_index = next(i for i, view in enumerate(views) if view != model.canonical_view)
    assert model.is_fixed_camera(cameras[canonical_index : canonical_index + 1])
    assert not model.is_fixed_camera(cameras[other_index : other_index + 1])
    adjustment = latest_checkpoint(with_deformation)["pipeline"]["_model.camera_optimizer.pose_adjustment"]
    assert torch.count_nonzero(adjustment[canonical_index]) == 0
    others = torch.cat([adjustment[:canonical_index], adjustment[canonical_index + 1 :]])
    assert bool((others.abs().sum(dim=1) > 0).all())


def test_undeformed_fraction_of_training_steps(with_deformation):
    """`undeformed_fraction` of the training frames are rendered without their deformation, the rest with it; at
    evaluation every held-out freeze frame keeps its deformation."""
    from fourreal_ns.evaluation import load_pipeline

    pipeline = load_pipeline(with_deformation)
    model, cameras = pipeline.model, pipeline.datamanager.train_dataset.cameras
    views = cameras.metadata["view"].flatten().tolist()
    index = next(i for i, view in enumerate(views) if view != model.canonical_view)
    camera = cameras[index : index + 1]
    assert model.config.undeformed_fraction == 0.2
    assert model.deltas_for_camera(camera) is not None  # evaluation: always deformed
    model.train()
    model.deformation.forward = lambda means, code: "deformed"  # the draw is what is counted, not the MLP (48 s)
    torch.manual_seed(0)
    undeformed = sum(model.deltas_for_camera(camera) is None for _ in range(1000))
    assert 0.15 < undeformed / 1000 < 0.25
    model.config.undeformed_fraction = 0.0
    assert all(model.deltas_for_camera(camera) == "deformed" for _ in range(50))


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
    assert vertices.count > 0.9 * means.shape[0]  # the exporter drops non-finite and nearly transparent ones only
    for name in ("x", "y", "z", "opacity", "scale_0", "rot_0", "f_dc_0"):
        assert np.all(np.isfinite(vertices[name]))
    # The values are the checkpoint's canonical Gaussians, in their order (3DGS's PLY layout: logit opacity, log
    # scales, the raw quaternion, SH DC colour), less the non-finite ones and those under opacity 1/255 (nerfstudio's
    # exporter drops them).
    state = latest_checkpoint(with_deformation)["pipeline"]
    params = {name: state[f"_model.gauss_params.{name}"].numpy() for name in
              ("means", "opacities", "scales", "quats", "features_dc")}  # fmt: skip
    flat = np.concatenate([value.reshape(len(value), -1) for value in params.values()], axis=1)
    finite = np.isfinite(flat).all(axis=1) & (params["opacities"][:, 0] >= -5.5373)
    assert vertices.count == int(finite.sum())
    np.testing.assert_allclose(np.stack([vertices[axis] for axis in "xyz"], axis=1), params["means"][finite],
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(vertices["opacity"], params["opacities"][finite, 0], atol=1e-6)
    np.testing.assert_allclose(np.stack([vertices[f"scale_{i}"] for i in range(3)], axis=1),
                               params["scales"][finite], atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(np.stack([vertices[f"rot_{i}"] for i in range(4)], axis=1),
                               params["quats"][finite], atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(np.stack([vertices[f"f_dc_{i}"] for i in range(3)], axis=1),
                               params["features_dc"][finite].reshape(-1, 3), atol=1e-6)  # fmt: skip


@pytest.fixture(scope="module")
def without_deformation(demo_scene, canonical_runs) -> tuple:
    """The ablation's other arm on the default scene, trained in two parts: `canonical_run`'s schedule with the
    per-frame deformation never switched on, to step 299, then resumed with --load-dir to its end (599). Returns
    (config.yml, the pipeline state at the pause)."""
    never = [f"--pipeline.model.deformation-start-step={STEPS + 1}", "--save-only-latest-checkpoint=False"]
    config = train_canonical(demo_scene, canonical_runs, "without_deformation", ["--max-num-iterations=300", *never])
    checkpoints = config.parent / "nerfstudio_models"
    at_pause = torch.load(checkpoints / "step-000000299.ckpt", map_location="cpu")["pipeline"]
    # A resumed run trains to the schedule's last step (--max-num-iterations - 1), not that many steps more.
    train_canonical(demo_scene, canonical_runs, "without_deformation",
                    [f"--max-num-iterations={STEPS}", *never, "--load-dir", str(checkpoints)])  # fmt: skip
    return config, at_pause


def test_resume_keeps_densifying(without_deformation):
    """Train to step 299, resume with --load-dir to 599: refinements at steps 350 and 400 (before stop-split-at 450)
    still change the set of Gaussians, i.e. the optimisers were rebound to the live tensors after the load, and
    the resumed run ends at the schedule's last step."""
    config, at_pause = without_deformation
    checkpoints = config.parent / "nerfstudio_models"
    assert [path.name for path in sorted(checkpoints.glob("*.ckpt"))] == ["step-000000299.ckpt",
                                                                          "step-000000599.ckpt"]  # not 899
    resumed = torch.load(checkpoints / "step-000000599.ckpt", map_location="cpu")["pipeline"]
    before, after = at_pause["_model.gauss_params.means"].shape[0], resumed["_model.gauss_params.means"].shape[0]
    print(f"Gaussians at the pause (step 299): {before}, after resuming to step 599: {after}")
    assert after != before
    assert torch.isfinite(resumed["_model.gauss_params.means"]).all()