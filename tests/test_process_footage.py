"""`fourreal process` on real footage: the DimensionX videos of ../shared/data/dimensionx (woman, Franka: 296 frames,
1280 x 854, 15 fps each). Each is a chain of short generated camera moves around ONE frozen moment; every move
starts again from the same input image (frames 0, 26, 51, 75, ... are all close to frame 0).

What is tested, at 160 px (`--max-size 160`) and on one COLMAP thread (repeatable results):
- a freeze-time video alone is a static scene, with frames sampled (`--num-frames`) and capped while decoding, and
  full-resolution copies (`--keep-full-resolution`);
- three camera moves of woman.mp4, as three mp4 clips, merge into one model (every frame tagged with its clip);
- a clip of another video (Franka) among them is dropped and named; holding the canonical frame, it is an error;
- a reference video alone, every frame posed (`--no-static-reference`), and the error without that option;
- errors name the user's files, transforms.json holds no path of this machine, a quiet run's stderr holds no
  COLMAP (glog) log line.

Measured (2 cores, 2026-12-06): woman.mp4 --num-frames 25 posed 23 of 25 frames (source frames 86 and 160 not) in
about 4 s of SfM; three moves x 12 frames posed 36 of 36 (sequential matching) in about 7 s, the three clips' first
frames within 0.001 scene units and 0.02 degrees of each other.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import tyro
from conftest import SHARED_DATA, folder_hashes, run_process, shared_data_file
from PIL import Image

SIZE = 160
CLIP_SIZE = (320, 214)
"""The clips written from the DimensionX videos (even sides for H.264); processed at SIZE."""
COMMON = ["--max-size", str(SIZE), "--num-threads", "1"]
GLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.]+:\d+\]", re.MULTILINE)
"""A glog line, as COLMAP writes them: `I20261206 20:48:24.897105 140174660971392 bundle_adjustment.cc:46] ...`."""


def transforms(scene: Path) -> dict:
    return json.loads((scene / "transforms.json").read_text())


def no_machine_paths(scene: Path, *roots: Path) -> None:
    text = (scene / "transforms.json").read_text()
    for root in (*roots, SHARED_DATA, Path.home()):
        assert str(root) not in text, f"{root} appears in {scene / 'transforms.json'}"
    assert ".fourreal-process-" not in text


def expect_error(args: List[object], out: Path, *fragments: str) -> str:
    from fourreal_ns.process import ProcessError

    before = folder_hashes(out.parent)
    with pytest.raises(ProcessError) as info:
        run_process(args)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert ".fourreal-process-" not in message and "/stage/" not in message, message
    assert folder_hashes(out.parent) == before, "a failed run changed files"
    return message


# --------------------------------------------------------------------------------------------------------------
# The footage
# --------------------------------------------------------------------------------------------------------------


def decode(path: Path, count: int, size=CLIP_SIZE) -> List[np.ndarray]:
    """The first `count` frames of a video, scaled to `size` by ffmpeg."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            frames.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
            if len(frames) == count:
                break
    return frames


def move_starts(frames: List[np.ndarray], threshold: float = 10.0) -> List[int]:
    """Where the camera moves start: the first frame of each run of frames close to frame 0."""
    first = frames[0].astype(np.float32)
    near = [float(np.abs(f.astype(np.float32) - first).mean()) < threshold for f in frames]
    return [i for i in range(len(frames)) if near[i] and (i == 0 or not near[i - 1])]


def write_mp4(frames: List[np.ndarray], path: Path, fps: int = 15) -> Path:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def woman() -> Path:
    return shared_data_file("dimensionx/woman.mp4")


@pytest.fixture(scope="module")
def clips(woman, tmp_path_factory) -> Dict[str, Path]:
    """The first three camera moves of woman.mp4 and the first of Franka.mp4, as 320 x 214 mp4 files."""
    franka = shared_data_file("dimensionx/Franka.mp4")
    folder = tmp_path_factory.mktemp("clips")
    frames = decode(woman, 80)
    starts = move_starts(frames)
    # Measured: moves start every 24-26 frames (0, 26, 51, 75 in woman.mp4).
    assert starts[:4] == [0, 26, 51, 75], starts
    out = {name: write_mp4(frames[starts[k]:starts[k + 1]], folder / f"{name}.mp4")
           for k, name in enumerate(("woman_a", "woman_b", "woman_c"))}
    other = decode(franka, 30)
    out["franka_a"] = write_mp4(other[:move_starts(other)[1]], folder / "franka_a.mp4")
    return out


@pytest.fixture(scope="module")
def static_scene(woman, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("static") / "scene"
    run_process(["--freeze", woman, "--out", out, "--num-frames", 25, "--keep-full-resolution", *COMMON])
    return out


@pytest.fixture(scope="module")
def merged(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "scene"
    run_process(["--freeze", clips["woman_a"], clips["woman_b"], clips["woman_c"], "--out", out, "--num-frames", 12,
                 "--matcher", "sequential", *COMMON])
    return out


# --------------------------------------------------------------------------------------------------------------
# A freeze-time video alone; sampling and the size cap
# --------------------------------------------------------------------------------------------------------------


def test_freeze_video_alone_is_a_static_scene(static_scene, tmp_path_factory):
    from fourreal_ns.data.scene import load_scene

    scene = load_scene(static_scene)
    content = transforms(static_scene)
    unregistered = content["process"]["unregistered"]
    print(f"woman.mp4, 25 frames at {SIZE} px: {len(scene.frames)} posed, not posed: "
          f"{content['process']['unregistered_frames']}, {content['process']['seconds']}")
    assert scene.is_static
    assert scene.canonical == {"time": 0.0, "freeze_frame": 12, "reference_frame": None}  # K // 2, posed
    assert content["process"]["canonical_note"] is None
    assert {f.video for f in scene.frames} == {"freeze"} and {f.time for f in scene.frames} == {0.0}
    assert {f.clip for f in scene.frames} == {"woman.mp4"}
    assert len(scene.frames) == 25 - len(unregistered) and len(scene.frames) >= 20
    assert all(max(f.width, f.height) <= SIZE for f in scene.frames)
    assert content["process"]["mode"] == "freeze-time video alone (static scene)"
    assert content["process"]["inputs"] == ["woman.mp4"]
    no_machine_paths(static_scene, tmp_path_factory.getbasetemp())


def test_sampling_and_size_cap_give_the_frames_asked_for(static_scene, woman):
    content = transforms(static_scene)
    report = content["process"]["clips"][0]
    expected = [int(x) for x in np.round(np.linspace(0, 295, 25))]
    assert report["source_indices"] == expected and report["source_frames"] == 296
    assert report["source_size"] == [1280, 854] and report["size"] == [160, 107]
    names = sorted(p.name for p in (static_scene / "images/freeze").glob("*.png"))
    assert names == [f"{k:05d}.png" for k in range(25)]  # every kept frame, posed or not
    for frame in content["frames"]:
        assert frame["source_frame"] == expected[frame["view"]]
        assert frame["file_path"] == f"images/freeze/{frame['view']:05d}.png"
    # Full resolution: the decoded source frame itself; the scene's frame is its Lanczos downscale.
    assert content["process"]["full_resolution"]["w"] == 1280
    k = 12
    full = Image.open(static_scene / "images_full/freeze" / f"{k:05d}.png")
    small = Image.open(static_scene / "images/freeze" / f"{k:05d}.png")
    assert full.size == (1280, 854) and small.size == (160, 107)
    source = decode(woman, expected[k] + 1, size=(1280, 854))[expected[k]]
    assert np.array_equal(np.asarray(full.convert("RGB")), source)
    assert np.array_equal(np.asarray(small), np.asarray(full.convert("RGB").resize((160, 107), Image.LANCZOS)))
    assert len(list((static_scene / "images_full/freeze").glob("*.png"))) == 25


def test_frame_choice_by_count_and_rate(clips, tmp_path, monkeypatch):
    """--num-frames counts the frames by decoding (a header's count may be wrong); --fps uses the video's rate."""
    from fourreal_ns.process import ProcessError, video_io
    from fourreal_ns.process.video_io import Sampling, decode_to_folder

    monkeypatch.setattr(video_io, "video_frame_count", lambda path: 1000)  # a header that lies
    video = decode_to_folder(clips["woman_b"], tmp_path / "a", "clip", sampling=Sampling(num_frames=5))
    assert video.source_indices == [0, 6, 12, 18, 24] and video.source_frames == 25
    video = decode_to_folder(clips["woman_b"], tmp_path / "b", "clip", sampling=Sampling(fps=5, max_size=100))
    assert video.source_indices == list(range(0, 25, 3)) and video.size == (100, 67)
    frames = tmp_path / "frames"
    decode_to_folder(clips["woman_b"], frames, "clip")
    with pytest.raises(ProcessError, match="--input-fps"):
        decode_to_folder(frames, tmp_path / "c", "clip", sampling=Sampling(fps=5))
    video = decode_to_folder(frames, tmp_path / "d", "clip", sampling=Sampling(fps=5, input_fps=15))
    assert video.source_indices == list(range(0, 25, 3)) and video.labels[1] == "frames/00003.png"


# --------------------------------------------------------------------------------------------------------------
# Several clips of one frozen moment
# --------------------------------------------------------------------------------------------------------------


def test_clips_merge_into_one_model(merged, tmp_path_factory):
    from fourreal_ns.data.scene import load_scene

    scene = load_scene(merged)
    content = transforms(merged)
    print(f"3 clips x 12 frames: {len(scene.frames)} posed, {content['process']['seconds']}")
    assert [f.clip for f in scene.frames] == ["woman_a.mp4"] * 12 + ["woman_b.mp4"] * 12 + ["woman_c.mp4"] * 12
    assert [f.view for f in scene.frames] == list(range(36))  # unique across clips, clip after clip
    assert scene.is_static and scene.canonical["freeze_frame"] == 0  # the first clip's first frame
    assert content["process"]["matcher"] == "sequential" and content["process"]["dropped_clips"] == []
    assert [c["written"] for c in content["process"]["clips"]] == [12, 12, 12]
    # One model: every move starts from the same image, so the clips' first cameras coincide.
    first = [f.transform_matrix for f in scene.frames if f.view in (0, 12, 24)]
    for other in first[1:]:
        assert np.linalg.norm(other[:3, 3] - first[0][:3, 3]) < 0.02
        cosine = (np.trace(other[:3, :3].T @ first[0][:3, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cosine, -1, 1))) < 1.0
    no_machine_paths(merged, tmp_path_factory.getbasetemp())


def test_freeze_syntax_and_folders_of_videos(clips, tmp_path):
    """`--freeze A B` and `--freeze A --freeze B` give the same clips; a folder of videos is one clip per video."""
    from fourreal_ns.process.command import Process
    from fourreal_ns.process.inputs import expand_clips, flatten_paths

    a, b = clips["woman_a"], clips["woman_b"]
    together = tyro.cli(Process, args=["--freeze", str(a), str(b), "--out", "o"])
    repeated = tyro.cli(Process, args=["--freeze", str(a), "--freeze", str(b), "--out", "o"])
    assert flatten_paths(together.freeze) == flatten_paths(repeated.freeze) == [a, b]
    folder = tmp_path / "moves"
    folder.mkdir()
    for name in ("move_10.mp4", "move_2.mp4"):
        (folder / name).write_bytes(a.read_bytes())
    (folder / "notes.txt").write_text("not a clip")
    assert [p.name for p in expand_clips([folder, b])] == ["move_2.mp4", "move_10.mp4", "woman_b.mp4"]
    Image.new("RGB", (8, 8)).save(folder / "000.png")  # with images, it is a frame folder
    assert expand_clips([folder]) == [folder]


def test_a_bad_clip_is_dropped_and_named(clips, tmp_path, capfd):
    """A clip of another video among the woman clips: left out with a warning naming its file. COLMAP's log stays
    off the terminal."""
    out = tmp_path / "scene"
    run_process(["--freeze", clips["woman_b"], clips["franka_a"], clips["woman_c"], "--out", out,
                 "--num-frames", 12, *COMMON])
    captured = capfd.readouterr()
    assert "franka_a.mp4 was left out" in captured.err
    assert not GLOG_LINE.search(captured.err) and not GLOG_LINE.search(captured.out), captured.err[-2000:]
    assert "bundle adjustment ===" not in captured.err + captured.out
    content = transforms(out)
    [dropped] = content["process"]["dropped_clips"]
    assert dropped["clip"] == "franka_a.mp4" and dropped["frames"] == 12
    assert dropped["registered_fraction"] < 0.8
    assert {f["clip"] for f in content["frames"]} == {"woman_b.mp4", "woman_c.mp4"}
    assert len(content["frames"]) == 24
    no_machine_paths(out, tmp_path)


def test_a_bad_clip_holding_the_canonical_frame_is_an_error(clips, tmp_path):
    out = tmp_path / "scene"
    out.mkdir()
    expect_error(["--freeze", clips["franka_a"], clips["woman_b"], clips["woman_c"], "--out", out,
                  "--num-frames", 12, *COMMON], out, "of the clip franka_a.mp4", "canonical freeze frame 0",
                 "franka_a.mp4 (frame 0)")


# --------------------------------------------------------------------------------------------------------------
# A reference video alone
# --------------------------------------------------------------------------------------------------------------


def test_reference_video_alone_with_a_moving_camera(clips, tmp_path, capfd):
    from fourreal_ns.data.scene import load_scene

    out = tmp_path / "scene"
    run_process(["--reference", clips["woman_b"], "--no-static-reference", "--out", out, *COMMON])
    captured = capfd.readouterr()
    assert not GLOG_LINE.search(captured.err + captured.out), captured.err[-2000:]
    scene = load_scene(out)
    content = transforms(out)
    frames = scene.frames_of("reference")
    assert len(frames) == len(scene.frames) >= 22  # measured: 25 of 25
    assert scene.canonical == {"time": 0.0, "freeze_frame": 0, "reference_frame": 0}
    assert not scene.is_static and content["process"]["mode"] == "reference video alone (moving camera)"
    assert [f.time for f in frames] == pytest.approx([f["source_frame"] / 24 for f in content["frames"]])
    centres = np.stack([f.transform_matrix[:3, 3] for f in frames])
    assert np.linalg.norm(centres - centres[0], axis=1).max() > 0.3  # each frame its own pose: the camera moves
    no_machine_paths(out, tmp_path)
    # The same video as a static reference camera cannot be posed alone.
    expect_error(["--reference", clips["woman_b"], "--out", tmp_path / "static"], tmp_path / "static",
                 "cannot be posed", "--no-static-reference", "--freeze")


# --------------------------------------------------------------------------------------------------------------
# Errors name the user's files
# --------------------------------------------------------------------------------------------------------------


def test_errors_name_the_users_files(clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # A damaged frame in a frame folder.
    frames = tmp_path / "orbit"
    frames.mkdir()
    for k, frame in enumerate(decode(clips["woman_a"], 10)):
        Image.fromarray(frame).save(frames / f"{k:03d}.png")
    damaged = frames / "004.png"
    damaged.write_bytes(damaged.read_bytes()[:400])
    expect_error(["--freeze", frames, "--out", out, *COMMON], out, str(damaged), "not a readable image")
    # A clip of another size: both files are named as the user gave them, with the frame.
    odd = write_mp4([f[:200] for f in decode(clips["woman_b"], 10)], tmp_path / "odd.mp4")
    expect_error(["--freeze", clips["woman_a"], odd, "--out", out, *COMMON], out,
                 f"{odd} (frame 0) is 320 x 200", f"{clips['woman_a']} (frame 0) is 320 x 214")
    # A truncated video file.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clips["woman_c"].read_bytes()[:5000])
    expect_error(["--freeze", cut, "--out", out, "--num-frames", 8, *COMMON], out, str(cut))


def test_clip_dropping_rules():
    """A clip posed below --min-registered-fraction is dropped; not the canonical frame's clip, nor the majority."""
    from fourreal_ns.process import ProcessError
    from fourreal_ns.process.plan import Plan, PlannedFrame, drop_bad_clips

    def plan(sizes: List[int]) -> Plan:
        frames = []
        for number, size in enumerate(sizes):
            for k in range(size):
                name = f"images/freeze/{len(frames):05d}.png"
                frames.append(PlannedFrame(name, "freeze", 0.0, len(frames), len(frames), name, clip=f"c{number}.mp4",
                                           label=f"c{number}.mp4 (frame {k})"))
        return Plan(root=Path("."), frames=frames, sfm_names=[f.file_path for f in frames],
                    canonical={"time": 0.0, "freeze_frame": 0, "reference_frame": None}, generation={})

    def posed(p: Plan, clips: List[str]) -> Dict[str, np.ndarray]:
        return {f.file_path: np.eye(4) for f in p.frames if f.clip in clips}

    p = plan([10, 10, 10])
    registered = posed(p, ["c0.mp4", "c2.mp4"])
    registered.update({f.file_path: np.eye(4) for f in p.frames if f.clip == "c1.mp4" and f.index < 17})
    [entry] = drop_bad_clips(p, registered, 0.8)  # c1: 7 of 10 posed
    assert entry["clip"] == "c1.mp4" and entry["registered"] == 7 and entry["registered_fraction"] == 0.7
    assert {f.clip for f in p.frames} == {"c0.mp4", "c2.mp4"} and p.label(p.removed[0].file_path) == "c1.mp4 (frame 0)"
    p = plan([10, 10, 10])
    with pytest.raises(ProcessError, match=r"of the clip c0.mp4 .* canonical freeze frame 0 \(c0.mp4 \(frame 0\)\)"):
        drop_bad_clips(p, posed(p, ["c1.mp4", "c2.mp4"]), 0.8)
    p = plan([10, 6, 6])
    with pytest.raises(ProcessError, match="do not make one model"):
        drop_bad_clips(p, posed(p, ["c0.mp4"]), 0.8)
    assert drop_bad_clips(plan([10]), {}, 0.8) == []  # one clip: the registration check decides
