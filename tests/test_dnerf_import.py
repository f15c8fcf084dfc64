"""`fourreal import-dnerf` (fourreal_ns/data/dnerf_import.py) on the packed D-NeRF lego scene of ../shared/data:
frame count, splits, image and pose round trips, the scene loader, the dataparser's splits, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data_file
from fourreal_ns.data.dnerf_import import DNeRFImportError, ImportDNeRF, import_dnerf, load_dnerf_npz


@pytest.fixture(scope="module")
def npz() -> Path:
    return shared_data_file("tiny_dnerf_data.npz")


@pytest.fixture(scope="module")
def imported(npz, tmp_path_factory) -> Path:
    return import_dnerf(npz, tmp_path_factory.mktemp("dnerf") / "lego", show_progress=False)


def test_frames_splits_and_canonical_block(imported, npz):
    transforms = json.loads((imported / "transforms.json").read_text())
    frames = transforms["frames"]
    assert len(frames) == 81
    splits = [frame["split"] for frame in frames]
    assert splits == ["train"] * 50 + ["val"] * 11 + ["test"] * 20
    assert all(frame["video"] == "reference" for frame in frames)
    assert [frame["view"] for frame in frames] == list(range(81))
    source = np.load(npz)
    assert np.allclose([frame["time"] for frame in frames], source["times"])
    assert transforms["canonical"] == {"time": float(source["times"][0]), "reference_frame": 0, "freeze_frame": 0}
    assert "ply_file_path" not in transforms
    assert "D-NeRF" in transforms["generation"]["source"]
    assert transforms["w"] == 100 and transforms["h"] == 100
    assert transforms["fl_x"] == pytest.approx(float(source["focal"])) and transforms["cx"] == 50.0


def test_images_and_poses_round_trip(imported, npz):
    source = np.load(npz)
    frames = json.loads((imported / "transforms.json").read_text())["frames"]
    for index in (0, 37, 50, 80):
        image = np.asarray(Image.open(imported / frames[index]["file_path"])).astype(np.float64) / 255.0
        assert image.shape == (100, 100, 3)
        assert np.abs(image - source["images"][index]).max() <= 1.0 / 255.0
    poses = np.array([frame["transform_matrix"] for frame in frames])
    assert np.array_equal(poses.astype(np.float32), source["poses"])


def test_scene_loader_accepts_a_scene_without_freeze_frames(imported):
    from fourreal_ns.data.scene import load_scene

    scene = load_scene(imported)
    assert len(scene.frames) == 81 and scene.frames_of("freeze") == []
    assert scene.canonical["reference_frame"] == 0
    assert scene.frames_of("reference")[0].index == 0  # the canonical reference frame is the first train frame


def test_dataparser_splits(imported):
    """Train: the 50 train frames. Any other split ("val", "test"): the frames whose `split` is not "train", i.e.
    the 11 val + 20 test frames (the dataparser does not tell val from test)."""
    from fourreal_ns.data.dataparser import FourRealDataParserConfig

    parser = FourRealDataParserConfig(data=imported, videos=("reference",)).setup()
    train = parser.get_dataparser_outputs("train")
    assert len(train.image_filenames) == 50 and train.cameras.shape == (50,)
    assert train.cameras.times is not None and train.cameras.times.shape == (50, 1)
    assert sorted(int(v) for v in train.cameras.metadata["view"].flatten()) == list(range(50))
    for split in ("val", "test"):
        held_out = parser.get_dataparser_outputs(split)
        assert sorted(int(v) for v in held_out.cameras.metadata["view"].flatten()) == list(range(50, 81))


def test_refuses_a_non_empty_folder(npz, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        import_dnerf(npz, tmp_path, show_progress=False)
    with pytest.raises(SystemExit, match="import-dnerf: .*not empty"):
        ImportDNeRF(npz=npz, out=tmp_path).main()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(DNeRFImportError, match="does not exist"):
        load_dnerf_npz(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DNeRFImportError, match="not a readable .npz"):
        load_dnerf_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", images=np.zeros((2, 4, 4, 3), np.float32), times=np.zeros(2))
    with pytest.raises(DNeRFImportError, match="lacks the array.*poses.*focal"):
        load_dnerf_npz(tmp_path / "partial.npz")
    np.savez(tmp_path / "shape.npz", images=np.zeros((2, 4, 4, 3), np.float32), poses=np.zeros((3, 4, 4)),
             times=np.zeros(2), focal=np.float64(5.0))
    with pytest.raises(DNeRFImportError, match="`poses` has shape"):
        load_dnerf_npz(tmp_path / "shape.npz")
    np.savez(tmp_path / "range.npz", images=np.full((2, 4, 4, 3), 255.0, np.float32), poses=np.zeros((2, 4, 4)),
             times=np.zeros(2), focal=np.float64(5.0))
    with pytest.raises(DNeRFImportError, match="expected \\[0, 1\\]"):
        load_dnerf_npz(tmp_path / "range.npz")
