"""`fourreal demo` reuses a scene it finds in --output-dir only when it is the scene this run would write; otherwise it
stops with an error that names the file and the fix, and leaves everything on disk as it was. A scene whose writing
was interrupted (no ground truth yet) is written again. The training itself runs in the end-to-end tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import folder_hashes
from fourreal_ns import demo
from fourreal_ns.demo import Demo, scene_to_reuse
from fourreal_ns.demo_scene import GENERATOR_VERSION


class StopBeforeTraining(Exception):
    pass


@pytest.fixture
def output_dir(demo_scene, tmp_path) -> Path:
    """A demo output folder holding a copy of the session's demo scene (seed 0) and a file of the user's."""
    shutil.copytree(demo_scene, tmp_path / "demo_output" / "scene")
    (tmp_path / "demo_output" / "notes.txt").write_text("mine")
    return tmp_path / "demo_output"


def edit_transforms(scene: Path, edit) -> None:
    transforms = json.loads((scene / "transforms.json").read_text())
    edit(transforms)
    (scene / "transforms.json").write_text(json.dumps(transforms))


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """`fourreal demo` stops where it would start `ns-train`."""

    def stop(*args, **kwargs):
        raise StopBeforeTraining

    monkeypatch.setattr(demo, "train_stage", stop)


def run_demo_until_training(output_dir: Path, seed: int) -> None:
    with pytest.raises(StopBeforeTraining):
        Demo(output_dir=output_dir, seed=seed).main()


def test_the_same_scene_is_reused(output_dir):
    before = folder_hashes(output_dir)
    assert scene_to_reuse(output_dir / "scene", seed=0)
    assert json.loads((output_dir / "scene" / "transforms.json").read_text())["demo_scene"]["generator_version"] \
        == GENERATOR_VERSION
    run_demo_until_training(output_dir, 0)
    assert folder_hashes(output_dir) == before


def test_no_scene_is_written(tmp_path):
    assert not scene_to_reuse(tmp_path / "demo_output" / "scene", seed=0)
    run_demo_until_training(tmp_path / "demo_output", 0)
    assert scene_to_reuse(tmp_path / "demo_output" / "scene", seed=0)


@pytest.mark.parametrize("case", ["other seed", "older generator", "not a demo scene", "broken json"])
def test_another_scene_is_an_error_and_nothing_changes(output_dir, case):
    scene = output_dir / "scene"
    if case == "older generator":
        edit_transforms(scene, lambda transforms: transforms["demo_scene"].pop("generator_version"))
    elif case == "not a demo scene":
        edit_transforms(scene, lambda transforms: transforms.pop("generation"))
    elif case == "broken json":
        (scene / "transforms.json").write_text('{"frames": [')
    before = folder_hashes(output_dir)
    with pytest.raises(SystemExit) as error:
        Demo(output_dir=output_dir, seed=1 if case == "other seed" else 0).main()
    message = str(error.value)
    assert str(scene / "transforms.json") in message and "--output-dir" in message
    expected = {"other seed": "seed 0, and this run asks for --seed 1",
                "older generator": f"generator version 1, now {GENERATOR_VERSION}",
                "not a demo scene": "not a scene written by `fourreal demo-scene`",
                "broken json": "not valid JSON"}[case]
    assert expected in message
    assert folder_hashes(output_dir) == before


def test_an_interrupted_scene_is_written_again(output_dir, demo_scene):
    shutil.rmtree(output_dir / "scene" / "ground_truth")
    (output_dir / "scene" / "images" / "freeze" / "frame_00003.png").unlink()
    assert not scene_to_reuse(output_dir / "scene", seed=0)
    run_demo_until_training(output_dir, 0)
    assert folder_hashes(output_dir / "scene") == folder_hashes(demo_scene)
    assert (output_dir / "notes.txt").read_text() == "mine"
