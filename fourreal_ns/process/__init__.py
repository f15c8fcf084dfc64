"""`fourreal process`: from videos to a posed scene folder (paper 3.3: camera poses from COLMAP, refined later).

The modules, in the order the command uses them:
- `video_io`: decode video files (PyAV) or frame folders (PIL) into numbered PNG frames;
- `grid`: read a 4Real-Video time x view grid (one video/folder per view, or flat `v{view}_t{time}` files);
- `sfm`: structure from motion with pycolmap (SIFT on the CPU, sequential or exhaustive matching, incremental
  mapping), giving COLMAP poses, intrinsics and sparse points;
- `scene_writer`: COLMAP's world-to-camera (OpenCV) poses as nerfstudio camera-to-world (OpenGL) matrices in a
  normalised world, the seed points, and `transforms.json` written atomically;
- `command`: the `Process` dataclass (`fourreal process`) tying them together.

docs/process.md describes the command, its inputs and what it writes.
"""


class ProcessError(ValueError):
    """An input `fourreal process` cannot use, or a reconstruction that failed; the message names the fix."""
