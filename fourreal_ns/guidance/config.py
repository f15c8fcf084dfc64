"""Configuration of the video-diffusion guidance used by score distillation.

``GuidanceConfig`` is a plain dataclass, so it nests into nerfstudio/tyro configs (``--pipeline.guidance.backend
wan``). It is cheap to import: backends (and with them diffusers/transformers) are imported only by :meth:`build`,
which keeps ``ns-*`` start-up unaffected when SDS is not used.

Adding a backend: its model in ``fourreal_ns.model_registry.MODELS``, its class in ``fourreal_ns/guidance/<name>.py``
registered with ``@register_guidance("<name>")``, and the name in the ``Literal`` of ``backend``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, Type

from fourreal_ns.guidance.errors import GuidanceConfigError
from fourreal_ns.model_registry import DEFAULT_NEGATIVE_PROMPT, MODELS, UnknownModelError, guidance_class

if TYPE_CHECKING:
    import torch

    from fourreal_ns.guidance.base import VideoGuidance


def backend_class(name: str) -> "Type[VideoGuidance]":
    """Import and return the guidance class registered under ``name`` (fourreal_ns.model_registry)."""
    try:
        return guidance_class(name)
    except UnknownModelError as error:
        raise GuidanceConfigError(str(error)) from None


@dataclass
class GuidanceConfig:
    """Video diffusion model used as the prior of the video SDS loss (paper Sec. 3.3, eqs. 4-6)."""

    enabled: bool = True
    """Use video score distillation at all (the model is only built when training)."""
    backend: Literal["ltx", "wan", "svd"] = "ltx"
    """Which video diffusion model: ltx (LTX-Video, default), wan (Wan 2.2 TI2V-5B) or svd (Stable Video
    Diffusion img2vid-xt; ignores the prompt)."""
    model_id: Optional[str] = None
    """Hugging Face hub id or local folder of a diffusers pipeline; None uses the backend's default id."""
    prompt: Optional[str] = None
    """Text prompt; None uses the scene's generation prompt supplied by the caller."""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    """Negative prompt for classifier-free guidance (text backends only)."""
    guidance_scale: Optional[float] = None
    """Classifier-free guidance scale; <= 1 runs a single conditional pass. None uses the backend's default
    (ltx 3.0, wan 5.0, svd 3.0)."""
    dtype: Literal["float32", "float16", "bfloat16"] = "bfloat16"
    """Precision of the guidance networks (outputs are always float32)."""
    device: Optional[str] = None
    """Device of the guidance networks; None uses the model's device."""
    cpu_offload: bool = False
    """Keep the networks on the CPU and move each to the GPU only while it runs (diffusers
    enable_model_cpu_offload; needs CUDA and accelerate). Saves memory, costs time."""
    sds_height: Optional[int] = None
    """Height frames are resized to before the guidance; None uses the backend's default."""
    sds_width: Optional[int] = None
    """Width frames are resized to before the guidance; None uses the backend's default."""

    def build(self, prompt: Optional[str], device: "torch.device | str") -> "VideoGuidance":
        """Load the backend's pipeline, embed the prompt once, free the text encoder, return the guidance.

        Args:
            prompt: the scene's prompt, used when :attr:`prompt` is None (ignored by ``svd``).
            device: the model's device, used when :attr:`device` is None.
        """
        cls = backend_class(self.backend)
        return cls(self, prompt, device)

    def check_available(self, hub_timeout: float = 10.0) -> None:
        """Fail when training starts rather than at the first SDS step, thousands of steps later: a local folder
        must hold a diffusers pipeline (model_index.json); a hub id must be in the local Hugging Face cache, or,
        unless HF_HUB_OFFLINE is set, known to a hub that answers within `hub_timeout` seconds (the download itself
        happens at the first SDS step, as before). GuidanceWeightsNotFoundError says how to fetch the weights."""
        from pathlib import Path

        from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError
        from fourreal_ns.guidance.loading import hub_offline, hub_problem, looks_like_local_path

        model_id = self.model_id or MODELS[self.backend].default_model_id
        if looks_like_local_path(model_id):
            if not (Path(model_id).expanduser() / "model_index.json").is_file():
                raise GuidanceWeightsNotFoundError(model_id, self.backend,
                                                   f"{model_id} is not a folder with a model_index.json")  # fmt: skip
            return
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(model_id, "model_index.json"), str):
            return
        if hub_offline():
            raise GuidanceWeightsNotFoundError(model_id, self.backend,
                                               "HF_HUB_OFFLINE is set and the Hugging Face cache does not hold it")
        problem = hub_problem(model_id, hub_timeout)
        if problem is not None:
            raise GuidanceWeightsNotFoundError(model_id, self.backend,
                                               f"the Hugging Face cache does not hold it and the hub {problem}")

