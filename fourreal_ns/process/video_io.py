"""Reading the input videos: video files (decoded with PyAV) or folders of frames (PIL), as numbered RGB PNGs.

A video is either
- a video file (`.mp4`, `.mov`, `.mkv`, `.avi`, `.webm`, `.m4v`, `.gif`): the frames of its first video stream,
  in decoding order, converted to 8-bit RGB; or
- a folder of frames (`.png`, `.jpg`, `.jpeg`, any case), sorted by name with runs of digits compared as numbers
  (`frame_2.png` before `frame_10.png`); other files in the folder are ignored, sub-folders too.

`Sampling` picks which frames are kept and at what size, while decoding (nothing is written for a skipped frame, and
frames are resized in memory):
- `num_frames` N: N frames evenly spread over the video, the first and the last always among them. A video file's
  header may lack or misstate its frame count, so the frames are counted by decoding them first (a pass without
  colour conversion: about 0.8 s for 296 frames of 1280 x 854 on two cores);
- `fps` F: one frame per 1/F seconds of the video's own timestamps, from the first frame on (a frame folder has no
  timestamps: `input_fps` gives its rate);
- `max_size` PX: frames whose longer side exceeds PX are downscaled (Lanczos, aspect kept, sides rounded) so that
  it is PX; with a second destination the chosen frames are also written at full resolution.

All frames of a scene share one camera (one size, compared before any resizing): a frame of another size is an
error that names the user's file (`woman.mp4 (frame 37)` for a video). Each error says what to do; nothing here
writes anywhere but the destination folders it is given, and the inputs are only read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set, Tuple

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
    """(width, height) of `files` in pixels (after any --max-size downscaling)."""
    source_indices: List[int] = field(default_factory=list)
    """Index in the input (frame of the video, or position in the sorted frame folder) of each file."""
    source_size: Optional[Tuple[int, int]] = None
    """(width, height) of the input's frames before downscaling (None: `size`)."""
    source_frames: Optional[int] = None
    """Frames the input holds (decoded and counted, not the header's claim); None where not counted."""
    source_fps: Optional[float] = None
    """The video file's frame rate (or --input-fps of a frame folder); None where unknown."""
    full_files: List[Path] = field(default_factory=list)
    """Full-resolution copies of `files` (--keep-full-resolution), else empty."""
    labels: List[str] = field(default_factory=list)
    """A name for each frame the user recognises: `woman.mp4 (frame 37)`, `frames/0037.png`."""

    def __len__(self) -> int:
        return len(self.files)

    def label(self, position: int) -> str:
        """The user's name for the `position`-th kept frame."""
        if position < len(self.labels):
            return self.labels[position]
        return f"{self.source.name}/{self.files[position].name}"


@dataclass
class Sampling:
    """Which frames of each input are kept and how large they are (`fourreal process --num-frames / --fps /
    --input-fps / --max-size`); the defaults keep every frame at its size."""

    num_frames: Optional[int] = None
    """Keep this many frames, evenly spread over the video (first and last kept)."""
    fps: Optional[float] = None
    """Keep one frame per 1/fps seconds of the video."""
    input_fps: Optional[float] = None
    """The frame rate of frame folders (they carry no timestamps), for `fps`."""
    max_size: Optional[int] = None
    """Downscale frames whose longer side is larger than this many pixels."""

    def check(self) -> None:
        """Reject impossible settings with the option's name and the fix."""
        if self.num_frames is not None and self.fps is not None:
            raise ProcessError("Give either --num-frames or --fps, not both: both choose which frames are kept.")
        if self.num_frames is not None and self.num_frames < 2:
            raise ProcessError(f"--num-frames {self.num_frames}: keep at least 2 frames per video.")
        for name, value in (("--fps", self.fps), ("--input-fps", self.input_fps)):
            if value is not None and not value > 0:
                raise ProcessError(f"{name} {value}: give a positive frame rate (frames per second).")
        if self.max_size is not None and self.max_size < 16:
            raise ProcessError(f"--max-size {self.max_size}: give the longest side in pixels, at least 16.")

    def to_json(self) -> dict:
        return {"num_frames": self.num_frames, "fps": self.fps, "input_fps": self.input_fps,
                "max_size": self.max_size}


def capped_size(size: Tuple[int, int], max_size: Optional[int]) -> Tuple[int, int]:
    """(width, height) with the longer side at most `max_size` (aspect kept, sides rounded, at least 1)."""
    width, height = size
    if max_size is None or max(width, height) <= max_size:
        return size
    scale = max_size / max(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def evenly_spread(count: int, wanted: int) -> List[int]:
    """`wanted` indices of 0..count-1, evenly spread, first and last included (all of them if count <= wanted)."""
    if wanted >= count:
        return list(range(count))
    return sorted({int(round(x)) for x in np.linspace(0, count - 1, wanted)})


class RateSampler:
    """Keeps one frame per 1/fps seconds: the first frame at or after each multiple of 1/fps from the first."""

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps
        self.next: Optional[float] = None

    def keep(self, seconds: float) -> bool:
        if self.next is None:
            self.next = seconds + self.step
            return True
        if seconds + 1e-6 < self.next:
            return False
        while self.next <= seconds + 1e-6:
            self.next += self.step
        return True


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


def _video_frame_rate(path: Path) -> Optional[float]:
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
            return float(rate) if rate else None
    except Exception:  # reported by `_decoded_frames`
        return None


def _decoded_frames(path: Path, label: str) -> Iterator:
    """PyAV frames of a video file's first video stream (not yet converted: skipped frames cost decoding only)."""
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
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame
        except av.FFmpegError as error:
            raise ProcessError(
                f"The {label} {path} is damaged: decoding failed ({type(error).__name__}: {error}). Re-encode or "
                "re-download it, or pass a folder of its frames."
            ) from None


def iter_video_frames(path: Path, label: str) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of a video file's first video stream, decoded with PyAV."""
    for frame in _decoded_frames(path, label):
        yield frame.to_ndarray(format="rgb24")


def count_video_frames(path: Path, label: str, progress=None) -> int:
    """The frames of a video file, counted by decoding them (container headers may lack or misstate the count)."""
    task = _task(progress, f"Counting the frames of {Path(path).name}", video_frame_count(path))
    count = 0
    for _ in _decoded_frames(path, label):
        count += 1
        if progress is not None:
            progress.advance(task)
    if progress is not None:
        progress.update(task, total=max(count, 1), completed=max(count, 1))
    return count


def _size_error(path, size: Tuple[int, int], first, first_size: Tuple[int, int]) -> ProcessError:
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


def _check_source(source: Path, label: str) -> None:
    if not source.exists():
        raise ProcessError(f"The {label} {source} does not exist. Give a video file or a folder of frames.")
    if source.is_file() and source.suffix.lower() not in VIDEO_SUFFIXES:
        raise ProcessError(
            f"The {label} {source} is neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames. "
            "Pass a video file or a folder of .png / .jpg frames."
        )


def _folder_choice(files: Sequence[Path], source: Path, sampling: Sampling) -> List[int]:
    """Which frames of a frame folder are kept."""
    if sampling.num_frames is not None:
        return evenly_spread(len(files), sampling.num_frames)
    if sampling.fps is not None:
        if sampling.input_fps is None:
            raise ProcessError(
                f"--fps {sampling.fps} needs the frame rate of the frame folder {source} (frames carry no time): "
                "pass --input-fps RATE, or use --num-frames N instead."
            )
        sampler = RateSampler(sampling.fps)
        return [index for index in range(len(files)) if sampler.keep(index / sampling.input_fps)]
    return list(range(len(files)))


def decode_to_folder(source: Path, dest: Path, label: str, progress=None,
                     first: Optional[Tuple[object, Tuple[int, int]]] = None, pattern: str = FRAME_NAME,
                     sampling: Optional[Sampling] = None, full_dest: Optional[Path] = None, start: int = 0) -> Video:
    """Write the chosen frames of `source` (video file or frame folder) to `dest` as 00000.png, 00001.png, ...

    `label` names the input in messages ("freeze-time video"); `progress` is an optional rich Progress; `first`:
    (name, size) every frame must match before resizing (the first frame of an earlier video of the same scene);
    `pattern`: the file names, with `{index}` the written frame's number, counted from `start`; `sampling`: which
    frames and what size (module docstring); `full_dest`: where full-resolution copies go (same names)."""
    from PIL import Image

    source, dest = Path(source), Path(dest)
    sampling = sampling or Sampling()
    _check_source(source, label)
    dest.mkdir(parents=True, exist_ok=True)
    if full_dest is not None:
        full_dest.mkdir(parents=True, exist_ok=True)
    wanted: Optional[Set[int]] = None
    sampler = RateSampler(sampling.fps) if sampling.fps is not None else None
    fps: Optional[float] = None
    if source.is_dir():
        inputs = list_frame_files(source, label)
        chosen = _folder_choice(inputs, source, sampling)
        frames = ((index, inputs[index], None) for index in chosen)
        total: Optional[int] = len(chosen)
        counted: Optional[int] = len(inputs)
        fps, sampler = sampling.input_fps, None
    else:
        fps = _video_frame_rate(source)
        counted = None
        if sampling.num_frames is not None:
            counted = count_video_frames(source, label, progress)
            wanted = set(evenly_spread(counted, sampling.num_frames))
        frames = ((index, source, frame) for index, frame in enumerate(_decoded_frames(source, label)))
        total = counted if counted is not None else video_frame_count(source)
    task = _task(progress, f"Reading {source.name}", total)
    files: List[Path] = []
    full_files: List[Path] = []
    indices: List[int] = []
    labels: List[str] = []
    out_size: Optional[Tuple[int, int]] = None
    decoded = 0
    for index, origin, frame in frames:
        decoded += 1
        if progress is not None:
            progress.advance(task)
        if frame is not None:  # a video frame: keep it?
            if wanted is not None and index not in wanted:
                continue
            if sampler is not None:
                seconds = frame.time if frame.time is not None else index / (fps or 1.0)
                if not sampler.keep(float(seconds)):
                    continue
            image = frame.to_ndarray(format="rgb24")
            where = f"{source} (frame {index})"
            name = f"{source.name} (frame {index})"
        else:
            image = read_image(origin)
            where, name = origin, f"{source.name}/{origin.name}"
        size = (int(image.shape[1]), int(image.shape[0]))
        if first is None:
            first = (where, size)
        elif size != first[1]:
            raise _size_error(where, size, *first)
        target = capped_size(size, sampling.max_size)
        out_size = out_size or target
        picture = Image.fromarray(image)
        file_name = pattern.format(index=start + len(files))
        if full_dest is not None:  # fast compression: full-size PNGs cost 0.25 s each at the default level
            picture.save(full_dest / file_name, format="PNG", compress_level=1)
            full_files.append(full_dest / file_name)
        if target != size:
            picture = picture.resize(target, Image.LANCZOS)
        picture.save(dest / file_name, format="PNG")
        files.append(dest / file_name)
        indices.append(index)
        labels.append(name)
    if progress is not None:
        progress.update(task, total=max(decoded, 1), completed=max(decoded, 1))
    if not files:
        raise ProcessError(f"The {label} {source} holds no frames. Pass a video with frames in it.")
    assert first is not None and out_size is not None
    return Video(source=source, files=files, size=out_size, source_indices=indices, source_size=first[1],
                 source_frames=counted if counted is not None else decoded,
                 source_fps=fps, full_files=full_files, labels=labels)


def read_frame_folder(folder: Path, label: str, first: Optional[Tuple[Path, Tuple[int, int]]] = None) -> Video:
    """The frames of a folder, in place (nothing is copied): names sorted, sizes checked."""
    files = list_frame_files(folder, label)
    size = check_sizes(files, first)
    return Video(source=Path(folder), files=files, size=size)
