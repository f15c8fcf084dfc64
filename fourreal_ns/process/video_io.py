"""Reading the input videos: video files (decoded with PyAV) or folders of frames (PIL), as numbered RGB PNGs.

A video is either
- a video file (`.mp4`, `.mov`, `.mkv`, `.avi`, `.webm`, `.m4v`, `.gif`): every frame of its first video stream,
  in decoding order, converted to 8-bit RGB; or
- a folder of frames (`.png`, `.jpg`, `.jpeg`, any case), sorted by name with runs of digits compared as numbers
  (`frame_2.png` before `frame_10.png`); other files in the folder are ignored, sub-folders too.

All frames of a scene share one camera (one size): a frame of another size is an error that names the file. Each
error says what to do; nothing here writes anywhere but the destination folder it is given, and the inputs are only
read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from fourreal_ns.process import ProcessError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")
FRAME_NAME = "{index:05d}.png"
"""How decoded frames are named in the scene folder: 00000.png, 00001.png, ..."""


@dataclass
class Video:
    """The frames of one input video, as image files (in time order) of one size."""

    source: Path
    """The file or folder the frames came from."""
    files: List[Path]
    size: Tuple[int, int]
    """(width, height) in pixels."""

    def __len__(self) -> int:
        return len(self.files)


def natural_key(name: str) -> list:
    """Sort key comparing runs of digits as numbers: frame_2 < frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def is_video_file(path: Path) -> bool:
    return Path(path).is_file() and Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_frame_files(folder: Path, label: str) -> List[Path]:
    """The image files of a frame folder in name order; an error if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProcessError(f"The {label} {folder} is not a folder.")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:5]
        found = f" (it holds {', '.join(others)}{', ...' if len(others) == 5 else ''})" if others else " (it is empty)"
        raise ProcessError(
            f"The {label} {folder} has no frames{found}. Put the frames there as "
            f"{', '.join(IMAGE_SUFFIXES)} files (sorted by name), or pass a video file instead."
        )
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (alpha dropped, greyscale expanded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ProcessError(
            f"{path} is not a readable image ({error}). Replace or remove the file.") from None


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height) of an image file, read from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ProcessError(f"{path} is not a readable image ({error}). Replace or remove the file.") from None


def video_frame_count(path: Path) -> Optional[int]:
    """The frame count a video file's header announces (None where it does not say)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            frames = int(container.streams.video[0].frames or 0)
            return frames or None
    except Exception:  # decoding errors are reported by `iter_video_frames`
        return None


def iter_video_frames(path: Path, label: str) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of a video file's first video stream, decoded with PyAV."""
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise ProcessError(
            f"The {label} {path} could not be opened as a video ({type(error).__name__}: {error}). Check that it is "
            "a complete video file (mp4, mov, mkv, webm, ...), or pass a folder of its frames instead."
        ) from None
    with container:
        if not container.streams.video:
            raise ProcessError(f"The {label} {path} has no video stream. Pass a video file or a folder of frames.")
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise ProcessError(
                f"The {label} {path} is damaged: decoding failed ({type(error).__name__}: {error}). Re-encode or "
                "re-download it, or pass a folder of its frames."
            ) from None


def _size_error(path: Path, size: Tuple[int, int], first: Path, first_size: Tuple[int, int]) -> ProcessError:
    return ProcessError(
        f"{path} is {size[0]} x {size[1]} pixels but {first} is {first_size[0]} x {first_size[1]}: all frames of a "
        f"scene come from one camera and must share one size. Resize the frames to one size (for example "
        f"`ffmpeg -i IN -vf scale={first_size[0]}:{first_size[1]} OUT`) and run again."
    )


def check_sizes(files: List[Path], first: Optional[Tuple[Path, Tuple[int, int]]] = None) -> Tuple[int, int]:
    """The common (width, height) of image files, read from their headers; an error naming the odd one out.
    `first`: (file, size) that the files must match (an earlier video of the same scene)."""
    for path in files:
        size = image_size(path)
        if first is None:
            first = (path, size)
        elif size != first[1]:
            raise _size_error(path, size, *first)
    assert first is not None
    return first[1]


def _task(progress, description: str, total: Optional[int]):
    return None if progress is None else progress.add_task(description, total=total)


def decode_to_folder(source: Path, dest: Path, label: str, progress=None,
                     first: Optional[Tuple[Path, Tuple[int, int]]] = None, pattern: str = FRAME_NAME) -> Video:
    """Write the frames of `source` (video file or frame folder) to `dest` as 00000.png, 00001.png, ...

    `label` names the input in messages ("freeze-time video"); `progress` is an optional rich Progress; `first`:
    (file, size) every frame must match (the first frame of an earlier video of the same scene); `pattern`: the
    file names, with `{index}` the frame's index."""
    from PIL import Image

    source, dest = Path(source), Path(dest)
    if not source.exists():
        raise ProcessError(f"The {label} {source} does not exist. Give a video file or a folder of frames.")
    if source.is_file() and source.suffix.lower() not in VIDEO_SUFFIXES:
        raise ProcessError(
            f"The {label} {source} is neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames. "
            "Pass a video file or a folder of .png / .jpg frames."
        )
    dest.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        inputs = list_frame_files(source, label)
        frames = ((path, read_image(path)) for path in inputs)
        total: Optional[int] = len(inputs)
    else:
        frames = ((source, image) for image in iter_video_frames(source, label))
        total = video_frame_count(source)
    task = _task(progress, f"Reading the {label}", total)
    files: List[Path] = []
    for index, (origin, image) in enumerate(frames):
        size = (int(image.shape[1]), int(image.shape[0]))
        where = origin if source.is_dir() else Path(f"{source} (frame {index})")
        if first is None:
            first = (where, size)
        elif size != first[1]:
            raise _size_error(where, size, *first)
        path = dest / pattern.format(index=index)
        Image.fromarray(image).save(path, format="PNG")
        files.append(path)
        if progress is not None:
            progress.advance(task)
    if progress is not None:
        progress.update(task, total=len(files), completed=len(files))
    if not files:
        raise ProcessError(f"The {label} {source} holds no frames. Pass a video with frames in it.")
    assert first is not None
    return Video(source=source, files=files, size=first[1])


def read_frame_folder(folder: Path, label: str, first: Optional[Tuple[Path, Tuple[int, int]]] = None) -> Video:
    """The frames of a folder, in place (nothing is copied): names sorted, sizes checked."""
    files = list_frame_files(folder, label)
    size = check_sizes(files, first)
    return Video(source=Path(folder), files=files, size=size)
