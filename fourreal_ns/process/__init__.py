"""`fourreal process`: from videos to a posed scene folder (paper 3.3: camera poses from COLMAP, refined later).

The modules, in the order the command uses them:
- `inputs`: what `--freeze` / `--reference` name (video files, frame folders, folders of videos: one clip each);
- `video_io`: decode video files (PyAV) or frame folders (PIL) into numbered PNG frames, keeping only the frames
  asked for (`--num-frames`, `--fps`) and downscaling in memory (`--max-size`);
- `grid`: read a 4Real-Video time x view grid (one video/folder per view, or flat `v{view}_t{time}` files);
- `plan`: which frames the scene gets, which SfM sees and whose pose each takes; after SfM, dropping clips that
  did not register and the registration checks;
- `pairs`: the frame pairs SfM matches (exhaustive, sequential within clips, between clips);
- `sfm`: structure from motion with pycolmap (SIFT on the CPU, matching of explicit pair lists in chunks,
  incremental mapping), giving COLMAP poses, intrinsics and sparse points, with COLMAP's own log off;
- `scene_writer`: COLMAP's world-to-camera (OpenCV) poses as nerfstudio camera-to-world (OpenGL) matrices in a
  normalised world, the seed points, and `transforms.json` written atomically;
- `command`: the `Process` dataclass (`fourreal process`) tying them together.

docs/process.md describes the command, its inputs and what it writes.
"""

from fourreal_ns.errors import FourRealError


class ProcessError(FourRealError, ValueError):
    """An input `fourreal process` cannot use, or a reconstruction that failed; the message names the fix."""
