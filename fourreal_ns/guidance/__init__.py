"""Video-diffusion guidance for 4Real's video score distillation (paper Sec. 3.3, eqs. 4-6).

Import-light: only the configuration and errors are imported here; the backends (and diffusers) are imported by
``GuidanceConfig.build``.
"""

from fourreal_ns.guidance.config import DEFAULT_NEGATIVE_PROMPT, GuidanceConfig, backend_class
from fourreal_ns.guidance.errors import GuidanceConfigError, GuidanceError, GuidanceWeightsNotFoundError

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "GuidanceConfig",
    "GuidanceConfigError",
    "GuidanceError",
    "GuidanceWeightsNotFoundError",
    "backend_class",
]
