"""Rendering: one `rasterize` for both devices (gsplat on CUDA, a pure-PyTorch tile compositor on CPU)."""

from fourreal_ns.rendering.rasterize import rasterize

__all__ = ["rasterize"]
