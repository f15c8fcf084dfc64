"""The demo scene's true 4D world: a textured room with a rolling ball, and its analytic ray caster (numpy; exact
ray/plane, ray/sphere and ray/box hits, S x S supersampling per pixel, Lambertian shading from one point light plus
an ambient term), never Gaussian splatting, so that it can serve as an independent ground truth.

The world (world units, +y up, centred at the origin):
- a room seen from inside: floor at y = -0.25, ceiling at y = 2.15, walls at x, z = +-2.5. Every face has its own
  procedural texture (checker floor, bricks, stripes, diagonal stripes, polka dots, colour noise; which wall gets
  which, their colours and frequencies depend on the seed) with value-noise shading and random coloured "stickers"
  (discs and rectangles) so that feature matching (SfM) finds unique points at higher resolutions;
- a textured ball (radius ~0.13) rolling along a circular arc around the centre (radius ~0.3, ~115 degrees over
  t in [0, 1]) and bouncing; its texture turns with the rolling;
- a static textured box (rotated about y) behind it.

`render_true(camera_to_world, K, width, height, time)` renders it at any camera and time; `DemoWorld` exposes the
geometry (`object_center`, `surface_distance`) for tests and evaluation. demo_scene.py writes scenes of it.
"""

from __future__ import annotations

import colorsys
import math
from functools import lru_cache
from typing import Dict, Optional, Tuple

import numpy as np

# Geometry of the room (world units; the dataparser applies no transform).
ROOM_HALF = 2.5
FLOOR_Y = -0.25
CEILING_Y = 2.15
LIGHT_POSITION = np.array([0.6, 1.9, 0.9])
AMBIENT = 0.35

# Surface ids of the ray caster.
FACE_NEG_X, FACE_POS_X, FACE_FLOOR, FACE_CEILING, FACE_NEG_Z, FACE_POS_Z, BALL, BOX = range(8)
NUM_SURFACES = 8


# --------------------------------------------------------------------------------------------------------------
# Procedural textures
# --------------------------------------------------------------------------------------------------------------


def _random_colour(rng: np.random.Generator, sat: Tuple[float, float] = (0.45, 0.9),
                   val: Tuple[float, float] = (0.45, 0.95), hue: Optional[float] = None) -> np.ndarray:
    h = rng.uniform() if hue is None else hue % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)))


def _palette(rng: np.random.Generator, count: int, **kwargs) -> np.ndarray:
    """`count` colours with well separated hues."""
    start = rng.uniform()
    hues = start + np.arange(count) / count + rng.uniform(-0.05, 0.05, count)
    return np.stack([_random_colour(rng, hue=h, **kwargs) for h in hues])


class ValueNoise:
    """Smooth periodic value noise on a 64 x 64 lattice (3 channels), evaluated as fractal sums of octaves."""

    SIZE = 64

    def __init__(self, rng: np.random.Generator):
        self.lattice = rng.uniform(-1.0, 1.0, (self.SIZE, self.SIZE, 3))
        self.offset = rng.uniform(0, self.SIZE, 2)
        self.flat = self.lattice.reshape(-1, 3)

    def __call__(self, u: np.ndarray, v: np.ndarray, frequency: float, octaves: int = 3) -> np.ndarray:
        """(M, 3) noise in about [-1, 1]."""
        total = np.zeros(u.shape + (3,))
        amplitude, norm = 1.0, 0.0
        mask = self.SIZE - 1
        for octave in range(octaves):
            f = frequency * 2.0**octave
            x = u * f + (self.offset[0] + 7.3 * octave)
            y = v * f + (self.offset[1] + 3.1 * octave)
            x0, y0 = np.floor(x), np.floor(y)
            fx, fy = x - x0, y - y0
            sx, sy = (fx * fx * (3 - 2 * fx))[:, None], (fy * fy * (3 - 2 * fy))[:, None]
            i0, j0 = x0.astype(np.int64) & mask, y0.astype(np.int64) & mask
            i1, j1 = (i0 + 1) & mask, (j0 + 1) & mask
            i0, i1 = i0 * self.SIZE, i1 * self.SIZE
            take = self.flat.take
            top = take(i0 + j0, axis=0)
            top += (take(i1 + j0, axis=0) - top) * sx
            bottom = take(i0 + j1, axis=0)
            bottom += (take(i1 + j1, axis=0) - bottom) * sx
            total += amplitude * (top + (bottom - top) * sy)
            norm += amplitude
            amplitude *= 0.5
        return total / norm


class PlaneTexture:
    """A procedural texture on a plane with coordinates (u, v) in world units: a base pattern of one `kind`,
    value-noise shading and random coloured stickers (discs and rectangles)."""

    KINDS = ("checker", "bricks", "stripes", "diagonal", "dots", "noise")

    def __init__(self, rng: np.random.Generator, kind: str, u_range: Tuple[float, float],
                 v_range: Tuple[float, float], num_stickers: int):
        self.kind = kind
        self.noise = ValueNoise(rng)
        self.colours = _palette(rng, 4)
        self.period = rng.uniform(0.28, 0.5)
        self.angle = rng.uniform(0, math.pi)
        self.noise_frequency = rng.uniform(1.0, 2.5)
        self.noise_strength = rng.uniform(0.2, 0.35)
        self.cell_table = rng.uniform(0, 1, (32, 32))
        # Stickers: (u, v, size_u, size_v, is_disc) and a colour each.
        count = num_stickers
        self.sticker_centres = np.stack([rng.uniform(*u_range, count), rng.uniform(*v_range, count)], axis=1)
        self.sticker_sizes = rng.uniform(0.08, 0.3, (count, 2))
        self.sticker_discs = rng.uniform(0, 1, count) < 0.5
        self.sticker_colours = np.stack([_random_colour(rng, sat=(0.5, 1.0), val=(0.3, 1.0)) for _ in range(count)])
        if count:
            self.sticker_sizes[self.sticker_discs, 1] = self.sticker_sizes[self.sticker_discs, 0]

    def _cell_value(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.cell_table[i.astype(np.int64) % 32, j.astype(np.int64) % 32]

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(M, 3) albedo in [0, 1]."""
        c, p = self.colours, self.period
        if self.kind == "checker":
            parity = (np.floor(u / p) + np.floor(v / p)) % 2
            colour = np.where(parity[:, None] > 0, c[0], c[1])
        elif self.kind == "bricks":
            height, width = p * 0.5, p
            row = np.floor(v / height)
            shifted = u / width + 0.5 * (row % 2)
            column = np.floor(shifted)
            pick = self._cell_value(row, column)
            brick = c[0] * (0.75 + 0.5 * pick[:, None]) * 0.8 + c[1] * 0.2 * (1 - pick[:, None])
            mortar = (np.minimum(shifted - column, 1 - (shifted - column)) * width < 0.015) | (
                np.minimum(v / height - row, 1 - (v / height - row)) * height < 0.012)
            colour = np.where(mortar[:, None], np.array([0.85, 0.84, 0.8]), brick)
        elif self.kind == "stripes":
            s = u / (p * 0.6)
            index = np.floor(s).astype(np.int64) % 3
            colour = c[index]
            thin = np.abs((s % 1.0) - 0.5) < 0.06
            colour = np.where(thin[:, None], c[3], colour)
        elif self.kind == "diagonal":
            ca, sa = math.cos(self.angle), math.sin(self.angle)
            s = (ca * u + sa * v) / (p * 0.7)
            t = (-sa * u + ca * v) / (p * 1.7)
            parity = (np.floor(s) + np.floor(t)) % 2
            colour = np.where(parity[:, None] > 0, c[0], c[2])
            band = (s % 1.0) < 0.2
            colour = np.where(band[:, None], c[1], colour)
        elif self.kind == "dots":
            q = p * 0.8
            i, j = np.floor(u / q), np.floor(v / q)
            du, dv = u / q - i - 0.5, v / q - j - 0.5
            pick = self._cell_value(i, j)
            radius = 0.22 + 0.16 * pick
            inside = du * du + dv * dv < radius * radius
            dot = c[1] * pick[:, None] + c[2] * (1 - pick[:, None])
            colour = np.where(inside[:, None], dot, c[0])
        elif self.kind == "noise":
            n = self.noise(u, v, 1.6, octaves=4)
            w = np.clip(0.5 + 0.9 * n, 0, 1)
            colour = c[0] * w[:, 0:1] + c[1] * (1 - w[:, 0:1])
            colour = colour * (0.7 + 0.3 * w[:, 1:2]) + 0.25 * (w[:, 2:3] - 0.5) * c[2]
        else:
            raise ValueError(f"unknown texture kind {self.kind!r}")
        shade = 1.0 + self.noise_strength * self.noise(u, v, self.noise_frequency, octaves=3)
        colour = colour * shade
        for index in range(len(self.sticker_centres)):
            cu, cv = self.sticker_centres[index]
            su, sv = self.sticker_sizes[index]
            if self.sticker_discs[index]:
                inside = (u - cu) ** 2 + (v - cv) ** 2 < su * su
            else:
                inside = (np.abs(u - cu) < su) & (np.abs(v - cv) < sv * 0.7)
            if inside.any():
                colour[inside] = self.sticker_colours[index] * (0.9 + 0.1 * shade[inside])
        return np.clip(colour, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# The world: geometry, motion, textures and the ray caster
# --------------------------------------------------------------------------------------------------------------


def rows_times(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """vectors (M, 3) @ matrix (3, 3) without BLAS (no thread start-up, same bits on every machine)."""
    return np.einsum("ij,jk->ik", vectors, matrix)


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: rotation by `angle` about the unit vector `axis`."""
    x, y, z = axis / np.linalg.norm(axis)
    c, s = math.cos(angle), math.sin(angle)
    return np.array([
        [c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
        [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
        [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)],
    ])  # fmt: skip


class DemoWorld:
    """The true 4D scene of one seed: the room, the rolling ball, the static box and the ray caster."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 4])
        # Room textures: the floor is a checker, the other faces a seeded permutation of the other kinds.
        others = list(PlaneTexture.KINDS[1:])
        order = rng.permutation(len(others))
        kinds = {FACE_FLOOR: "checker"}
        for face, index in zip((FACE_NEG_X, FACE_POS_X, FACE_NEG_Z, FACE_POS_Z, FACE_CEILING), order):
            kinds[face] = others[index]
        wall_v = (FLOOR_Y, CEILING_Y)
        span = (-ROOM_HALF, ROOM_HALF)
        self.textures: Dict[int, PlaneTexture] = {}
        for face in (FACE_NEG_X, FACE_POS_X, FACE_FLOOR, FACE_CEILING, FACE_NEG_Z, FACE_POS_Z):
            v_range = span if face in (FACE_FLOOR, FACE_CEILING) else wall_v
            stickers = {FACE_FLOOR: 12, FACE_CEILING: 4}.get(face, 14)
            self.textures[face] = PlaneTexture(rng, kinds[face], span, v_range, stickers)

        # The ball: rolls along a circle of radius `path_radius` around the y axis, bouncing `bounces` times.
        self.ball_radius = float(rng.uniform(0.12, 0.145))
        self.path_radius = float(rng.uniform(0.27, 0.33))
        direction = 1.0 if rng.uniform() < 0.5 else -1.0
        self.path_start = float(direction * -math.radians(rng.uniform(50, 62)))
        self.path_sweep = float(direction * math.radians(rng.uniform(105, 125)))
        self.bounce_height = float(rng.uniform(0.05, 0.1))
        self.bounces = int(rng.integers(1, 4))
        self.ball_colours = _palette(rng, 3, sat=(0.6, 0.95), val=(0.6, 1.0))
        self.ball_segments = (int(rng.integers(6, 11)), int(rng.integers(3, 6)))
        self.ball_noise = ValueNoise(rng)

        # The box: static, behind the ball's path, rotated about y.
        self.box_half = np.array([rng.uniform(0.11, 0.16), rng.uniform(0.09, 0.15), rng.uniform(0.11, 0.16)])
        self.box_center = np.array([rng.uniform(-0.15, 0.15), FLOOR_Y + self.box_half[1], rng.uniform(-0.5, -0.4)])
        angle = rng.uniform(0, math.pi / 2)
        self.box_rotation = rotation_about(np.array([0.0, 1.0, 0.0]), angle)  # box-to-world
        self.box_colours = _palette(rng, 6, sat=(0.5, 0.9), val=(0.55, 0.95))
        self.box_stripe_colour = _random_colour(rng, sat=(0.0, 0.2), val=(0.9, 1.0))
        self.box_period = float(rng.uniform(0.05, 0.09))

    # --- motion ---------------------------------------------------------------------------------------------

    def _path_angle(self, time: float) -> float:
        return self.path_start + self.path_sweep * float(time)

    def object_center(self, time: float) -> np.ndarray:
        """Centre of the moving ball at `time` in [0, 1]."""
        angle = self._path_angle(time)
        height = FLOOR_Y + self.ball_radius + self.bounce_height * abs(math.sin(math.pi * self.bounces * float(time)))
        return np.array([self.path_radius * math.sin(angle), height, self.path_radius * math.cos(angle)])

    def object_velocity_direction(self, time: float) -> np.ndarray:
        """Unit horizontal direction of the ball's motion at `time`."""
        angle = self._path_angle(time)
        tangent = np.array([math.cos(angle), 0.0, -math.sin(angle)]) * math.copysign(1.0, self.path_sweep)
        return tangent

    def object_rotation(self, time: float) -> np.ndarray:
        """Ball-to-world rotation: rolling without slipping, axis up x velocity, angle = distance / radius."""
        distance = abs(self.path_sweep) * self.path_radius * float(time)
        if distance == 0.0:
            return np.eye(3)
        axis = np.cross(np.array([0.0, 1.0, 0.0]), self.object_velocity_direction(time))
        return rotation_about(axis, distance / self.ball_radius)

    @property
    def object_size(self) -> float:
        """Diameter of the moving object."""
        return 2.0 * self.ball_radius

    # --- geometry -------------------------------------------------------------------------------------------

    def surface_distance(self, points: np.ndarray, time: float = 0.0) -> np.ndarray:
        """Unsigned distance of each (N, 3) point to the nearest true surface at `time`."""
        p = np.asarray(points, dtype=np.float64)
        room = np.stack([p[:, 0] + ROOM_HALF, ROOM_HALF - p[:, 0], p[:, 1] - FLOOR_Y, CEILING_Y - p[:, 1],
                         p[:, 2] + ROOM_HALF, ROOM_HALF - p[:, 2]], axis=1)
        inside_room = np.abs(room).min(axis=1)
        ball = np.abs(np.linalg.norm(p - self.object_center(time), axis=1) - self.ball_radius)
        local = rows_times(p - self.box_center, self.box_rotation)
        q = np.abs(local) - self.box_half
        box = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
        return np.minimum(np.minimum(inside_room, ball), np.abs(box))

    def intersect(self, origins: np.ndarray, dirs: np.ndarray, time: float,
                  object_offset: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest hit of each ray: (distance (M,), surface id (M,), unit normal (M, 3))."""
        m = dirs.shape[0]
        safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
        # Room, from inside: the nearest exit plane.
        lo = np.array([-ROOM_HALF, FLOOR_Y, -ROOM_HALF])
        hi = np.array([ROOM_HALF, CEILING_Y, ROOM_HALF])
        exits = (np.where(safe > 0, hi, lo) - origins) / safe
        axis = exits.argmin(axis=1)
        best = exits[np.arange(m), axis]
        positive = safe[np.arange(m), axis] > 0
        surface = np.array([FACE_NEG_X, FACE_FLOOR, FACE_NEG_Z])[axis] + positive.astype(np.int64)
        normal = np.zeros((m, 3))
        normal[np.arange(m), axis] = np.where(positive, -1.0, 1.0)

        # Ball.
        center = self.object_center(time) if object_offset is None else self.object_center(time) + object_offset
        oc = origins - center
        b = np.einsum("ij,ij->i", oc, dirs)
        c = np.einsum("ij,ij->i", oc, oc) - self.ball_radius**2
        disc = b * b - c
        root = np.sqrt(np.maximum(disc, 0.0))
        t_ball = -b - root
        hit = (disc > 0) & (t_ball > 1e-6) & (t_ball < best)
        if hit.any():
            best = np.where(hit, t_ball, best)
            surface = np.where(hit, BALL, surface)
            points = origins[hit] + t_ball[hit, None] * dirs[hit]
            normal[hit] = (points - center) / self.ball_radius

        # Box (oriented): slabs in the box frame, for the rays that pass its bounding sphere.
        ob = origins - self.box_center
        b = np.einsum("ij,ij->i", ob, dirs)
        near_box = (b * b - np.einsum("ij,ij->i", ob, ob) + float(self.box_half @ self.box_half) > 0) & (b < 0)
        rows = np.nonzero(near_box)[0]
        if len(rows):
            local_o = rows_times(ob[rows], self.box_rotation)
            local_d = rows_times(safe[rows], self.box_rotation)
            local_d = np.where(np.abs(local_d) < 1e-12, 1e-12, local_d)
            t1 = (-self.box_half - local_o) / local_d
            t2 = (self.box_half - local_o) / local_d
            near = np.minimum(t1, t2)
            far = np.maximum(t1, t2)
            near_axis = near.argmax(axis=1)
            t_near = near[np.arange(len(rows)), near_axis]
            t_far = far.min(axis=1)
            hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < best[rows])
            if hit.any():
                hit_rows = rows[hit]
                best[hit_rows] = t_near[hit]
                surface[hit_rows] = BOX
                local_normal = np.zeros((len(hit_rows), 3))
                ax = near_axis[hit]
                local_normal[np.arange(len(ax)), ax] = -np.sign(local_d[hit, ax])
                normal[hit_rows] = rows_times(local_normal, self.box_rotation.T)
        return best, surface, normal

    # --- appearance -----------------------------------------------------------------------------------------

    def albedo(self, points: np.ndarray, surface: np.ndarray, time: float,
               object_offset: Optional[np.ndarray] = None) -> np.ndarray:
        """(M, 3) surface colour at hit points."""
        colour = np.zeros((len(points), 3))
        for face, texture in self.textures.items():
            mask = surface == face
            if not mask.any():
                continue
            p = points[mask]
            if face in (FACE_NEG_X, FACE_POS_X):
                u, v = p[:, 2] * (1 if face == FACE_POS_X else -1), p[:, 1]
            elif face in (FACE_FLOOR, FACE_CEILING):
                u, v = p[:, 0], p[:, 2]
            else:
                u, v = p[:, 0] * (1 if face == FACE_NEG_Z else -1), p[:, 1]
            colour[mask] = texture(u, v)

        mask = surface == BALL
        if mask.any():
            center = self.object_center(time) if object_offset is None else self.object_center(time) + object_offset
            local = rows_times(points[mask] - center, self.object_rotation(time)) / self.ball_radius
            lon = np.arctan2(local[:, 2], local[:, 0])
            lat = np.arcsin(np.clip(local[:, 1], -1, 1))
            n_lon, n_lat = self.ball_segments
            parity = (np.floor((lon + math.pi) / (2 * math.pi) * n_lon) + np.floor((lat + math.pi / 2) / math.pi * n_lat)) % 2
            c = self.ball_colours
            ball = np.where(parity[:, None] > 0, c[0], c[1])
            band = np.abs(lat - 0.25) < 0.12
            ball = np.where(band[:, None], c[2], ball)
            spot = local[:, 0] > 0.93
            ball = np.where(spot[:, None], np.array([0.97, 0.97, 0.95]), ball)
            shade = 1.0 + 0.12 * self.ball_noise(lon * 1.5, lat * 1.5, 1.0, octaves=2)
            colour[mask] = np.clip(ball * shade, 0, 1)

        mask = surface == BOX
        if mask.any():
            local = rows_times(points[mask] - self.box_center, self.box_rotation)
            rel = np.abs(local) / self.box_half
            face_axis = rel.argmax(axis=1)
            face_sign = np.sign(local[np.arange(len(local)), face_axis])
            face_index = face_axis * 2 + (face_sign > 0)
            base = self.box_colours[face_index]
            uv_axes = np.array([[1, 2], [0, 2], [0, 1]])[face_axis]
            uu = local[np.arange(len(local)), uv_axes[:, 0]]
            vv = local[np.arange(len(local)), uv_axes[:, 1]]
            stripe = ((uu + 0.5 * vv) / self.box_period) % 1.0 < 0.3
            border = (np.sort(rel, axis=1)[:, 1] > 0.85)
            box = np.where(stripe[:, None], 0.55 * base + 0.45 * self.box_stripe_colour, base)
            box = np.where(border[:, None], 0.35 * base, box)
            colour[mask] = box
        return colour

    def shade(self, points: np.ndarray, normals: np.ndarray, albedo: np.ndarray) -> np.ndarray:
        """Lambertian shading from a point light (no falloff, no shadows) plus ambient."""
        to_light = LIGHT_POSITION - points
        to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
        diffuse = np.maximum(np.einsum("ij,ij->i", normals, to_light), 0.0)
        return albedo * (AMBIENT + (1.0 - AMBIENT) * diffuse)[:, None]

    def trace(self, origins: np.ndarray, dirs: np.ndarray, time: float,
              object_offset: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shaded colour (M, 3) in [0, 1], hit points (M, 3) and surface ids (M,) of unit-direction rays."""
        distance, surface, normal = self.intersect(origins, dirs, time, object_offset)
        points = origins + distance[:, None] * dirs
        colour = self.shade(points, normal, self.albedo(points, surface, time, object_offset))
        return colour, points, surface

    def render(self, camera_to_world: np.ndarray, K: np.ndarray, width: int, height: int, time: float,
               supersample: int = 3, object_offset: Optional[np.ndarray] = None,
               gain: Optional[np.ndarray] = None, chunk: int = 1 << 16) -> np.ndarray:
        """uint8 (height, width, 3) image: the mean of supersample^2 rays per pixel (pixel centres at +0.5,
        as nerfstudio and gsplat), times an optional per-channel `gain`."""
        c2w = np.asarray(camera_to_world, dtype=np.float64)
        K = np.asarray(K, dtype=np.float64)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        s = int(supersample)
        sub = (np.arange(s) + 0.5) / s
        xs = (np.arange(width)[:, None] + sub[None, :]).reshape(-1)  # (W * s)
        ys = (np.arange(height)[:, None] + sub[None, :]).reshape(-1)  # (H * s)
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")  # (H s, W s)
        dirs_cam = np.stack([(grid_x - cx) / fx, -(grid_y - cy) / fy, -np.ones_like(grid_x)], axis=-1).reshape(-1, 3)
        dirs = rows_times(dirs_cam, c2w[:3, :3].T)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        origins = np.broadcast_to(c2w[:3, 3], dirs.shape)
        colour = np.empty_like(dirs)
        for start in range(0, len(dirs), chunk):
            end = start + chunk
            colour[start:end] = self.trace(np.ascontiguousarray(origins[start:end]), dirs[start:end], time,
                                           object_offset)[0]
        image = colour.reshape(height, s, width, s, 3).mean(axis=(1, 3))
        if gain is not None:
            image = image * np.asarray(gain, dtype=np.float64)
        return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def demo_world(seed: int = 0) -> DemoWorld:
    """The (cached) true scene of `seed`."""
    return DemoWorld(seed)


def render_true(camera_to_world: np.ndarray, K: np.ndarray, width: int, height: int, time: float,
                seed: int = 0, supersample: int = 3) -> np.ndarray:
    """The true scene of `seed` at `time` seen by an OpenGL camera-to-world pose and 3 x 3 pinhole intrinsics K:
    uint8 (height, width, 3), exactly what `make_demo_scene` writes for consistent frames."""
    return demo_world(int(seed)).render(camera_to_world, K, width, height, time, supersample=supersample)
