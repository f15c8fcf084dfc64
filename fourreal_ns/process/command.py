"""`fourreal process`: videos in, a posed scene folder out (paper 3.3: poses from COLMAP, refined later).

Inputs (docs/process.md):
a. `fourreal process SCENE`: a folder written by `fourreal generate` (images/freeze/, images/reference/,
   generation.json); transforms.json is added to it;
b. `fourreal process --freeze VIDEO [VIDEO ...] [--reference VIDEO] --out SCENE`: video files, frame folders or
   folders of videos (`inputs`). Freeze-time clips alone make a static scene; with a reference video a 4D one;
   `--reference VIDEO --no-static-reference` alone a reference-only scene (a moving camera, every frame posed);
c. `fourreal process --grid DIR --out SCENE`: a 4Real-Video time x view grid (`grid` module).

Which frames share which pose, and what happens to frames and clips SfM cannot pose: `plan`. Frames are sampled
(`--num-frames`, `--fps`) and downscaled (`--max-size`) while decoding (`video_io`). Everything is staged in a
scratch folder beside the output; the output folder changes only after SfM succeeded, and transforms.json is
written last. A failed run leaves the output folder as it was.
"""

from __future__ import annotations

import shutil
import sys
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
from fourreal_ns.process.grid import stage_grid
from fourreal_ns.process.inputs import expand_clips, flatten_paths, single_video, stage_freeze, stage_reference
from fourreal_ns.process.plan import (Clip, Plan, assign_reference_pose, check_registration,
                                      drop_bad_clips, grid_plan, settle_canonical, videos_plan)
from fourreal_ns.process.scene_writer import (PLY_NAME, Normalisation, frame_entry, move_images,
                                              opengl_camera_to_world, own_images, seed_points, transforms_content,
                                              write_colmap_model, write_ply)
from fourreal_ns.process.sfm import SfmOptions, SfmResult, colmap_log, run_sfm, without_frames
from fourreal_ns.process.video_io import Sampling, read_frame_folder

VIDEO_FOLDERS = ("freeze", "reference", "grid")
IMAGE_FOLDERS = ("images", "images_full")
"""images/<video>/: the scene's frames; images_full/<video>/: their full-resolution copies (--keep-full-resolution)."""
COLMAP_MODEL = "colmap/sparse/0"


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn())


@dataclass
class Process:
    """Recover camera poses and seed points of videos with COLMAP (pycolmap) and write a scene folder:
    `fourreal process SCENE` (a `fourreal generate` folder), `fourreal process --freeze VIDEO [VIDEO ...]
    [--reference VIDEO] --out SCENE` (video files, frame folders or folders of videos; freeze-time clips alone make
    a static scene), `fourreal process --reference VIDEO --no-static-reference --out SCENE` (a moving camera) or
    `fourreal process --grid DIR --out SCENE` (a 4Real-Video time x view grid). See docs/process.md."""

    scene: Annotated[Optional[Path], tyro.conf.Positional, tyro.conf.arg(metavar="[SCENE]")] = None
    """A scene folder from `fourreal generate` (images/freeze/, images/reference/, generation.json): transforms.json
    is written into it. Leave out with --freeze/--reference or --grid."""
    freeze: Annotated[List[Tuple[Path, ...]], tyro.conf.UseAppendAction,
                      tyro.conf.arg(metavar="PATH [PATH ...]")] = field(default_factory=list)
    """Freeze-time clips (the camera moves around the frozen scene): video files, frame folders, or a folder of
    video files (one clip each). Several clips of one frozen moment: `--freeze A B` or `--freeze A --freeze B`."""
    reference: Optional[Path] = None
    """Reference video (the scene moves; the camera is static by default): a video file or a folder of frames."""
    grid: Optional[Path] = None
    """A 4Real-Video grid folder: one video or frame folder per view, or files named v{view}_t{time}.png."""
    out: Optional[Path] = None
    """The scene folder to write (with --freeze/--reference or --grid)."""
    canonical_freeze_frame: Optional[int] = None
    """k_c: the freeze frame that shows the canonical image, counted over the kept frames of all clips (default:
    generation.json, else the middle frame K // 2 of a single clip, or frame 0 of the first of several clips)."""
    canonical_reference_frame: Optional[int] = None
    """j_c: the reference frame the freeze-time video was conditioned on (default: generation.json, else 0)."""
    grid_canonical_time: int = 0
    """Grid: the time index whose row of views is posed by SfM (also the canonical time)."""
    grid_reference_view: int = 0
    """Grid: the view of the fixed-view (reference) video; recorded as the canonical block's freeze_frame."""
    static_reference: bool = True
    """The reference camera does not move: all reference frames share one pose (needs --freeze to be posed)."""
    reference_sfm_frames: int = 8
    """With a static reference camera: how many reference frames (evenly spread, with j_c) SfM sees."""
    num_frames: Optional[int] = None
    """Keep this many frames of each video, evenly spread (first and last kept); default: every frame."""
    fps: Optional[float] = None
    """Keep one frame per 1/FPS seconds of each video (frame folders need --input-fps)."""
    input_fps: Optional[float] = None
    """The frame rate of frame-folder inputs, for --fps."""
    max_size: Optional[int] = None
    """Downscale frames on reading so that their longer side is at most this many pixels (default: no cap)."""
    keep_full_resolution: bool = False
    """With --max-size: also write the kept frames at full resolution to SCENE/images_full/<video>/."""
    prompt: Optional[str] = None
    """Text prompt recorded as generation.prompt (the default prompt of the SDS guidance) for --freeze or --grid."""
    min_frames: int = 8
    """Fewest frames a freeze-time clip or reference video (grid: views) may have."""
    min_registered_fraction: float = 0.8
    """Fail if SfM poses fewer than this fraction of the freeze frames (grid: views; reference-only: reference
    frames); with several clips, a clip posed below it is dropped (an error if it holds the canonical frame)."""
    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """Feature matching: exhaustive (every pair), sequential (neighbours in time, within each clip, plus
    --cross-clip-frames between clips), or auto (exhaustive up to --exhaustive-max-images frames)."""
    exhaustive_max_images: int = 60
    """auto: largest SfM frame count matched exhaustively."""
    sequential_overlap: int = 10
    """sequential: each frame is matched with this many following frames (plus quadratic steps)."""
    cross_clip_frames: int = 5
    """sequential, several clips: each frame is matched with this many evenly spread frames of every other clip."""
    vocab_tree: Optional[Path] = None
    """sequential: a COLMAP vocabulary tree file enables loop detection (loop closure of long orbits)."""
    camera_model: Literal["SIMPLE_PINHOLE", "PINHOLE"] = "SIMPLE_PINHOLE"
    """The one camera shared by all frames (no distortion)."""
    max_image_size: int = 1600
    """Frames are downscaled to this size for feature extraction only (poses are in the scene's pixels); see
    --max-size for the scene's frames themselves."""
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


def _sampling(config: Process) -> Sampling:
    return Sampling(num_frames=config.num_frames, fps=config.fps, input_fps=config.input_fps,
                    max_size=config.max_size)


def _mode(config: Process) -> str:
    freeze = flatten_paths(config.freeze)
    videos = bool(freeze) or config.reference is not None
    given = [name for name, on in (("SCENE", config.scene is not None), ("--freeze/--reference", videos),
                                   ("--grid", config.grid is not None)) if on]
    if len(given) != 1:
        raise ProcessError(
            ("Give one input: " if not given else f"Give only one input (got {' and '.join(given)}): ")
            + "a generated scene folder SCENE, or --freeze VIDEO [--reference VIDEO] --out SCENE, or --grid DIR "
            "--out SCENE."
        )
    if config.scene is not None:
        if config.out is not None and Path(config.out).resolve() != Path(config.scene).resolve():
            raise ProcessError("fourreal process SCENE writes into SCENE itself; leave out --out.")
        mode = "scene"
    elif config.out is None:
        raise ProcessError("--out SCENE is required with --freeze/--reference and --grid: the folder to write.")
    else:
        mode = "videos" if videos else "grid"
    if mode == "videos" and not freeze and config.static_reference:
        raise ProcessError(
            f"--reference {config.reference} alone, with a static reference camera (the default), cannot be posed: "
            "structure from motion needs a moving camera, and a static camera's frames all look the same. Add "
            "--freeze VIDEO (a freeze-time video of the same scene), or pass --no-static-reference if the camera "
            "of the reference video moves (every frame is then posed by SfM)."
        )
    return mode


def _check_options(config: Process, mode: str) -> None:
    if config.min_frames < 2:
        raise ProcessError(f"--min-frames {config.min_frames}: at least 2 frames are needed.")
    if not 0.0 < config.min_registered_fraction <= 1.0:
        raise ProcessError(f"--min-registered-fraction {config.min_registered_fraction}: give a fraction in (0, 1].")
    if config.scene_radius <= 0:
        raise ProcessError(f"--scene-radius {config.scene_radius}: give a positive radius.")
    if config.reference_sfm_frames < 1:
        raise ProcessError(f"--reference-sfm-frames {config.reference_sfm_frames}: give at least 1.")
    if config.cross_clip_frames < 1:
        raise ProcessError(f"--cross-clip-frames {config.cross_clip_frames}: give at least 1.")
    sampling = _sampling(config)
    sampling.check()
    chosen = [name for name, value in (("--num-frames", config.num_frames), ("--fps", config.fps),
                                       ("--input-fps", config.input_fps), ("--max-size", config.max_size))
              if value is not None] + (["--keep-full-resolution"] if config.keep_full_resolution else [])
    if mode != "videos" and chosen:
        where = "a generated scene's frames are used in place" if mode == "scene" else "grids are read whole"
        raise ProcessError(f"{', '.join(chosen)} apply to --freeze / --reference inputs only ({where}). Leave "
                           f"{'it' if len(chosen) == 1 else 'them'} out.")
    if config.keep_full_resolution and config.max_size is None:
        raise ProcessError("--keep-full-resolution keeps full-size copies of frames that --max-size downscales: "
                           "give --max-size PX too (or leave --keep-full-resolution out).")
    if mode == "videos" and config.reference is None and config.canonical_reference_frame is not None:
        raise ProcessError("--canonical-reference-frame needs a reference video (--reference VIDEO).")
    if mode == "videos" and not flatten_paths(config.freeze) and config.canonical_freeze_frame is not None:
        raise ProcessError("--canonical-freeze-frame needs freeze-time clips (--freeze VIDEO); a reference-only "
                           "scene's canonical frame is --canonical-reference-frame.")


def _inputs(config: Process) -> List[Path]:
    return flatten_paths(config.freeze) + [Path(p) for p in (config.reference, config.grid) if p is not None]


def _check_output(out: Path, overwrite: bool, mode: str, inputs: Sequence[Path]) -> None:
    """Refuse to clobber a scene or to write over the inputs."""
    if out.exists() and not out.is_dir():
        raise ProcessError(f"The output {out} exists and is not a folder. Pick a folder for the scene.")
    for source in inputs:
        for images in IMAGE_FOLDERS:
            for video in VIDEO_FOLDERS:
                target = (out / images / video).resolve()
                if source.resolve() == target or target in source.resolve().parents:
                    raise ProcessError(
                        f"The input {source} lies in the output's {images}/{video}/, which fourreal process writes: "
                        "pick another --out, or move the input elsewhere."
                    )
    existing = out / "transforms.json"
    if existing.exists() and not overwrite:
        raise ProcessError(
            f"{existing} exists: {out} already is a scene. Pass --overwrite to replace its transforms.json and "
            "seed points" + (" and the images fourreal process wrote there." if mode != "scene" else ".")
        )
    if mode != "scene" and not overwrite:
        for images in IMAGE_FOLDERS:
            for video in VIDEO_FOLDERS:
                if own_images(out / images / video):
                    raise ProcessError(
                        f"{out / images / video} already holds frames. Pass --overwrite to replace them, or pick "
                        "another --out."
                    )


def _read_generation(scene: Path) -> dict:
    path = scene / "generation.json"
    if not path.is_file():
        raise ProcessError(
            f"{path} is missing: `fourreal process SCENE` reads a folder written by `fourreal generate`. For your "
            "own videos use --freeze VIDEO [--reference VIDEO] --out SCENE."
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


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Staged:
    """What reading the inputs gave: the plan, and the clips as read (for the report in transforms.json)."""

    plan: Plan
    clips: List[Tuple[str, Clip]] = field(default_factory=list)
    """(video, clip) of every input clip, in order."""


def process(config: Process) -> Path:
    """Run `fourreal process`; returns the scene folder. Raises ProcessError with the fix on bad inputs."""
    started = _time.time()
    mode = _mode(config)
    _check_options(config, mode)
    out = Path(config.scene if mode == "scene" else config.out)
    inputs = _inputs(config)
    if mode == "scene" and not out.is_dir():
        raise ProcessError(f"The scene folder {out} does not exist.")
    _check_output(out, config.overwrite, mode, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fourreal-process-", dir=out.parent))
    timings: Dict[str, float] = {}
    try:
        with colmap_log(config.verbose):
            with _progress() as progress:
                staged = _plan(config, mode, out, work, progress)
                timings["read"] = _time.time() - started
                options = SfmOptions(matcher=config.matcher, exhaustive_max_images=config.exhaustive_max_images,
                                     sequential_overlap=config.sequential_overlap,
                                     cross_clip_frames=config.cross_clip_frames, camera_model=config.camera_model,
                                     max_image_size=config.max_image_size, max_num_features=config.max_num_features,
                                     max_reprojection_error=config.max_reprojection_error,
                                     vocab_tree=config.vocab_tree, seed=config.seed, num_threads=config.num_threads,
                                     verbose=config.verbose)
                sfm_started = _time.time()
                plan = staged.plan
                result = run_sfm(plan.root, plan.sfm_names, work / "colmap", options, plan.extra_pairs, progress,
                                 what="grid views" if mode == "grid" else "frames", clips=plan.clips,
                                 separate=plan.separate)
                timings["sfm"] = _time.time() - sfm_started
            dropped = drop_bad_clips(plan, result.world_to_camera, config.min_registered_fraction)
            if dropped:
                result = without_frames(result, [name for entry in dropped for name in entry["file_paths"]])
            content, points, colours = _scene_content(config, mode, staged, result, inputs, timings)
            _commit(mode, out, work, result, content, points, colours)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for entry in content["process"]["dropped_clips"]:
        print(f"Warning: the clip {entry['clip']} was left out: SfM posed {entry['registered']} of its "
              f"{entry['frames']} frames ({entry['registered_fraction']:.0%} < --min-registered-fraction "
              f"{config.min_registered_fraction:.0%}). Check that it shows the same frozen moment as the other clips.",
              file=sys.stderr)
    if content["process"]["canonical_note"]:
        print(f"Note: {content['process']['canonical_note']}.")
    gone = {name for entry in content["process"]["dropped_clips"] for name in entry["file_paths"]}
    unregistered = [label for name, label in zip(content["process"]["unregistered"],
                                                 content["process"]["unregistered_frames"]) if name not in gone]
    if unregistered:
        print(f"SfM could not pose {len(unregistered)} frame(s): {', '.join(unregistered)}")
    print(f"Posed {len(content['frames'])} frames with {len(points)} seed points in {_time.time() - started:.1f} s "
          f"({result.matcher} matching, {config.camera_model}).")
    return out


def _plan(config: Process, mode: str, out: Path, work: Path, progress) -> _Staged:
    if mode == "scene":
        generation = _read_generation(out)
        freeze = read_frame_folder(out / "images" / "freeze", "freeze-time frame folder")
        reference = read_frame_folder(out / "images" / "reference", "reference frame folder",
                                      first=(freeze.files[0], freeze.size))
        plan = videos_plan(config, out, [Clip(None, freeze)], Clip(None, reference), generation)
        return _Staged(plan)
    stage = work / "stage"
    generation = {"prompt": config.prompt} if config.prompt else {}
    if mode == "videos":
        sampling = _sampling(config)
        full = stage / "images_full" if config.keep_full_resolution else None
        freeze_paths = expand_clips(flatten_paths(config.freeze))
        freeze = stage_freeze(freeze_paths, stage / "images" / "freeze", progress, sampling,
                              full / "freeze" if full else None)
        reference = None
        if config.reference is not None:
            reference = stage_reference(single_video(Path(config.reference), "--reference"),
                                        stage / "images" / "reference", progress, sampling,
                                        full / "reference" if full else None, freeze)
        plan = videos_plan(config, stage, freeze, reference, generation)
        clips = [("freeze", clip) for clip in freeze] + ([("reference", reference)] if reference else [])
        return _Staged(plan, clips)
    grid = stage_grid(Path(config.grid), stage / "images" / "grid", progress, min_views=2)
    return _Staged(grid_plan(config, stage, grid, generation))


def _mode_name(mode: str, plan: Plan, staged: _Staged) -> str:
    if mode != "videos":
        return {"scene": "generated scene", "grid": "4Real-Video grid"}[mode]
    clips = sum(1 for video, _ in staged.clips if video == "freeze")
    freeze = "freeze-time video" if clips == 1 else f"{clips} freeze-time clips"
    if plan.reference_only:
        return "reference video alone (moving camera)"
    if plan.canonical["reference_frame"] is None:
        return f"{freeze} alone (static scene)"
    return "freeze + reference videos" if clips == 1 else f"{freeze} + reference video"


def _clip_reports(staged: _Staged, plan: Plan, registered: Dict[str, np.ndarray]) -> List[dict]:
    """Per input clip: its frames in the source, which were kept, at what size, and how many SfM posed."""
    reports = []
    for video, clip in staged.clips:
        files = [f for f in plan.frames if f.video == video and f.clip == clip.name]
        frames = clip.frames
        dropped = next((entry for entry in plan.dropped_clips if entry["clip"] == clip.name), None)
        reports.append({
            "clip": clip.name, "video": video, "source_frames": frames.source_frames, "source_fps": frames.source_fps,
            "source_size": list(frames.source_size or frames.size), "size": list(frames.size),
            "frames": len(frames), "source_indices": list(frames.source_indices),
            "written": 0 if dropped else sum(1 for f in files if f.pose_from in registered),
            "dropped": dropped is not None,
        })  # fmt: skip
    return reports


def _scene_content(config: Process, mode: str, staged: _Staged, result: SfmResult, inputs: Sequence[Path],
                   timings: Dict[str, float]):
    """transforms.json content and the seed points (normalised)."""
    plan = staged.plan
    registered = result.world_to_camera
    canonical_note = settle_canonical(plan, registered)
    reference_pose = assign_reference_pose(plan, registered)
    check_registration(plan, registered, config.min_registered_fraction)
    camera_to_world = {name: opengl_camera_to_world(w2c) for name, w2c in registered.items()}
    used = sorted({f.pose_from for f in plan.frames if f.pose_from in registered})
    normalisation = Normalisation.fit([camera_to_world[name] for name in used], config.scene_radius)
    frames = [frame_entry(f.file_path, normalisation.pose(camera_to_world[f.pose_from]), f.video, f.time, f.view,
                          clip=f.clip, source_frame=f.source_frame)
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
    full = None
    if config.keep_full_resolution and staged.clips:
        first = staged.clips[0][1].frames
        full = {"folder": "images_full", "note": "images_full/<video>/NAME is the full-resolution frame of "
                "images/<video>/NAME", "w": int((first.source_size or first.size)[0]),
                "h": int((first.source_size or first.size)[1])}
    process_info = {
        "mode": _mode_name(mode, plan, staged),
        "inputs": [p.name for p in inputs],
        "sfm_frames": len(plan.sfm_names),
        "registered": len(plan.sfm_names) - len(unregistered),
        "unregistered": unregistered,
        "unregistered_frames": [plan.label(name) for name in unregistered],
        "dropped": dropped,
        "dropped_clips": plan.dropped_clips,
        "frames": counts,
        "clips": _clip_reports(staged, plan, registered),
        "sampling": _sampling(config).to_json() if mode == "videos" else None,
        "full_resolution": full,
        "canonical_note": canonical_note,
        "reference_pose_from": reference_pose,
        "static_reference": bool(config.static_reference) if mode != "grid" and not plan.reference_only else None,
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
    """Move the staged images in (replacing every image an earlier run wrote), write the seed points and the
    COLMAP model, then transforms.json (last)."""
    out.mkdir(parents=True, exist_ok=True)
    if mode != "scene":
        for images in IMAGE_FOLDERS:
            for video in VIDEO_FOLDERS:
                staged = work / "stage" / images / video
                if staged.is_dir():
                    move_images(staged, out / images / video)
                else:  # an earlier run's images of a kind this run does not write
                    for stale in own_images(out / images / video):
                        stale.unlink()
    write_ply(out / PLY_NAME, points, colours)
    write_colmap_model(result.reconstruction, out / COLMAP_MODEL)
    write_json_atomic(out / "transforms.json", content)


if __name__ == "__main__":
    tyro.cli(Process).main()
