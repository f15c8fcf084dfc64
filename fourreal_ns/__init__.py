"""fourreal_ns: 4Real (NeurIPS 2024) as a nerfstudio method plugin: photorealistic 4D scenes as deformable
3D Gaussian splats."""

__version__ = "0.1.0"
