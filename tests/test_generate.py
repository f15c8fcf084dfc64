"""`fourreal generate` with tiny random-weight diffusers pipelines (tests/tiny_diffusers.py), offline.

The pipelines are written with `save_pretrained` to a temporary folder and loaded by the same
`DiffusionPipeline.from_pretrained` call a user's machine makes with hub weights. Their frames are noise: these tests
check frame counts, which frames condition which call, metadata and resuming, never image quality.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import numpy as np
import pytest

from fourreal_ns.generate import video_models
from fourreal_ns.generate.command import GenerateError, GenerationOptions, generate_scene
from fourreal_ns.generate.freeze_time import plan_extension
from fourreal_ns.generate.parts import read_frames
from fourreal_ns.generate.prompts import freeze_time_prompt, static_description

PROMPT = "a panda playing guitar in a kitchen"


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory) -> Path:
    from tiny_diffusers import save_tiny_ltx

    return save_tiny_ltx(tmp_path_factory.mktemp("tiny_ltx") / "ltx")


def tiny_options(model: Path, **overrides) -> GenerationOptions:
    values = dict(model_id=str(model), width=32, height=32, num_inference_steps=2, num_reference_frames=9,
                  num_freeze_frames=40)
    values.update(overrides)
    return GenerationOptions(**values)


class Recorder:
    """Wraps a backend's `continue_video` / `text_to_video` to record what the model receives."""

    def __init__(self, monkeypatch, cls=video_models.LTXGenerator, fail_on_call: int = -1) -> None:
        self.known: List[np.ndarray] = []
        self.returned: List[np.ndarray] = []
        self.text_calls = 0
        self.loads = 0
        original_continue, original_text = cls.continue_video, cls.text_to_video
        original_init = cls.__init__
        recorder = self

        def continue_video(self, prompt, negative_prompt, known, num_new, seed, on_step=None):
            if len(recorder.known) == fail_on_call:
                raise KeyboardInterrupt("simulated interruption")
            recorder.known.append(np.array(known, copy=True))
            frames = original_continue(self, prompt, negative_prompt, known, num_new, seed, on_step=on_step)
            recorder.returned.append(np.array(frames, copy=True))
            return frames

        def text_to_video(self, *args, **kwargs):
            recorder.text_calls += 1
            return original_text(self, *args, **kwargs)

        def init(self, settings):
            recorder.loads += 1
            original_init(self, settings)

        monkeypatch.setattr(cls, "continue_video", continue_video)
        monkeypatch.setattr(cls, "text_to_video", text_to_video)
        monkeypatch.setattr(cls, "__init__", init)

    @property
    def calls(self) -> int:
        return len(self.known) + self.text_calls


# ------------------------------------------------------------------ prompt engineering


@pytest.mark.parametrize("prompt, expected", [
    ("a panda playing guitar in a kitchen", "Camera circulating around a panda with guitar in a kitchen, time elapse"),
    ("A dog is running on the beach", "Camera circulating around a dog on the beach, time elapse"),
    ("a cat running and jumping in a garden", "Camera circulating around a cat in a garden, time elapse"),
    ("a man riding a horse, cinematic", "Camera circulating around a man on a horse, cinematic, time elapse"),
    ("a bird flies over the lake while singing", "Camera circulating around a bird over the lake, time elapse"),
    ("a girl is eating an apple and walking quickly in the park",
     "Camera circulating around a girl with an apple in the park, time elapse"),
    ("a red car parked in the snow", "Camera circulating around a red car parked in the snow, time elapse"),
])
def test_freeze_time_prompt_examples(prompt: str, expected: str) -> None:
    assert freeze_time_prompt(prompt) == expected


def test_freeze_time_prompt_is_idempotent_and_rejects_empty() -> None:
    once = freeze_time_prompt(PROMPT)
    assert freeze_time_prompt(once) == once
    assert static_description("Dancing robots") == "robots"
    with pytest.raises(ValueError, match="empty"):
        freeze_time_prompt("   ")


def test_extension_plan_reaches_the_arc() -> None:
    plan = plan_extension(91, clip_frames=17, context_frames=8, new_per_step=8)  # 180 degrees at 2 per frame
    assert plan.num_frames >= 91 and plan.num_frames - 8 < 91
    assert (plan.forward_steps, plan.backward_steps) == (5, 5)
    assert plan.canonical_index == 40
    with pytest.raises(ValueError):
        plan_extension(40, clip_frames=5, context_frames=8)


# ------------------------------------------------------------------ generation


def test_generate_frame_counts_conditioning_and_metadata(tmp_path, tiny_ltx, monkeypatch) -> None:
    recorder = Recorder(monkeypatch)
    scene = generate_scene(PROMPT, tmp_path / "scene", tiny_options(tiny_ltx, seed=5))
    reference = read_frames(scene / "images" / "reference")
    freeze = read_frames(scene / "images" / "freeze")
    plan = plan_extension(40)
    assert reference.shape == (9, 32, 32, 3)
    assert freeze.shape == (plan.num_frames, 32, 32, 3) == (41, 32, 32, 3)
    assert (plan.forward_steps, plan.backward_steps) == (2, 1)

    generation = json.loads((scene / "generation.json").read_text())
    k_c, j_c = generation["canonical"]["freeze_frame"], generation["canonical"]["reference_frame"]
    assert (k_c, j_c) == (8, 0) and generation["canonical"]["time"] == 0.0
    assert np.array_equal(freeze[k_c], reference[j_c])  # freeze frame k_c is the conditioning frame

    # Calls in order: clip (1 known frame), forward_01, forward_02, backward_01 (8 known frames each).
    assert recorder.text_calls == 1 and len(recorder.known) == 4
    assert np.array_equal(recorder.known[0], reference[j_c][None])
    clip_end = k_c + plan.clip_frames
    for step in (1, 2):  # forward: exactly the previous 8 frames of the sequence
        end = clip_end + 8 * (step - 1)
        assert np.array_equal(recorder.known[step], freeze[end - 8:end])
        assert np.array_equal(recorder.returned[step], freeze[end:end + 8])
    # backward: the time-reversed sequence's previous 8 frames, i.e. the 8 frames after the new ones, reversed
    assert np.array_equal(recorder.known[3], freeze[k_c:k_c + 8][::-1])
    assert np.array_equal(recorder.returned[3], freeze[k_c - 8:k_c][::-1])
    assert np.array_equal(recorder.returned[0], freeze[k_c + 1:clip_end])

    assert generation["prompt"] == PROMPT
    assert generation["freeze_prompt"] == freeze_time_prompt(PROMPT)
    assert generation["negative_prompt"]
    assert generation["backend"] == "ltx"
    assert generation["model_ids"] == {"reference": str(tiny_ltx), "freeze": str(tiny_ltx)}
    assert generation["seeds"] == {"reference": 5, "freeze_clip": 6, "forward_01": 7, "forward_02": 9,
                                   "backward_01": 8}
    assert generation["reference_fps"] == 25.0
    assert generation["num_frames"] == {"reference": 9, "freeze": 41}
    assert generation["arc_degrees"] == pytest.approx(80.0)
    assert set(generation["completed"]) == {"reference", "freeze_clip", "forward_01", "forward_02", "backward_01",
                                            "freeze"}


def test_second_run_reuses_everything_and_interrupted_run_resumes(tmp_path, tiny_ltx, monkeypatch) -> None:
    options = tiny_options(tiny_ltx)
    complete = generate_scene(PROMPT, tmp_path / "complete", options)

    with monkeypatch.context() as patch:  # nothing new: no model load, no model call
        recorder = Recorder(patch)
        generate_scene(PROMPT, complete, options)
        assert recorder.calls == 0 and recorder.loads == 0

    interrupted = tmp_path / "interrupted"
    with monkeypatch.context() as patch:  # interrupted inside forward_02 (the third known-frame call)
        recorder = Recorder(patch, fail_on_call=2)
        with pytest.raises(KeyboardInterrupt):
            generate_scene(PROMPT, interrupted, options)
    record = json.loads((interrupted / "generation.json").read_text())
    assert record["completed"] == ["reference", "freeze_clip", "forward_01"]
    assert not (interrupted / "images" / "freeze").exists()

    with monkeypatch.context() as patch:
        recorder = Recorder(patch)
        generate_scene(PROMPT, interrupted, options)
        assert recorder.text_calls == 0 and len(recorder.known) == 2  # forward_02 and backward_01 only
    for video in ("reference", "freeze"):  # same seeds per part: identical to the uninterrupted run
        assert np.array_equal(read_frames(interrupted / "images" / video), read_frames(complete / "images" / video))


def test_changed_settings_need_a_new_folder_or_overwrite(tmp_path, tiny_ltx, monkeypatch) -> None:
    scene = generate_scene(PROMPT, tmp_path / "scene", tiny_options(tiny_ltx))
    with pytest.raises(GenerateError, match="--overwrite"):
        generate_scene("a cat sleeping on a sofa", scene, tiny_options(tiny_ltx))
    with pytest.raises(GenerateError, match="seed"):
        generate_scene(PROMPT, scene, tiny_options(tiny_ltx, seed=1))
    (scene / "transforms.json").write_text("{}")  # made from the old videos: must go with them
    generate_scene(PROMPT, scene, tiny_options(tiny_ltx, seed=1, canonical_frame="middle", num_freeze_frames=17),
                   overwrite=True)
    generation = json.loads((scene / "generation.json").read_text())
    assert generation["seeds"]["reference"] == 1
    assert generation["canonical"] == {"freeze_frame": 0, "reference_frame": 4, "time": 0.5}
    assert len(read_frames(scene / "images" / "freeze")) == 17
    assert not (scene / "transforms.json").exists()


def test_bad_input_gets_clear_errors(tmp_path, tiny_ltx) -> None:
    with pytest.raises(GenerateError, match="prompt is empty"):
        generate_scene("  ", tmp_path / "a", tiny_options(tiny_ltx))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(GenerateError, match="is a file"):
        generate_scene(PROMPT, a_file, tiny_options(tiny_ltx))
    (tmp_path / "other" / "images").mkdir(parents=True)
    (tmp_path / "other" / "images" / "photo.png").write_bytes(b"")
    with pytest.raises(GenerateError, match="not a scene"):
        generate_scene(PROMPT, tmp_path / "other", tiny_options(tiny_ltx))
    with pytest.raises(GenerateError, match="canonical-frame"):
        generate_scene(PROMPT, tmp_path / "b", tiny_options(tiny_ltx, canonical_frame="12"))
    with pytest.raises(GenerateError, match="multiples of 32"):
        generate_scene(PROMPT, tmp_path / "c", tiny_options(tiny_ltx, width=40))
    missing = tmp_path / "no_model"
    from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError

    with pytest.raises(GuidanceWeightsNotFoundError):
        generate_scene(PROMPT, tmp_path / "d", tiny_options(missing))


def test_wan_backend_conditions_on_the_previous_frames(tmp_path, monkeypatch) -> None:
    from tiny_diffusers import save_tiny_wan

    model = save_tiny_wan(tmp_path / "wan")
    recorder = Recorder(monkeypatch, cls=video_models.WanGenerator)
    scene = generate_scene(PROMPT, tmp_path / "scene", tiny_options(model, backend="wan", num_freeze_frames=25,
                                                                    num_reference_frames=5))
    freeze = read_frames(scene / "images" / "freeze")
    reference = read_frames(scene / "images" / "reference")
    assert freeze.shape == (25, 32, 32, 3) and reference.shape == (5, 32, 32, 3)
    assert len(recorder.known) == 2  # the clip, one forward step
    assert np.array_equal(recorder.known[1], freeze[9:17])
    assert json.loads((scene / "generation.json").read_text())["backend"] == "wan"


def test_cli_parses_nested_options() -> None:
    import tyro

    from fourreal_ns.generate.command import Generate

    command = tyro.cli(Generate, args=["--prompt", PROMPT, "--out", "x", "--seed", "3", "--backend", "wan",
                                       "--arc-degrees", "120"])
    assert command.generation.seed == 3 and command.generation.backend == "wan"
    assert command.generation.arc_degrees == 120


# ------------------------------------------------------------------ nominal poses


def test_nominal_poses_make_a_loadable_scene(tmp_path, tiny_ltx) -> None:
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.generate.nominal_poses import write_nominal_transforms

    scene = generate_scene(PROMPT, tmp_path / "scene", tiny_options(tiny_ltx))
    write_nominal_transforms(scene, fov_degrees=60.0)
    loaded = load_scene(scene)
    freeze, reference = loaded.frames_of("freeze"), loaded.frames_of("reference")
    assert len(freeze) == 41 and len(reference) == 9
    assert loaded.canonical == {"time": 0.0, "freeze_frame": 8, "reference_frame": 0}
    assert loaded.ply_path is not None and loaded.ply_path.is_file()
    canonical_pose = freeze[8].transform_matrix
    assert all(np.allclose(frame.transform_matrix, canonical_pose) for frame in reference)
    positions = np.stack([frame.transform_matrix[:3, 3] for frame in freeze])
    angles = np.degrees(np.unwrap(np.arctan2(positions[:, 0], positions[:, 2])))
    assert angles[-1] - angles[0] == pytest.approx(80.0)  # the recorded arc, 2 degrees a frame
    assert freeze[0].fl_x == pytest.approx(16.0 / np.tan(np.radians(30.0)))
    for frame in freeze:  # every camera looks at the origin (OpenGL: down -z)
        direction = -frame.transform_matrix[:3, 2]
        to_origin = -frame.transform_matrix[:3, 3] / np.linalg.norm(frame.transform_matrix[:3, 3])
        assert np.dot(direction, to_origin) == pytest.approx(1.0)
    with pytest.raises(FileExistsError):
        write_nominal_transforms(scene)


@pytest.mark.parametrize("content, problem", [('{"prompt": "a cat",', r"is not valid JSON \(line 1, column \d+"),
                                              ('["a", "list"]', "holds a JSON list, not an object")])
def test_a_broken_generation_json_is_named_and_left_alone(tmp_path, content, problem) -> None:
    """Every reader of generation.json (nominal poses, the generator's resume record, `fourreal process`) names the
    file, the problem and the fix, and changes nothing."""
    from fourreal_ns.generate.nominal_poses import write_nominal_transforms
    from fourreal_ns.generate.parts import GenerationRecord
    from fourreal_ns.process import ProcessError
    from fourreal_ns.process.command import _read_generation

    path = tmp_path / "generation.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem + r".*Nominal poses need a scene from `fourreal generate`"):
        write_nominal_transforms(tmp_path)
    with pytest.raises(ValueError, match=problem + r".*Pass --overwrite to generate again"):
        GenerationRecord.read(tmp_path)
    with pytest.raises(ProcessError, match=problem + r".*run `fourreal generate` again"):
        _read_generation(tmp_path)
    assert path.read_text() == content and sorted(p.name for p in tmp_path.iterdir()) == ["generation.json"]
