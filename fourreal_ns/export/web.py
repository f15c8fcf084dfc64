"""`fourreal export web`: a trained 4D scene as a self-contained web page (orbit, zoom, scrub and play time).

The export folder (open `index.html` through any static web server: `fourreal view-web DIR`, `python -m
http.server`):
- `gaussians.ply`: the canonical Gaussians (with their spherical harmonics) in the layout of `ns-export
  gaussian-splat` (export/ply_sequence.py), which the viewer's Spark loads as any 3DGS PLY;
- `motion.bin` (4D scenes): keyframes of the deformation field. For each of `--num-times` times, evenly spread over
  [0, 1], and each Gaussian, its position (3), normalised rotation (w x y z) and log-scales (3), float16 little
  endian, `[time][gaussian][10]`: the model's own `gaussians_at_time(t)`. The page interpolates between keyframes
  (Catmull-Rom positions, blended rotations and log-scales; viewer.js), so playback is continuous motion. Opacity
  and colour are fixed in time, as in the model;
- `scene.json`: the layout above, the keyframe times, the initial camera (on the scene's training orbit, in the
  model's space, as an `ns-render` camera-path keyframe), the orbit centre and up axis, the background colour;
- `index.html`, `viewer.js` (ours) and `vendor/` (three.js and Spark from npm, at the versions in
  `web/package-lock.json`, with their licences; no network access at view time).

A canonical (stage 1) run exports as a still scene: its per-frame deformation explains the freeze-time video's
inconsistencies and is not motion, so the page shows the canonical Gaussians without a time slider.
"""

from __future__ import annotations

import json
import shutil
import time as clock
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from fourreal_ns.errors import FourRealError
from fourreal_ns.export.ply_sequence import LOW_OPACITY_LOGIT, finite_mask, splat_ply_fields, write_splat_ply

VIEWER = Path(__file__).with_name("web_viewer")
SCENE_FILE, GAUSSIANS_FILE, MOTION_FILE = "scene.json", "gaussians.ply", "motion.bin"
GENERATOR = "fourreal export web"
VALUES_PER_GAUSSIAN = 10


class WebExportError(FourRealError, ValueError):
    """An export that cannot be written; the message names the file and the fix."""


def is_web_export(folder: Path) -> bool:
    try:
        return json.loads((folder / SCENE_FILE).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def prepare_output(folder: Path, overwrite: bool) -> None:
    """An empty folder, or one of our exports (replaced); anything else only with --overwrite."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WebExportError(f"--output-dir {folder} is a file; give a folder.")
    if folder.is_dir() and any(folder.iterdir()):
        if not (is_web_export(folder) or overwrite):
            raise WebExportError(
                f"--output-dir {folder} is not empty and is not a `{GENERATOR}` folder (no {SCENE_FILE} of ours "
                "there): give a new folder, or add --overwrite to replace what is in it."
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def keyframe_states(model, times: List[float]) -> np.ndarray:
    """`[len(times), N, 10]` float32 for every Gaussian of the model: position, normalised rotation (w x y z) and
    log-scales at each time (the only parameters the deformation changes), each time evaluated once."""
    frames = []
    for time in times:
        params = model.gaussians_at_time(time)
        quats = torch.nn.functional.normalize(params["quats"].float(), dim=-1)
        frames.append(torch.cat([params["means"].float(), quats, params["scales"].float()], dim=-1).cpu())
    return torch.stack(frames).numpy() if frames else np.zeros((0, 0, VALUES_PER_GAUSSIAN), np.float32)


def select_gaussians(fields, states: np.ndarray, opacity: np.ndarray, max_gaussians: Optional[int]) -> np.ndarray:
    """Indices (into gauss_params) of the Gaussians exported: finite in the canonical PLY `fields` and at every
    keyframe (`states`), opacity >= 1/255, and, beyond `max_gaussians`, the most opaque ones (kept in their order)."""
    keep = finite_mask(fields) & (opacity >= LOW_OPACITY_LOGIT)
    if states.size:
        keep &= np.isfinite(states).all(axis=(0, 2))
    indices = np.flatnonzero(keep)
    if max_gaussians is not None and len(indices) > max_gaussians:
        most_opaque = np.argsort(-opacity[indices], kind="stable")[:max_gaussians]
        indices = np.sort(indices[most_opaque])
    if len(indices) == 0:
        raise WebExportError("none of the run's Gaussians is finite with opacity >= 1/255: nothing to export.")
    return indices


def initial_camera(geometry) -> Dict[str, object]:
    """The camera the page opens with: the middle of the training orbit (ns-render camera-path keyframe layout)."""
    pose = geometry.orbit.pose(0.5)
    return {"camera_to_world": np.asarray(pose, dtype=float).reshape(-1).tolist(), "fov": geometry.fov_degrees,
            "width": int(geometry.width), "height": int(geometry.height)}  # fmt: skip


def rasterization(model) -> Dict[str, float]:
    """Spark's settings that reproduce gsplat's image of the model: Gaussians cut at 3 standard deviations, and the
    0.3 px^2 screen-space dilation, without (classic) or with (antialiased) opacity compensation."""
    antialiased = getattr(model.config, "rasterize_mode", "classic") == "antialiased"
    return {"max_std_dev": 3.0, "pre_blur": 0.0 if antialiased else 0.3, "blur": 0.3 if antialiased else 0.0}


def write_web_export(model, geometry, output_dir: Path, num_times: int, max_gaussians: Optional[int],
                     source: Dict[str, object], play_seconds: float = 4.0) -> Dict[str, object]:  # fmt: skip
    """Write the folder described in the module docstring for `model` (a DeformableSplatModel) and the scene's
    camera geometry (camera_paths.ScenePathGeometry). Returns scene.json's content."""
    started = clock.perf_counter()
    moving = bool(getattr(model, "moves_in_time", False))
    times = np.linspace(0.0, 1.0, num_times).tolist() if moving else []
    sh_degree = int(model.config.sh_degree)
    fields = splat_ply_fields(model.gaussians_at_time(None), sh_degree)
    states = keyframe_states(model, times)
    indices = select_gaussians(fields, states, fields["opacity"], max_gaussians)
    write_splat_ply(output_dir / GAUSSIANS_FILE, {name: values[indices] for name, values in fields.items()})
    motion = None
    if moving:
        (output_dir / MOTION_FILE).write_bytes(states[:, indices].astype("<f2").tobytes())
        motion = {"file": MOTION_FILE, "dtype": "float16", "values_per_gaussian": VALUES_PER_GAUSSIAN,
                  "layout": "[time][gaussian][x y z, qw qx qy qz, log_sx log_sy log_sz]"}  # fmt: skip
    for item in VIEWER.iterdir():
        if item.is_dir():
            shutil.copytree(item, output_dir / item.name)
        else:
            shutil.copy2(item, output_dir / item.name)
    metadata = (getattr(model, "kwargs", {}) or {}).get("metadata") or {}
    background = model.background_color.detach().reshape(-1)[:3].cpu().tolist()
    scene = {
        "generator": GENERATOR,
        "format_version": 1,
        "num_gaussians": int(len(indices)),
        "num_gaussians_in_run": int(model.gauss_params["means"].shape[0]),
        "sh_degree": sh_degree,
        "gaussians_file": GAUSSIANS_FILE,
        "times": times,
        "motion": motion,
        "canonical_time": float((metadata.get("canonical") or {}).get("time", 0.0)) if moving else None,
        "play_seconds": float(play_seconds),
        "camera": initial_camera(geometry),
        "target": np.asarray(geometry.orbit.target, dtype=float).tolist(),
        "up": np.asarray(geometry.orbit.up, dtype=float).tolist(),
        "background": [float(value) for value in background],
        "rasterization": rasterization(model),
        "source": source,
    }
    (output_dir / SCENE_FILE).write_text(json.dumps(scene, indent=1))
    scene["export_seconds"] = clock.perf_counter() - started
    scene["size_bytes"] = sum(path.stat().st_size for path in output_dir.rglob("*") if path.is_file())
    return scene


@dataclass
class ExportWeb:
    """Export a trained run as a self-contained web page: orbit, zoom and, for a 4real-motion run, a time slider
    with play / pause (see `fourreal view-web`)."""

    load_config: Path
    """The training run's config.yml (a finished 4real-motion run; a 4real-canonical run exports as a still scene)."""
    output_dir: Path = Path("web_export")
    """Folder for index.html and the scene (an empty folder or an earlier export, which is replaced)."""
    num_times: int = 17
    """Keyframes of the motion, at times linspace(0, 1, num_times); the page interpolates between them."""
    max_gaussians: Optional[int] = None
    """Keep at most this many Gaussians (the most opaque ones); None keeps every visible one."""
    overwrite: bool = False
    """Replace the content of a non-empty --output-dir that is not an earlier export."""

    def main(self) -> None:
        try:
            self.run()
        except FourRealError as error:
            raise SystemExit(f"fourreal export web: {error}") from None

    def run(self) -> Dict[str, object]:
        from nerfstudio.utils.eval_utils import eval_setup

        from fourreal_ns.camera_paths import scene_path_geometry
        from fourreal_ns.data.scene import load_scene
        from fourreal_ns.models.splats import DeformableSplatModel
        from fourreal_ns.run_config import scene_of_run
        from fourreal_ns.runs import is_trained

        config = Path(self.load_config)
        if self.num_times < 2:
            raise WebExportError(f"--num-times {self.num_times}: the motion needs at least 2 keyframes.")
        if self.max_gaussians is not None and self.max_gaussians < 1:
            raise WebExportError(f"--max-gaussians {self.max_gaussians}: keep at least one Gaussian.")
        if not config.is_file():
            raise WebExportError(f"--load-config {config} does not exist: pass a training run's config.yml "
                                 "(outputs/<experiment>/<method>/<timestamp>/config.yml).")  # fmt: skip
        if not is_trained(config.parent):
            raise WebExportError(
                f"{config.parent} has not finished training (no checkpoint of its last step in nerfstudio_models/): "
                f"finish it first (`ns-train ... --load-dir {config.parent / 'nerfstudio_models'}` resumes it)."
            )
        prepare_output(self.output_dir, self.overwrite)
        run = scene_of_run(config)
        geometry = scene_path_geometry(load_scene(run.folder, check_images=False), run.scale_factor)
        _, pipeline, _, step = eval_setup(config, test_mode="inference")
        model = pipeline.model
        if not isinstance(model, DeformableSplatModel):
            raise WebExportError(f"the model of {config} is {type(model).__name__}, not a fourreal 4real-canonical "
                                 "or 4real-motion model.")  # fmt: skip
        source = {"config": str(config), "method": type(model).__name__, "step": int(step)}
        scene = write_web_export(model, geometry, Path(self.output_dir), self.num_times, self.max_gaussians, source)
        kind = f"{len(scene['times'])} keyframes" if scene["motion"] else "a still scene"
        print(f"Wrote {self.output_dir} ({scene['num_gaussians']:,} Gaussians, {kind}, "
              f"{scene['size_bytes'] / 1e6:.1f} MB, {scene['export_seconds']:.1f} s). View it with\n"
              f"  fourreal view-web {self.output_dir}")
        return scene
