"""The video diffusion models fourreal_ns knows, shared by generation (`generate/`) and SDS guidance (`guidance/`).

One record per model family (its default weights, the frame grid of its causal VAE), one per freeze-time orbit
backend (an image-to-video model with an orbit LoRA: `ORBIT_BACKENDS`), the dtype names every command accepts, and
the two class registries. Each class registers itself next to its definition (threestudio's
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


@dataclass(frozen=True)
class OrbitBackend:
    """A public image-to-video model plus a LoRA that makes it orbit the camera around a still scene: the
    freeze-time video of `fourreal generate --freeze-backend NAME` (fourreal_ns/generate/orbit_backends.py)."""

    name: str
    pipeline: str
    """The diffusers pipeline class of the base model (its model_index.json `_class_name`)."""
    base_model_id: str
    """Hugging Face hub id of the base image-to-video weights."""
    lora_id: str
    """Hub id (or local file / folder) of the orbit LoRA."""
    lora_weight_name: Optional[str]
    """The LoRA's file in its repository (None: the repository's only .safetensors file)."""
    lora_scale: float
    """Strength the LoRA is fused with (its model card's recipe)."""
    prompt_template: str
    """The freeze-time prompt: `{scene}` is the prompt's static description; the trigger phrase is part of it."""
    native_frames: int
    """Frames per clip the model was trained on (the first clip; each extension step adds native_frames - 1)."""
    fps: float
    native_size: Tuple[int, int]
    """(height, width) the model runs at."""
    reference_size: Tuple[int, int]
    """(height, width) of the reference video by default: the native aspect at multiples of 32 (LTX / Wan 2.2)."""
    temporal_multiple: int
    """Clips have temporal_multiple * n + 1 frames (the causal VAE)."""
    default_steps: int
    guidance_scale: float
    degrees_per_frame: Optional[float]
    """The camera's turn per frame where the LoRA's orbit is known (nominal poses); None: unknown, SfM poses it."""
    description: str


ORBIT_BACKENDS: Dict[str, OrbitBackend] = {
    "cogvideox-dimensionx": OrbitBackend(
        name="cogvideox-dimensionx", pipeline="CogVideoXImageToVideoPipeline",
        base_model_id="THUDM/CogVideoX-5b-I2V", lora_id="wenqsun/DimensionX",
        lora_weight_name="orbit_left_lora_weights.safetensors", lora_scale=1.0 / 256,  # rank 256, fused at 1/rank
        prompt_template="{scene}. High quality, ultrarealistic detail and breath-taking movie-like camera shot.",
        native_frames=49, fps=8.0, native_size=(480, 720), reference_size=(512, 768), temporal_multiple=4,
        default_steps=50, guidance_scale=7.0, degrees_per_frame=None,
        description="CogVideoX-5B-I2V + DimensionX's orbit-left LoRA (S-Director): the camera orbits left"),
    "wan21-orbit": OrbitBackend(
        name="wan21-orbit", pipeline="WanImageToVideoPipeline",
        base_model_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", lora_id="Soul25r/360-orbit", lora_weight_name=None,
        lora_scale=1.0,
        prompt_template="{scene}. The camera performs an 0rb4it 360 degree orbit, circling around the scene, "
                        "everything in it still.",
        native_frames=81, fps=16.0, native_size=(480, 832), reference_size=(480, 832), temporal_multiple=4,
        default_steps=40, guidance_scale=5.0, degrees_per_frame=360.0 / 80,
        description="Wan2.1-I2V-14B-480P + a 360-degree orbit LoRA (trigger '0rb4it 360 degree orbit')"),
}
"""Freeze-time backends with an orbit LoRA; the reference video still comes from `--backend` (ltx / wan)."""

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
