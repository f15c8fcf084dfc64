"""The video diffusion models fourreal_ns knows, shared by generation (`generate/`) and SDS guidance (`guidance/`).

One record per model family (its default weights, the frame grid of its causal VAE), the dtype names every command
accepts, and the two class registries. Each class registers itself next to its definition (threestudio's
`@register`): `@register_guidance("ltx")` on `LTXGuidance`, `@register_generator("ltx")` on `LTXGenerator`.
Cheap to import (no torch, no diffusers): a guidance module is imported only when its class is asked for, so
`ns-*` start-up stays fast when SDS is off.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, TypeVar


@dataclass(frozen=True)
class VideoModel:
    name: str
    default_model_id: str
    """Hugging Face hub id of the weights used when no --model-id is given."""
    temporal_multiple: Optional[int]
    """Videos have temporal_multiple * n + 1 frames (the causal VAE's grid); None: any count (SVD)."""
    description: str


MODELS: Dict[str, VideoModel] = {
    "ltx": VideoModel("ltx", "Lightricks/LTX-Video-0.9.5", 8,
                      "LTX-Video >= 0.9.5 (2B, frame conditioning): text-to-video and known frames"),
    "wan": VideoModel("wan", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", 4,
                      "Wan 2.2 TI2V-5B: text-to-video and image-to-video in one model"),
    "svd": VideoModel("svd", "stabilityai/stable-video-diffusion-img2vid-xt", None,
                      "Stable Video Diffusion img2vid-xt: image-to-video, no prompt (guidance only)"),
}

#: Negative prompt for classifier-free guidance, in generation and SDS (LTX-Video's recommended one; also sensible
#: for Wan).
DEFAULT_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"

DTYPE_NAMES: Tuple[str, ...] = ("float32", "float16", "bfloat16")

GUIDANCE: Dict[str, type] = {}
GENERATORS: Dict[str, type] = {}
T = TypeVar("T", bound=type)


class UnknownModelError(ValueError):
    pass


def _register(registry: Dict[str, type], name: str) -> Callable[[T], T]:
    if name not in MODELS:
        raise UnknownModelError(f"no video model '{name}' in fourreal_ns.model_registry.MODELS")

    def decorate(cls: T) -> T:
        cls.name = name
        cls.default_model_id = MODELS[name].default_model_id
        registry[name] = cls
        return cls

    return decorate


def register_guidance(name: str) -> Callable[[T], T]:
    """Class decorator: the SDS guidance backend for model family `name` (sets its `name` and default weights)."""
    return _register(GUIDANCE, name)


def register_generator(name: str) -> Callable[[T], T]:
    """Class decorator: the `fourreal generate` backend for model family `name` (also sets its frame grid)."""
    register = _register(GENERATORS, name)

    def decorate(cls: T) -> T:
        cls.temporal_multiple = MODELS[name].temporal_multiple
        return register(cls)

    return decorate


def guidance_class(name: str) -> type:
    """The guidance class of `name`, importing `fourreal_ns.guidance.<name>` on first use."""
    if name in MODELS and name not in GUIDANCE:
        importlib.import_module(f"fourreal_ns.guidance.{name}")
    if name not in GUIDANCE:
        raise UnknownModelError(f"unknown guidance backend '{name}'; available: {sorted(MODELS)}")
    return GUIDANCE[name]


def generator_class(name: str) -> type:
    """The generator class of `name` (registered when fourreal_ns.generate.video_models is imported)."""
    if name not in GENERATORS:
        raise UnknownModelError(f"unknown generation backend '{name}': use one of {', '.join(GENERATORS)}")
    return GENERATORS[name]


def torch_dtype(name: str):
    """torch dtype of one of DTYPE_NAMES."""
    import torch

    if name not in DTYPE_NAMES:
        raise ValueError(f"--dtype {name!r}: use one of {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)
