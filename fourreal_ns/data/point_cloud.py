"""Seed point clouds (`points3d.ply` of a scene folder): one writer and one reader for every command that makes a
scene (`fourreal demo-scene`, `fourreal process`, `fourreal generate --poses nominal`).

The file is a binary little-endian PLY with x, y, z as float and red, green, blue as uchar, the layout nerfstudio's
dataparsers read for seed points. It is written atomically (a temporary file renamed over the target), so an
interrupted command never leaves half a point cloud in a scene folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from fourreal_ns.data.atomic_write import atomic_write_bytes

VERTEX_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_point_cloud_ply(path: Path, points: np.ndarray, colours: np.ndarray, comment: str) -> None:
    """Write (N, 3) positions and (N, 3) uint8 colours as a binary PLY; `comment` says which command made it."""
    vertex = np.empty(len(points), dtype=VERTEX_DTYPE)
    vertex["x"], vertex["y"], vertex["z"] = points[:, 0], points[:, 1], points[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = colours[:, 0], colours[:, 1], colours[:, 2]
    header = (
        f"ply\nformat binary_little_endian 1.0\ncomment {comment}\n"
        f"element vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    atomic_write_bytes(Path(path), header.encode("ascii") + vertex.tobytes())


def read_point_cloud_ply(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(N, 3) float positions and (N, 3) uint8 colours of a PLY written by `write_point_cloud_ply` (or ascii)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    count = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    if any("ascii" in line for line in header if line.startswith("format")):
        rows = np.array([line.split() for line in data[end:].decode("ascii").split("\n")[:count]], dtype=np.float64)
        return rows[:, :3], rows[:, 3:6].astype(np.uint8)
    vertex = np.frombuffer(data[end:], count=count, dtype=VERTEX_DTYPE)
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float64)
    return points, np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
