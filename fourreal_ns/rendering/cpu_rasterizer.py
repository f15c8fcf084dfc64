"""Pure-PyTorch rasterizer for 3D Gaussians on the CPU, with gsplat 1.4.0's rules.

gsplat 1.4.0 has no CPU kernels, so this module re-implements `gsplat.rasterization` with plain tensor ops and
lets torch autograd do the backward pass. It reads top to bottom in four stages:

1. Projection (`project_gaussians`), as gsplat's `fully_fused_projection` kernel:
   covariance R S S^T R^T from the (normalised) quaternion and scales, moved to camera space, then the EWA
   (local affine) approximation cov2d = J cov J^T, where J is the Jacobian of the pinhole projection evaluated
   at the centre clamped to 1.3x the field of view. `eps2d` is added to the diagonal of cov2d (the blur);
   "antialiased" also scales opacities by sqrt(det(cov2d) / det(cov2d + eps2d I)). The conic is the inverse of
   the blurred cov2d. Radius = ceil(3 sqrt(largest eigenvalue)). A Gaussian is culled (radius 0) when its
   depth is outside [near_plane, far_plane], the blurred determinant is <= 0, radius <= radius_clip, or its
   radius-square lies outside the image.
2. Colours (`gaussian_features`): post-activation features as given, or spherical harmonics evaluated along
   the camera-centre -> Gaussian direction, then clamp(sh + 0.5, min=0) as gsplat does.
3. Intersections (`find_intersections`, no gradient): which Gaussians each pixel blends, front to back.
   gsplat assigns a Gaussian to every `tile_size` tile its radius-square overlaps (rounded out to whole
   tiles) and tests it on every pixel of those tiles, in depth order. We keep that rule exactly, and only
   visit the pixels inside the ellipse sigma <= log(255 opacity) (outside it alpha < 1/255, which gsplat
   skips anyway): per row the ellipse is an interval of columns, solved from a quadratic (a scanline
   search). Gaussians are visited in depth-ordered waves; every candidate pixel is tested exactly, the pairs
   are sorted by pixel, and a pixel's list is cut where its transmittance runs out. Later waves skip finished
   pixels (gsplat's early termination), and a wave's size bounds the memory.
4. Compositing (`composite`, differentiable): front to back per pixel, pixel centres at (x + 0.5, y + 0.5),
       sigma = 0.5 (a dx^2 + c dy^2) + b dx dy            (conic = [a, b, c], dx = mean_x - x - 0.5, ...)
       alpha = min(0.999, opacity * exp(-sigma))
   a Gaussian with sigma < 0 or alpha < 1/255 is skipped; a pixel stops (exclusively) at the first Gaussian that
   would bring its transmittance T to <= 1e-4. colour = sum_i c_i alpha_i T_i, render alpha = 1 - T_final, and a
   background is added as colour + T_final * background. "D" renders the accumulated depth sum_i z_i alpha_i T_i,
   "ED" that divided by the render alpha (clamped at 1e-10).
   The pairs of stage 3 form one flat list sorted by pixel; T comes from a cumulative sum of log(1 - alpha) in
   float64 restarted at every pixel, and the weighted features are summed per pixel (`segment_reduce`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from gsplat.cuda._torch_impl import _quat_scale_to_covar_preci, _spherical_harmonics, _world_to_cam
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0  # gsplat skips a Gaussian at a pixel below this alpha
ALPHA_MAX = 0.999  # and clamps alpha to this
TRANSMITTANCE_MIN = 1e-4  # a pixel is done before the Gaussian that would bring T to <= this
WAVE_CANDIDATES_PER_PIXEL = 64  # the search visits depth slices of about this many candidates per pixel,
WAVE_MIN, WAVE_MAX = 1 << 16, 1 << 21  # but at least / at most this many (the upper bound caps memory)
RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


# --------------------------------------------------------------------------------------------- 1. projection
def project_gaussians(
    means: Tensor,  # [N, 3]
    quats: Optional[Tensor],  # [N, 4]
    scales: Optional[Tensor],  # [N, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    calc_compensations: bool = False,
    covars: Optional[Tensor] = None,  # [N, 3, 3], replaces quats and scales
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Pinhole EWA projection; returns radii [C, N] int32, means2d [C, N, 2], depths [C, N], conics [C, N, 3],
    compensations [C, N] (or None). Culled Gaussians have radius 0; their other outputs are finite but unused."""
    if covars is None:
        covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    means_c, covars_c = _world_to_cam(means, covars, viewmats)  # [C, N, 3], [C, N, 3, 3]
    x, y, z = means_c.unbind(-1)
    depth_ok = (z >= near_plane) & (z <= far_plane)
    rz = 1.0 / torch.where(depth_ok, z, torch.ones_like(z))  # culled depths must not produce inf/nan grads

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = torch.clamp(x * rz, min=-lim_x_neg, max=lim_x_pos) / rz
    ty = torch.clamp(y * rz, min=-lim_y_neg, max=lim_y_pos) / rz

    zero = torch.zeros_like(x)
    J = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1)
    J = J.reshape(*x.shape, 2, 3)
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)  # [C, N, 2]

    a, c = cov2d[..., 0, 0], cov2d[..., 1, 1]
    b = 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0])
    det_raw = a * c - b * b
    a, c = a + eps2d, c + eps2d  # the blur: every Gaussian covers at least ~eps2d pixels^2
    det = a * c - b * b
    det_ok = det > 0
    det = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)  # inverse of the blurred cov2d
    compensations = None
    if calc_compensations:  # tiny floor: sqrt'(0) would turn a zero gradient into nan
        compensations = torch.sqrt(torch.clamp_min(det_raw / det, torch.finfo(det.dtype).tiny))

    with torch.no_grad():
        half_trace = 0.5 * (a + c)
        largest_eigenvalue = half_trace + torch.sqrt(torch.clamp_min(half_trace * half_trace - det, 0.01))
        radius = torch.ceil(3.0 * torch.sqrt(largest_eigenvalue))  # 3 sigma, in whole pixels
        u, v = means2d.unbind(-1)
        inside = (u + radius > 0) & (u - radius < width) & (v + radius > 0) & (v - radius < height)
        valid = depth_ok & det_ok & (radius > radius_clip) & inside
        radii = torch.where(valid, radius, torch.zeros_like(radius)).to(torch.int32)
    return radii, means2d, z, conics, compensations


# ------------------------------------------------------------------------------------------------ 2. colours
def gaussian_features(
    colors: Tensor,  # [(C,) N, D] features, or [(C,) N, K, 3] SH coefficients
    means: Tensor,  # [N, 3]
    viewmats: Tensor,  # [C, 4, 4]
    sh_degree: Optional[int],
) -> Tensor:
    """Per-camera features [C, N, D]: the given post-activation values, or SH evaluated per view direction."""
    n_cameras = viewmats.shape[0]
    if sh_degree is None:
        return colors.expand(n_cameras, -1, -1) if colors.dim() == 2 else colors
    camera_centres = torch.inverse(viewmats)[:, :3, 3]  # [C, 3]
    dirs = means[None, :, :] - camera_centres[:, None, :]  # [C, N, 3]
    coeffs = colors.expand(n_cameras, -1, -1, -1) if colors.dim() == 3 else colors
    return torch.clamp_min(_spherical_harmonics(sh_degree, dirs, coeffs) + 0.5, 0.0)


# ------------------------------------------------------------------------------------------ 3. intersections
def tile_rectangles(means2d: Tensor, radii: Tensor, tile_size: int, width: int, height: int) -> Tensor:
    """gsplat's tile rule: tiles [floor((m - r) / ts), ceil((m + r) / ts)) per axis, clamped to the grid.
    Returns [..., 4] int64 (tile x0, tile y0, tile x1, tile y1)."""
    tile_w, tile_h = math.ceil(width / tile_size), math.ceil(height / tile_size)
    centre = torch.nan_to_num(means2d.detach() / tile_size)
    r = (radii.to(means2d.dtype) / tile_size)[..., None]
    lo, hi = torch.floor(centre - r), torch.ceil(centre + r)
    limit = torch.tensor([tile_w, tile_h], dtype=lo.dtype)
    lo = torch.minimum(torch.clamp_min(lo, 0), limit)
    hi = torch.minimum(torch.clamp_min(hi, 0), limit)
    return torch.cat([lo, hi], dim=-1).long()


def blend_alpha(mean_x: Tensor, mean_y: Tensor, conic_a: Tensor, conic_b: Tensor, conic_c: Tensor,
                opacity: Tensor, pixel_x: Tensor, pixel_y: Tensor) -> Tuple[Tensor, Tensor]:
    """gsplat's per-pixel alpha: returns (sigma, min(0.999, opacity exp(-sigma))) at pixel centres (x+.5, y+.5).
    Shared by the search and the compositing so both take the same decisions."""
    dx = mean_x - (pixel_x + 0.5).to(mean_x.dtype)
    dy = mean_y - (pixel_y + 0.5).to(mean_x.dtype)
    sigma = 0.5 * (conic_a * dx * dx + conic_c * dy * dy) + conic_b * dx * dy
    return sigma, torch.clamp_max(opacity * torch.exp(-sigma), ALPHA_MAX)


@dataclass
class _Footprints:
    """Visible Gaussians, front to back, and the pixels each may reach (the search runs in float64)."""

    flat_ids: Tensor  # [V] indices into the flat Gaussian arrays, in depth order (ties: flat index)
    col0: Tensor  # [V] int64: first column of its gsplat tiles (clipped to the image)
    col1: Tensor  # [V] one past the last column
    row0: Tensor  # [V] int64: first row (of the stacked C * H image rows) the ellipse reaches in its tiles
    row1: Tensor  # [V] one past the last row
    params: Tensor  # [V, 6] float64: mean x, mean y (in stacked rows), conic a, b, c, opacity
    reach: Tensor  # [V, 2] float64: det(conic), 2 log(255 opacity): the ellipse where alpha >= 1/255
    dtype: torch.dtype  # the inputs' dtype: alphas are tested in it, as the compositing computes them

    @property
    def candidates(self) -> Tensor:
        """Pixels of each Gaussian's rectangle: an upper bound on the pixels the search tests."""
        return (self.row1 - self.row0) * (self.col1 - self.col0)


def _footprints(means2d: Tensor, conics: Tensor, opacities: Tensor, depths: Tensor, radii: Tensor,
                camera_ids: Tensor, width: int, height: int, tile_size: int) -> _Footprints:
    """Gaussians reach pixels inside their gsplat tiles where alpha >= 1/255, i.e. inside the ellipse
    sigma <= log(255 opacity), whose row extent is |dy| <= sqrt(2 log(255 opacity) a / det(conic))."""
    params = torch.cat([means2d.t(), conics.t(), opacities[None]]).detach().double()  # [6, F]
    det = params[2] * params[4] - params[3] * params[3]
    two_sigma_max = 2.0 * torch.log(255.0 * params[5])  # alpha >= 1/255  <=>  2 sigma <= this
    visible = (radii > 0) & (two_sigma_max >= 0) & (det > 0) & (params[2] > 0)
    ids = _where(visible)
    ids = ids.index_select(0, torch.sort(depths.detach().index_select(0, ids), stable=True).indices)
    params = params.t().index_select(0, ids)
    reach = torch.stack([det, two_sigma_max], dim=1).index_select(0, ids)
    mean_y, conic_a, det, two_sigma_max = params[:, 1], params[:, 2], reach[:, 0], reach[:, 1]

    rect = tile_rectangles(means2d.detach().index_select(0, ids), radii.index_select(0, ids), tile_size,
                           width, height) * tile_size
    extent_y = torch.sqrt(two_sigma_max * conic_a / det) * (1 + 1e-6) + 1e-3  # margin for rounding
    centre_y = mean_y - 0.5  # the row whose pixel centre is level with the mean
    row0 = torch.maximum(rect[:, 1], torch.ceil((centre_y - extent_y).clamp(-1, height)).long())
    row1 = torch.minimum(rect[:, 3].clamp(max=height), torch.floor((centre_y + extent_y).clamp(-1, height)).long() + 1)
    col0, col1 = rect[:, 0], rect[:, 2].clamp(max=width)
    keep = _where((row1 > row0) & (col1 > col0))
    ids, col0, col1, row0, row1 = _take(keep, ids, col0, col1, row0, row1)
    params, reach = params.index_select(0, keep), reach.index_select(0, keep)
    row_offset = camera_ids.index_select(0, ids) * height  # rows of camera c start at c * height
    params[:, 1] += row_offset
    return _Footprints(ids, col0, col1, row0 + row_offset, row1 + row_offset, params, reach, means2d.dtype)


def _spans(fp: _Footprints, gaussians: Tensor, width: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Scanline search: per (Gaussian, row) the columns where sigma <= log(255 opacity), from the roots of
    0.5 a dx^2 + b dy dx + 0.5 c dy^2 = log(255 opacity) (widened by a rounding margin, clipped to the
    Gaussian's tiles). Returns (Gaussian, stacked row, first column, one past the last column) per row."""
    n_rows = (fp.row1 - fp.row0).index_select(0, gaussians)
    gauss = torch.repeat_interleave(gaussians, n_rows)
    run_start = torch.repeat_interleave(torch.cumsum(n_rows, 0) - n_rows, n_rows)
    row = fp.row0.index_select(0, gauss) + torch.arange(len(gauss)) - run_start

    mean_x, mean_y, conic_a, conic_b, _, _ = fp.params.index_select(0, gauss).unbind(1)
    det, two_sigma_max = fp.reach.index_select(0, gauss).unbind(1)
    dy = mean_y - (row + 0.5)
    half_width = torch.sqrt((conic_a * two_sigma_max - det * dy * dy).clamp_min(0)) / conic_a
    half_width = half_width * (1 + 1e-6) + 1e-3
    centre = mean_x - 0.5 + conic_b * dy / conic_a  # the column whose pixel centre minimises sigma
    lo = torch.maximum(torch.ceil((centre - half_width).clamp(-1, width)).long(), fp.col0.index_select(0, gauss))
    hi = torch.minimum(torch.floor((centre + half_width).clamp(-1, width)).long() + 1, fp.col1.index_select(0, gauss))
    return gauss, row, lo, hi


def _take(index: Tensor, *tensors: Tensor) -> Tuple[Tensor, ...]:
    """tensor[index] for 1-D tensors (index_select: much faster than advanced indexing on the CPU)."""
    return tuple(t.index_select(0, index) for t in tensors)


def _where(mask: Tensor) -> Tensor:
    return torch.nonzero(mask).squeeze(1)


class _PixelState:
    """What the front-to-back search knows per pixel: log transmittance so far and whether it is done."""

    def __init__(self, n_rows: int, width: int):
        self.width = width
        self.log_transmittance = torch.zeros(n_rows * width, dtype=torch.float64)
        self.done = torch.zeros(n_rows * width, dtype=torch.bool)
        self.index_dtype = torch.int32 if n_rows * width < 2**31 else torch.int64
        self.open_prefix = self._prefix()

    def _prefix(self) -> Tensor:
        """Per row, the number of open pixels left of each column: [rows * (width + 1)]."""
        open_ = (~self.done).view(-1, self.width).to(torch.int32)
        return torch.nn.functional.pad(torch.cumsum(open_, 1, dtype=torch.int32), (1, 0)).view(-1)

    def any_open(self, row: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        base = row * (self.width + 1)
        return self.open_prefix.index_select(0, base + hi) > self.open_prefix.index_select(0, base + lo)

    def close(self, ended: Tensor) -> None:
        self.done |= ended
        self.open_prefix = self._prefix()


def _wave(fp: _Footprints, gaussians: Tensor, state: _PixelState, width: int) -> Tuple[Tensor, Tensor]:
    """Blend one depth slice of Gaussians into the open pixels. Returns the (pixel, depth rank) pairs that
    gsplat blends, sorted by pixel then depth, and updates the pixels' transmittance and done flags."""
    gauss, row, lo, hi = _spans(fp, gaussians, width)
    gauss, row, lo, hi = _take(_where((hi > lo) & state.any_open(row, lo, hi)), gauss, row, lo, hi)

    # candidate k of span s is pixel (row_s, lo_s + k); along the row sigma is a quadratic in
    # dx = mean_x - (column + 0.5) = x_s - k
    counts = hi - lo
    span = torch.repeat_interleave(counts)
    k = torch.arange(len(span)) - (torch.cumsum(counts, 0) - counts).index_select(0, span)
    pixel = (row * width + lo).index_select(0, span) + k
    mean_x, mean_y, conic_a, conic_b, conic_c, opacity = fp.params.index_select(0, gauss).unbind(1)
    dy = mean_y - (row + 0.5)
    per_span = torch.stack([mean_x - 0.5 - lo, 0.5 * conic_a, conic_b * dy, 0.5 * conic_c * dy * dy, opacity], 1)
    x, half_a, b_dy, c_dy2, opacity = per_span.to(fp.dtype).index_select(0, span).unbind(1)
    dx = x - k
    sigma = dx * (half_a * dx + b_dy) + c_dy2
    alpha = torch.clamp_max(opacity * torch.exp(-sigma), ALPHA_MAX)
    blended = _where((sigma >= 0) & (alpha >= ALPHA_MIN) & ~state.done.index_select(0, pixel))
    pixel, span, alpha = _take(blended, pixel.to(state.index_dtype), span, alpha)  # int32 sorts 2x faster
    gauss = gauss.index_select(0, span)
    pixel, order = torch.sort(pixel, stable=True)  # candidates are in depth order: stable keeps it per pixel
    gauss, alpha = _take(order, gauss, alpha)
    if len(pixel) == 0:
        return pixel, gauss

    # log transmittance after each Gaussian; a pixel ends before the first one that leaves T <= 1e-4
    log_step = torch.log1p(-alpha.double())
    cumulative = torch.cumsum(log_step, 0)
    n_pixels = len(state.done)
    per_pixel = torch.bincount(pixel, minlength=n_pixels)
    first = (torch.cumsum(per_pixel, 0) - per_pixel).clamp(max=len(pixel) - 1)
    carried = state.log_transmittance - (cumulative - log_step).index_select(0, first)  # [P]
    log_t = cumulative + carried.index_select(0, pixel)
    keep = log_t > math.log(TRANSMITTANCE_MIN)
    kept_per_pixel = torch.bincount(pixel, weights=keep.double(), minlength=n_pixels).long()
    last = (first + kept_per_pixel - 1).clamp(min=0)
    state.log_transmittance = torch.where(kept_per_pixel > 0, log_t.index_select(0, last), state.log_transmittance)
    ended = kept_per_pixel < per_pixel
    if bool(ended.any()):
        state.close(ended)
    pixel, gauss = _take(_where(keep), pixel, gauss)
    return pixel, gauss


@torch.no_grad()
def find_intersections(
    means2d: Tensor, conics: Tensor, opacities: Tensor, depths: Tensor, radii: Tensor, camera_ids: Tensor,
    n_cameras: int, width: int, height: int, tile_size: int, wave_size: Optional[int] = None,
) -> Tuple[Tensor, Tensor]:
    """All (pixel, Gaussian) pairs gsplat blends, sorted by pixel (camera, row, column) then front to back.

    Inputs are flat ([F, ...]). Gaussians are visited front to back in waves of about `wave_size` candidate
    pixels (default: WAVE_CANDIDATES_PER_PIXEL per pixel of the image stack, within [WAVE_MIN, WAVE_MAX]), so
    memory stays bounded and pixels whose transmittance has run out are skipped by later waves.
    Returns (pixel ids into [C * H * W], flat Gaussian ids), int64 [M]."""
    fp = _footprints(means2d, conics, opacities, depths, radii, camera_ids, width, height, tile_size)
    n_pixels = n_cameras * height * width
    if wave_size is None:
        wave_size = min(max(WAVE_CANDIDATES_PER_PIXEL * n_pixels, WAVE_MIN), WAVE_MAX)
    waves = torch.cumsum(fp.candidates, 0) // wave_size
    edges = [0] + (_where(waves[1:] != waves[:-1]) + 1).tolist() + [len(waves)]
    state = _PixelState(n_cameras * height, width)
    pixels, gaussians = [], []
    for begin, end in zip(edges[:-1], edges[1:]):
        if begin == end or bool(state.done.all()):
            continue
        pixel, gauss = _wave(fp, torch.arange(begin, end), state, width)
        pixels.append(pixel)
        gaussians.append(gauss)
    if not pixels:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    pixel, gauss = torch.cat(pixels), torch.cat(gaussians)
    if len(pixels) > 1:  # waves are in depth order, so a stable sort by pixel keeps front-to-back order
        pixel, order = torch.sort(pixel, stable=True)
        gauss = gauss.index_select(0, order)
    return pixel.long(), fp.flat_ids.index_select(0, gauss)


# --------------------------------------------------------------------------------------------- 4. compositing
def _segment_starts(pixel_ids: Tensor, n_pixels: int) -> Tensor:
    """For a list sorted by pixel: the index where each element's pixel run starts."""
    counts = torch.bincount(pixel_ids, minlength=n_pixels)
    return (torch.cumsum(counts, 0) - counts).index_select(0, pixel_ids)


def composite(
    means2d: Tensor,  # [F, 2]
    conics: Tensor,  # [F, 3]
    opacities: Tensor,  # [F]
    features: Tensor,  # [F, D]
    pixel_ids: Tensor,  # [M] sorted, from find_intersections
    gaussian_ids: Tensor,  # [M]
    n_pixels: int,
    width: int,
    height: int,
    absgrad: Optional[Tensor] = None,  # [F, 2] buffer: receives sum over pixels of |d loss / d means2d|
) -> Tuple[Tensor, Tensor]:
    """Front-to-back alpha blending of the given pairs; returns features [n_pixels, D], alphas [n_pixels]."""
    table = torch.cat([means2d.t(), conics.t(), opacities[None], features.t()])  # [6 + D, F]
    rows = table.index_select(1, gaussian_ids)  # [6 + D, M]
    if absgrad is not None and rows.requires_grad:
        def per_pixel_abs(grad: Tensor) -> None:  # each pair's grad is one pixel's share of the means2d grad
            absgrad.index_add_(0, gaussian_ids, grad[:2].t().abs())
        rows.register_hook(per_pixel_abs)
    mean_x, mean_y, conic_a, conic_b, conic_c, opacity, *feature = rows.unbind(0)  # unbind: cheap backward

    _, alpha = blend_alpha(mean_x, mean_y, conic_a, conic_b, conic_c, opacity, pixel_ids % width,
                           pixel_ids // width % height)

    # T_i = prod_{j < i in the same pixel} (1 - alpha_j), from a float64 cumulative sum of log(1 - alpha)
    log_step = torch.log1p(-alpha.to(torch.float64))
    before = torch.cumsum(log_step, 0) - log_step
    transmittance = torch.exp(before - before.index_select(0, _segment_starts(pixel_ids, n_pixels)))
    weights = alpha * transmittance.to(alpha.dtype)

    per_pixel = torch.bincount(pixel_ids, minlength=n_pixels)
    blended = torch.stack([f * weights for f in feature] + [weights], dim=1)  # [M, D + 1]
    summed = torch.segment_reduce(blended, "sum", lengths=per_pixel, axis=0)  # [n_pixels, D + 1]
    return summed[:, :-1], summed[:, -1]


# ---------------------------------------------------------------------------------------------- entry point
def rasterize_cpu(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [(C,) N, D] or [(C,) N, K, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: Optional[int] = None,
    packed: bool = True,
    tile_size: int = 16,
    backgrounds: Optional[Tensor] = None,
    render_mode: str = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    rasterize_mode: str = "classic",
    channel_chunk: int = 32,
    distributed: bool = False,
    camera_model: str = "pinhole",
    covars: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor, Dict]:
    """`gsplat.rasterization` (1.4.0) on the CPU: same arguments, outputs and `info` fields used downstream.

    Differences: `sparse_grad` and `channel_chunk` are ignored (dense gradients, all channels at once);
    `distributed` and non-pinhole cameras are not supported; `info` has no `isect_ids`, `flatten_ids`,
    `isect_offsets` (gsplat's internal tile buffers). With `absgrad=True`, `info["means2d"].absgrad` is a
    zero tensor at return that a backward hook fills with sum over pixels of |d loss / d means2d|, as gsplat's
    kernel does (one backward per render; a second backward adds to it).
    """
    N, C = means.shape[0], viewmats.shape[0]
    assert means.shape == (N, 3), means.shape
    assert opacities.shape == (N,), opacities.shape
    assert viewmats.shape == (C, 4, 4) and Ks.shape == (C, 3, 3), (viewmats.shape, Ks.shape)
    assert render_mode in RENDER_MODES, render_mode
    assert rasterize_mode in ("classic", "antialiased"), rasterize_mode
    if sh_degree is None:
        assert (colors.dim() == 2 and colors.shape[0] == N) or (colors.dim() == 3 and colors.shape[:2] == (C, N))
    else:
        assert colors.shape[-1] == 3 and colors.shape[-3] == N and colors.dim() in (3, 4), colors.shape
        assert (sh_degree + 1) ** 2 <= colors.shape[-2], colors.shape
    if distributed or camera_model != "pinhole":
        raise NotImplementedError("the CPU rasterizer supports pinhole cameras on one process only")
    if covars is not None:
        assert covars.shape == (N, 3, 3), covars.shape

    radii, means2d, depths, conics, compensations = project_gaussians(
        means, quats, scales, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, calc_compensations=rasterize_mode == "antialiased",
        covars=covars,
    )
    features = gaussian_features(colors, means, viewmats, sh_degree)  # [C, N, D]
    opacities = opacities.repeat(C, 1)  # [C, N]
    if compensations is not None:
        opacities = opacities * compensations
    if render_mode in ("RGB+D", "RGB+ED"):
        features = torch.cat([features, depths[..., None]], dim=-1)
    elif render_mode in ("D", "ED"):
        features = depths[..., None]
    if backgrounds is not None:
        assert backgrounds.shape[0] == C, backgrounds.shape
        if render_mode in ("RGB+D", "RGB+ED"):
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], dim=-1)
        elif render_mode in ("D", "ED"):
            backgrounds = backgrounds.new_zeros(C, 1)

    # Flatten to one list of (camera, Gaussian) entries: all C * N, or the visible ones in packed mode.
    if packed:
        camera_ids, gaussian_ids = torch.nonzero(radii > 0, as_tuple=True)
        radii, means2d, depths, conics = (t[camera_ids, gaussian_ids] for t in (radii, means2d, depths, conics))
        opacities, features = opacities[camera_ids, gaussian_ids], features[camera_ids, gaussian_ids]
        flat = (means2d, conics, opacities, depths, radii, camera_ids)
    else:
        camera_ids = gaussian_ids = None
        flat_cameras = torch.arange(C).repeat_interleave(N)
        flat = (means2d.reshape(C * N, 2), conics.reshape(C * N, 3), opacities.reshape(C * N),
                depths.reshape(C * N), radii.reshape(C * N), flat_cameras)

    pixel_ids, pair_ids = find_intersections(*flat, n_cameras=C, width=width, height=height, tile_size=tile_size)
    absgrad_buffer = torch.zeros_like(flat[0]) if absgrad else None
    colour, accumulated = composite(
        flat[0], flat[1], flat[2], features.reshape(len(flat[0]), features.shape[-1]), pixel_ids, pair_ids,
        n_pixels=C * height * width, width=width, height=height, absgrad=absgrad_buffer,
    )
    render_colors = colour.reshape(C, height, width, -1)
    render_alphas = accumulated.reshape(C, height, width, 1)
    if backgrounds is not None:
        render_colors = render_colors + (1.0 - render_alphas) * backgrounds[:, None, None, :]
    if render_mode in ("ED", "RGB+ED"):
        expected_depth = render_colors[..., -1:] / render_alphas.clamp(min=1e-10)
        render_colors = torch.cat([render_colors[..., :-1], expected_depth], dim=-1)
    if absgrad:
        means2d.absgrad = absgrad_buffer.view(means2d.shape)

    tiles = tile_rectangles(means2d, radii, tile_size, width, height)
    tiles_per_gauss = ((tiles[..., 2] - tiles[..., 0]) * (tiles[..., 3] - tiles[..., 1]) * (radii > 0)).int()
    info = {
        "camera_ids": camera_ids,
        "gaussian_ids": gaussian_ids,
        "radii": radii,
        "means2d": means2d,
        "depths": depths,
        "conics": conics,
        "opacities": opacities,
        "tile_width": math.ceil(width / float(tile_size)),
        "tile_height": math.ceil(height / float(tile_size)),
        "tiles_per_gauss": tiles_per_gauss,
        "width": width,
        "height": height,
        "tile_size": tile_size,
        "n_cameras": C,
    }
    return render_colors, render_alphas, info
