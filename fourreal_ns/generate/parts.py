"""Resumable generation: `generation.json` and the finished parts of a scene folder.

Generation is split into parts (the reference video, the first freeze-time clip, each extension step, the assembled
freeze-time video). Each part's frames are written to a temporary folder beside their destination and moved into
place with one `os.replace` once every frame is written; only then is the part's name added to the `completed` list
of `generation.json`, which is itself rewritten atomically (temporary file + `os.replace`). So an interrupted run
never leaves a part that looks finished: a folder whose part is not in `completed` is stale and is regenerated.

`generation.json` also records the settings that determine the frames (prompt, seeds, models, sizes, ...). Running
again with the same settings resumes; with different settings it stops with an error rather than mixing two scenes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.data.json_reader import read_json_object

GENERATION_FILE = "generation.json"
PARTS_FOLDER = "generation_parts"
"""Frames of the freeze-time clip and of each extension step, kept so that a resumed run can reuse them."""


def frame_name(index: int) -> str:
    return f"{index:05d}.png"


def write_frames_atomic(folder: Path, frames: np.ndarray) -> None:
    """Write `frames` [F, H, W, 3] uint8 as folder/00000.png ... into a temporary folder, then move it into place."""
    from PIL import Image

    folder = Path(folder)
    temporary = folder.with_name(f".{folder.name}.tmp")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(temporary / frame_name(index), format="PNG")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)


def read_frames(folder: Path) -> np.ndarray:
    """The PNG frames of `folder` in name order as [F, H, W, 3] uint8."""
    from PIL import Image

    files = sorted(Path(folder).glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no frames")
    return np.stack([np.asarray(Image.open(file).convert("RGB")) for file in files])


class GenerationRecord:
    """`SCENE/generation.json`: settings, metadata and the list of completed parts, saved after every change."""

    def __init__(self, scene: Path, content: Dict[str, object]) -> None:
        self.scene = Path(scene)
        self.content = content

    @property
    def path(self) -> Path:
        return self.scene / GENERATION_FILE

    @classmethod
    def read(cls, scene: Path) -> Optional["GenerationRecord"]:
        path = Path(scene) / GENERATION_FILE
        if not path.exists():
            return None
        return cls(scene, read_json_object(path, "Pass --overwrite to generate again."))

    @property
    def completed(self) -> List[str]:
        return list(self.content.setdefault("completed", []))

    def is_done(self, part: str) -> bool:
        return part in self.completed

    def mark_done(self, part: str) -> None:
        if part not in self.completed:
            self.content["completed"] = self.completed + [part]
        self.save()

    def update(self, **values: object) -> None:
        self.content.update(values)
        self.save()

    def save(self) -> None:
        self.scene.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.content)


def part_folder(scene: Path, part: str) -> Path:
    return Path(scene) / PARTS_FOLDER / part
