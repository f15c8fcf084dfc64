"""Bad scene folders fail early with an actionable error and are left untouched.

Each case breaks one thing in a copy of the demo scene and checks that
(a) `load_scene` raises `SceneFormatError` whose message names transforms.json, the frame (its file_path) where
    one is at fault, and says how to fix it;
(b) every file of the scene folder (path -> sha256) is the same before and after.
One subprocess test runs `ns-train 4real-canonical` on a broken scene: it exits non-zero, its output carries the
same message, and the scene folder is unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from PIL import Image

from fourreal_ns.data.scene import SceneFormatError, load_scene
from conftest import folder_hashes, ns_script

# The frame every case breaks (a freeze frame that is not the canonical one).
FRAME_INDEX = 3


@pytest.fixture(scope="module")
def pristine_scene(tmp_path_factory) -> Path:
    """One demo scene for the module; each test breaks its own copy."""
    from fourreal_ns.demo_scene import make_demo_scene

    return make_demo_scene(tmp_path_factory.mktemp("scene_errors") / "scene", seed=0)


@pytest.fixture
def scene(pristine_scene, tmp_path) -> Path:
    copy = tmp_path / "scene"
    shutil.copytree(pristine_scene, copy)
    return copy


def read_transforms(scene: Path) -> dict:
    return json.loads((scene / "transforms.json").read_text())


def write_transforms(scene: Path, content: dict) -> None:
    (scene / "transforms.json").write_text(json.dumps(content, indent=2))


# ----------------------------------------------------------------------------------------------- breakages
# Each returns the file_path of the frame at fault (None when the fault is not a frame's).
def missing_image(scene: Path):
    frame = read_transforms(scene)["frames"][FRAME_INDEX]
    (scene / frame["file_path"]).unlink()
    return frame["file_path"]


def wrong_image_size(scene: Path):
    frame = read_transforms(scene)["frames"][FRAME_INDEX]
    path = scene / frame["file_path"]
    with Image.open(path) as image:
        resized = image.resize((image.width * 2, image.height * 2))
    resized.save(path)
    return frame["file_path"]


def invalid_json(scene: Path):
    text = (scene / "transforms.json").read_text()
    (scene / "transforms.json").write_text(text[: len(text) // 2])  # cut off mid-file
    return None


def frame_without_transform_matrix(scene: Path):
    content = read_transforms(scene)
    del content["frames"][FRAME_INDEX]["transform_matrix"]
    write_transforms(scene, content)
    return content["frames"][FRAME_INDEX]["file_path"]


def transform_matrix_wrong_shape(scene: Path):
    content = read_transforms(scene)
    content["frames"][FRAME_INDEX]["transform_matrix"] = content["frames"][FRAME_INDEX]["transform_matrix"][:2]
    write_transforms(scene, content)
    return content["frames"][FRAME_INDEX]["file_path"]


def transform_matrix_ragged(scene: Path):
    content = read_transforms(scene)
    content["frames"][FRAME_INDEX]["transform_matrix"][2] = content["frames"][FRAME_INDEX]["transform_matrix"][2][:3]
    write_transforms(scene, content)
    return content["frames"][FRAME_INDEX]["file_path"]


def missing_canonical_block(scene: Path):
    content = read_transforms(scene)
    del content["canonical"]
    write_transforms(scene, content)
    return None


# case -> (breakage, regular expression of the fix wording the message must hold)
CASES: Dict[str, tuple] = {
    "missing_image": (missing_image, r"is missing\. Put the image there or remove the frame"),
    "wrong_image_size": (wrong_image_size, r"192 x 108 pixels but the intrinsics say 96 x 54.*Resize the image"),
    "invalid_json": (invalid_json, r"is not valid JSON \(line \d+, column \d+.*Fix the file"),
    "no_transform_matrix": (frame_without_transform_matrix, r"has no `transform_matrix`\. Every frame needs"),
    "transform_matrix_shape": (transform_matrix_wrong_shape, r"shape \(2, 4\); it must be a 4 x 4 \(or 3 x 4\)"),
    "transform_matrix_ragged": (transform_matrix_ragged, r"rows of lengths 4, 4, 3, 4; it must be a 4 x 4"),
    "no_canonical_block": (missing_canonical_block, r"has no `canonical` block\. Add \"canonical\": \{"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_scene_raises_clear_error_and_changes_nothing(scene: Path, case: str):
    breakage, fix_pattern = CASES[case]
    frame_file = breakage(scene)
    before = folder_hashes(scene)

    with pytest.raises(SceneFormatError) as raised:
        load_scene(scene)
    message = str(raised.value)

    assert str(scene / "transforms.json") in message, message
    if frame_file is not None:
        assert f"frame {FRAME_INDEX} ({frame_file})" in message, message
    assert re.search(fix_pattern, message, flags=re.DOTALL), f"no fix wording /{fix_pattern}/ in: {message}"
    assert folder_hashes(scene) == before, "load_scene changed the scene folder"


def test_intact_copy_loads(scene: Path):
    """The breakages above are the only fault: the untouched copy loads (and is not changed either)."""
    before = folder_hashes(scene)
    loaded = load_scene(scene)
    assert len(loaded.frames) == len(read_transforms(scene)["frames"])
    assert folder_hashes(scene) == before


def test_eval_every_zero_evaluates_on_the_training_frames(scene: Path):
    """--pipeline.datamanager.dataparser.eval-every 0 holds nothing out; nerfstudio still builds an eval dataset, which
    then holds the training frames (nerfstudio's eval_mode "all") instead of failing on an empty split."""
    from fourreal_ns.data.dataparser import FourRealDataParserConfig

    everything = FourRealDataParserConfig(data=scene, eval_every=0).setup()
    train = everything.get_dataparser_outputs("train").image_filenames
    assert len(train) == len(read_transforms(scene)["frames"])
    assert everything.get_dataparser_outputs("val").image_filenames == train
    held_out = FourRealDataParserConfig(data=scene).setup().get_dataparser_outputs("val").image_filenames
    assert 0 < len(held_out) < len(train)


def test_ns_train_on_broken_scene_fails_with_the_message(scene: Path, tmp_path: Path):
    frame_file = wrong_image_size(scene)
    before = folder_hashes(scene)
    with pytest.raises(SceneFormatError) as raised:
        load_scene(scene)
    expected = str(raised.value)

    output = tmp_path / "outputs"
    command = [
        ns_script("ns-train"), "4real-canonical", "--data", str(scene), "--output-dir", str(output),
        "--max-num-iterations", "1", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
    ]  # fmt: skip
    # cwd outside the scene and the project so that nothing relative can land in either
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    combined = result.stdout + result.stderr

    assert result.returncode == 2, f"ns-train did not stop with status 2 on a broken scene\n{combined[-4000:]}"
    flat = " ".join(combined.split())
    assert " ".join(expected.split()) in flat, f"expected message\n{expected}\nnot in output\n{combined[-4000:]}"
    assert frame_file in flat
    # The message alone: before the config dump, no traceback, and no run folder that looks like a run.
    assert "TrainerConfig(" not in combined and "Traceback" not in combined, combined[-4000:]
    assert not output.exists() or not list(output.rglob("config.yml")), list(output.rglob("*"))
    assert folder_hashes(scene) == before, "ns-train changed the scene folder"
