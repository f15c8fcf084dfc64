"""`fourreal process`: videos in, a posed scene folder out (paper 3.3: poses from COLMAP, refined later).

Three inputs (docs/process.md):
a. `fourreal process SCENE`: a folder written by `fourreal generate` (images/freeze/, images/reference/,
   generation.json); transforms.json is added to it;
b. `fourreal process --freeze VIDEO --reference VIDEO --out SCENE`: video files or frame folders;
c. `fourreal process --grid DIR --out SCENE`: a 4Real-Video time x view grid (`grid` module).

Which frames share which pose (the 4Real conventions):
- freeze-time frames k = 0..K-1 each get their own pose; `view` = k, `time` = the canonical time t_c;
- reference frames j = 0..J-1 have `time` = j / (J - 1) and `view` 0. The reference camera is static by default
  (generated reference videos are): up to `reference_sfm_frames` of them, evenly spread and always including the
  canonical one j_c, go into SfM, and every reference frame gets the pose of j_c (or, if j_c did not register, of
  the registered one nearest to it in time). With `--no-static-reference` every reference frame is posed by SfM;
- grid frames (view v, time index i of T) have `time` = i / (T - 1) and `view` = v; SfM sees only the frames of
  the canonical time index (one freeze-time row of the grid), and each view's pose is shared by all its times.

Frames SfM could not pose are listed (printed and under `process.unregistered` in transforms.json) and left out
of transforms.json (their images stay on disk). The run fails, leaving the output folder as it was, if the
canonical freeze frame (grid: the reference view) is lost, if no reference frame registers, or if fewer than
`--min-registered-fraction` of the freeze frames (grid: views) register. Everything is staged in a scratch folder
beside the output; the output folder changes only after SfM succeeded, and transforms.json is written last.
"""

from __future__ import annotations

import shutil
import tempfile
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tyro
from typing_extensions import Annotated, Literal

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.data.json_reader import read_json_object
from fourreal_ns.process import ProcessError
from fourreal_ns.process.grid import Grid, stage_grid
from fourreal_ns.process.scene_writer import (PLY_NAME, Normalisation, frame_entry, move_images,
                                              opengl_camera_to_world, own_images, seed_points, transforms_content,
                                              write_colmap_model, write_ply)
from fourreal_ns.process.sfm import SfmOptions, SfmResult, run_sfm
from fourreal_ns.process.video_io import Video, decode_to_folder, read_frame_folder

VIDEO_FOLDERS = ("freeze", "reference", "grid")
COLMAP_MODEL = "colmap/sparse/0"


@dataclass
class PlannedFrame:
    """A frame of the scene-to-be: where its image is, what it is, and whose SfM pose it takes."""

    file_path: str
    """Relative to the scene folder (and to the SfM image root): images/freeze/00003.png."""
    video: str
    time: float
    view: int
    index: int
    """k (freeze), j (reference) or the grid time index."""
    pose_from: str = ""
    """The SfM image whose pose this frame gets ("" until decided)."""


@dataclass
class Plan:
    """All frames, which of them SfM sees, and the canonical block."""

    root: Path
    """The folder the frames' file paths are relative to."""
    frames: List[PlannedFrame]
    sfm_names: List[str]
    canonical: Dict[str, float]
    generation: dict
    extra_pairs: List[Tuple[str, str]] = field(default_factory=list)


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn())


@dataclass
class Process:
    """Recover camera poses and seed points of videos with COLMAP (pycolmap) and write a scene folder:
    `fourreal process SCENE` (a `fourreal generate` folder), `fourreal process --freeze VIDEO --reference VIDEO
    --out SCENE` (video files or frame folders) or `fourreal process --grid DIR --out SCENE` (a 4Real-Video
    time x view grid). See docs/process.md."""

    scene: Annotated[Optional[Path], tyro.conf.Positional, tyro.conf.arg(metavar="[SCENE]")] = None
    """A scene folder from `fourreal generate` (images/freeze/, images/reference/, generation.json): transforms.json
    is written into it. Leave out with --freeze/--reference or --grid."""
    freeze: Optional[Path] = None
    """Freeze-time video (the camera moves around the frozen scene): a video file or a folder of frames."""
    reference: Optional[Path] = None
    """Reference video (the scene moves, the camera is static by default): a video file or a folder of frames."""
    grid: Optional[Path] = None
    """A 4Real-Video grid folder: one video or frame folder per view, or files named v{view}_t{time}.png."""
    out: Optional[Path] = None
    """The scene folder to write (with --freeze/--reference or --grid)."""
    canonical_freeze_frame: Optional[int] = None
    """k_c: the freeze frame that shows the canonical reference frame (default: generation.json, else the middle
    frame K // 2)."""
    canonical_reference_frame: Optional[int] = None
    """j_c: the reference frame the freeze-time video was conditioned on (default: generation.json, else 0)."""
    grid_canonical_time: int = 0
    """Grid: the time index whose row of views is posed by SfM (also the canonical time)."""
    grid_reference_view: int = 0
    """Grid: the view of the fixed-view (reference) video; recorded as the canonical block's freeze_frame."""
    static_reference: bool = True
    """The reference camera does not move: all reference frames share one pose."""
    reference_sfm_frames: int = 8
    """With a static reference camera: how many reference frames (evenly spread, with j_c) SfM sees."""
    prompt: Optional[str] = None
    """Text prompt recorded as generation.prompt (the default prompt of the SDS guidance) for --freeze or --grid."""
    min_frames: int = 8
    """Fewest frames a freeze-time or reference video (grid: views) may have."""
    min_registered_fraction: float = 0.8
    """Fail if SfM poses fewer than this fraction of the freeze frames (grid: views)."""
    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """Feature matching: exhaustive (every pair), sequential (neighbours in time), or auto (exhaustive up to
    --exhaustive-max-images frames)."""
    exhaustive_max_images: int = 60
    """auto: largest SfM frame count matched exhaustively."""
    sequential_overlap: int = 10
    """sequential: each frame is matched with this many following frames (plus quadratic steps)."""
    vocab_tree: Optional[Path] = None
    """sequential: a COLMAP vocabulary tree file enables loop detection (loop closure of long orbits)."""
    camera_model: Literal["SIMPLE_PINHOLE", "PINHOLE"] = "SIMPLE_PINHOLE"
    """The one camera shared by all frames (no distortion)."""
    max_image_size: int = 1600
    """Frames are downscaled to this size for feature extraction (poses are in full-resolution pixels)."""
    max_num_features: int = 8192
    """SIFT features per frame."""
    max_reprojection_error: float = 2.0
    """Pixels: SfM observations beyond this are outliers (raise it for blurry or very large frames)."""
    scene_radius: float = 1.0
    """The camera farthest from the centre of the cameras ends up this far from the origin."""
    seed: int = 0
    """Random seed of COLMAP."""
    num_threads: int = -1
    """Threads of COLMAP's feature extraction, matching and mapping; -1 uses every core. With several threads the
    result varies from run to run even with one --seed; 1 repeats it exactly."""
    overwrite: bool = False
    """Replace transforms.json, seed points and the images an earlier `fourreal process` wrote there."""
    verbose: bool = False
    """Show COLMAP's own log."""

    def main(self) -> None:
        try:
            path = process(self)
        except ProcessError as error:
            raise SystemExit(f"fourreal process: {error}") from None
        print(f"Wrote {path / 'transforms.json'}")


def _mode(config: Process) -> str:
    videos = config.freeze is not None or config.reference is not None
    given = [name for name, on in (("SCENE", config.scene is not None), ("--freeze/--reference", videos),
                                   ("--grid", config.grid is not None)) if on]
    if len(given) != 1:
        raise ProcessError(
            ("Give one input: " if not given else f"Give only one input (got {' and '.join(given)}): ")
            + "a generated scene folder SCENE, or --freeze VIDEO --reference VIDEO --out SCENE, or --grid DIR "
            "--out SCENE."
        )
    if config.scene is not None:
        if config.out is not None and Path(config.out).resolve() != Path(config.scene).resolve():
            raise ProcessError("fourreal process SCENE writes into SCENE itself; leave out --out.")
        return "scene"
    if config.out is None:
        raise ProcessError("--out SCENE is required with --freeze/--reference and --grid: the folder to write.")
    if videos and (config.freeze is None or config.reference is None):
        missing = "--reference" if config.reference is None else "--freeze"
        raise ProcessError(f"{missing} is missing: give both --freeze VIDEO and --reference VIDEO.")
    return "videos" if videos else "grid"


def _check_options(config: Process) -> None:
    if config.min_frames < 2:
        raise ProcessError(f"--min-frames {config.min_frames}: at least 2 frames are needed.")
    if not 0.0 < config.min_registered_fraction <= 1.0:
        raise ProcessError(f"--min-registered-fraction {config.min_registered_fraction}: give a fraction in (0, 1].")
    if config.scene_radius <= 0:
        raise ProcessError(f"--scene-radius {config.scene_radius}: give a positive radius.")
    if config.reference_sfm_frames < 1:
        raise ProcessError(f"--reference-sfm-frames {config.reference_sfm_frames}: give at least 1.")


def _check_output(out: Path, overwrite: bool, mode: str, inputs: Sequence[Path]) -> None:
    """Refuse to clobber a scene or to write over the inputs."""
    if out.exists() and not out.is_dir():
        raise ProcessError(f"The output {out} exists and is not a folder. Pick a folder for the scene.")
    for source in inputs:
        for video in VIDEO_FOLDERS:
            target = (out / "images" / video).resolve()
            if source.resolve() == target or target in source.resolve().parents:
                raise ProcessError(
                    f"The input {source} lies in the output's images/{video}/, which fourreal process writes: pick "
                    "another --out, or move the input elsewhere."
                )
    existing = out / "transforms.json"
    if existing.exists() and not overwrite:
        raise ProcessError(
            f"{existing} exists: {out} already is a scene. Pass --overwrite to replace its transforms.json and "
            "seed points" + (" and the images fourreal process wrote there." if mode != "scene" else ".")
        )
    if mode != "scene" and not overwrite:
        for video in VIDEO_FOLDERS:
            if own_images(out / "images" / video):
                raise ProcessError(
                    f"{out / 'images' / video} already holds frames. Pass --overwrite to replace them, or pick "
                    "another --out."
                )


# ----------------------------------------------------------------------------------------------------------------
# Planning: which frames, which videos, which poses they share
# ----------------------------------------------------------------------------------------------------------------


def _read_generation(scene: Path) -> dict:
    path = scene / "generation.json"
    if not path.is_file():
        raise ProcessError(
            f"{path} is missing: `fourreal process SCENE` reads a folder written by `fourreal generate`. For your "
            "own videos use --freeze VIDEO --reference VIDEO --out SCENE."
        )
    generation = read_json_object(path, "Fix it or run `fourreal generate` again.", ProcessError)
    canonical = generation.get("canonical", {})
    if not isinstance(canonical, dict):
        raise ProcessError(f"{path}: `canonical` must be {{\"freeze_frame\": k_c, \"reference_frame\": j_c}}.")
    for key in ("freeze_frame", "reference_frame"):
        value = canonical.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ProcessError(f"{path}: canonical `{key}` = {value!r}; it must be an integer >= 0.")
    return generation


def _check_count(video: Video, label: str, min_frames: int) -> None:
    if len(video) < min_frames:
        raise ProcessError(
            f"The {label} {video.source} has {len(video)} frame(s); at least {min_frames} are needed "
            f"(--min-frames {min_frames}). Give a longer video, or lower --min-frames."
        )


def _canonical_indices(config: Process, generation: dict, num_freeze: int, num_reference: int) -> Tuple[int, int]:
    from_file = generation.get("canonical", {}) if isinstance(generation.get("canonical"), dict) else {}
    k_c = config.canonical_freeze_frame
    if k_c is None:
        k_c = from_file.get("freeze_frame", num_freeze // 2)
    j_c = config.canonical_reference_frame
    if j_c is None:
        j_c = from_file.get("reference_frame", 0)
    if not 0 <= k_c < num_freeze:
        raise ProcessError(f"The canonical freeze frame {k_c} is outside the freeze-time video's 0..{num_freeze - 1} "
                           "(--canonical-freeze-frame or generation.json canonical.freeze_frame).")
    if not 0 <= j_c < num_reference:
        raise ProcessError(f"The canonical reference frame {j_c} is outside the reference video's "
                           f"0..{num_reference - 1} (--canonical-reference-frame or generation.json).")
    return int(k_c), int(j_c)


def _videos_plan(config: Process, root: Path, freeze: Video, reference: Video, generation: dict) -> Plan:
    """Freeze-time + reference frames (inputs a and b)."""
    _check_count(freeze, "freeze-time video", config.min_frames)
    _check_count(reference, "reference video", config.min_frames)
    if freeze.size != reference.size:
        raise ProcessError(
            f"The freeze-time frames are {freeze.size[0]} x {freeze.size[1]} but the reference frames "
            f"{reference.size[0]} x {reference.size[1]}: both videos must come from one camera (one size). Resize "
            "one of them."
        )
    num_freeze, num_reference = len(freeze), len(reference)
    k_c, j_c = _canonical_indices(config, generation, num_freeze, num_reference)
    t_c = j_c / (num_reference - 1)

    def relative(path: Path) -> str:
        return path.relative_to(root).as_posix()

    frames = [PlannedFrame(relative(p), "freeze", t_c, k, k, pose_from=relative(p)) for k, p in enumerate(freeze.files)]
    reference_frames = [PlannedFrame(relative(p), "reference", j / (num_reference - 1), 0, j)
                        for j, p in enumerate(reference.files)]
    if config.static_reference:
        count = min(config.reference_sfm_frames, num_reference)
        chosen = set(np.round(np.linspace(0, num_reference - 1, count)).astype(int).tolist()) | {j_c}
        sfm_reference = [reference_frames[j].file_path for j in sorted(chosen)]
    else:
        sfm_reference = [frame.file_path for frame in reference_frames]
        for frame in reference_frames:
            frame.pose_from = frame.file_path
    frames += reference_frames
    # Sequential matching orders frames by name; the reference frames are matched to the freeze frames around k_c.
    near = [frames[k].file_path for k in range(max(0, k_c - config.sequential_overlap),
                                               min(num_freeze, k_c + config.sequential_overlap + 1))]
    extra = [(name, other) for name in sfm_reference for other in near]
    canonical = {"time": t_c, "freeze_frame": k_c, "reference_frame": j_c}
    return Plan(root=root, frames=frames, sfm_names=[f.file_path for f in frames if f.video == "freeze"]
                + sfm_reference, canonical=canonical, generation=generation, extra_pairs=extra)


def _grid_plan(config: Process, root: Path, grid: Grid, generation: dict) -> Plan:
    """Every grid frame; SfM on the canonical time's row (input c)."""
    if grid.num_views < config.min_frames:
        raise ProcessError(
            f"The grid {grid.source} has {grid.num_views} views; at least {config.min_frames} are needed "
            f"(--min-frames {config.min_frames}) to pose the views by structure from motion."
        )
    t_index, reference_view = config.grid_canonical_time, config.grid_reference_view
    if not 0 <= t_index < grid.num_times:
        raise ProcessError(f"--grid-canonical-time {t_index} is outside the grid's times 0..{grid.num_times - 1}.")
    if not 0 <= reference_view < grid.num_views:
        raise ProcessError(f"--grid-reference-view {reference_view} is outside the grid's views "
                           f"0..{grid.num_views - 1}.")
    frames = []
    sfm_names = []
    for view, column in enumerate(grid.files):
        anchor = column[t_index].relative_to(root).as_posix()
        sfm_names.append(anchor)
        for time_index, path in enumerate(column):
            frames.append(PlannedFrame(path.relative_to(root).as_posix(), "grid", grid.time(time_index), view,
                                       time_index, pose_from=anchor))
    canonical = {"time": grid.time(t_index), "freeze_frame": reference_view, "reference_frame": t_index}
    return Plan(root=root, frames=frames, sfm_names=sfm_names, canonical=canonical, generation=generation)


# ----------------------------------------------------------------------------------------------------------------
# Poses: registration checks, the shared reference pose, normalisation
# ----------------------------------------------------------------------------------------------------------------


def _assign_reference_pose(plan: Plan, registered: Dict[str, np.ndarray]) -> Optional[str]:
    """Static reference camera: every reference frame takes one registered reference frame's pose."""
    reference = [f for f in plan.frames if f.video == "reference"]
    if not reference or reference[0].pose_from:
        return None
    j_c = int(plan.canonical["reference_frame"])
    candidates = [f for f in reference if f.file_path in registered]
    if not candidates:
        tried = [name for name in plan.sfm_names if name.startswith("images/reference/")]
        raise ProcessError(
            f"None of the {len(tried)} reference frames given to SfM ({', '.join(tried[:4])}...) could be posed: "
            "the reference camera must see the scene the freeze-time video shows. Check the videos belong together."
        )
    chosen = min(candidates, key=lambda f: abs(f.index - j_c)).file_path
    for frame in reference:
        frame.pose_from = chosen
    return chosen


def _check_registration(plan: Plan, registered: Dict[str, np.ndarray], min_fraction: float) -> None:
    grid = any(f.video == "grid" for f in plan.frames)
    anchors = {f.pose_from for f in plan.frames if f.video in ("freeze", "grid")}
    lost = sorted(anchors - set(registered))
    canonical = next(f for f in plan.frames if f.video in ("freeze", "grid") and f.view == plan.canonical["freeze_frame"]
                     and (not grid or f.index == plan.canonical["reference_frame"]))
    what = "view" if grid else "freeze frame"
    if canonical.pose_from not in registered:
        raise ProcessError(
            f"SfM could not pose the canonical {what} ({canonical.pose_from}): the scene's canonical camera is "
            f"lost. Choose another with {'--grid-reference-view' if grid else '--canonical-freeze-frame'}, or give "
            "sharper, more overlapping frames (and see --matcher)."
        )
    fraction = 1.0 - len(lost) / len(anchors)
    if fraction < min_fraction:
        raise ProcessError(
            f"SfM posed only {len(anchors) - len(lost)} of {len(anchors)} {what}s ({fraction:.0%} < "
            f"--min-registered-fraction {min_fraction:.0%}); not posed: {', '.join(lost[:10])}"
            f"{' ...' if len(lost) > 10 else ''}. Give more overlapping or sharper frames, try --matcher exhaustive, "
            "or lower --min-registered-fraction."
        )
    if not grid and not any(f.pose_from in registered for f in plan.frames if f.video == "reference"):
        raise ProcessError("SfM could not pose any reference frame: the reference camera must see the scene the "
                           "freeze-time video shows.")


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------


def process(config: Process) -> Path:
    """Run `fourreal process`; returns the scene folder. Raises ProcessError with the fix on bad inputs."""
    started = _time.time()
    mode = _mode(config)
    _check_options(config)
    out = Path(config.scene if mode == "scene" else config.out)
    inputs = [Path(p) for p in (config.freeze, config.reference, config.grid) if p is not None]
    if mode == "scene" and not out.is_dir():
        raise ProcessError(f"The scene folder {out} does not exist.")
    _check_output(out, config.overwrite, mode, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fourreal-process-", dir=out.parent))
    timings: Dict[str, float] = {}
    try:
        with _progress() as progress:
            plan = _plan(config, mode, out, work, progress)
            timings["read"] = _time.time() - started
            options = SfmOptions(matcher=config.matcher, exhaustive_max_images=config.exhaustive_max_images,
                                 sequential_overlap=config.sequential_overlap, camera_model=config.camera_model,
                                 max_image_size=config.max_image_size, max_num_features=config.max_num_features,
                                 max_reprojection_error=config.max_reprojection_error,
                                 vocab_tree=config.vocab_tree, seed=config.seed, num_threads=config.num_threads,
                                 verbose=config.verbose)
            sfm_started = _time.time()
            result = run_sfm(plan.root, plan.sfm_names, work / "colmap", options, plan.extra_pairs, progress,
                             what="grid views" if mode == "grid" else "frames")
            timings["sfm"] = _time.time() - sfm_started
        content, points, colours = _scene_content(config, mode, plan, result, inputs, timings)
        _commit(mode, out, work, result, content, points, colours)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    unregistered = content["process"]["unregistered"]
    if unregistered:
        print(f"SfM could not pose {len(unregistered)} frame(s): {', '.join(unregistered)}")
    print(f"Posed {len(content['frames'])} frames with {len(points)} seed points in {_time.time() - started:.1f} s "
          f"({result.matcher} matching, {config.camera_model}).")
    return out


def _plan(config: Process, mode: str, out: Path, work: Path, progress) -> Plan:
    if mode == "scene":
        generation = _read_generation(out)
        freeze = read_frame_folder(out / "images" / "freeze", "freeze-time frame folder")
        reference = read_frame_folder(out / "images" / "reference", "reference frame folder",
                                      first=(freeze.files[0], freeze.size))
        return _videos_plan(config, out, freeze, reference, generation)
    stage = work / "stage"
    generation = {"prompt": config.prompt} if config.prompt else {}
    if mode == "videos":
        freeze = decode_to_folder(Path(config.freeze), stage / "images" / "freeze", "freeze-time video", progress)
        reference = decode_to_folder(Path(config.reference), stage / "images" / "reference", "reference video",
                                     progress, first=(freeze.files[0], freeze.size))
        return _videos_plan(config, stage, freeze, reference, generation)
    grid = stage_grid(Path(config.grid), stage / "images" / "grid", progress, min_views=2)
    return _grid_plan(config, stage, grid, generation)


def _scene_content(config: Process, mode: str, plan: Plan, result: SfmResult, inputs: Sequence[Path],
                   timings: Dict[str, float]):
    """transforms.json content and the seed points (normalised)."""
    registered = result.world_to_camera
    reference_pose = _assign_reference_pose(plan, registered)
    _check_registration(plan, registered, config.min_registered_fraction)
    camera_to_world = {name: opengl_camera_to_world(w2c) for name, w2c in registered.items()}
    used = sorted({f.pose_from for f in plan.frames if f.pose_from in registered})
    normalisation = Normalisation.fit([camera_to_world[name] for name in used], config.scene_radius)
    frames = [frame_entry(f.file_path, normalisation.pose(camera_to_world[f.pose_from]), f.video, f.time, f.view)
              for f in plan.frames if f.pose_from in registered]
    dropped = [f.file_path for f in plan.frames if f.pose_from not in registered]
    unregistered = [name for name in plan.sfm_names if name not in registered]
    points, colours = seed_points(normalisation.points(result.points), result.colours, result.errors,
                                  config.scene_radius)
    counts = {}
    for video in VIDEO_FOLDERS:
        total = sum(1 for f in plan.frames if f.video == video)
        if total:
            counts[video] = {"frames": total, "written": sum(1 for f in frames if f["video"] == video)}
    process_info = {
        "mode": {"scene": "generated scene", "videos": "freeze + reference videos", "grid": "4Real-Video grid"}[mode],
        "inputs": [str(p) for p in inputs],
        "sfm_frames": len(plan.sfm_names),
        "registered": len(plan.sfm_names) - len(unregistered),
        "unregistered": unregistered,
        "dropped": dropped,
        "frames": counts,
        "reference_pose_from": reference_pose,
        "static_reference": bool(config.static_reference) if mode != "grid" else None,
        "matcher": result.matcher,
        "camera_model": config.camera_model,
        "colmap_models": result.num_models,
        "colmap_model": COLMAP_MODEL,
        "seed_points": int(len(points)),
        "sparse_points": int(len(result.points)),
        "normalisation": normalisation.to_json(),
        "seconds": {key: round(value, 2) for key, value in timings.items()},
    }
    content = transforms_content(result.intrinsics, frames, plan.canonical, plan.generation, process_info)
    return content, points, colours


def _commit(mode: str, out: Path, work: Path, result: SfmResult, content: dict, points: np.ndarray,
            colours: np.ndarray) -> None:
    """Move the staged images in, write the seed points and the COLMAP model, then transforms.json (last)."""
    out.mkdir(parents=True, exist_ok=True)
    if mode != "scene":
        for video in VIDEO_FOLDERS:
            staged = work / "stage" / "images" / video
            if staged.is_dir():
                move_images(staged, out / "images" / video)
    write_ply(out / PLY_NAME, points, colours)
    write_colmap_model(result.reconstruction, out / COLMAP_MODEL)
    write_json_atomic(out / "transforms.json", content)


if __name__ == "__main__":
    tyro.cli(Process).main()
