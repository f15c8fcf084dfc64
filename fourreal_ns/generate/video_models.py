"""Video generators for `fourreal generate`: a small protocol and its diffusers backends (`ltx` default, `wan`).

4Real (section 3.2, appendix A) needs one video model that can do two things:
- text-to-video, for the reference video (`VideoGenerator.text_to_video`);
- video generation from *known frames*: the masked Snap Video model produces a video whose first frames match given
  frames. One known frame is image-to-video (the freeze-time clip conditioned on the canonical reference frame),
  eight known frames are the autoregressive extension step (`VideoGenerator.continue_video`).

Backends (weights from the Hugging Face hub on users' machines, or a local folder written by `save_pretrained`; both
go through the same `DiffusionPipeline.from_pretrained` call, `fourreal_ns.guidance.loading`):
- `ltx` (default): LTX-Video. `LTXPipeline` for text-to-video, `LTXConditionPipeline` (built from the same
  components with `from_pipe`, no second copy of the weights) for known frames: an `LTXVideoCondition` video at
  frame index 0, whose latent tokens are kept clean, like appendix A's known frames. Needs LTX-Video >= 0.9.5.
- `wan`: Wan 2.2 TI2V (`expand_timesteps`): `WanPipeline` for text-to-video, an image-to-video pipeline whose known
  latent frames are kept clean with per-token timestep 0 (Wan's own image-to-video mechanism, extended from the
  first latent frame to every known one).

Both models use causal video VAEs: latent frame 0 encodes pixel frame 0 alone, each further latent frame a group of
`temporal_multiple` frames (LTX 8, Wan 4), so videos have `temporal_multiple * n + 1` frames. Known frames are mapped
onto that grid exactly: K known frames are padded at the front, by repeating the first one, to the next
`temporal_multiple * m + 1` (8 known frames -> 9 = 1 + 8: latent frame 0 holds frame 1 alone, latent frame 1 all
eight), and the video is made long enough to hold the requested new frames after them. Every known frame reaches the
model; the generated frames after the known ones are returned.

Frames are numpy arrays `[F, H, W, 3]` uint8 everywhere in this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Protocol, Sequence

import numpy as np

from fourreal_ns.model_registry import generator_class, register_generator, torch_dtype

StepCallback = Optional[Callable[[], None]]
"""Called once per denoising step (progress bars)."""


@dataclass
class GeneratorSettings:
    """What a backend is asked to load and how it samples."""

    backend: str = "ltx"
    model_id: Optional[str] = None
    """Hub id or local folder (default: the backend's `default_model_id`)."""
    freeze_model_id: Optional[str] = None
    """Model for the known-frame videos (freeze-time clip, extension); default: model_id."""
    width: Optional[int] = None
    height: Optional[int] = None
    num_inference_steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    frame_rate: float = 25.0
    dtype: Optional[str] = None
    """float32, float16 or bfloat16 (default: bfloat16 on CUDA, float32 on the CPU)."""
    device: Optional[str] = None
    """torch device (default: cuda when available, else cpu)."""
    cpu_offload: bool = False


class VideoGenerator(Protocol):
    """What `fourreal generate` needs from a video model."""

    name: str
    width: int
    height: int
    temporal_multiple: int
    model_ids: Dict[str, str]
    """{"reference": model id of text-to-video, "freeze": model id of the known-frame videos}."""

    def text_to_video(self, prompt: str, negative_prompt: str, num_frames: int, seed: int,
                      on_step: StepCallback = None) -> np.ndarray:
        """`num_frames` frames `[F, H, W, 3]` uint8 from text."""
        ...

    def continue_video(self, prompt: str, negative_prompt: str, known: np.ndarray, num_new: int, seed: int,
                       on_step: StepCallback = None) -> np.ndarray:
        """The `num_new` frames `[num_new, H, W, 3]` uint8 that follow the known frames `[K, H, W, 3]`."""
        ...


def padded_known_count(num_known: int, multiple: int) -> int:
    """Known frames padded at the front to the causal VAE grid: the smallest `multiple * m + 1` >= num_known."""
    if num_known < 1:
        raise ValueError("known-frame generation needs at least one known frame")
    return ((num_known - 1 + multiple - 1) // multiple) * multiple + 1


def video_length(num_known_padded: int, num_new: int, multiple: int) -> int:
    """Frames of a generated video holding the padded known frames and at least `num_new` new ones."""
    return num_known_padded + int(math.ceil(num_new / multiple)) * multiple


def valid_frame_count(num_frames: int, multiple: int) -> int:
    """The smallest `multiple * n + 1` >= num_frames (what the model generates; the extra frames are dropped)."""
    return ((max(num_frames, 1) - 1 + multiple - 1) // multiple) * multiple + 1


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """diffusers' `output_type="np"` ([B, F, H, W, 3] float in [0, 1]) -> [F, H, W, 3] uint8."""
    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = frames[0]
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


def _pil(frames: Sequence[np.ndarray]) -> List["object"]:
    from PIL import Image

    return [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]


def _resolve_device_and_dtype(settings: GeneratorSettings):
    import torch

    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype_name = settings.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if settings.cpu_offload and device.type != "cuda":
        raise ValueError("--cpu-offload moves models between the CPU and a CUDA device; it needs --device cuda.")
    return device, torch_dtype(dtype_name)


class DiffusersGenerator:
    """Shared loading, sizes, seeds and progress of the diffusers backends; subclasses build the pipelines."""

    name = ""  # name and default_model_id: set by @register_generator (fourreal_ns.model_registry)
    default_model_id = ""
    default_size = (480, 704)
    """(height, width)."""
    default_steps = 50
    default_guidance_scale = 3.0
    temporal_multiple = 8  # set by @register_generator from the registry; a loaded Wan reads its VAE's
    size_multiple = 32
    """Frame sizes must be multiples of this (the pipelines check it; the loaded model may ask for more)."""
    required_components = ("vae", "transformer", "text_encoder", "tokenizer")

    def __init__(self, settings: GeneratorSettings) -> None:
        from fourreal_ns.guidance.loading import load_diffusers_pipeline

        self.settings = settings
        self.device, self.dtype = _resolve_device_and_dtype(settings)
        model_id = settings.model_id or self.default_model_id
        freeze_model_id = settings.freeze_model_id or model_id
        self.model_ids = {"reference": model_id, "freeze": freeze_model_id}
        self.height = int(settings.height or self.default_size[0])
        self.width = int(settings.width or self.default_size[1])
        self.num_inference_steps = int(settings.num_inference_steps or self.default_steps)
        self.guidance_scale = float(settings.guidance_scale if settings.guidance_scale is not None
                                    else self.default_guidance_scale)
        self.text_pipe = load_diffusers_pipeline(model_id, self.name, self.dtype, self.required_components,
                                                 self._fp32_pinned_classes())
        if freeze_model_id == model_id:
            self.frames_pipe = self._frames_pipeline(self.text_pipe)
        else:
            other = load_diffusers_pipeline(freeze_model_id, self.name, self.dtype, self.required_components,
                                            self._fp32_pinned_classes())
            self.frames_pipe = self._frames_pipeline(other)
        self._check_size()
        for pipe in {id(p): p for p in (self.text_pipe, self.frames_pipe)}.values():
            pipe.set_progress_bar_config(disable=True)
            if settings.cpu_offload:
                pipe.enable_model_cpu_offload(device=self.device)
            elif self.device.type != "cpu":  # loaded on the CPU
                pipe.to(self.device)

    # ------------------------------------------------------------------ backend hooks
    def _frames_pipeline(self, pipe):
        raise NotImplementedError

    def _fp32_pinned_classes(self):
        return ()

    def _size_multiple(self) -> int:
        raise NotImplementedError

    def _known_frame_call(self, known: List["object"], num_frames: int) -> dict:
        """Keyword arguments that hand the (padded) known frames to `frames_pipe`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def _check_size(self) -> None:
        multiple = math.lcm(self.size_multiple, self._size_multiple())
        if self.width % multiple or self.height % multiple or self.width <= 0 or self.height <= 0:
            raise ValueError(f"backend {self.name}: --width and --height must be positive multiples of {multiple} "
                             f"(got {self.width} x {self.height}).")

    def _generator(self, seed: int):
        import torch

        return torch.Generator(device="cpu").manual_seed(int(seed))

    def _common(self, prompt: str, negative_prompt: str, num_frames: int, seed: int, on_step: StepCallback) -> dict:
        def callback(pipe, step, timestep, tensors):
            if on_step is not None:
                on_step()
            return {}

        return dict(prompt=prompt, negative_prompt=negative_prompt, width=self.width, height=self.height,
                    num_frames=num_frames, num_inference_steps=self.num_inference_steps,
                    guidance_scale=self.guidance_scale, generator=self._generator(seed), output_type="np",
                    callback_on_step_end=callback)

    def text_to_video(self, prompt: str, negative_prompt: str, num_frames: int, seed: int,
                      on_step: StepCallback = None) -> np.ndarray:
        total = valid_frame_count(num_frames, self.temporal_multiple)
        kwargs = self._common(prompt, negative_prompt, total, seed, on_step)
        kwargs.update(self._text_call_extras())
        frames = _to_uint8(self.text_pipe(**kwargs).frames)
        return frames[:num_frames]

    def _text_call_extras(self) -> dict:
        return {}

    def continue_video(self, prompt: str, negative_prompt: str, known: np.ndarray, num_new: int, seed: int,
                       on_step: StepCallback = None) -> np.ndarray:
        known = np.asarray(known, dtype=np.uint8)
        if known.ndim != 4 or known.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"known frames must be [K, {self.height}, {self.width}, 3], got {known.shape}")
        padded = padded_known_count(len(known), self.temporal_multiple)
        front = np.repeat(known[:1], padded - len(known), axis=0)
        known_padded = np.concatenate([front, known]) if len(front) else known
        total = video_length(padded, num_new, self.temporal_multiple)
        kwargs = self._common(prompt, negative_prompt, total, seed, on_step)
        kwargs.update(self._known_frame_call(_pil(known_padded), total))
        frames = _to_uint8(self.frames_pipe(**kwargs).frames)
        return frames[padded: padded + num_new]


@register_generator("ltx")
class LTXGenerator(DiffusersGenerator):
    """LTX-Video through diffusers (text-to-video + `LTXConditionPipeline` known-frame conditioning)."""

    # 0.9.5 and later are trained with frame conditioning (LTXConditionPipeline); 2B, fits a 24 GB GPU in bf16.
    default_size = (480, 704)
    default_steps = 40
    default_guidance_scale = 3.0

    def _frames_pipeline(self, pipe):
        from diffusers import LTXConditionPipeline

        return LTXConditionPipeline.from_pipe(pipe)

    def _size_multiple(self) -> int:
        vae = self.text_pipe.vae
        patch = int(getattr(self.text_pipe.transformer.config, "patch_size", 1))
        return int(vae.spatial_compression_ratio) * patch

    def _text_call_extras(self) -> dict:
        return {"frame_rate": int(round(self.settings.frame_rate))}

    def _known_frame_call(self, known: List["object"], num_frames: int) -> dict:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        condition = LTXVideoCondition(video=known, frame_index=0, strength=1.0)
        return {"conditions": [condition], "frame_rate": int(round(self.settings.frame_rate))}


@register_generator("wan")
class WanGenerator(DiffusersGenerator):
    """Wan 2.2 TI2V through diffusers (`WanPipeline` + known latent frames at timestep 0)."""

    default_size = (704, 1280)
    default_steps = 50
    default_guidance_scale = 5.0

    def _fp32_pinned_classes(self):
        from diffusers import WanTransformer3DModel

        return (WanTransformer3DModel,)

    def _frames_pipeline(self, pipe):
        if not getattr(pipe.config, "expand_timesteps", False):
            raise ValueError(
                f"backend wan: {self.model_ids['freeze']} is not a Wan 2.2 TI2V model (expand_timesteps): its "
                "known-frame conditioning is what the freeze-time video and the extension need. Use "
                "Wan-AI/Wan2.2-TI2V-5B-Diffusers or --backend ltx.")
        self.temporal_multiple = int(pipe.vae.config.scale_factor_temporal)
        return _wan_known_frames_class().from_pipe(pipe)

    def _size_multiple(self) -> int:
        vae = self.text_pipe.vae
        patch = int(self.text_pipe.transformer.config.patch_size[1])
        return int(vae.config.scale_factor_spatial) * patch

    def _known_frame_call(self, known: List["object"], num_frames: int) -> dict:
        self.frames_pipe.known_frames = known
        return {"image": known[0]}


def wan_image_to_video_class():
    """`WanImageToVideoPipeline` with the text-to-video pipeline's prompt encoder: diffusers 0.42's image-to-video
    prompt cleaning calls `ftfy` unconditionally; the identical text-to-video encoder uses it only when installed."""
    from diffusers import WanImageToVideoPipeline, WanPipeline

    class WanImageToVideo(WanImageToVideoPipeline):
        encode_prompt = WanPipeline.encode_prompt
        _get_t5_prompt_embeds = WanPipeline._get_t5_prompt_embeds

    return WanImageToVideo


def _wan_known_frames_class():
    """`WanImageToVideoPipeline` whose clean (timestep 0) latent frames are all known frames, not only the first."""
    import torch
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    class WanKnownFramesPipeline(wan_image_to_video_class()):
        known_frames: Optional[list] = None

        def prepare_latents(self, image, batch_size, num_channels_latents=16, height=480, width=832, num_frames=81,
                            dtype=None, device=None, generator=None, latents=None, last_image=None):
            if self.known_frames is None or not self.config.expand_timesteps:
                return super().prepare_latents(image, batch_size, num_channels_latents, height, width, num_frames,
                                               dtype, device, generator, latents, last_image)
            latents, _, mask = super().prepare_latents(image, batch_size, num_channels_latents, height, width,
                                                       num_frames, dtype, device, generator, latents, None)
            video = self.video_processor.preprocess_video(self.known_frames, height=height, width=width)
            video = video.to(device=device, dtype=self.vae.dtype)  # [1, 3, K, H, W] in [-1, 1]
            known = retrieve_latents(self.vae.encode(video), sample_mode="argmax").to(device=device, dtype=dtype)
            mean = torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(device, dtype)
            inv_std = 1.0 / torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1).to(device, dtype)
            known = (known - mean) * inv_std
            num_known = known.shape[2]
            condition = torch.zeros_like(latents)
            condition[:, :, :num_known] = known.repeat(batch_size, 1, 1, 1, 1)
            mask = torch.ones_like(mask)
            mask[:, :, :num_known] = 0  # known latent frames: clean, timestep 0
            return latents, condition, mask

    return WanKnownFramesPipeline


def load_generator(settings: GeneratorSettings) -> VideoGenerator:
    """Build the backend `settings.backend` (loads the weights)."""
    return generator_class(settings.backend)(settings)
