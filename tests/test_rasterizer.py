"""Tests for `fourreal_ns.rendering.rasterize` on the CPU (and against gsplat's CUDA kernels when a GPU exists).

1. agreement with a brute-force reference: plain Python loops over pixels and depth-sorted Gaussians that apply
   gsplat 1.4.0's compositing rules, fed by gsplat's own PyTorch projection and SH helpers;
2. float64 finite-difference gradients (torch.autograd.gradcheck);
3. the `info` contract that splatfacto and gsplat's DefaultStrategy rely on;
4. parity with `gsplat.rasterization` on CUDA (skipped without a GPU).
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics
from torch import Tensor

from fourreal_ns.rendering import rasterize


# ------------------------------------------------------------------------------------------------- scenes
def look_at_viewmat(eye: List[float], target: List[float], dtype=torch.float64) -> Tensor:
    """World-to-camera (OpenCV: x right, y down, z forward) for a camera at `eye` looking at `target`."""
    eye_t, target_t = torch.tensor(eye, dtype=dtype), torch.tensor(target, dtype=dtype)
    forward = torch.nn.functional.normalize(target_t - eye_t, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, torch.tensor([0.0, -1.0, 0.0], dtype=dtype)), dim=0)
    down = torch.linalg.cross(forward, right)
    rotation = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    viewmat = torch.eye(4, dtype=dtype)
    viewmat[:3, :3] = rotation
    viewmat[:3, 3] = -rotation @ eye_t
    return viewmat


def intrinsics(width: int, height: int, focal: float, dtype=torch.float64) -> Tensor:
    return torch.tensor([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype)


def small_scene(seed: int = 0, n: int = 20, dtype=torch.float64) -> Dict[str, Tensor]:
    """20 Gaussians in front of two cameras: overlapping blobs, three opaque ones stacked at the centre (alpha
    clamps at 0.999 and transmittance runs out), one behind the camera, one far outside the view, one half off
    the image edge."""
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g, dtype=dtype) * 2.4 - 1.2,
                       torch.rand(n, 1, generator=g, dtype=dtype) * 3 + 2.5], dim=1)
    means[0:3] = torch.tensor([[0.05, 0.0, 3.0], [0.0, 0.05, 3.5], [-0.05, 0.02, 4.0]], dtype=dtype)
    means[3] = torch.tensor([0.3, 0.2, -2.0], dtype=dtype)  # behind the camera
    means[4] = torch.tensor([40.0, 0.0, 3.0], dtype=dtype)  # outside the view
    means[5] = torch.tensor([1.75, -0.3, 3.0], dtype=dtype)  # across the right edge
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.rand(n, 3, generator=g, dtype=dtype) * 2.0 - 3.2)  # 0.04 .. 0.3
    opacities = torch.rand(n, generator=g, dtype=dtype) * 0.8 + 0.15
    opacities[0:3] = 1.0
    scales[0:3] = torch.tensor([0.6, 0.5, 0.7], dtype=dtype)
    width, height = 20, 14
    viewmats = torch.stack([look_at_viewmat([0.0, 0.0, 0.0], [0.0, 0.0, 4.0], dtype),
                            look_at_viewmat([0.7, -0.3, 0.2], [0.0, 0.0, 4.0], dtype)])
    Ks = torch.stack([intrinsics(width, height, 16.0, dtype), intrinsics(width, height, 18.0, dtype)])
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, viewmats=viewmats, Ks=Ks,
                width=width, height=height, generator=g)


# ------------------------------------------------------------------------------------ brute-force reference
def reference_rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree=None,
                        backgrounds=None, render_mode="RGB", rasterize_mode="classic", tile_size=16,
                        eps2d=0.3, near_plane=0.01, far_plane=1e10) -> Tuple[Tensor, Tensor]:
    """gsplat's rules, one pixel and one Gaussian at a time (gsplat's own PyTorch projection and SH)."""
    C = viewmats.shape[0]
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, comps = _fully_fused_projection(
        means, covars, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane, far_plane=far_plane,
        calc_compensations=rasterize_mode == "antialiased")
    alphas_gauss = opacities[None].expand(C, -1) * (comps if comps is not None else 1.0)
    if sh_degree is None:
        feats = colors.expand(C, -1, -1) if colors.dim() == 2 else colors
    else:
        centres = torch.inverse(viewmats)[:, :3, 3]
        coeffs = colors.expand(C, -1, -1, -1) if colors.dim() == 3 else colors
        feats = torch.clamp_min(_spherical_harmonics(sh_degree, means[None] - centres[:, None], coeffs) + 0.5, 0)
    if render_mode in ("RGB+D", "RGB+ED"):
        feats = torch.cat([feats, depths[..., None]], -1)
    elif render_mode in ("D", "ED"):
        feats = depths[..., None]
    D = feats.shape[-1]
    if backgrounds is not None and render_mode in ("RGB+D", "RGB+ED"):
        backgrounds = torch.cat([backgrounds, torch.zeros(C, 1, dtype=backgrounds.dtype)], -1)
    elif backgrounds is not None and render_mode in ("D", "ED"):
        backgrounds = torch.zeros(C, 1, dtype=backgrounds.dtype)

    out = torch.zeros(C, height, width, D, dtype=means.dtype)
    out_alpha = torch.zeros(C, height, width, 1, dtype=means.dtype)
    for c in range(C):
        order = sorted(range(means.shape[0]), key=lambda i: (float(depths[c, i]), i))
        gauss = []
        for i in order:
            r = int(radii[c, i])
            if r <= 0:
                continue
            mx, my = means2d[c, i].tolist()
            tiles_x = math.ceil(width / tile_size), math.ceil(height / tile_size)
            t0 = [min(max(math.floor(m / tile_size - r / tile_size), 0), n) for m, n in zip((mx, my), tiles_x)]
            t1 = [min(max(math.ceil(m / tile_size + r / tile_size), 0), n) for m, n in zip((mx, my), tiles_x)]
            gauss.append((mx, my, *conics[c, i].tolist(), float(alphas_gauss[c, i]), feats[c, i].tolist(), t0, t1))
        for y in range(height):
            for x in range(width):
                T, pix = 1.0, [0.0] * D
                for mx, my, a, b, cc, opac, feat, t0, t1 in gauss:
                    tx, ty = x // tile_size, y // tile_size
                    if not (t0[0] <= tx < t1[0] and t0[1] <= ty < t1[1]):
                        continue  # gsplat only evaluates a Gaussian inside its tiles
                    dx, dy = mx - (x + 0.5), my - (y + 0.5)
                    sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
                    alpha = min(0.999, opac * math.exp(-sigma))
                    if sigma < 0 or alpha < 1.0 / 255.0:
                        continue
                    if T * (1 - alpha) <= 1e-4:
                        reference_rasterize.stops += 1
                        break
                    pix = [p + f * alpha * T for p, f in zip(pix, feat)]
                    T *= 1 - alpha
                out[c, y, x] = torch.tensor(pix, dtype=means.dtype)
                out_alpha[c, y, x, 0] = 1 - T
                if backgrounds is not None:
                    out[c, y, x] += T * backgrounds[c]
    if render_mode in ("ED", "RGB+ED"):
        out[..., -1:] = out[..., -1:] / out_alpha.clamp(min=1e-10)
    return out, out_alpha


reference_rasterize.stops = 0  # pixels that ended on the transmittance cut-off (the tests check it happens)


CASES = [
    # render_mode, backgrounds, sh_degree (None: plain features), rasterize_mode, packed, tile_size
    ("RGB", False, None, "classic", False, 16),
    ("RGB", True, 0, "classic", True, 8),
    ("RGB+ED", True, 2, "antialiased", False, 8),
    ("RGB+ED", False, 2, "classic", True, 16),
    ("RGB+D", True, None, "antialiased", True, 8),
    ("D", True, None, "classic", False, 8),
    ("ED", False, 0, "antialiased", False, 16),
]


@pytest.mark.parametrize("render_mode,use_bg,sh_degree,rasterize_mode,packed,tile_size", CASES)
def test_matches_brute_force_reference(render_mode, use_bg, sh_degree, rasterize_mode, packed, tile_size):
    s = small_scene(seed=1)
    g, n = s["generator"], s["means"].shape[0]
    if sh_degree is None:
        colors = torch.rand(n, 5, generator=g, dtype=torch.float64)  # plain 5-channel features
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2 + 2, 3, generator=g, dtype=torch.float64) * 0.4
    D = 5 if sh_degree is None else 3
    backgrounds = torch.rand(2, D, generator=g, dtype=torch.float64) if use_bg else None
    args = (s["means"], s["quats"], s["scales"], s["opacities"], colors, s["viewmats"], s["Ks"], s["width"], s["height"])
    kwargs = dict(sh_degree=sh_degree, backgrounds=backgrounds, render_mode=render_mode,
                  rasterize_mode=rasterize_mode, tile_size=tile_size)

    image, alpha, info = rasterize(*args, packed=packed, **kwargs)
    reference_rasterize.stops = 0
    ref_image, ref_alpha = reference_rasterize(*args, **kwargs)
    assert reference_rasterize.stops > 0  # some pixels end on the transmittance cut-off

    assert image.shape == ref_image.shape and alpha.shape == ref_alpha.shape
    assert (image - ref_image).abs().max() < 1e-5
    assert (alpha - ref_alpha).abs().max() < 1e-5
    assert alpha.max() > 0.99 and alpha.min() < 0.5  # the scene covers part of the images, opaquely in places


def test_culling():
    s = small_scene(seed=1)
    args = (s["means"], s["quats"], s["scales"], s["opacities"], torch.ones(20, 3, dtype=torch.float64),
            s["viewmats"], s["Ks"], s["width"], s["height"])
    _, _, info = rasterize(*args, packed=False)
    assert (info["radii"][:, 3] == 0).all() and (info["radii"][:, 4] == 0).all()  # behind / outside the view
    assert (info["radii"][:, 5] > 0).all()  # half off the edge: kept


def test_alpha_clamp_and_exclusive_transmittance_cutoff():
    """Two opaque Gaussians centred on pixel (10, 7): the first blends with alpha 0.999 (clamped), the second
    would leave T = 1e-6 <= 1e-4, so the pixel stops before it and before everything behind it."""
    dt = torch.float64
    means = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 4.0], [0.0, 0.0, 5.0]], dtype=dt)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=dt).repeat(3, 1)
    scales = torch.full((3, 3), 0.2, dtype=dt)
    opacities = torch.tensor([1.0, 1.0, 0.5], dtype=dt)
    features = torch.tensor([[1.0], [1000.0], [1000.0]], dtype=dt)
    Ks = torch.tensor([[[16.0, 0.0, 10.5], [0.0, 16.0, 7.5], [0.0, 0.0, 1.0]]], dtype=dt)  # centre of pixel (10, 7)
    image, alpha, _ = rasterize(means, quats, scales, opacities, features, torch.eye(4, dtype=dt)[None], Ks, 20, 14)
    assert torch.isclose(alpha[0, 7, 10, 0], torch.tensor(0.999, dtype=dt))
    assert torch.isclose(image[0, 7, 10, 0], torch.tensor(0.999, dtype=dt))
    assert image[0, 7, 11, 0] > 1.0  # next to the centre alpha < 0.999 and the second Gaussian shows through


# ------------------------------------------------------------------------------------- gradients (float64)
def gradient_scene() -> Dict[str, Tensor]:
    """Four broad, half-transparent Gaussians well inside a 10x8 image (one tile): every pixel sees every
    Gaussian with alpha far from 1/255 and 0.999 and transmittance far above 1e-4, so the output is smooth."""
    dt = torch.float64
    means = torch.tensor([[0.0, 0.0, 3.0], [0.2, 0.1, 3.4], [-0.15, 0.05, 3.8], [0.05, -0.12, 4.2]], dtype=dt)
    quats = torch.tensor([[1.0, 0.1, 0.2, 0.0], [0.9, -0.3, 0.1, 0.2], [0.7, 0.0, 0.5, 0.1], [1.0, 0.0, 0.0, 0.3]], dtype=dt)
    scales = torch.tensor([[1.9, 1.4, 1.6], [1.6, 2.2, 1.2], [2.1, 1.8, 2.0], [2.0, 1.9, 1.8]], dtype=dt)
    opacities = torch.tensor([0.35, 0.45, 0.3, 0.5], dtype=dt)
    viewmats = look_at_viewmat([0.0, 0.0, 0.0], [0.0, 0.0, 1.0])[None]
    Ks = intrinsics(10, 8, 9.0)[None]
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, viewmats=viewmats, Ks=Ks)


def test_gradient_scene_is_away_from_thresholds():
    s = gradient_scene()
    covars, _ = _quat_scale_to_covar_preci(s["quats"], s["scales"], compute_preci=False)
    radii, means2d, _, conics, _ = _fully_fused_projection(s["means"], covars, s["viewmats"], s["Ks"], 10, 8)
    assert (radii > 0).all()
    ys, xs = torch.meshgrid(torch.arange(8) + 0.5, torch.arange(10) + 0.5, indexing="ij")
    d = torch.stack([xs, ys], -1)[None, :, :, None, :] - means2d[:, None, None]  # [1, H, W, N, 2]
    a, b, c = conics.unbind(-1)
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = s["opacities"] * torch.exp(-sigma)
    assert alpha.min() > 5 / 255 and alpha.max() < 0.9
    assert torch.prod(1 - alpha, dim=-1).min() > 1e-2  # transmittance never near 1e-4


@pytest.mark.parametrize("render_mode,sh_degree,rasterize_mode,use_bg", [
    ("RGB+ED", None, "classic", True),
    ("RGB", 1, "antialiased", False),
])
def test_gradients_match_finite_differences(render_mode, sh_degree, rasterize_mode, use_bg):
    s = gradient_scene()
    g = torch.Generator().manual_seed(3)
    if sh_degree is None:
        colors = torch.rand(4, 3, generator=g, dtype=torch.float64)
    else:
        colors = torch.randn(4, 4, 3, generator=g, dtype=torch.float64) * 0.3
    backgrounds = torch.tensor([[0.2, 0.5, 0.9]], dtype=torch.float64) if use_bg else None
    inputs = [t.clone().requires_grad_(True) for t in (s["means"], s["quats"], s["scales"], s["opacities"], colors, s["viewmats"])]

    def render(means, quats, scales, opacities, colors, viewmats):
        image, alpha, _ = rasterize(means, quats, scales, opacities, colors, viewmats, s["Ks"], 10, 8,
                                    sh_degree=sh_degree, backgrounds=backgrounds, render_mode=render_mode,
                                    rasterize_mode=rasterize_mode, packed=False)
        return image, alpha

    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_means2d_grad_is_the_whole_image_plane_gradient():
    """Moving the principal point by h moves every projected mean by exactly (h, 0) and nothing else, so
    d loss / d cx must equal the sum of info["means2d"].grad[..., 0] (likewise for cy)."""
    s = gradient_scene()
    colors = torch.rand(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    weights = torch.rand(1, 8, 10, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def loss_for(Ks: Tensor, retain: bool = False):
        image, alpha, info = rasterize(s["means"].clone().requires_grad_(True), s["quats"], s["scales"],
                                       s["opacities"], colors, s["viewmats"], Ks, 10, 8, packed=False)
        if retain:
            info["means2d"].retain_grad()
        return (weights * torch.cat([image, alpha], -1)).sum(), info

    loss, info = loss_for(s["Ks"], retain=True)
    loss.backward()
    grad = info["means2d"].grad
    h = 1e-6
    for axis, (row, col) in enumerate([(0, 2), (1, 2)]):
        plus, minus = s["Ks"].clone(), s["Ks"].clone()
        plus[0, row, col] += h
        minus[0, row, col] -= h
        numeric = (loss_for(plus)[0] - loss_for(minus)[0]) / (2 * h)
        assert torch.isclose(numeric, grad[..., axis].sum(), rtol=1e-5, atol=1e-8), (numeric, grad[..., axis].sum())


# ------------------------------------------------------------------------------------------- info contract
def random_scene(n: int, width: int, height: int, seed: int = 0, dtype=torch.float32) -> Dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g) * 2 - 1, torch.rand(n, 1, generator=g) * 2 + 2.5], 1)
    return dict(
        means=means.to(dtype),
        quats=torch.randn(n, 4, generator=g).to(dtype),
        scales=torch.exp(torch.randn(n, 3, generator=g) * 0.4 - 3.0).to(dtype),
        opacities=(torch.rand(n, generator=g) * 0.9 + 0.05).to(dtype),
        colors=torch.rand(n, 3, generator=g).to(dtype),
        viewmats=torch.eye(4, dtype=dtype)[None],
        Ks=intrinsics(width, height, 0.9 * width, dtype)[None],
    )


def test_info_fields_and_means2d_gradient():
    W, H = 48, 32
    s = random_scene(300, W, H)
    s["means"][0] = torch.tensor([0.0, 0.0, -1.0])  # behind the camera: culled
    means = s["means"].requires_grad_(True)
    image, alpha, info = rasterize(means, s["quats"], s["scales"], s["opacities"], s["colors"], s["viewmats"],
                                   s["Ks"], W, H, packed=False)
    assert image.shape == (1, H, W, 3) and alpha.shape == (1, H, W, 1)
    for key in ("means2d", "radii", "depths", "conics", "opacities", "width", "height", "n_cameras", "tile_size",
                "gaussian_ids", "camera_ids", "tile_width", "tile_height", "tiles_per_gauss"):
        assert key in info, key
    assert info["gaussian_ids"] is None and info["camera_ids"] is None
    assert info["radii"].shape == (1, 300) and info["radii"].dtype == torch.int32  # gsplat 1.4.0: [C, N] int32
    assert info["means2d"].shape == (1, 300, 2) and info["conics"].shape == (1, 300, 3)
    assert info["depths"].shape == (1, 300) and info["opacities"].shape == (1, 300)
    assert (info["width"], info["height"], info["n_cameras"], info["tile_size"]) == (W, H, 1, 16)
    assert info["radii"][0, 0] == 0 and (info["radii"] > 0).sum() > 200

    assert not info["means2d"].is_leaf
    info["means2d"].retain_grad()
    image.sum().backward()
    grad = info["means2d"].grad
    visible = info["radii"] > 0
    assert grad.shape == (1, 300, 2)
    assert (grad[~visible] == 0).all() and (grad[visible].norm(dim=-1) > 0).float().mean() > 0.5
    assert means.grad is not None and torch.isfinite(means.grad).all()


def test_packed_info():
    W, H = 48, 32
    s = random_scene(200, W, H)
    s["means"][0] = torch.tensor([0.0, 0.0, -1.0])
    args = (s["means"], s["quats"], s["scales"], s["opacities"], s["colors"], s["viewmats"], s["Ks"], W, H)
    image_p, alpha_p, info_p = rasterize(*args, packed=True)
    image_u, alpha_u, info_u = rasterize(*args, packed=False)
    nnz = int((info_u["radii"] > 0).sum())
    assert info_p["radii"].shape == (nnz,) and info_p["radii"].dtype == torch.int32
    assert info_p["means2d"].shape == (nnz, 2)
    assert info_p["gaussian_ids"].dtype == torch.int64 and info_p["camera_ids"].dtype == torch.int64
    assert (info_p["gaussian_ids"] != 0).all()
    assert torch.equal(image_p, image_u) and torch.equal(alpha_p, alpha_u)


def test_absgrad_is_per_pixel_absolute_sum():
    W, H = 40, 24
    s = random_scene(150, W, H)
    means = s["means"].requires_grad_(True)
    image, _, info = rasterize(means, s["quats"], s["scales"], s["opacities"], s["colors"], s["viewmats"],
                               s["Ks"], W, H, packed=False, absgrad=True)
    info["means2d"].retain_grad()
    target = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    ((image - target) ** 2).sum().backward()
    absgrad, grad = info["means2d"].absgrad, info["means2d"].grad
    assert absgrad.shape == grad.shape
    assert (absgrad >= grad.abs() - 1e-6).all()  # sum |g_pixel| >= |sum g_pixel|
    assert (absgrad > grad.abs() + 1e-6).any()


def test_default_strategy_densifies_on_cpu():
    """gsplat's DefaultStrategy (packed=False) runs on our info and duplicates small / splits large Gaussians."""
    from gsplat.strategy import DefaultStrategy

    W, H, n = 48, 32, 120
    s = random_scene(n, W, H, seed=2)
    s["scales"][: n // 2] = 0.005  # small: duplicated (scale <= grow_scale3d * scene_scale)
    s["scales"][n // 2:] = 0.05  # large: split
    params = torch.nn.ParameterDict({
        "means": s["means"], "scales": torch.log(s["scales"]), "quats": s["quats"],
        "opacities": torch.logit(s["opacities"]), "colors": s["colors"],
    })
    optimizers = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    strategy = DefaultStrategy(refine_start_iter=1, refine_every=2, grow_grad2d=1e-7, grow_scale3d=0.01,
                               reset_every=10_000, prune_opa=1e-4)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    target = torch.rand(1, H, W, 3, generator=torch.Generator().manual_seed(0))

    def train_step(step: int) -> Dict:
        image, _, info = rasterize(params["means"], params["quats"], torch.exp(params["scales"]),
                                   torch.sigmoid(params["opacities"]), params["colors"], s["viewmats"], s["Ks"],
                                   W, H, packed=False)
        strategy.step_pre_backward(params, optimizers, state, step, info)
        ((image - target) ** 2).mean().backward()
        strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        for opt in optimizers.values():  # no optimiser step: scales stay exact, so the test can tell the
            opt.zero_grad()  # duplicated (0.005), split (0.05 / 1.6) and untouched (0.05) Gaussians apart
        return info

    train_step(1)  # statistics only: refinement needs step > refine_start_iter
    train_step(2)  # refines
    scales = torch.exp(params["scales"].detach())
    n_small = int(torch.isclose(scales, torch.tensor(0.005)).all(-1).sum())
    n_split_children = int(torch.isclose(scales, torch.tensor(0.05 / 1.6)).all(-1).sum())
    n_large = int(torch.isclose(scales, torch.tensor(0.05)).all(-1).sum())
    n_dupli, n_split = n_small - n // 2, n_split_children // 2
    assert n_dupli > 10 and n_split > 10
    assert n_large == n - n // 2 - n_split and n_split_children == 2 * n_split
    assert len(params["means"]) == n + n_dupli + n_split  # duplicates add one, splits replace one by two
    for key, p in params.items():
        assert p.shape[0] == len(params["means"]) and optimizers[key].param_groups[0]["params"][0] is p
    train_step(3)  # renders and collects statistics for the grown set


# -------------------------------------------------------------------------------------------- CUDA parity
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA parity needs a GPU: gsplat has no CPU kernels")
@pytest.mark.parametrize("rasterize_mode,sh_degree,render_mode", [("classic", None, "RGB"), ("antialiased", 2, "RGB+ED")])
def test_cuda_parity(rasterize_mode, sh_degree, render_mode):
    W, H, n = 96, 64, 2000
    s = random_scene(n, W, H, seed=4)
    g = torch.Generator().manual_seed(7)
    colors = s["colors"] if sh_degree is None else torch.randn(n, 9, 3, generator=g) * 0.3
    backgrounds = torch.tensor([[0.1, 0.2, 0.3]])
    outputs = {}
    for device in ("cpu", "cuda"):
        inputs = [t.to(device).clone().requires_grad_(True)
                  for t in (s["means"], s["quats"], s["scales"], s["opacities"], colors)]
        image, alpha, info = rasterize(*inputs, s["viewmats"].to(device), s["Ks"].to(device), W, H,
                                       sh_degree=sh_degree, backgrounds=backgrounds.to(device),
                                       render_mode=render_mode, rasterize_mode=rasterize_mode, packed=False)
        info["means2d"].retain_grad()
        weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(8)).to(device)
        ((weights * image).sum() + alpha.sum()).backward()
        outputs[device] = dict(image=image.detach().cpu(), alpha=alpha.detach().cpu(), radii=info["radii"].cpu(),
                               grad2d=info["means2d"].grad.cpu(), grad_means=inputs[0].grad.cpu())
    cpu, gpu = outputs["cpu"], outputs["cuda"]
    assert cpu["radii"].dtype == gpu["radii"].dtype == torch.int32 and cpu["radii"].shape == gpu["radii"].shape
    assert (cpu["radii"] != gpu["radii"]).float().mean() < 1e-3  # ceil() may round differently at an integer
    rgb_diff = (cpu["image"][..., :3] - gpu["image"][..., :3]).abs()
    # a pixel may differ by ~1/255 where a float32 alpha sits exactly at the 1/255 threshold; those are rare
    assert rgb_diff.max() < 2e-2 and (rgb_diff > 1e-3).float().mean() < 1e-3
    assert ((cpu["alpha"] - gpu["alpha"]).abs() > 1e-3).float().mean() < 1e-3
    visible = (cpu["radii"] > 0) & (gpu["radii"] > 0)
    g_cpu, g_gpu = cpu["grad2d"][visible], gpu["grad2d"][visible]
    assert (g_cpu - g_gpu).norm() <= 1e-2 * g_gpu.norm()
    assert (cpu["grad_means"] - gpu["grad_means"]).norm() <= 1e-2 * gpu["grad_means"].norm()


# ------------------------------------------------------------------------------------- search in waves
def test_small_waves_find_the_same_pairs():
    """The front-to-back search carries transmittance across waves: tiny waves give the same pairs."""
    from fourreal_ns.rendering import cpu_rasterizer

    W, H = 40, 24
    s = random_scene(400, W, H, seed=3)
    s["scales"] *= 2.0  # large, overlapping: many pixels run out of transmittance
    radii, means2d, depths, conics, _ = cpu_rasterizer.project_gaussians(
        s["means"], s["quats"], s["scales"], s["viewmats"], s["Ks"], W, H)
    flat = (means2d[0], conics[0], s["opacities"], depths[0], radii[0], torch.zeros(400, dtype=torch.long))
    one_wave = cpu_rasterizer.find_intersections(*flat, n_cameras=1, width=W, height=H, tile_size=16,
                                                 wave_size=1 << 30)
    many_waves = cpu_rasterizer.find_intersections(*flat, n_cameras=1, width=W, height=H, tile_size=16,
                                                   wave_size=200)
    assert torch.equal(one_wave[0], many_waves[0]) and torch.equal(one_wave[1], many_waves[1])
    assert len(one_wave[0]) > 0


def test_small_waves_match_reference(monkeypatch):
    from fourreal_ns.rendering import cpu_rasterizer

    monkeypatch.setattr(cpu_rasterizer, "WAVE_MIN", 16)
    monkeypatch.setattr(cpu_rasterizer, "WAVE_CANDIDATES_PER_PIXEL", 0)  # waves of 16 candidates
    s = small_scene(seed=1)
    colors = torch.rand(20, 3, generator=s["generator"], dtype=torch.float64)
    args = (s["means"], s["quats"], s["scales"], s["opacities"], colors, s["viewmats"], s["Ks"], s["width"], s["height"])
    image, alpha, _ = rasterize(*args, packed=False, tile_size=8)
    reference_rasterize.stops = 0
    ref_image, ref_alpha = reference_rasterize(*args, tile_size=8)
    assert reference_rasterize.stops > 0
    assert (image - ref_image).abs().max() < 1e-5 and (alpha - ref_alpha).abs().max() < 1e-5


def test_empty_and_culled_scenes():
    s = random_scene(10, 16, 12)
    s["means"][:, 2] = -1.0  # everything behind the camera
    means = s["means"].requires_grad_(True)
    backgrounds = torch.tensor([[0.2, 0.4, 0.6]])
    image, alpha, info = rasterize(means, s["quats"], s["scales"], s["opacities"], s["colors"], s["viewmats"],
                                   s["Ks"], 16, 12, backgrounds=backgrounds, packed=False)
    assert (alpha == 0).all() and torch.allclose(image, backgrounds.expand(1, 12, 16, 3).reshape(1, 12, 16, 3))
    image.sum().backward()
    assert (means.grad == 0).all()
    empty = torch.zeros(0, 3)
    image, alpha, info = rasterize(empty, torch.zeros(0, 4), empty, torch.zeros(0), empty, s["viewmats"], s["Ks"],
                                   16, 12, packed=True)
    assert image.shape == (1, 12, 16, 3) and (image == 0).all() and info["radii"].shape == (0,)
