"""`fourreal import-dnerf NPZ OUT`: a packed D-NeRF scene (`.npz`) as a fourreal scene folder (docs/scene_format.md).

D-NeRF (Pumarola et al., CVPR 2021) scenes are monocular dynamic videos with ground truth: every frame is a
different camera at a different time. Packed as one `.npz` (../shared/data/README.md) they hold
- `images` (N, H, W, 3) float in [0, 1] (composited on a black background),
- `poses` (N, 4, 4) camera-to-world in the Blender/OpenGL convention (camera looks down -z, +y up): the
  convention of nerfstudio's transforms.json, so the matrices are written unchanged,
- `times` (N,) in [0, 1],
- `focal` (scalar, pixels; the principal point is the image centre).

What is written:
- `images/reference/frame_00000.png` ... (8-bit RGB PNG; values rounded to the nearest of 256 levels);
- `transforms.json`: one "reference" frame per image with its `time`, `view` = its index in the file (every frame
  is its own camera) and a `split` key: the first `num_train` frames "train", the next `num_val` "val", the rest
  "test" (the packer's split of tiny_dnerf_data.npz: 50 / 11 / 20). The dataparser honours a frame's `split`:
  "train" frames are trained on; every other split (ns-train's "val" and "test" alike) gets the val + test frames;
- global PINHOLE intrinsics, a `canonical` block {time: times[0], reference_frame: 0, freeze_frame: 0} (there is
  no freeze-time video, so freeze_frame names no frame), and a `generation` block recording the source;
- `points3d.ply`: seed points carved from the train frames' silhouettes (silhouette_seeds.py; D-NeRF has no SfM
  points). `--seed-points 0` writes none, and the Gaussians start at random in a cube.

Nothing in `OUT` is overwritten unless `--overwrite` (and then only this importer's own files).
"""

from __future__ import annotations

import json
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import numpy as np
import tyro
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typing_extensions import Annotated

from fourreal_ns.data.atomic_write import check_output_folder
from fourreal_ns.data.point_cloud import write_point_cloud_ply
from fourreal_ns.data.silhouette_seeds import SilhouetteCarvingError, carve_visual_hull

REQUIRED_ARRAYS = ("images", "poses", "times", "focal")
SEED_POINTS_FILE = "points3d.ply"


class DNeRFImportError(ValueError):
    """A `.npz` that is not a packed D-NeRF scene, or an output folder we may not write to."""


def load_dnerf_npz(path: Path) -> Dict[str, np.ndarray]:
    """Read and check a packed D-NeRF `.npz`; returns float64 poses/times, float images and a float focal."""
    path = Path(path)
    if not path.is_file():
        raise DNeRFImportError(
            f"{path} does not exist (or is not a file). Give the packed D-NeRF scene, for example "
            "../shared/data/tiny_dnerf_data.npz."
        )
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {name: np.asarray(content[name]) for name in content.files}
    except Exception as error:  # numpy raises several types for files that are not .npz archives
        raise DNeRFImportError(f"{path} is not a readable .npz archive ({type(error).__name__}: {error}).") from None
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise DNeRFImportError(
            f"{path} lacks the array(s) {', '.join(missing)} (it has {', '.join(sorted(arrays)) or 'none'}). A packed "
            "D-NeRF scene holds images (N, H, W, 3) in [0, 1], poses (N, 4, 4) camera-to-world, times (N,) in "
            "[0, 1] and focal (scalar, pixels)."
        )
    images, poses, times, focal = (arrays[name] for name in REQUIRED_ARRAYS)
    if images.ndim != 4 or images.shape[-1] not in (3, 4) or images.shape[0] == 0:
        raise DNeRFImportError(f"{path}: `images` has shape {images.shape}; expected (N, H, W, 3) with N > 0.")
    count = images.shape[0]
    if poses.shape not in ((count, 4, 4), (count, 3, 4)):
        raise DNeRFImportError(
            f"{path}: `poses` has shape {poses.shape}; expected ({count}, 4, 4) (one camera-to-world per image)."
        )
    if times.shape != (count,):
        raise DNeRFImportError(f"{path}: `times` has shape {times.shape}; expected ({count},) (one time per image).")
    if focal.size != 1:
        raise DNeRFImportError(f"{path}: `focal` has shape {focal.shape}; expected one number (pixels).")
    if images.dtype.kind not in "fui":
        raise DNeRFImportError(f"{path}: `images` has dtype {images.dtype}; expected floats in [0, 1].")
    images = images.astype(np.float32) if images.dtype.kind == "f" else images.astype(np.float32) / 255.0
    if images.shape[-1] == 4:  # RGBA: composite on black, as the packed scenes are
        images = images[..., :3] * images[..., 3:4]
    for name, values in (("images", images), ("poses", poses), ("times", times), ("focal", focal)):
        if not np.isfinite(values.astype(np.float64)).all():
            raise DNeRFImportError(f"{path}: `{name}` holds NaN or infinite values.")
    if images.min() < 0.0 or images.max() > 1.0:
        raise DNeRFImportError(
            f"{path}: `images` range from {images.min():g} to {images.max():g}; expected [0, 1] (divide 8-bit "
            "images by 255)."
        )
    if times.min() < 0.0 or times.max() > 1.0:
        raise DNeRFImportError(f"{path}: `times` range from {times.min():g} to {times.max():g}; normalise to [0, 1].")
    focal_value = float(focal.reshape(()))
    if focal_value <= 0.0:
        raise DNeRFImportError(f"{path}: `focal` = {focal_value}; it must be a positive focal length in pixels.")
    full_poses = np.tile(np.eye(4), (count, 1, 1))
    full_poses[:, : poses.shape[1]] = poses.astype(np.float64)
    return {"images": images, "poses": full_poses, "times": times.astype(np.float64), "focal": focal_value}


def import_dnerf(npz: Path, out: Path, num_train: int = 50, num_val: int = 11, overwrite: bool = False,
                 show_progress: bool = True, seed_points: int = 5000, hull_extent: float = 3.0) -> Path:
    """Write the packed D-NeRF scene `npz` as a fourreal scene folder `out` (module docstring). Returns `out`."""
    from PIL import Image

    npz, out = Path(npz), Path(out)
    data = load_dnerf_npz(npz)
    images, poses, times, focal = data["images"], data["poses"], data["times"], data["focal"]
    count, height, width = images.shape[:3]
    if num_train < 1 or num_val < 0 or num_train + num_val > count:
        raise DNeRFImportError(
            f"--num-train {num_train} and --num-val {num_val} do not fit the {count} frames of {npz}: need "
            f"num_train >= 1, num_val >= 0 and num_train + num_val <= {count} (the rest are test frames)."
        )
    if seed_points < 0 or hull_extent <= 0:
        raise DNeRFImportError(f"--seed-points {seed_points} and --hull-extent {hull_extent:g}: need seed_points >= 0 "
                               "(0: none) and a positive extent.")
    seeds = None
    if seed_points > 0:  # carved before anything is written, so a failure leaves `out` as it was
        try:
            seeds = carve_visual_hull(images[:num_train], poses[:num_train], focal, width / 2.0, height / 2.0,
                                      num_points=seed_points, extent=hull_extent)
        except SilhouetteCarvingError as error:
            raise DNeRFImportError(f"{npz}: {error} Or pass --seed-points 0 to start from random Gaussians.") from None
    check_output_folder(out, overwrite, "the D-NeRF scene", ("images/reference/frame_*.png", SEED_POINTS_FILE))

    frames = []
    progress = Progress(TextColumn("[bold]import-dnerf"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        disable=not show_progress)
    (out / "images" / "reference").mkdir(parents=True, exist_ok=True)
    with progress:
        for index in progress.track(range(count), description="writing frames"):
            name = f"images/reference/frame_{index:05d}.png"
            pixels = np.clip(np.round(images[index] * 255.0), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(out / name)
            split = "train" if index < num_train else ("val" if index < num_train + num_val else "test")
            frames.append({
                "file_path": name,
                "transform_matrix": [[float(value) for value in row] for row in poses[index]],
                "video": "reference",
                "time": float(times[index]),
                "view": index,
                "split": split,
            })  # fmt: skip

    transforms = {
        "camera_model": "PINHOLE",
        "fl_x": focal, "fl_y": focal, "cx": width / 2.0, "cy": height / 2.0, "w": int(width), "h": int(height),
        "canonical": {"time": float(times[0]), "reference_frame": 0, "freeze_frame": 0},
        "generation": {
            "source": f"D-NeRF (Pumarola et al., CVPR 2021), imported from {npz.name} by `fourreal import-dnerf`",
            "npz": str(npz.resolve()),
            "splits": {"train": int(num_train), "val": int(num_val), "test": int(count - num_train - num_val)},
            "note": "monocular dynamic video: every frame is its own camera (view = frame index); no freeze-time "
                    "video; " + ("seed points carved from the train frames' silhouettes" if seeds is not None
                                 else "no seed points (the Gaussians start random)"),
        },
        "frames": frames,
    }  # fmt: skip
    if seeds is not None:
        write_point_cloud_ply(out / SEED_POINTS_FILE, *seeds, comment="visual hull of the D-NeRF train frames")
        transforms["ply_file_path"] = SEED_POINTS_FILE
    (out / "transforms.json").write_text(json.dumps(transforms, indent=1))
    return out


@dataclass
class ImportDNeRF:
    """Convert a packed D-NeRF scene (.npz: images, poses, times, focal) into a fourreal scene folder: one reference
    frame per image with its time, its own view and a train/val/test split."""

    npz: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="NPZ")]
    """The packed scene, e.g. ../shared/data/tiny_dnerf_data.npz."""
    out: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="OUT")]
    """The scene folder to create (must be empty or absent unless --overwrite)."""
    num_train: int = 50
    """The first this many frames are training frames."""
    num_val: int = 11
    """The next this many frames are validation frames; the rest are test frames."""
    seed_points: int = 5000
    """Seed points carved from the train frames' silhouettes (the visual hull); 0 writes none, and training starts
    from random Gaussians in a cube."""
    hull_extent: float = 3.0
    """Side of the cube around the origin in which the visual hull is carved (D-NeRF objects fit in 3)."""
    overwrite: bool = False
    """Write into a non-empty folder (only the importer's own files are replaced)."""

    def main(self) -> None:
        started = _time.time()
        try:
            import_dnerf(self.npz, self.out, num_train=self.num_train, num_val=self.num_val,
                         overwrite=self.overwrite, seed_points=self.seed_points, hull_extent=self.hull_extent)
        except (DNeRFImportError, FileExistsError) as error:
            raise SystemExit(f"fourreal import-dnerf: {error}") from None
        seeds = f"{self.seed_points} seed points" if self.seed_points else "no seed points"
        print(f"Wrote the D-NeRF scene {self.npz} to {self.out} ({seeds}) in {_time.time() - started:.1f} s. Train on "
              f"it with `ns-train 4real-motion --data {self.out} --pipeline.datamanager.dataparser.videos reference "
              "--pipeline.model.background-color black` (its images are composited on black).")
