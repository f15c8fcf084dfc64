"""The procedural demo scene (fourreal_ns/demo_scene.py): scene format, determinism, the canonical frame, the
injected freeze-time inconsistencies, the motion of the reference video, seed points, ground truth, overwriting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import folder_hashes
from fourreal_ns.data.point_cloud import read_point_cloud_ply
from fourreal_ns.demo_scene import (
    DemoSceneConfig,
    demo_world,
    intrinsics,
    make_demo_scene,
    render_true,
)

SMALL = dict(width=48, height=27, num_freeze=7, num_reference=5, supersample=2, num_points=400)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """The default demo scene (96 x 54, 32 freeze + 24 reference frames)."""
    return make_demo_scene(tmp_path_factory.mktemp("demo") / "scene", seed=0)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int64)


def K_of(transforms: dict) -> np.ndarray:
    return np.array([[transforms["fl_x"], 0, transforms["cx"]], [0, transforms["fl_y"], transforms["cy"]], [0, 0, 1]])


def project(transforms: dict, pose: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Pixel coordinates (x, y) of a world point in an OpenGL camera."""
    local = np.linalg.inv(pose) @ np.append(point, 1.0)
    return np.array([transforms["cx"] + transforms["fl_x"] * local[0] / -local[2],
                     transforms["cy"] - transforms["fl_y"] * local[1] / -local[2]])


def test_scene_format(scene: Path):
    transforms = load(scene / "transforms.json")
    assert transforms["camera_model"] == "PINHOLE"
    width, height = transforms["w"], transforms["h"]
    assert (width, height) == (96, 54)
    fov = 2 * np.degrees(np.arctan(width / (2 * transforms["fl_x"])))
    assert abs(fov - 60.0) < 1e-6 and transforms["fl_x"] == transforms["fl_y"]
    assert transforms["generation"] == {"prompt": "a ball rolling in a toy room", "source": "fourreal demo-scene",
                                        "seed": 0}
    assert transforms["ply_file_path"] == "points3d.ply" and (scene / "points3d.ply").is_file()
    canonical = transforms["canonical"]
    assert canonical == {"time": 0.0, "freeze_frame": 16, "reference_frame": 0}

    frames = transforms["frames"]
    freeze = [f for f in frames if f["video"] == "freeze"]
    reference = [f for f in frames if f["video"] == "reference"]
    assert len(freeze) == 32 and len(reference) == 24 and len(frames) == 56
    assert [f["view"] for f in freeze] == list(range(32))
    assert all(f["time"] == canonical["time"] for f in freeze)
    times = [f["time"] for f in reference]
    assert times == sorted(times) and times[0] == 0.0 and times[-1] == 1.0
    assert all(f["view"] == 0 for f in reference)
    assert times[canonical["reference_frame"]] == canonical["time"]
    for frame in frames:
        pose = np.array(frame["transform_matrix"])
        assert pose.shape == (4, 4) and np.allclose(pose[3], [0, 0, 0, 1])
        assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
        assert frame["file_path"].startswith(f"images/{frame['video']}/")
        assert Image.open(scene / frame["file_path"]).size == (width, height)
    # The freeze camera k_c is exactly the reference camera; all reference frames share it.
    k_c = canonical["freeze_frame"]
    assert freeze[k_c]["transform_matrix"] == reference[0]["transform_matrix"]
    assert all(f["transform_matrix"] == reference[0]["transform_matrix"] for f in reference)
    # The freeze cameras lie on a 180 degree arc around the centre, looking at it, slightly elevated.
    positions = np.array([np.array(f["transform_matrix"])[:3, 3] for f in freeze])
    radius = np.linalg.norm(positions[:, [0, 2]], axis=1)
    assert np.allclose(radius, radius[0]) and 1.0 <= radius[0] <= 1.5
    assert np.allclose(positions[:, 1], positions[0, 1]) and 0 < positions[0, 1] < 0.6
    angles = np.degrees(np.unwrap(np.arctan2(positions[:, 0], positions[:, 2])))
    assert abs(abs(angles[-1] - angles[0]) - 180.0) < 1e-6
    for frame, position in zip(freeze, positions):
        forward = -np.array(frame["transform_matrix"])[:3, 2]
        assert np.allclose(np.cross(forward, -position / np.linalg.norm(position)), 0, atol=1e-9)


def test_canonical_freeze_frame_is_the_reference_frame_and_the_true_scene(scene: Path):
    transforms = load(scene / "transforms.json")
    canonical = transforms["canonical"]
    freeze = [f for f in transforms["frames"] if f["video"] == "freeze"]
    reference = [f for f in transforms["frames"] if f["video"] == "reference"]
    canonical_freeze = freeze[canonical["freeze_frame"]]
    canonical_reference = reference[canonical["reference_frame"]]
    assert (scene / canonical_freeze["file_path"]).read_bytes() == (scene / canonical_reference["file_path"]).read_bytes()
    true = render_true(np.array(canonical_freeze["transform_matrix"]), K_of(transforms), 96, 54, canonical["time"])
    assert np.array_equal(true, image(scene / canonical_freeze["file_path"]))


def test_other_freeze_frames_are_inconsistent(scene: Path):
    transforms = load(scene / "transforms.json")
    canonical = transforms["canonical"]
    K = K_of(transforms)
    world = demo_world(0)
    center = world.object_center(canonical["time"])
    offsets = np.array(transforms["demo_scene"]["freeze_object_offsets"])
    sizes = np.linalg.norm(offsets, axis=1) / world.object_size
    assert sizes[canonical["freeze_frame"]] == 0.0
    others = np.delete(sizes, canonical["freeze_frame"])
    assert 0.005 < others.min() and others.max() < 0.15  # a few percent of the object size, up to ~10 %
    for frame in transforms["frames"]:
        if frame["video"] != "freeze" or frame["view"] == canonical["freeze_frame"]:
            continue
        pose = np.array(frame["transform_matrix"])
        written = image(scene / frame["file_path"])
        true = render_true(pose, K, 96, 54, canonical["time"]).astype(np.int64)
        assert not np.array_equal(written, true)
        assert np.abs(written - true).mean() > 0.5  # colour wobble everywhere
        # ... and the object itself moved: large differences around its projection.
        x, y = project(transforms, pose, center).round().astype(int)
        window = np.abs(written - true)[max(y - 12, 0):y + 12, max(x - 12, 0):x + 12]
        assert (window.max(axis=-1) > 40).sum() >= 3, frame["view"]


def depth_ambiguous_shift(transforms: dict) -> float:
    """Least-squares s such that moving the object by s along the canonical camera's ray explains the injected
    offsets as the freeze frames see them (pixel shifts, by projection; independent of demo_scene's own code)."""
    block, canonical = transforms["demo_scene"], transforms["canonical"]
    centre = np.array(block["object_center_at_canonical_time"])
    offsets = np.array(block["freeze_object_offsets"])
    freeze = [f for f in transforms["frames"] if f["video"] == "freeze"]
    ray = centre - np.array(freeze[canonical["freeze_frame"]]["transform_matrix"])[:3, 3]
    ray /= np.linalg.norm(ray)
    numerator = denominator = 0.0
    for frame in freeze:
        if frame["view"] == canonical["freeze_frame"]:
            continue
        pose = np.array(frame["transform_matrix"])
        at_centre = project(transforms, pose, centre)
        per_unit_along_ray = (project(transforms, pose, centre + 1e-4 * ray) - at_centre) / 1e-4
        seen_offset = project(transforms, pose, centre + offsets[frame["view"]]) - at_centre
        numerator += float(per_unit_along_ray @ seen_offset)
        denominator += float(per_unit_along_ray @ per_unit_along_ray)
    return numerator / denominator


def test_injected_offsets_do_not_look_like_another_canonical_depth(tmp_path: Path):
    """A drift that looks from the orbit like the ball at another depth along k_c's ray (parallax) could not be told
    from the canonical scene by any reconstruction; demo_scene removes that part. Without the removal the drifting
    scene of the ablation test (here at 7 frames) has |s| = 0.026 (0.04-0.05 at 32 frames); the ball's radius is
    about 0.13."""
    drift = 0.5
    scene = make_demo_scene(tmp_path / "scene", seed=0, object_drift=drift, object_jitter=0.08, **SMALL)
    transforms = load(scene / "transforms.json")
    offsets = np.array(transforms["demo_scene"]["freeze_object_offsets"])
    assert abs(depth_ambiguous_shift(transforms)) < 0.002
    assert (offsets[:, 1] >= 0).all()  # never into the floor
    size = transforms["demo_scene"]["object_size"]
    assert np.linalg.norm(offsets, axis=1).max() > 0.3 * drift * size  # the drift itself is still there


def test_object_moves_in_the_reference_video(scene: Path):
    transforms = load(scene / "transforms.json")
    reference = [f for f in transforms["frames"] if f["video"] == "reference"]
    world = demo_world(0)
    pose = np.array(reference[0]["transform_matrix"])
    track = np.array([project(transforms, pose, world.object_center(f["time"])) for f in reference])
    assert np.linalg.norm(track[-1] - track[0]) > 20  # tens of pixels
    first, last = image(scene / reference[0]["file_path"]), image(scene / reference[-1]["file_path"])
    difference = np.abs(first - last).max(axis=-1)
    for x, y in (track[0].round().astype(int), track[-1].round().astype(int)):
        assert difference[max(y - 4, 0):y + 4, max(x - 4, 0):x + 4].mean() > 30
    assert (difference > 30).sum() > 150
    # Far from the ball (the top rows: walls) nothing changes.
    assert difference[:8].max() == 0
    # Consecutive frames differ too (the ball rolls all the time).
    for a, b in zip(reference[:-1], reference[1:]):
        assert not np.array_equal(image(scene / a["file_path"]), image(scene / b["file_path"]))


def test_seed_points_lie_on_true_surfaces(scene: Path):
    transforms = load(scene / "transforms.json")
    points, colours = read_point_cloud_ply(scene / transforms["ply_file_path"])
    assert 2000 <= len(points) <= 5000 and colours.dtype == np.uint8
    world = demo_world(0)
    distance = world.surface_distance(points, transforms["canonical"]["time"])
    assert np.median(distance) < 0.008 and np.percentile(distance, 95) < 0.02 and distance.max() < 0.05
    assert np.abs(points).max() < 2.6
    # The objects are in the cloud as well as the room, with the colours the cameras see.
    ball = np.abs(np.linalg.norm(points - world.object_center(0.0), axis=1) - world.ball_radius) < 0.015
    assert ball.sum() > 10
    assert colours.std(axis=0).min() > 20
    # A point cloud as in the ply header (binary, x y z float, red green blue uchar).
    header = (scene / "points3d.ply").read_bytes().split(b"end_header")[0].decode()
    for prop in ("float x", "float y", "float z", "uchar red", "uchar green", "uchar blue"):
        assert f"property {prop}" in header


def test_ground_truth(scene: Path):
    transforms = load(scene / "transforms.json")
    truth = load(scene / "ground_truth" / "transforms.json")
    assert truth["canonical"] == transforms["canonical"] and truth["w"] == 96 and truth["h"] == 54
    frames = truth["frames"]
    assert all(f["video"] == "ground_truth" for f in frames)
    canonical = [f for f in frames if f["split"] == "canonical"]
    dynamic = [f for f in frames if f["split"] == "dynamic"]
    assert len(canonical) == 8 and len(dynamic) == 8 and len(frames) == 16
    assert all(f["time"] == transforms["canonical"]["time"] for f in canonical)
    reference_times = [f["time"] for f in transforms["frames"] if f["video"] == "reference"]
    for frame in dynamic:
        assert 0 < frame["time"] < 1 and min(abs(frame["time"] - t) for t in reference_times) > 1e-3
    assert len({f["time"] for f in dynamic}) == 8
    train_poses = [np.array(f["transform_matrix"]) for f in transforms["frames"]]
    for frame in canonical:  # held-out cameras
        pose = np.array(frame["transform_matrix"])
        assert min(np.linalg.norm(pose[:3, 3] - p[:3, 3]) for p in train_poses) > 0.01
    heights = {round(np.array(f["transform_matrix"])[1, 3], 3) for f in canonical}
    assert len(heights) > 1  # some off the orbit
    K = K_of(truth)
    for frame in (canonical[0], canonical[5], dynamic[0], dynamic[6]):
        path = scene / "ground_truth" / frame["file_path"]
        assert Image.open(path).size == (96, 54)
        true = render_true(np.array(frame["transform_matrix"]), K, 96, 54, frame["time"])
        assert np.array_equal(true, image(path))


def test_deterministic_by_seed(tmp_path: Path):
    first = folder_hashes(make_demo_scene(tmp_path / "a", seed=1, **SMALL))
    again = folder_hashes(make_demo_scene(tmp_path / "b", seed=1, **SMALL))
    other = folder_hashes(make_demo_scene(tmp_path / "c", seed=2, **SMALL))
    assert first == again
    assert set(first) == set(other)
    changed = [name for name in first if first[name] != other[name]]
    assert "points3d.ply" in changed and all(
        name in changed for name in first if name.endswith(".png"))


def test_pose_noise_changes_only_the_written_poses(tmp_path: Path):
    """`pose_noise_*` perturb the poses written for the freeze frames other than k_c, by about the asked amount;
    images, seed points, ground truth and the canonical frame's pose stay those of the scene without noise."""
    exact = make_demo_scene(tmp_path / "exact", seed=1, **SMALL)
    noisy = make_demo_scene(tmp_path / "noisy", seed=1, pose_noise_degrees=2.0, pose_noise_translation=0.05, **SMALL)
    exact_hashes, noisy_hashes = folder_hashes(exact), folder_hashes(noisy)
    assert {name: h for name, h in noisy_hashes.items() if name != "transforms.json"} == {
        name: h for name, h in exact_hashes.items() if name != "transforms.json"}
    exact_frames, noisy_frames = load(exact / "transforms.json")["frames"], load(noisy / "transforms.json")["frames"]
    k_c = load(noisy / "transforms.json")["canonical"]["freeze_frame"]
    for before, after in zip(exact_frames, noisy_frames):
        a, b = np.array(before["transform_matrix"]), np.array(after["transform_matrix"])
        if before["video"] != "freeze" or before["view"] == k_c:
            assert np.array_equal(a, b)
            continue
        np.testing.assert_allclose(b[:3, :3] @ b[:3, :3].T, np.eye(3), atol=1e-9)  # still a rotation
        angle = np.degrees(np.arccos(np.clip((np.trace(a[:3, :3].T @ b[:3, :3]) - 1) / 2, -1, 1)))
        assert 0.05 < angle < 4 * 2.0 * np.sqrt(3)
        assert 0.0 < np.linalg.norm(b[:3, 3] - a[:3, 3]) < 4 * 0.05 * np.sqrt(3)
    assert load(noisy / "transforms.json")["demo_scene"]["freeze_pose_noise"] == {"degrees": 2.0, "translation": 0.05}


def test_refuses_to_overwrite(tmp_path: Path):
    out = tmp_path / "scene"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo_scene(out, **SMALL)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    make_demo_scene(out, overwrite=True, **SMALL)
    assert (out / "notes.txt").read_text() == "mine" and (out / "transforms.json").is_file()
    # A smaller scene over a larger one leaves no stale frames behind; other files stay.
    make_demo_scene(out, overwrite=True, **{**SMALL, "num_freeze": 5})
    assert len(list((out / "images" / "freeze").glob("*.png"))) == 5
    assert (out / "notes.txt").read_text() == "mine"
    # An empty folder is fine.
    (tmp_path / "empty").mkdir()
    make_demo_scene(tmp_path / "empty", **SMALL)


def test_cli(tmp_path: Path):
    import tyro

    from fourreal_ns.cli import Commands

    out = tmp_path / "cli"
    config = tyro.cli(Commands, args=["demo-scene", str(out), "--seed", "3", "--width", "32", "--height", "18",
                                      "--num-freeze", "5", "--num-reference", "3", "--supersample", "1"])
    assert isinstance(config, DemoSceneConfig) and config.out == out and config.seed == 3
    config.main()
    transforms = load(out / "transforms.json")
    assert transforms["generation"]["seed"] == 3 and len(transforms["frames"]) == 8
    assert np.array_equal(intrinsics(32, 18), K_of(transforms))
    with pytest.raises(SystemExit, match="not empty"):  # a clear message, no traceback
        config.main()
