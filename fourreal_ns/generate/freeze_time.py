"""The freeze-time video (4Real paper, section 3.2): conditioned on the canonical reference frame, then extended
autoregressively forward and backward ("Extending view coverage").

1. First clip: the video model generates `clip_frames - 1` frames after the known canonical reference frame I_c
   (image-to-video with the freeze-time prompt). Frame 0 of the clip is I_c itself, written as given: the model's
   decode of a clean latent is only close to it, and the scene format asks that freeze frame k_c *is* the reference
   frame j_c.
2. Forward extension: each step conditions on exactly the previous `context_frames` (8) frames of the sequence and
   generates `new_per_step` (8) frames that continue the camera trajectory.
3. Backward extension: the same on the time-reversed sequence (the camera then circles the other way), its new
   frames prepended in reverse order.
4. Steps are added until the sequence covers the requested arc (`arc_degrees`, default 180, assuming the model
   moves the camera `degrees_per_frame` per frame) or frame count; forward gets the extra step when the count is odd.

The canonical freeze frame k_c is the position of the conditioning frame in the final sequence: the number of
frames the backward extension prepended.

Every part (the clip, each step) is stored and recorded as it finishes (`fourreal_ns.generate.parts`), so an
interrupted run resumes after the last finished part, with the same seeds and hence the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from fourreal_ns.generate.parts import GenerationRecord, part_folder, read_frames, write_frames_atomic
from fourreal_ns.generate.video_models import StepCallback, VideoGenerator

CLIP_PART = "freeze_clip"


@dataclass(frozen=True)
class ExtensionPlan:
    """How many frames the first clip and each extension step make, and how many steps go each way."""

    clip_frames: int
    """Frames of the first clip, the conditioning frame included."""
    context_frames: int
    """Known frames of each extension step (paper: the 8 previously generated frames)."""
    new_per_step: int
    """Frames each extension step adds (paper: 8)."""
    forward_steps: int
    backward_steps: int

    @property
    def num_frames(self) -> int:
        return self.clip_frames + (self.forward_steps + self.backward_steps) * self.new_per_step

    @property
    def canonical_index(self) -> int:
        """k_c: the conditioning frame's index in the final sequence."""
        return self.backward_steps * self.new_per_step

    def forward_parts(self) -> List[str]:
        return [f"forward_{step:02d}" for step in range(1, self.forward_steps + 1)]

    def backward_parts(self) -> List[str]:
        return [f"backward_{step:02d}" for step in range(1, self.backward_steps + 1)]

    def parts(self) -> List[str]:
        return [CLIP_PART, *self.forward_parts(), *self.backward_parts()]


def frames_for_arc(arc_degrees: float, degrees_per_frame: float) -> int:
    """Frames of a freeze-time video covering `arc_degrees` when the camera moves `degrees_per_frame` a frame."""
    if degrees_per_frame <= 0:
        raise ValueError("--degrees-per-frame must be positive")
    if not 0 < arc_degrees <= 360:
        raise ValueError("--arc-degrees must be in (0, 360]")
    return int(round(arc_degrees / degrees_per_frame)) + 1


def plan_extension(target_frames: int, clip_frames: int = 17, context_frames: int = 8,
                   new_per_step: int = 8, both_directions: bool = True) -> ExtensionPlan:
    """The fewest extension steps that bring the sequence to at least `target_frames`, split forward/backward
    (all forward when not `both_directions`: a model whose camera turns one way, conditioned on one frame, cannot
    continue the time-reversed sequence)."""
    if clip_frames < 2:
        raise ValueError("--clip-frames must be at least 2 (the conditioning frame and one generated frame)")
    if not 1 <= context_frames <= clip_frames:
        raise ValueError(f"--context-frames must be in 1..--clip-frames ({clip_frames}); got {context_frames}")
    if new_per_step < 1:
        raise ValueError("--new-frames-per-step must be at least 1")
    steps = int(math.ceil(max(0, target_frames - clip_frames) / new_per_step))
    forward = (steps + 1) // 2 if both_directions else steps
    return ExtensionPlan(clip_frames=clip_frames, context_frames=context_frames, new_per_step=new_per_step,
                         forward_steps=forward, backward_steps=steps - forward)


def part_seed(base_seed: int, part: str) -> int:
    """Seed of a part: reference = seed, clip = seed + 1, forward_i = seed + 2i, backward_i = seed + 2i + 1.
    Independent of the plan, so a longer arc reuses the parts a shorter one made."""
    if part == "reference":
        return base_seed
    if part == CLIP_PART:
        return base_seed + 1
    direction, step = part.split("_")
    return base_seed + 2 * int(step) + (1 if direction == "backward" else 0)


def _stored_part(record: GenerationRecord, part: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The frames of `part`: read back when the record lists it as completed, otherwise made, stored, recorded."""
    folder = part_folder(record.scene, part)
    if record.is_done(part) and folder.is_dir():
        return read_frames(folder)
    frames = make()
    write_frames_atomic(folder, frames)
    record.mark_done(part)
    return frames


def generate_freeze_time_video(generator: Optional[VideoGenerator], freeze_prompt: str, negative_prompt: str,
                               canonical_image: np.ndarray, plan: ExtensionPlan, seed: int,
                               record: GenerationRecord, on_step: StepCallback = None,
                               on_part: Optional[Callable[[str, bool], None]] = None) -> np.ndarray:
    """The freeze-time video [plan.num_frames, H, W, 3] uint8 whose frame plan.canonical_index is canonical_image
    (`generator` may be None when every part is stored).

    `on_part(name, reused)` is called after each part (progress); `on_step` per denoising step."""

    def finished(part: str, reused: bool) -> None:
        if on_part is not None:
            on_part(part, reused)

    def run(part: str, known: np.ndarray, num_new: int) -> np.ndarray:
        reused = record.is_done(part) and part_folder(record.scene, part).is_dir()

        def make() -> np.ndarray:
            new = generator.continue_video(freeze_prompt, negative_prompt, known, num_new, part_seed(seed, part),
                                           on_step=on_step)
            if len(new) != num_new:
                raise RuntimeError(f"{generator.name}: asked for {num_new} frames in {part}, got {len(new)}")
            return new

        frames = _stored_part(record, part, make)
        finished(part, reused)
        return frames

    canonical_image = np.asarray(canonical_image, dtype=np.uint8)
    clip_reused = record.is_done(CLIP_PART) and part_folder(record.scene, CLIP_PART).is_dir()
    clip = _stored_part(record, CLIP_PART, lambda: np.concatenate([
        canonical_image[None],
        generator.continue_video(freeze_prompt, negative_prompt, canonical_image[None], plan.clip_frames - 1,
                                 part_seed(seed, CLIP_PART), on_step=on_step),
    ]))
    finished(CLIP_PART, clip_reused)

    forward: List[np.ndarray] = list(clip)  # the clip and what follows it, in camera order
    for part in plan.forward_parts():
        forward.extend(run(part, np.stack(forward[-plan.context_frames:]), plan.new_per_step))

    backward: List[np.ndarray] = []  # frames before the clip, nearest first (the time-reversed continuation)
    for part in plan.backward_parts():
        reversed_sequence = forward[::-1] + backward
        backward.extend(run(part, np.stack(reversed_sequence[-plan.context_frames:]), plan.new_per_step))

    frames = np.stack(backward[::-1] + forward)
    assert len(frames) == plan.num_frames and np.array_equal(frames[plan.canonical_index], canonical_image)
    return frames


def extension_seeds(plan: ExtensionPlan, seed: int) -> Dict[str, int]:
    """{part: seed} for every part of the plan."""
    return {part: part_seed(seed, part) for part in plan.parts()}
