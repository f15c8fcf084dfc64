"""The reference video (4Real paper, section 3.2) and the choice of its canonical frame j_c.

The reference video is plain text-to-video from the user's prompt: a (mostly) fixed camera while the scene moves. One
of its frames, j_c, is the canonical frame: the freeze-time video is conditioned on it, the canonical Gaussians are
reconstructed at its time t_c, and the motion stage deforms them from there.

Default j_c = the first frame. The paper's temporal SDS (section 3.4, "Fixed-Viewpoint Videos") samples times that
"always start from 0" with the first frame "rendered using the canonical 3D Gaussian Splats without any
deformation", i.e. t_c = 0; the demo scene and the trainers follow that convention. `middle` halves the largest
deformation the motion stage must learn (everything is at most half a video away from t_c) and is offered as an
option, as are `last` and an explicit index.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from fourreal_ns.generate.video_models import StepCallback, VideoGenerator

CANONICAL_CHOICES = ("first", "middle", "last")


def canonical_reference_frame(choice: Union[str, int], num_frames: int) -> int:
    """j_c for `choice` ("first", "middle", "last" or an index, negative counting from the end)."""
    if num_frames < 1:
        raise ValueError("the reference video needs at least one frame")
    if isinstance(choice, str) and choice.strip().lstrip("-").isdigit():
        choice = int(choice)
    if isinstance(choice, int):
        index = choice + num_frames if choice < 0 else choice
        if not 0 <= index < num_frames:
            raise ValueError(f"--canonical-frame {choice} is outside the reference video's {num_frames} frames")
        return index
    if choice == "first":
        return 0
    if choice == "middle":
        return (num_frames - 1) // 2
    if choice == "last":
        return num_frames - 1
    raise ValueError(f"--canonical-frame {choice!r}: use first, middle, last or a frame index")


def generate_reference_video(generator: VideoGenerator, prompt: str, negative_prompt: str, num_frames: int,
                             seed: int, on_step: StepCallback = None) -> np.ndarray:
    """`num_frames` reference frames [F, H, W, 3] uint8 from the prompt (text-to-video)."""
    if num_frames < 2:
        raise ValueError("--num-reference-frames must be at least 2 (the motion stage needs a video)")
    frames = generator.text_to_video(prompt, negative_prompt, num_frames, seed, on_step=on_step)
    if len(frames) != num_frames:
        raise RuntimeError(f"{generator.name}: asked for {num_frames} reference frames, got {len(frames)}")
    return frames
