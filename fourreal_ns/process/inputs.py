"""The `--freeze` / `--reference` inputs of `fourreal process`: which clips they name, and staging their frames.

`--freeze` takes one or more paths (`--freeze A B` or `--freeze A --freeze B`); each is
- a video file: one clip;
- a folder of frames (it holds .png / .jpg files): one clip;
- a folder of videos (video files and no images): one clip per video file, sorted by name (digits as numbers).

A clip is named by its file or folder name (`orbit_a.mp4`), which every one of its frames carries as `clip` in
transforms.json; two clips of one name are an error. Freeze frames are written as one numbered sequence over all
clips (images/freeze/00000.png ..., clip after clip), so their `view` values stay unique.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from fourreal_ns.process import ProcessError
from fourreal_ns.process.plan import Clip
from fourreal_ns.process.video_io import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, Sampling, decode_to_folder,
                                          natural_key)


def flatten_paths(value) -> List[Path]:
    """The paths of a `--freeze` value: tyro gives a list of tuples (one per `--freeze`), Python callers may give
    a path, or a list of paths."""
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [Path(value)]
    paths: List[Path] = []
    for item in value:
        paths.extend(flatten_paths(item))
    return paths


def _videos_in(folder: Path) -> List[Path]:
    """The video files of a folder that holds no images (a folder of clips); [] for a frame folder."""
    entries = [p for p in folder.iterdir() if p.is_file()]
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
        return []
    return sorted((p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES), key=lambda p: natural_key(p.name))


def expand_clips(paths: Iterable[Path]) -> List[Path]:
    """Each path as one clip, a folder of videos as one clip per video file."""
    clips: List[Path] = []
    for path in paths:
        path = Path(path)
        videos = _videos_in(path) if path.is_dir() else []
        clips.extend(videos or [path])
    names = {}
    for clip in clips:
        if clip.name in names:
            raise ProcessError(
                f"Two clips are named {clip.name} ({names[clip.name]} and {clip}): each clip is known by its file "
                "name (the frames' `clip` in transforms.json). Rename one of them."
            )
        names[clip.name] = clip
    return clips


def single_video(path: Path, option: str) -> Path:
    """A `--reference` path: one video file or frame folder (a folder of several videos is an error)."""
    path = Path(path)
    videos = _videos_in(path) if path.is_dir() else []
    if videos:
        raise ProcessError(
            f"{option} {path} is a folder of {len(videos)} video file(s) ({videos[0].name}, ...), not a folder of "
            f"frames: {option} takes one video. Pass the video file itself."
        )
    return path


def stage_freeze(paths: List[Path], dest: Path, progress, sampling: Sampling,
                 full_dest: Optional[Path]) -> List[Clip]:
    """Decode every freeze clip into `dest` as one numbered sequence; all frames must share one size."""
    clips: List[Clip] = []
    first: Optional[Tuple[object, Tuple[int, int]]] = None
    start = 0
    for path in paths:
        label = "freeze-time video" if len(paths) == 1 else "freeze-time clip"
        video = decode_to_folder(path, dest, label, progress, first=first, sampling=sampling, full_dest=full_dest,
                                 start=start)
        first = first or (_first_name(video), video.source_size or video.size)
        start += len(video)
        clips.append(Clip(name=path.name, frames=video))
    return clips


def stage_reference(path: Path, dest: Path, progress, sampling: Sampling, full_dest: Optional[Path],
                    freeze: List[Clip]) -> Clip:
    """Decode the reference video into `dest`; its frames must have the freeze frames' size."""
    first = None
    if freeze:
        video = freeze[0].frames
        first = (_first_name(video), video.source_size or video.size)
    video = decode_to_folder(path, dest, "reference video", progress, first=first, sampling=sampling,
                             full_dest=full_dest)
    return Clip(name=Path(path).name, frames=video)


def _first_name(video) -> str:
    """How messages name the first frame of a staged video: the user's file (not the scratch copy)."""
    if video.source.is_dir():
        return str(video.source / video.labels[0].split("/", 1)[1]) if video.labels else str(video.source)
    return f"{video.source} (frame {video.source_indices[0] if video.source_indices else 0})"
