"""Freeze-time videos from public image-to-video models with an orbit LoRA (`fourreal generate --freeze-backend`).

4Real's freeze-time video comes from a private model trained for it; stock text/image-to-video models seldom keep
time frozen while the camera circles. Public LoRAs trained for exactly that exist (fourreal_ns.model_registry
.ORBIT_BACKENDS): DimensionX's orbit LoRA on CogVideoX-5B-I2V, a 360-degree orbit LoRA on Wan2.1-I2V-14B-480P. Here:

- `check_orbit_inputs`: before any model is loaded or any frame generated, the base model is the pipeline the backend
  needs (its model_index.json, where a local folder or the Hugging Face cache has it), and the LoRA file exists,
  holds LoRA weights and fits the base transformer's layers (where the base's weights are on disk);
- `OrbitGenerator`: the base pipeline with the LoRA fused at the model card's strength. Its `continue_video`
  conditions on the *last* known frame (an image-to-video model takes one image): the first clip on the canonical
  reference frame, as in the paper, and each autoregressive extension step on the last frame so far. The orbit has
  one direction, so every extension goes forward (`plan_extension(..., both_directions=False)`); the clip runs at
  the model's own size and is resized to the scene's (same aspect by default: `OrbitBackend.reference_size`);
- `ReferenceThenOrbit`: `fourreal generate`'s generator when the two videos come from two models: the reference video
  from `--backend`, then the orbit model, loaded only once the reference model is released.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Set, Tuple

import numpy as np

from fourreal_ns.errors import FourRealError
from fourreal_ns.generate.video_models import (GeneratorSettings, StepCallback, _resolve_device_and_dtype, _to_uint8,
                                               valid_frame_count, wan_image_to_video_class)
from fourreal_ns.model_registry import ORBIT_BACKENDS, OrbitBackend

LORA_ADAPTER = "orbit"


class OrbitBackendError(FourRealError, ValueError):
    """A base model or LoRA that the freeze-time backend cannot use; the message names the file and the fix."""


@dataclass
class OrbitSettings:
    backend: str
    model_id: Optional[str] = None
    """Base image-to-video weights (hub id or local folder; default the backend's)."""
    lora: Optional[str] = None
    """The LoRA: hub id, local .safetensors file or a folder holding one (default the backend's)."""
    lora_scale: Optional[float] = None
    width: int = 0
    height: int = 0
    """The scene's frame size (the reference video's)."""
    orbit_width: Optional[int] = None
    orbit_height: Optional[int] = None
    """Size the model runs at (default its native size)."""
    num_inference_steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    dtype: Optional[str] = None
    device: Optional[str] = None
    cpu_offload: bool = False

    @property
    def record(self) -> OrbitBackend:
        return ORBIT_BACKENDS[self.backend]

    @property
    def base_model_id(self) -> str:
        return self.model_id or self.record.base_model_id

    def lora_source(self) -> Tuple[str, Optional[str]]:
        """(what `load_lora_weights` is given, weight_name): a folder and file for a local LoRA, else a hub id."""
        spec = self.lora or self.record.lora_id
        path = Path(os.path.expanduser(spec))
        if spec.endswith(".safetensors") or path.is_file():
            return str(path.parent), path.name
        if path.is_dir():
            files = sorted(path.glob("*.safetensors"))
            if len(files) != 1:
                raise OrbitBackendError(f"--lora {spec}: the folder holds {len(files)} .safetensors files; pass the "
                                        "LoRA file itself.")
            return str(path), files[0].name
        return spec, self.record.lora_weight_name if spec == self.record.lora_id else None


# ---------------------------------------------------------------------------------------------- checks, before any model
def _cached_file(model_id: str, filename: str) -> Optional[Path]:
    """A file of a local folder, or of a hub model in the Hugging Face cache; None when neither has it."""
    from fourreal_ns.guidance.loading import looks_like_local_path

    if looks_like_local_path(model_id):
        path = Path(os.path.expanduser(model_id)) / filename
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, filename)
    except Exception:  # noqa: BLE001 - an id the cache cannot hold is simply not cached
        return None
    return Path(found) if isinstance(found, str) else None


def _tensor_names(files) -> Set[str]:
    from safetensors import safe_open

    names: Set[str] = set()
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            names.update(handle.keys())
    return names


def _base_transformer_names(model_id: str) -> Optional[Set[str]]:
    """Parameter names of the base model's transformer, from its safetensors headers (no weights read)."""
    index = _cached_file(model_id, "transformer/diffusion_pytorch_model.safetensors.index.json")
    if index is not None:
        return set(json.loads(index.read_text())["weight_map"])
    single = _cached_file(model_id, "transformer/diffusion_pytorch_model.safetensors")
    return _tensor_names([single]) if single is not None else None


def _adapted_layer(key: str) -> Optional[str]:
    """`transformer.blocks.0.attn1.to_q.lora_A.weight` -> `blocks.0.attn1.to_q` (diffusers' LoRA format only)."""
    if not key.startswith("transformer."):
        return None
    for marker in (".lora_A.", ".lora_B.", ".lora.down.", ".lora.up.", ".lora_down.", ".lora_up."):
        if marker in key:
            return key[len("transformer."):key.index(marker)]
    return None


def check_orbit_inputs(settings: OrbitSettings) -> None:
    """The base model and the LoRA, checked before anything is loaded or generated (module docstring)."""
    backend = settings.record
    model_id = settings.base_model_id
    index = _cached_file(model_id, "model_index.json")
    from fourreal_ns.guidance.loading import hub_offline, looks_like_local_path

    if index is None and (looks_like_local_path(model_id) or hub_offline()):
        where = "the folder has no model_index.json" if looks_like_local_path(model_id) else \
            "it is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
        raise OrbitBackendError(f"--freeze-model-id {model_id}: {where}. The {backend.name} backend needs "
                                f"{backend.base_model_id} (`hf download {backend.base_model_id}`).")
    if index is not None:
        class_name = json.loads(index.read_text()).get("_class_name")
        if class_name != backend.pipeline:
            raise OrbitBackendError(
                f"--freeze-model-id {model_id} is a {class_name}, not a {backend.pipeline}: the {backend.name} "
                f"backend's LoRA is made for {backend.base_model_id}. Pass that model (or a copy of it), or pick the "
                f"backend of your model ({', '.join(ORBIT_BACKENDS)}).")
    source, weight_name = settings.lora_source()
    local = Path(source) / weight_name if weight_name else None
    if local is None or not local.is_file():
        if settings.lora and (settings.lora.endswith(".safetensors") or looks_like_local_path(settings.lora)):
            raise OrbitBackendError(
                f"--lora {settings.lora} does not exist. Download the backend's LoRA with `hf download "
                f"{backend.lora_id} {backend.lora_weight_name or ''} --local-dir FOLDER`.".replace("  ", " "))
        local = _cached_file(source, weight_name) if weight_name else None
    if local is None:
        if hub_offline():
            raise OrbitBackendError(f"the LoRA {source} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
                                    f"`hf download {source}` on a machine with network, or pass --lora FILE.")
        return  # downloaded when the model loads
    try:
        keys = _tensor_names([local])
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error types
        raise OrbitBackendError(f"--lora {local} is not a readable .safetensors file ({error}).") from None
    if not any("lora" in key for key in keys):
        raise OrbitBackendError(f"--lora {local} holds no LoRA weights (no `lora` tensors): is it a LoRA file?")
    base = _base_transformer_names(model_id)
    layers = sorted({layer for layer in map(_adapted_layer, keys) if layer})
    missing = [layer for layer in layers if f"{layer}.weight" not in base] if base is not None else []
    if missing:
        raise OrbitBackendError(
            f"--lora {local} does not fit {model_id}: it adapts `{missing[0]}` (and {len(missing) - 1} more), which "
            f"that transformer has no layer of. Is the LoRA made for {backend.base_model_id}?")


# ---------------------------------------------------------------------------------------------- the generator
def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS)) for frame in frames])


def _pipeline_class(backend: OrbitBackend):
    import diffusers

    if backend.pipeline == "WanImageToVideoPipeline":
        return wan_image_to_video_class()
    return getattr(diffusers, backend.pipeline)


class OrbitGenerator:
    """An image-to-video model with its orbit LoRA fused (module docstring). Known-frame videos only."""

    def __init__(self, settings: OrbitSettings) -> None:
        from fourreal_ns.guidance.loading import load_diffusers_pipeline

        backend = self.backend = settings.record
        self.settings = settings
        self.name = backend.name
        self.temporal_multiple = backend.temporal_multiple
        self.width, self.height = int(settings.width), int(settings.height)
        self.orbit_height = int(settings.orbit_height or backend.native_size[0])
        self.orbit_width = int(settings.orbit_width or backend.native_size[1])
        self.num_inference_steps = int(settings.num_inference_steps or backend.default_steps)
        self.guidance_scale = float(settings.guidance_scale if settings.guidance_scale is not None
                                    else backend.guidance_scale)
        generator_settings = GeneratorSettings(dtype=settings.dtype, device=settings.device,
                                               cpu_offload=settings.cpu_offload)
        self.device, self.dtype = _resolve_device_and_dtype(generator_settings)
        model_id = settings.base_model_id
        pipe = load_diffusers_pipeline(model_id, backend.name, self.dtype, ("vae", "transformer", "text_encoder"))
        if type(pipe).__name__ != backend.pipeline:
            raise OrbitBackendError(f"{model_id} loads as a {type(pipe).__name__}, not the {backend.pipeline} the "
                                    f"{backend.name} backend needs.")
        self.pipe = _pipeline_class(backend).from_pipe(pipe) if backend.pipeline == "WanImageToVideoPipeline" \
            else pipe
        source, weight_name = settings.lora_source()
        self.model_ids = {"freeze": model_id, "lora": source + (f"/{weight_name}" if weight_name else "")}
        try:
            self.pipe.load_lora_weights(source, weight_name=weight_name, adapter_name=LORA_ADAPTER)
        except (OSError, ValueError, KeyError) as error:
            raise OrbitBackendError(f"the LoRA {self.model_ids['lora']} could not be loaded into {model_id} "
                                    f"({type(error).__name__}: {str(error)[:300]}).") from None
        scale = settings.lora_scale if settings.lora_scale is not None else backend.lora_scale
        self.pipe.fuse_lora(components=["transformer"], lora_scale=float(scale))
        self.pipe.set_progress_bar_config(disable=True)
        if settings.cpu_offload:
            self.pipe.enable_model_cpu_offload(device=self.device)
        elif self.device.type != "cpu":
            self.pipe.to(self.device)

    def text_to_video(self, *args, **kwargs) -> np.ndarray:
        raise NotImplementedError(f"{self.name} makes freeze-time videos from an image; the reference video comes "
                                  "from --backend")

    def continue_video(self, prompt: str, negative_prompt: str, known: np.ndarray, num_new: int, seed: int,
                       on_step: StepCallback = None) -> np.ndarray:
        """The `num_new` frames after the last known frame (the image the model is conditioned on)."""
        import torch
        from PIL import Image

        image = _resize(np.asarray(known[-1:], dtype=np.uint8), self.orbit_height, self.orbit_width)[0]

        def callback(pipe, step, timestep, tensors):
            if on_step is not None:
                on_step()
            return {}

        total = valid_frame_count(num_new + 1, self.temporal_multiple)
        output = self.pipe(image=Image.fromarray(image), prompt=prompt, negative_prompt=negative_prompt,
                           height=self.orbit_height, width=self.orbit_width, num_frames=total,
                           num_inference_steps=self.num_inference_steps, guidance_scale=self.guidance_scale,
                           generator=torch.Generator(device="cpu").manual_seed(int(seed)), output_type="np",
                           callback_on_step_end=callback)
        frames = _to_uint8(output.frames)[1:num_new + 1]
        return _resize(frames, self.height, self.width)


class ReferenceThenOrbit:
    """Two models, one at a time: text-to-video from the reference model, then the orbit model's freeze-time video
    (the reference model is released before the orbit model loads)."""

    def __init__(self, reference: Callable[[], object], orbit: Callable[[], OrbitGenerator]) -> None:
        self._make_reference, self._make_orbit = reference, orbit
        self._reference: Optional[object] = None
        self._orbit: Optional[OrbitGenerator] = None
        self.name = "reference + orbit"

    def text_to_video(self, *args, **kwargs) -> np.ndarray:
        if self._reference is None:
            self._reference = self._make_reference()
        return self._reference.text_to_video(*args, **kwargs)

    def continue_video(self, *args, **kwargs) -> np.ndarray:
        if self._orbit is None:
            if self._reference is not None:
                self._reference = None
                gc.collect()
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            self._orbit = self._make_orbit()
        return self._orbit.continue_video(*args, **kwargs)


def orbit_defaults(backend: str) -> Dict[str, object]:
    """The extension and camera defaults a freeze-time backend implies (generate/command.py resolves them)."""
    record = ORBIT_BACKENDS[backend]
    return {"clip_frames": record.native_frames, "context_frames": 1, "new_frames_per_step": record.native_frames - 1,
            "degrees_per_frame": record.degrees_per_frame, "reference_size": record.reference_size}
