"""`fourreal camera-path` (fourreal_ns/camera_paths.py, fourreal_ns/run_config.py): the three 4D paths on a small demo
scene (freeze-time arc, +y up) and on the imported D-NeRF scene (no freeze video, +z up), nerfstudio's own reader
of the written file, and finding the scene from a run's config.yml."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data_file
from fourreal_ns.camera_paths import (
    BulletTime,
    FixedView,
    OrbitThroughTime,
    bullet_time_path,
    fixed_view_path,
    orbit_through_poses,
    orbit_through_time_path,
    scene_path_geometry,
)
from fourreal_ns.data.scene import load_scene

SMALL = dict(width=48, height=27, num_freeze=7, num_reference=5, supersample=1, num_points=200)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from fourreal_ns.demo_scene import make_demo_scene

    return make_demo_scene(tmp_path_factory.mktemp("paths") / "scene", seed=0, **SMALL)


@pytest.fixture(scope="module")
def dnerf(tmp_path_factory) -> Path:
    from fourreal_ns.data.dnerf_import import import_dnerf

    npz = shared_data_file("tiny_dnerf_data.npz")
    return import_dnerf(npz, tmp_path_factory.mktemp("paths_dnerf") / "lego", show_progress=False)


def poses_of(path: dict) -> np.ndarray:
    return np.array([entry["camera_to_world"] for entry in path["camera_path"]]).reshape(-1, 4, 4)


def times_of(path: dict) -> np.ndarray:
    return np.array([entry["render_time"] for entry in path["camera_path"]])


def axis_distance(pose: np.ndarray, point: np.ndarray) -> float:
    """Distance of `point` from the camera's optical axis (and it must be in front of the camera)."""
    forward = -pose[:3, 2] / np.linalg.norm(pose[:3, 2])
    offset = point - pose[:3, 3]
    assert offset @ forward > 0
    return float(np.linalg.norm(offset - (offset @ forward) * forward))


def stops_of(path: dict):
    """Runs of consecutive equal poses (length > 1): [(first index, length)]."""
    poses = poses_of(path)
    runs, start = [], 0
    for index in range(1, len(poses) + 1):
        if index == len(poses) or not np.allclose(poses[index], poses[start], atol=1e-12):
            if index - start > 1:
                runs.append((start, index - start))
            start = index
    return runs


# ---------------------------------------------------------------------------------------------- demo scene (arc)


def test_bullet_time_sweeps_the_freeze_arc_looking_at_the_centre(demo):
    scene = load_scene(demo)
    geometry = scene_path_geometry(scene)
    path = bullet_time_path(geometry, num_frames=30)
    poses, times = poses_of(path), times_of(path)
    assert len(poses) == 30 and path["seconds"] == pytest.approx(30 / 24)
    assert np.all(times == scene.canonical["time"])
    assert np.allclose(geometry.orbit.up, [0, 1, 0]) and np.allclose(geometry.orbit.target, 0.0, atol=1e-6)
    for pose in poses:
        assert axis_distance(pose, np.zeros(3)) < 1e-6
        assert pose[:3, 0] @ np.array([0.0, 1.0, 0.0]) == pytest.approx(0.0, abs=1e-9)  # no roll
    freeze = scene.frames_of("freeze")
    assert np.allclose(poses[0], freeze[0].transform_matrix, atol=1e-6)  # from one end of the arc ...
    assert np.allclose(poses[-1], freeze[-1].transform_matrix, atol=1e-6)  # ... to the other
    # the previous helper (the demo's orbit video) is unchanged: the same arc
    assert np.allclose(orbit_through_poses([f.transform_matrix for f in freeze], 30), poses)
    assert np.all(times_of(bullet_time_path(geometry, num_frames=5, time=0.3)) == 0.3)


def test_fixed_view_plays_time_at_the_reference_camera(demo):
    scene = load_scene(demo)
    path = fixed_view_path(scene_path_geometry(scene), num_frames=12, seconds=2.0)
    poses, times = poses_of(path), times_of(path)
    reference = scene.frames_of("reference")[scene.canonical["reference_frame"]]
    assert len(poses) == 12 and path["seconds"] == 2.0
    assert all(np.array_equal(pose, reference.transform_matrix) for pose in poses)
    assert np.allclose(times, np.linspace(0, 1, 12)) and np.all(np.diff(times) > 0)


def test_orbit_through_time_stops_four_times_and_plays_time(demo):
    scene = load_scene(demo)
    geometry = scene_path_geometry(scene)
    path = orbit_through_time_path(geometry, num_frames=100)
    poses, times = poses_of(path), times_of(path)
    assert len(poses) == 100
    stops = stops_of(path)
    assert len(stops) == 4
    in_stop = np.zeros(len(poses), bool)
    for start, length in stops:
        assert length >= 10
        assert np.allclose(times[start:start + length], np.linspace(0, 1, length))
        in_stop[start:start + length] = True
    assert np.all(times[~in_stop] == scene.canonical["time"])  # moving: time held at t_c
    # the stops go along the arc, in the middles of four equal parts, and every pose looks at the centre
    angles = [math.atan2(poses[start][0, 3], poses[start][2, 3]) for start, _ in stops]
    expected = [geometry.orbit.start + geometry.orbit.sweep * (i + 0.5) / 4 for i in range(4)]
    assert np.allclose(angles, expected, atol=1e-9)
    assert max(axis_distance(pose, geometry.orbit.target) for pose in poses) < 1e-6


def test_nerfstudio_reads_the_paths_with_times(demo, tmp_path):
    from nerfstudio.cameras.camera_paths import get_path_from_json

    from fourreal_ns.camera_paths import write_camera_path

    scene = load_scene(demo)
    reference = scene.frames_of("reference")[0]
    path = orbit_through_time_path(scene_path_geometry(scene), num_frames=40)
    file = write_camera_path(tmp_path / "path.json", path)
    cameras = get_path_from_json(json.loads(file.read_text()))
    assert cameras.shape == (40,)
    assert cameras.times is not None and np.allclose(cameras.times.numpy().ravel(), times_of(path))
    assert np.allclose(cameras.camera_to_worlds.numpy(), poses_of(path)[:, :3], atol=1e-6)
    assert int(cameras.width[0]) == reference.width and int(cameras.height[0]) == reference.height
    assert float(cameras.fy[0]) == pytest.approx(reference.fl_y, rel=1e-5)  # fov round trip
    assert float(cameras.fx[0]) == pytest.approx(reference.fl_x, rel=1e-5)  # square pixels


# ------------------------------------------------------------------------------ D-NeRF scene (no freeze video)


def test_dnerf_paths_circle_the_scene_z_up(dnerf):
    scene = load_scene(dnerf)
    geometry = scene_path_geometry(scene)
    assert geometry.orbit.closed and np.allclose(geometry.orbit.up, [0, 0, 1])
    assert np.allclose(geometry.orbit.target, 0.0, atol=1e-4)
    first = scene.frames[0].transform_matrix
    assert np.array_equal(geometry.reference_pose, first)  # the canonical reference frame: the first train frame

    bullet = poses_of(bullet_time_path(geometry, num_frames=24))
    angles = np.unwrap([math.atan2(p[1, 3], p[0, 3]) for p in bullet])
    assert np.allclose(np.diff(angles), np.diff(angles)[0]) and abs(np.diff(angles)[0]) == pytest.approx(2 * math.pi / 24)
    assert math.atan2(bullet[0][1, 3], bullet[0][0, 3]) == pytest.approx(math.atan2(first[1, 3], first[0, 3]))
    assert max(axis_distance(pose, geometry.orbit.target) for pose in bullet) < 1e-6

    fixed = fixed_view_path(geometry, num_frames=8)
    assert all(np.array_equal(pose, first) for pose in poses_of(fixed))

    orbit = orbit_through_time_path(geometry, num_frames=64)
    stops = stops_of(orbit)
    assert len(stops) == 4 and stops[0][0] == 0  # closed circle: the first stop is the start
    assert np.allclose(poses_of(orbit)[0][:3, 3], bullet[0][:3, 3])


# ----------------------------------------------------------------------------------------- from a config.yml


def save_run_config(tmp_path: Path, data: Path, scale_factor: float = 1.0) -> Path:
    from fourreal_ns.method_configs import fourreal_canonical

    config = copy.deepcopy(fourreal_canonical.config)
    config.output_dir = tmp_path / "outputs"
    config.experiment_name, config.timestamp = "paths", "run"
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.scale_factor = scale_factor
    config.save_config()
    return config.get_base_dir() / "config.yml"


def test_commands_find_the_scene_through_the_config(demo, tmp_path, monkeypatch):
    from fourreal_ns.run_config import scene_of_run

    config = save_run_config(tmp_path, demo.resolve(), scale_factor=2.0)
    run = scene_of_run(config)
    assert run.folder == demo.resolve() and run.scale_factor == 2.0 and run.method_name == "4real-canonical"

    output = tmp_path / "paths" / "bullet.json"
    BulletTime(load_config=config, output=output, num_frames=10).main()
    bullet = json.loads(output.read_text())
    reference = bullet_time_path(scene_path_geometry(load_scene(demo), scale_factor=2.0), num_frames=10)
    assert np.allclose(poses_of(bullet), poses_of(reference))
    unscaled = bullet_time_path(scene_path_geometry(load_scene(demo)), num_frames=10)
    assert np.allclose(poses_of(bullet)[:, :3, 3], 2.0 * poses_of(unscaled)[:, :3, 3])  # model space

    FixedView(load_config=config, output=tmp_path / "fixed.json", num_frames=6).main()
    assert len(json.loads((tmp_path / "fixed.json").read_text())["camera_path"]) == 6
    OrbitThroughTime(load_config=config, output=tmp_path / "orbit.json", num_frames=48, time=0.25).main()
    orbit = json.loads((tmp_path / "orbit.json").read_text())
    assert len(stops_of(orbit)) == 4 and 0.25 in times_of(orbit)

    # relative scene paths are read from the current directory; --data points elsewhere
    relative = save_run_config(tmp_path / "rel", Path(demo.name))
    monkeypatch.chdir(demo.parent)
    assert scene_of_run(relative).folder == Path(demo.name)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no transforms.json from here.*--data"):
        BulletTime(load_config=relative, output=tmp_path / "x.json").main()
    BulletTime(load_config=relative, output=tmp_path / "x.json", data=demo).main()


def test_clear_errors(tmp_path, demo):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from fourreal_ns.run_config import RunConfigError, scene_of_run

    with pytest.raises(RunConfigError, match="does not exist"):
        scene_of_run(tmp_path / "absent.yml")
    (tmp_path / "bad.yml").write_text("just: [text")
    with pytest.raises(RunConfigError, match="not a readable"):
        scene_of_run(tmp_path / "bad.yml")
    config = save_run_config(tmp_path, demo)
    text = config.read_text()
    import yaml

    loaded = yaml.load(text, Loader=yaml.Loader)
    loaded.pipeline.datamanager.dataparser = NerfstudioDataParserConfig()
    config.write_text(yaml.dump(loaded))
    with pytest.raises(RunConfigError, match="not fourreal's"):
        scene_of_run(config)
    geometry = scene_path_geometry(load_scene(demo))
    with pytest.raises(ValueError, match="--time 1.5"):
        bullet_time_path(geometry, time=1.5)
    with pytest.raises(ValueError, match="--num-frames 8"):
        orbit_through_time_path(geometry, num_frames=8)
