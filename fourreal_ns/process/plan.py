"""Planning a `fourreal process` run: which frames the scene gets, which of them SfM sees, whose pose each takes.

The 4Real conventions (docs/process.md):
- freeze-time frames k = 0..K-1, numbered over all freeze clips in order (clip after clip), each get their own
  pose; `view` = k and `time` = the canonical time t_c (0.0 in a static scene, which has no reference video);
- reference frames j = 0..J-1 have `time` = j / (J - 1) and `view` 0. The reference camera is static by default
  (generated reference videos are): up to `reference_sfm_frames` of them, evenly spread and always including the
  canonical one j_c, go into SfM, and every reference frame gets the pose of j_c (or, if j_c did not register, of
  the registered one nearest to it in time). With `--no-static-reference` every reference frame is posed by SfM;
  with no freeze clip at all (a reference-only scene) that is the only way, and j_c is the canonical frame;
- grid frames (view v, time index i of T) have `time` = i / (T - 1) and `view` = v; SfM sees only the frames of
  the canonical time index (one freeze-time row of the grid), and each view's pose is shared by all its times.

After SfM: a freeze clip (of several) whose frames register below `--min-registered-fraction` is dropped with a
warning naming its file, unless it holds the canonical freeze frame (an error naming it); then the canonical frame
must be posed and enough of the remaining frames. Every message names frames as the user knows them
(`woman.mp4 (frame 37)`), never by the scratch folder's file names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fourreal_ns.process import ProcessError
from fourreal_ns.process.grid import Grid
from fourreal_ns.process.video_io import Video


@dataclass
class PlannedFrame:
    """A frame of the scene-to-be: where its image is, what it is, and whose SfM pose it takes."""

    file_path: str
    """Relative to the scene folder (and to the SfM image root): images/freeze/00003.png."""
    video: str
    time: float
    view: int
    index: int
    """k (freeze, over all clips), j (reference) or the grid time index."""
    pose_from: str = ""
    """The SfM image whose pose this frame gets ("" until decided)."""
    clip: Optional[str] = None
    """The input clip's file name (--freeze/--reference inputs)."""
    label: str = ""
    """The user's name for the frame: `woman.mp4 (frame 37)` (empty: `file_path`)."""
    source_frame: Optional[int] = None
    """The frame's index in its input clip."""

    @property
    def name(self) -> str:
        return self.label or self.file_path


@dataclass
class Plan:
    """All frames, which of them SfM sees, and the canonical block."""

    root: Path
    """The folder the frames' file paths are relative to."""
    frames: List[PlannedFrame]
    sfm_names: List[str]
    canonical: Dict[str, Optional[float]]
    generation: dict
    extra_pairs: List[Tuple[str, str]] = field(default_factory=list)
    clips: List[List[str]] = field(default_factory=list)
    """SfM names of each freeze clip, in time order (sequential matching within and between them)."""
    separate: List[List[str]] = field(default_factory=list)
    """Other time-ordered SfM sequences (the reference video), matched within themselves and by `extra_pairs`."""
    dropped_clips: List[dict] = field(default_factory=list)
    """Clips taken out after SfM (`drop_bad_clips`)."""
    removed: List[PlannedFrame] = field(default_factory=list)
    """The frames of the dropped clips."""
    canonical_is_default: bool = False
    """A static scene whose canonical freeze frame nobody chose (`settle_canonical` may move it)."""

    def label(self, name: str) -> str:
        """The user's name of the frame with SfM image `name`."""
        for frame in self.frames + self.removed:
            if frame.file_path == name:
                return frame.name
        return name

    @property
    def reference_only(self) -> bool:
        return not any(f.video in ("freeze", "grid") for f in self.frames) and any(
            f.video == "reference" for f in self.frames)


@dataclass
class Clip:
    """One input video of the scene, as staged (or read in place)."""

    name: Optional[str]
    """The input's file or folder name (the frames' `clip`); None for a generated scene's folders."""
    frames: Video


def _check_count(video: Video, label: str, min_frames: int) -> None:
    if len(video) < min_frames:
        raise ProcessError(
            f"The {label} {video.source} has {len(video)} frame(s); at least {min_frames} are needed "
            f"(--min-frames {min_frames}). Give a longer video (or more of its frames: --num-frames, --fps), or "
            "lower --min-frames."
        )


def _canonical_indices(config, generation: dict, num_freeze: int, num_reference: int,
                       default_freeze: int) -> Tuple[int, Optional[int]]:
    """(k_c, j_c): the options, else generation.json, else the defaults; checked against the frame counts."""
    from_file = generation.get("canonical", {}) if isinstance(generation.get("canonical"), dict) else {}
    k_c = config.canonical_freeze_frame
    if k_c is None:
        k_c = from_file.get("freeze_frame", default_freeze)
    j_c = config.canonical_reference_frame
    if j_c is None:
        j_c = from_file.get("reference_frame", 0)
    if num_freeze and not 0 <= k_c < num_freeze:
        raise ProcessError(f"The canonical freeze frame {k_c} is outside the freeze-time frames 0..{num_freeze - 1} "
                           "(--canonical-freeze-frame or generation.json canonical.freeze_frame; with several clips it "
                           "counts the kept frames of all clips in order).")
    if num_reference and not 0 <= j_c < num_reference:
        raise ProcessError(f"The canonical reference frame {j_c} is outside the reference video's "
                           f"0..{num_reference - 1} (--canonical-reference-frame or generation.json).")
    return int(k_c), (int(j_c) if num_reference else None)


def videos_plan(config, root: Path, freeze: Sequence[Clip], reference: Optional[Clip], generation: dict) -> Plan:
    """Freeze-time clips and/or a reference video (inputs a and b; docs/process.md)."""
    for clip in freeze:
        _check_count(clip.frames, "freeze-time video", config.min_frames)
    if reference is not None:
        _check_count(reference.frames, "reference video", config.min_frames)
    if freeze and reference is not None and freeze[0].frames.size != reference.frames.size:
        a, b = freeze[0].frames.size, reference.frames.size
        raise ProcessError(
            f"The freeze-time frames are {a[0]} x {a[1]} but the reference frames {b[0]} x {b[1]}: both videos must "
            "come from one camera (one size). Resize one of them."
        )
    num_freeze = sum(len(clip.frames) for clip in freeze)
    num_reference = len(reference.frames) if reference is not None else 0
    # One clip: its middle frame (`fourreal generate` extends its orbit both ways from the conditioning frame).
    # Several clips: the first clip's first frame (clips of one frozen moment, as DimensionX's chained camera moves,
    # each start from the conditioning image).
    default_freeze = num_freeze // 2 if len(freeze) == 1 else 0
    k_c, j_c = _canonical_indices(config, generation, num_freeze, num_reference, default_freeze)
    t_c = j_c / (num_reference - 1) if reference is not None else 0.0

    def relative(path: Path) -> str:
        return path.relative_to(root).as_posix()

    frames: List[PlannedFrame] = []
    clips: List[List[str]] = []
    k_c_clip: List[str] = []
    for clip in freeze:
        names = []
        for position, path in enumerate(clip.frames.files):
            k = len(frames)
            name = relative(path)
            frames.append(PlannedFrame(name, "freeze", t_c, k, k, pose_from=name, clip=clip.name,
                                       label=clip.frames.label(position) if clip.name else "",
                                       source_frame=_source_index(clip.frames, position)))
            names.append(name)
            if k == k_c:
                k_c_clip = names
        clips.append(names)
    reference_frames: List[PlannedFrame] = []
    sfm_reference: List[str] = []
    if reference is not None:
        for j, path in enumerate(reference.frames.files):
            reference_frames.append(PlannedFrame(
                relative(path), "reference", j / (num_reference - 1), 0, j, clip=reference.name,
                label=reference.frames.label(j) if reference.name else "",
                source_frame=_source_index(reference.frames, j)))
        if config.static_reference:
            count = min(config.reference_sfm_frames, num_reference)
            chosen = set(np.round(np.linspace(0, num_reference - 1, count)).astype(int).tolist()) | {j_c}
            sfm_reference = [reference_frames[j].file_path for j in sorted(chosen)]
        else:
            sfm_reference = [frame.file_path for frame in reference_frames]
            for frame in reference_frames:
                frame.pose_from = frame.file_path
    sfm_names = [f.file_path for f in frames] + sfm_reference
    frames += reference_frames
    if not freeze:  # a reference-only scene: its frames are the one clip SfM poses; freeze_frame names no frame
        return Plan(root=root, frames=frames, sfm_names=sfm_names,
                    canonical={"time": t_c, "freeze_frame": 0, "reference_frame": j_c}, generation=generation,
                    clips=[sfm_reference])
    # The reference frames are matched to the freeze frames around k_c (in k_c's clip).
    position = k_c_clip.index(frames[k_c].file_path)
    overlap = config.sequential_overlap
    near = k_c_clip[max(0, position - overlap):position + overlap + 1]
    extra = [(name, other) for name in sfm_reference for other in near]
    canonical = {"time": t_c, "freeze_frame": k_c, "reference_frame": j_c}
    chosen = config.canonical_freeze_frame is not None or "freeze_frame" in (generation.get("canonical") or {})
    return Plan(root=root, frames=frames, sfm_names=sfm_names, canonical=canonical, generation=generation,
                extra_pairs=extra, clips=clips, separate=[sfm_reference] if sfm_reference else [],
                canonical_is_default=reference is None and not chosen)


def _source_index(video: Video, position: int) -> Optional[int]:
    return video.source_indices[position] if position < len(video.source_indices) else None


def grid_plan(config, root: Path, grid: Grid, generation: dict) -> Plan:
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
# After SfM: bad clips, the shared reference pose, registration checks
# ----------------------------------------------------------------------------------------------------------------


def _frames_named(plan: Plan, names: Sequence[str], limit: int = 10) -> str:
    shown = [plan.label(name) for name in names[:limit]]
    return ", ".join(shown) + (" ..." if len(names) > limit else "")


def drop_bad_clips(plan: Plan, registered: Dict[str, np.ndarray], min_fraction: float) -> List[dict]:
    """Take freeze clips (of several) that SfM posed below `min_fraction` out of the plan; returns their report
    ({"clip", "frames", "registered", "registered_fraction"}). A bad clip holding the canonical freeze frame is an
    error that names it."""
    names = []
    for frame in plan.frames:
        if frame.video == "freeze" and frame.clip is not None and frame.clip not in names:
            names.append(frame.clip)
    if len(names) < 2:
        return []
    dropped = []
    for clip in names:
        frames = [f for f in plan.frames if f.video == "freeze" and f.clip == clip]
        posed = sum(1 for f in frames if f.pose_from in registered)
        fraction = posed / len(frames)
        if fraction >= min_fraction:
            continue
        canonical = next((f for f in frames if f.view == plan.canonical["freeze_frame"]), None)
        if canonical is not None:
            raise ProcessError(
                f"SfM posed only {posed} of the {len(frames)} frames of the clip {clip} ({fraction:.0%} < "
                f"--min-registered-fraction {min_fraction:.0%}), and {clip} holds the canonical freeze frame "
                f"{canonical.view} ({canonical.name}). Check that {clip} shows the same frozen moment as the other "
                "clips; leave it out, put a clip that registers first, or pick a frame of another clip with "
                "--canonical-freeze-frame."
            )
        dropped.append({"clip": clip, "frames": len(frames), "registered": posed,
                        "registered_fraction": round(fraction, 4),
                        "file_paths": [f.file_path for f in frames]})
    gone = {entry["clip"] for entry in dropped}
    kept = [clip for clip in names if clip not in gone]
    kept_frames = sum(1 for f in plan.frames if f.video == "freeze" and f.clip not in gone)
    if dropped and sum(entry["frames"] for entry in dropped) > kept_frames:
        raise ProcessError(
            f"SfM's model holds too few frames of {', '.join(sorted(gone))} (posed below --min-registered-fraction "
            f"{min_fraction:.0%}), which are more frames than the clips it did pose ({', '.join(kept)}): the clips "
            "do not make one model. Check that they show one frozen moment; leave out the ones that do not, or "
            "give them more frames or a larger size."
        )
    plan.removed = [f for f in plan.frames if f.video == "freeze" and f.clip in gone]
    plan.frames = [f for f in plan.frames if not (f.video == "freeze" and f.clip in gone)]
    plan.dropped_clips = dropped
    return dropped


def settle_canonical(plan: Plan, registered: Dict[str, np.ndarray]) -> Optional[str]:
    """A static scene's default canonical freeze frame that SfM could not pose is replaced by the posed frame of its
    clip nearest to it (a static scene has no reference frame it must match; a frame the user chose, or one of a
    scene with a reference video, is never moved). Returns a note saying so, or None."""
    k_c = plan.canonical["freeze_frame"]
    frames = {f.view: f for f in plan.frames if f.video == "freeze"}
    if not plan.canonical_is_default or k_c not in frames or frames[k_c].pose_from in registered:
        return None
    clip = frames[k_c].clip
    posed = [f for f in frames.values() if f.clip == clip and f.pose_from in registered]
    if not posed:
        return None  # check_registration reports the lost canonical frame
    best = min(posed, key=lambda f: (abs(f.view - k_c), f.view))
    plan.canonical["freeze_frame"] = best.view
    return (f"the default canonical freeze frame {k_c} ({frames[k_c].name}) could not be posed; frame {best.view} "
            f"({best.name}), the nearest posed one, is canonical instead (choose with --canonical-freeze-frame)")


def assign_reference_pose(plan: Plan, registered: Dict[str, np.ndarray]) -> Optional[str]:
    """Static reference camera: every reference frame takes one registered reference frame's pose."""
    reference = [f for f in plan.frames if f.video == "reference"]
    if not reference or reference[0].pose_from:
        return None
    j_c = int(plan.canonical["reference_frame"])
    candidates = [f for f in reference if f.file_path in registered]
    if not candidates:
        tried = [name for name in plan.sfm_names if name.startswith("images/reference/")]
        raise ProcessError(
            f"None of the {len(tried)} reference frames given to SfM ({_frames_named(plan, tried, 4)}) could be "
            "posed: the reference camera must see the scene the freeze-time video shows. Check the videos belong "
            "together."
        )
    chosen = min(candidates, key=lambda f: abs(f.index - j_c)).file_path
    for frame in reference:
        frame.pose_from = chosen
    return chosen


def check_registration(plan: Plan, registered: Dict[str, np.ndarray], min_fraction: float) -> None:
    """The canonical frame must be posed, and `min_fraction` of the frames SfM poses one by one."""
    grid = any(f.video == "grid" for f in plan.frames)
    only_reference = plan.reference_only
    own = [f for f in plan.frames if (f.video == "reference") == only_reference]
    anchors = {f.pose_from for f in own}
    lost = sorted(anchors - set(registered))
    if only_reference:
        canonical = next(f for f in own if f.index == plan.canonical["reference_frame"])
        what, option = "reference frame", "--canonical-reference-frame"
    else:
        canonical = next(f for f in own if f.view == plan.canonical["freeze_frame"]
                         and (not grid or f.index == plan.canonical["reference_frame"]))
        what = "view" if grid else "freeze frame"
        option = "--grid-reference-view" if grid else "--canonical-freeze-frame"
    if canonical.pose_from not in registered:
        raise ProcessError(
            f"SfM could not pose the canonical {what} ({plan.label(canonical.pose_from)}): the scene's canonical "
            f"camera is lost. Choose another with {option}, or give sharper, more overlapping frames (and see "
            "--matcher)."
        )
    fraction = 1.0 - len(lost) / len(anchors)
    if fraction < min_fraction:
        raise ProcessError(
            f"SfM posed only {len(anchors) - len(lost)} of {len(anchors)} {what}s ({fraction:.0%} < "
            f"--min-registered-fraction {min_fraction:.0%}); not posed: {_frames_named(plan, lost)}. Give more "
            "overlapping or sharper frames, try --matcher exhaustive, or lower --min-registered-fraction."
        )
    if not grid and not only_reference and any(f.video == "reference" for f in plan.frames) and not any(
            f.pose_from in registered for f in plan.frames if f.video == "reference"):
        raise ProcessError("SfM could not pose any reference frame: the reference camera must see the scene the "
                           "freeze-time video shows.")
