"""`rasterize`: gsplat 1.4.0's `rasterization` on CUDA, our pure-PyTorch compositor everywhere else.

gsplat 1.4.0 ships CUDA kernels only (even `gsplat.rendering._rasterization` calls them), so on a CPU machine the
same call goes to `cpu_rasterizer.rasterize_cpu`, which follows gsplat's projection and compositing rules and
returns the same `(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)`; `info` carries the fields
splatfacto and gsplat's `DefaultStrategy` read (`means2d` with its gradient, `radii`, `width`, `height`,
`n_cameras`, `gaussian_ids`, ...). The device of `means` decides the path.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from torch import Tensor
from typing_extensions import Literal

from fourreal_ns.rendering.cpu_rasterizer import rasterize_cpu


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [(C,) N, D] or [(C,) N, K, 3] SH coefficients
    viewmats: Tensor,  # [C, 4, 4] world-to-camera (OpenCV)
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
    backgrounds: Optional[Tensor] = None,  # [C, D]
    render_mode: Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"] = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    rasterize_mode: Literal["classic", "antialiased"] = "classic",
    **kwargs,
) -> Tuple[Tensor, Tensor, Dict]:
    """Rasterize N Gaussians into C images; arguments and outputs as `gsplat.rasterization` 1.4.0.

    Extra keyword arguments (`channel_chunk`, `distributed`, `camera_model`, `covars`) are passed through; the
    CPU path supports `covars` and ignores `channel_chunk`.
    """
    arguments = dict(
        near_plane=near_plane, far_plane=far_plane, radius_clip=radius_clip, eps2d=eps2d, sh_degree=sh_degree,
        packed=packed, tile_size=tile_size, backgrounds=backgrounds, render_mode=render_mode,
        sparse_grad=sparse_grad, absgrad=absgrad, rasterize_mode=rasterize_mode, **kwargs,
    )
    if means.is_cuda:
        from gsplat import rasterization  # imported lazily: its CUDA extension loads on first use

        return rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **arguments)
    return rasterize_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **arguments)
