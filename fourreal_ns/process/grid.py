"""4Real-Video grids: a time x view grid of frames as one folder of the scene (`images/grid/`).

4Real-Video (paper 002) generates a grid of video frames: each column holds the frames of one viewpoint over time,
each row the frames of one time from every viewpoint (a freeze-time video). Its first row is a fixed-view
(reference) video and its first column a freeze-time video. Poses of such a grid come from ONE time (a row: a
freeze-time video, where structure from motion sees a static scene); every view keeps its pose at all times.

Accepted layouts of the grid folder DIR:
1. one entry per view, sorted by name (digits compared as numbers): each a video file or a folder of frames,
   holding the same number T of frames (the times, in order), for example `DIR/view_00.mp4`, `DIR/view_01.mp4`, ...
   or `DIR/cam0/000.png ...`, `DIR/cam1/000.png ...`;
2. flat image files named by view and time (case-insensitive, `_` or `-` between the parts, integers with or
   without leading zeros): `v{view}_t{time}.png`, `view{view}_time{time}.png`, `t{time}_v{view}.png` or
   `time{time}_view{view}.png` (.png, .jpg, .jpeg). Every (view, time) pair must be present; views and times are
   numbered in sorted order from 0, whatever numbers the files carry.

Frames are written as `images/grid/v{view:03d}_t{time:03d}.png`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from fourreal_ns.process import ProcessError
from fourreal_ns.process.video_io import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, decode_to_folder, natural_key,
                                          read_image)

GRID_NAME = "v{view:03d}_t{time:03d}.png"
"""File names of grid frames in the scene folder."""
_FLAT_PATTERNS = (
    re.compile(r"^v(?:iew)?[_-]?(?P<view>\d+)[_-]t(?:ime)?[_-]?(?P<time>\d+)$", re.IGNORECASE),
    re.compile(r"^t(?:ime)?[_-]?(?P<time>\d+)[_-]v(?:iew)?[_-]?(?P<view>\d+)$", re.IGNORECASE),
)


@dataclass
class Grid:
    """A staged grid: `files[view][time]` image files of one size."""

    source: Path
    files: List[List[Path]]
    size: Tuple[int, int]
    """(width, height) in pixels."""

    @property
    def num_views(self) -> int:
        return len(self.files)

    @property
    def num_times(self) -> int:
        return len(self.files[0])

    def time(self, index: int) -> float:
        """Normalised time of the time index: t / (T - 1)."""
        return index / (self.num_times - 1)


def parse_flat_name(name: str) -> Optional[Tuple[int, int]]:
    """(view, time) of a flat grid file name such as `v3_t05.png`; None if the name has no such pattern."""
    stem = Path(name).stem
    for pattern in _FLAT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return int(match.group("view")), int(match.group("time"))
    return None


def _flat_layout(folder: Path, images: List[Path]) -> List[List[Path]]:
    """files[view][time] of a flat grid folder."""
    cells: Dict[Tuple[int, int], Path] = {}
    unnamed = []
    for path in images:
        key = parse_flat_name(path.name)
        if key is None:
            unnamed.append(path.name)
        elif key in cells:
            raise ProcessError(
                f"Grid {folder}: {cells[key].name} and {path.name} are both view {key[0]}, time {key[1]}. Keep one.")
        else:
            cells[key] = path
    if unnamed:
        raise ProcessError(
            f"Grid {folder}: cannot tell view and time of {', '.join(sorted(unnamed)[:5])}"
            f"{' ...' if len(unnamed) > 5 else ''}. Name flat grid frames v{{view}}_t{{time}}.png (or "
            "t{time}_v{view}.png), or put one folder or video per view in the grid folder (docs/process.md)."
        )
    views = sorted({view for view, _ in cells})
    times = sorted({time for _, time in cells})
    missing = [f"v{v}_t{t}" for v in views for t in times if (v, t) not in cells]
    if missing:
        raise ProcessError(
            f"Grid {folder}: the grid has views {views[0]}..{views[-1]} and times {times[0]}..{times[-1]} but "
            f"lacks {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}. Every view needs a frame at every "
            "time: add the missing frames or remove the incomplete view or time."
        )
    return [[cells[(view, time)] for time in times] for view in views]


def stage_grid(source: Path, dest: Path, progress=None, min_views: int = 2) -> Grid:
    """Read the grid folder `source` (either layout) and write its frames to `dest` as v{view}_t{time}.png."""
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise ProcessError(
            f"The grid {source} is not a folder. Give a folder with one video or frame folder per view, or with "
            "frames named v{view}_t{time}.png (docs/process.md)."
        )
    entries = sorted(source.iterdir(), key=lambda p: natural_key(p.name))
    per_view = [p for p in entries if p.is_dir() or (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)]
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if per_view and images:
        raise ProcessError(
            f"Grid {source} mixes image files ({images[0].name}) with per-view folders or videos "
            f"({per_view[0].name}). Use one layout: one folder/video per view, or flat v{{view}}_t{{time}}.png files."
        )
    if not per_view and not images:
        raise ProcessError(
            f"The grid {source} is empty (no sub-folders, videos or images). Put one video or frame folder per view "
            "in it, or frames named v{view}_t{time}.png."
        )
    dest.mkdir(parents=True, exist_ok=True)
    first = None
    files: List[List[Path]] = []
    if per_view:
        for view, entry in enumerate(per_view):
            video = decode_to_folder(entry, dest, f"grid view {view} ({entry.name})", progress, first,
                                     pattern=f"v{view:03d}_t{{index:03d}}.png")
            first = first or (video.files[0], video.size)
            if files and len(video) != len(files[0]):
                raise ProcessError(
                    f"Grid {source}: view {view} ({entry.name}) has {len(video)} frames but view 0 "
                    f"({per_view[0].name}) has {len(files[0])}. Every view needs one frame per time: trim the views "
                    "to the same length."
                )
            files.append(video.files)
    else:
        from PIL import Image

        layout = _flat_layout(source, images)
        task = None if progress is None else progress.add_task("Reading the grid", total=sum(map(len, layout)))
        for view, column in enumerate(layout):
            staged = []
            for time, path in enumerate(column):
                image = read_image(path)
                size = (int(image.shape[1]), int(image.shape[0]))
                if first is None:
                    first = (path, size)
                elif size != first[1]:
                    raise ProcessError(
                        f"{path} is {size[0]} x {size[1]} pixels but {first[0]} is {first[1][0]} x {first[1][1]}: "
                        "all grid frames must share one size. Resize them to one size and run again."
                    )
                out = dest / GRID_NAME.format(view=view, time=time)
                Image.fromarray(image).save(out, format="PNG")
                staged.append(out)
                if progress is not None:
                    progress.advance(task)
            files.append(staged)
    if len(files) < min_views:
        raise ProcessError(
            f"The grid {source} has {len(files)} view(s); at least {min_views} are needed (--min-frames) to recover "
            "camera poses by structure from motion."
        )
    if len(files[0]) < 2:
        raise ProcessError(f"The grid {source} has one time only; a grid needs at least 2 times (frames per view).")
    assert first is not None
    return Grid(source=source, files=files, size=first[1])
