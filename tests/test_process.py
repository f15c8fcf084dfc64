"""`fourreal process`: real structure from motion (pycolmap) on frames of the demo scene's true renders, video-file
input, the `fourreal generate` layout, and clear errors on bad inputs (leaving the output folder untouched).

The frames: the demo world (seed 0) rendered by its analytic ray caster at 320 x 180 (supersample 2), a
freeze-time orbit of FREEZE frames over 180 degrees at t_c = 0 and REFERENCE frames of the static reference camera
(the orbit's middle camera) at times linspace(0, 1). Estimated poses are compared with the true ones after a
similarity (Umeyama) alignment of the camera centres.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from conftest import run_process
from PIL import Image

WIDTH, HEIGHT, SUPERSAMPLE = 320, 180, 2
FREEZE, REFERENCE = 32, 8
K_C, J_C = FREEZE // 2, 0
ROTATION_LIMIT_DEGREES = 2.0
"""Measured: at most 1.37 degrees (mean 0.76) for the 40 frames (seed 0)."""
CENTRE_LIMIT = 0.02
"""Fraction of the true cameras' extent (their bounding-sphere diameter, 2.7 world units); measured 0.74 %."""


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def true_pose(frame) -> np.ndarray:
    from fourreal_ns.demo_scene import freeze_angles, orbit_camera

    if frame.video == "freeze":
        return orbit_camera(float(freeze_angles(FREEZE, 180.0, K_C)[frame.view]))
    return orbit_camera(0.0)


def umeyama(source: np.ndarray, target: np.ndarray):
    """Similarity (scale, R, t) minimising |scale R source + t - target|^2 (Umeyama 1991)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    covariance = (target - mu_t).T @ (source - mu_s) / len(source)
    U, D, Vt = np.linalg.svd(covariance)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    scale = np.trace(np.diag(D) @ S) / ((source - mu_s) ** 2).sum(1).mean()
    return scale, R, mu_t - scale * R @ mu_s


def pose_errors(estimated: np.ndarray, true: np.ndarray):
    """(rotation errors in degrees, centre errors as a fraction of the true extent) after a Sim3 alignment."""
    scale, R, t = umeyama(estimated[:, :3, 3], true[:, :3, 3])
    centres = scale * estimated[:, :3, 3] @ R.T + t
    extent = 2.0 * np.linalg.norm(true[:, :3, 3] - true[:, :3, 3].mean(0), axis=1).max()
    centre_errors = np.linalg.norm(centres - true[:, :3, 3], axis=1) / extent
    rotation_errors = []
    for est, gt in zip(estimated, true):
        delta = (R @ est[:3, :3]).T @ gt[:3, :3]
        rotation_errors.append(math.degrees(math.acos(np.clip((np.trace(delta) - 1) / 2, -1, 1))))
    return np.array(rotation_errors), centre_errors


def render_frames(folder: Path) -> Path:
    """freeze/ and reference/ frame folders of the demo world."""
    from fourreal_ns.demo_scene import freeze_angles, intrinsics, orbit_camera, render_true

    K = intrinsics(WIDTH, HEIGHT)
    (folder / "freeze").mkdir(parents=True)
    (folder / "reference").mkdir()
    for k, angle in enumerate(freeze_angles(FREEZE, 180.0, K_C)):
        image = render_true(orbit_camera(float(angle)), K, WIDTH, HEIGHT, 0.0, supersample=SUPERSAMPLE)
        Image.fromarray(image).save(folder / "freeze" / f"frame_{k}.png")  # unpadded: natural sort order matters
    for j, t in enumerate(np.linspace(0.0, 1.0, REFERENCE)):
        image = render_true(orbit_camera(0.0), K, WIDTH, HEIGHT, float(t), supersample=SUPERSAMPLE)
        Image.fromarray(image).save(folder / "reference" / f"frame_{j}.png")
    return folder


def snapshot(folder: Path) -> Dict[str, str]:
    """Every file below `folder` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def encode_mp4(frames: List[Path], path: Path, fps: int = 8) -> Path:
    """Lossless H.264 (crf 0, 4:4:4) of the frames, with PyAV. A lossy encode (crf 10) poses as many frames but with
    rotation errors of about 1.35 degrees (against 0.3 lossless): compression noise costs SfM accuracy."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        first = Image.open(frames[0])
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0", "preset": "veryfast"}
        for frame_path in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.open(frame_path).convert("RGB")), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    return render_frames(tmp_path_factory.mktemp("process_frames") / "frames")


@pytest.fixture(scope="module")
def processed(frames, tmp_path_factory):
    """`fourreal process --freeze DIR --reference DIR --out SCENE` on the rendered frames, with its runtime."""
    out = tmp_path_factory.mktemp("process_scene") / "scene"
    before = snapshot(frames)
    started = time.time()
    # One thread: COLMAP repeats its result exactly (with every core, one full-suite run posed the orbit with
    # rotation errors up to 4.3 degrees instead of 0.4).
    run_process(["--freeze", frames / "freeze", "--reference", frames / "reference", "--out", out,
                 "--prompt", "a ball rolling in a toy room", "--num-threads", "1"])
    seconds = time.time() - started
    assert snapshot(frames) == before, "the input frames were modified"
    return out, seconds


# --------------------------------------------------------------------------------------------------------------
# Structure from motion on the demo world
# --------------------------------------------------------------------------------------------------------------


def test_sfm_recovers_the_true_cameras(processed):
    from fourreal_ns.data.scene import load_scene

    out, seconds = processed
    scene = load_scene(out)
    content = json.loads((out / "transforms.json").read_text())
    registered = content["process"]["registered"] / content["process"]["sfm_frames"]
    freeze = scene.frames_of("freeze")
    estimated = np.stack([f.transform_matrix for f in scene.frames])
    true = np.stack([true_pose(f) for f in scene.frames])
    rotation, centre = pose_errors(estimated, true)
    print(f"SfM on {FREEZE}+{REFERENCE} frames at {WIDTH}x{HEIGHT}: {registered:.0%} registered "
          f"({len(freeze)}/{FREEZE} freeze), rotation error max {rotation.max():.2f} deg (mean {rotation.mean():.2f}), "
          f"centre error max {centre.max():.2%} of the extent, {seconds:.1f} s")
    assert registered >= 0.9
    assert len(freeze) >= 0.9 * FREEZE
    assert rotation.max() < ROTATION_LIMIT_DEGREES
    assert centre.max() < CENTRE_LIMIT
    # Intrinsics: the demo camera has a 60 degree horizontal field of view, principal point at the centre.
    true_focal = 0.5 * WIDTH / math.tan(math.radians(30.0))
    assert abs(content["fl_x"] / true_focal - 1) < 0.02
    assert content["fl_x"] == content["fl_y"] and (content["w"], content["h"]) == (WIDTH, HEIGHT)


def test_written_scene_follows_the_scene_format(processed, frames):
    from fourreal_ns.data.dataparser import FourRealDataParserConfig
    from fourreal_ns.data.scene import load_points, load_scene

    out, _ = processed
    scene = load_scene(out)
    assert scene.canonical == {"time": 0.0, "freeze_frame": K_C, "reference_frame": J_C}
    assert scene.generation == {"prompt": "a ball rolling in a toy room"}
    freeze, reference = scene.frames_of("freeze"), scene.frames_of("reference")
    assert all(f.time == 0.0 for f in freeze)
    assert [f.file_path for f in freeze][:2] == ["images/freeze/00000.png", "images/freeze/00001.png"]
    assert [f.time for f in reference] == pytest.approx(list(np.linspace(0, 1, REFERENCE)))
    assert {f.view for f in reference} == {0}
    # A static reference camera: one pose for all reference frames, the canonical freeze frame's camera.
    for frame in reference:
        np.testing.assert_array_equal(frame.transform_matrix, reference[0].transform_matrix)
    canonical_freeze = next(f for f in freeze if f.view == K_C)
    assert np.linalg.norm(canonical_freeze.transform_matrix[:3, 3] - reference[0].transform_matrix[:3, 3]) < 0.02
    # Normalised world: cameras within the unit sphere, the farthest on it; +y is the mean camera up.
    centres = np.stack([f.transform_matrix[:3, 3] for f in scene.frames])
    assert np.linalg.norm(centres, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    up = np.mean([f.transform_matrix[:3, 1] for f in scene.frames], axis=0)
    assert up[1] / np.linalg.norm(up) > 0.999
    # The right frame order: image k is the true render of orbit camera k (natural sort of frame_2 < frame_10).
    assert Image.open(out / "images/freeze/00010.png").tobytes() == Image.open(
        frames / "freeze" / "frame_10.png").tobytes()
    # The inputs are recorded by name, never by a path of this machine.
    assert json.loads((out / "transforms.json").read_text())["process"]["inputs"] == ["freeze", "reference"]
    points, colours = load_points(scene.ply_path)
    assert scene.ply_path.name == "seed_points.ply" and len(points) > 200
    assert np.linalg.norm(points, axis=1).max() < 10.0
    assert (out / "colmap/sparse/0").is_dir()
    # What the trainer sees.
    parser = FourRealDataParserConfig(data=out, eval_every=0).setup()
    outputs = parser.get_dataparser_outputs("train")
    assert len(outputs.image_filenames) == len(scene.frames)
    assert outputs.metadata["points3D_xyz"].shape[0] == len(points)
    assert not list(out.parent.glob(".scene.fourreal-process-*")), "the scratch folder was left behind"


def test_video_files_are_decoded_and_posed(frames, tmp_path):
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.process.video_io import natural_key

    freeze_files = sorted((frames / "freeze").iterdir(), key=lambda p: natural_key(p.name))
    reference_files = sorted((frames / "reference").iterdir(), key=lambda p: natural_key(p.name))
    freeze_video = encode_mp4(freeze_files, tmp_path / "freeze.mp4")
    reference_video = encode_mp4(reference_files, tmp_path / "reference.mp4")
    out = tmp_path / "scene"
    started = time.time()
    run_process(["--freeze", freeze_video, "--reference", reference_video, "--out", out])
    scene = load_scene(out)
    freeze = scene.frames_of("freeze")
    rotation, centre = pose_errors(np.stack([f.transform_matrix for f in scene.frames]),
                                   np.stack([true_pose(f) for f in scene.frames]))
    print(f"mp4 input: {len(freeze)}/{FREEZE} freeze frames posed, rotation error max {rotation.max():.2f} deg, "
          f"centre error max {centre.max():.2%}, {time.time() - started:.1f} s")
    assert len(sorted((out / "images/freeze").glob("*.png"))) == FREEZE
    assert len(scene.frames_of("reference")) == REFERENCE
    assert len(freeze) >= 0.9 * FREEZE
    assert rotation.max() < ROTATION_LIMIT_DEGREES and centre.max() < CENTRE_LIMIT
    decoded = np.asarray(Image.open(out / "images/freeze/00005.png"), dtype=np.float64)
    original = np.asarray(Image.open(freeze_files[5]), dtype=np.float64)
    assert np.abs(decoded - original).mean() < 3.0  # the same frame, through a near-lossless codec


def test_generated_scene_layout_with_lost_frames(frames, tmp_path):
    """Input (a): a `fourreal generate` folder, two freeze frames replaced by noise. SfM cannot pose them: they are
    listed and left out of transforms.json, their images stay; generation.json is copied whole; nothing of the
    input changes."""
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.process.video_io import natural_key

    scene = tmp_path / "generated"
    for video in ("freeze", "reference"):
        (scene / "images" / video).mkdir(parents=True)
        for index, path in enumerate(sorted((frames / video).iterdir(), key=lambda p: natural_key(p.name))):
            (scene / "images" / video / f"{index:05d}.png").write_bytes(path.read_bytes())
    noise = np.random.default_rng(0)
    for k in (3, 27):
        Image.fromarray(noise.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
            scene / "images/freeze" / f"{k:05d}.png")
    generation = {"prompt": "a ball rolling in a toy room", "canonical": {"freeze_frame": K_C, "reference_frame": 0},
                  "reference_fps": 8.0, "seeds": [1, 2], "models": {"video": "toy"}}
    (scene / "generation.json").write_text(json.dumps(generation))
    before = snapshot(scene)

    run_process([scene])
    loaded = load_scene(scene)
    content = json.loads((scene / "transforms.json").read_text())
    print("unregistered:", content["process"]["unregistered"])
    assert loaded.generation == generation
    assert loaded.canonical == {"time": 0.0, "freeze_frame": K_C, "reference_frame": 0}
    lost = {"images/freeze/00003.png", "images/freeze/00027.png"}
    assert lost <= set(content["process"]["unregistered"])
    assert lost <= set(content["process"]["dropped"])
    assert not lost & {f.file_path for f in loaded.frames}
    assert len(loaded.frames_of("freeze")) >= FREEZE - 4
    after = snapshot(scene)
    assert {name: digest for name, digest in after.items() if name in before} == before
    assert set(after) - set(before) >= {"transforms.json", "seed_points.ply"}

    # A second run refuses to replace the scene without --overwrite, and changes nothing.
    with pytest.raises(Exception, match="--overwrite"):
        run_process([scene])
    assert snapshot(scene) == after


# --------------------------------------------------------------------------------------------------------------
# Bad inputs: clear errors, and the output folder as it was
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def output_folder(tmp_path) -> Path:
    """An existing output folder holding a file of the user's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return out


def expect_failure(args: List[str], out: Path, *fragments: str) -> str:
    from fourreal_ns.process import ProcessError

    before = snapshot(out.parent)
    with pytest.raises(ProcessError) as info:
        run_process(args)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not (out / "transforms.json").exists()
    assert snapshot(out.parent) == before, "a failed run changed files"
    assert not list(out.parent.glob(".*fourreal-process-*")), "the scratch folder was left behind"
    return message


def write_frames(folder: Path, count: int, size=(64, 48), kind: str = "noise", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        if kind == "noise":
            image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        else:
            image = np.full((size[1], size[0], 3), 128, dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    return folder


def test_unreadable_video_file(tmp_path, output_folder):
    broken = tmp_path / "freeze.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    reference = write_frames(tmp_path / "reference", 8)
    expect_failure(["--freeze", broken, "--reference", reference, "--out", output_folder],
                   output_folder, str(broken), "could not be opened as a video")


def test_empty_frame_folder(tmp_path, output_folder):
    (tmp_path / "freeze").mkdir()
    reference = write_frames(tmp_path / "reference", 8)
    expect_failure(["--freeze", tmp_path / "freeze", "--reference", reference, "--out", output_folder],
                   output_folder, str(tmp_path / "freeze"), "has no frames", "(it is empty)")


def test_too_few_frames(tmp_path, output_folder):
    freeze = write_frames(tmp_path / "freeze", 5)
    reference = write_frames(tmp_path / "reference", 12)
    expect_failure(["--freeze", freeze, "--reference", reference, "--out", output_folder, "--min-frames", "6"],
                   output_folder, "has 5 frame(s)", "--min-frames 6")


def test_frames_of_different_sizes(tmp_path, output_folder):
    freeze = write_frames(tmp_path / "freeze", 8)
    Image.fromarray(np.zeros((50, 64, 3), dtype=np.uint8)).save(freeze / "004.png")
    reference = write_frames(tmp_path / "reference", 8)
    expect_failure(["--freeze", freeze, "--reference", reference, "--out", output_folder],
                   output_folder, str(freeze / "004.png"), "64 x 50", "64 x 48", "Resize")
    # Videos of different sizes.
    small = write_frames(tmp_path / "small_reference", 8, size=(32, 24))
    expect_failure(["--freeze", write_frames(tmp_path / "freeze2", 8), "--reference", small, "--out", output_folder],
                   output_folder, "32 x 24", "64 x 48", "one size")


@pytest.mark.parametrize("kind, cause", [("constant", "almost no texture"), ("noise", "no two frames share")])
def test_sfm_failure_is_explained(tmp_path, output_folder, kind, cause):
    freeze = write_frames(tmp_path / "freeze", 10, size=(160, 90), kind=kind)
    reference = write_frames(tmp_path / "reference", 8, size=(160, 90), kind=kind, seed=1)
    expect_failure(["--freeze", freeze, "--reference", reference, "--out", output_folder],
                   output_folder, "Structure from motion failed", cause)


def test_argument_errors(tmp_path, output_folder):
    frames = write_frames(tmp_path / "freeze", 8)
    expect_failure(["--reference", frames, "--out", output_folder], output_folder, "alone, with a static reference "
                   "camera (the default), cannot be posed", "--no-static-reference")
    expect_failure(["--freeze", frames, "--reference", frames], output_folder, "--out SCENE is required")
    expect_failure(["--grid", frames, "--freeze", frames, "--reference", frames, "--out", output_folder],
                   output_folder, "Give only one input")
    expect_failure(["--freeze", output_folder / "images" / "freeze", "--reference", frames, "--out", output_folder],
                   output_folder, "lies in the output's images/freeze/")
    expect_failure(["--freeze", tmp_path / "nowhere", "--reference", frames, "--out", output_folder],
                   output_folder, str(tmp_path / "nowhere"), "does not exist")
    expect_failure([tmp_path / "missing_scene"], output_folder, "does not exist")
    (tmp_path / "generated" / "images").mkdir(parents=True)
    expect_failure([tmp_path / "generated"], tmp_path / "generated", "generation.json is missing")


def test_registration_checks():
    """The canonical freeze frame must register; so must --min-registered-fraction of the freeze frames."""
    from fourreal_ns.process import ProcessError
    from fourreal_ns.process.plan import Plan, PlannedFrame, check_registration

    names = [f"images/freeze/{k:05d}.png" for k in range(10)]
    plan = Plan(root=Path("."), frames=[PlannedFrame(n, "freeze", 0.0, k, k, n) for k, n in enumerate(names)]
                + [PlannedFrame("images/reference/00000.png", "reference", 0.0, 0, 0, names[5])],
                sfm_names=names, canonical={"time": 0.0, "freeze_frame": 5, "reference_frame": 0}, generation={})
    pose = np.eye(4)
    check_registration(plan, {n: pose for n in names[:8]}, 0.8)
    with pytest.raises(ProcessError, match="canonical freeze frame .*00005.png"):
        check_registration(plan, {n: pose for n in names if n != names[5]}, 0.5)
    with pytest.raises(ProcessError, match=r"7 of 10 freeze frames \(70% < --min-registered-fraction 80%\)"):
        check_registration(plan, {n: pose for n in names[:7]}, 0.8)
