"""The video-guidance interface used by score distillation (paper Sec. 3.3, eqs. 4-6).

4Real's SDS (eq. 5-6) noises a rendered 16-frame video at noise level sigma, asks a frames-conditioned video
diffusion model for a one-step denoised estimate ``x0`` (the known first frame ``I_c`` is given to the model as a
condition), and regresses the render onto the detached estimate: ``L = ||render - stopgrad(x0)||^2``. No gradient ever
flows through the diffusion model, its VAE or its text encoder.

:class:`VideoGuidance` is that one-step denoiser in pixel space. Each backend (``ltx``, ``wan``, ``svd``) implements
:meth:`VideoGuidance._predict_x0` for its own latent space, noise parameterisation and known-frame conditioning; the
base class handles validation, devices, dtypes, ``no_grad`` and freezing.

Contract of :meth:`VideoGuidance.predict_x0`:

* ``frames``: ``[F, 3, H, W]`` in ``[0, 1]``, already resized by the caller to :attr:`VideoGuidance.sds_size`.
* ``cond_frame``: ``[3, H, W]`` in ``[0, 1]`` (the known/conditioning view, i.e. frame 0) or ``None``.
* ``sigma``: noise level in ``(0, 1]``: the flow-matching interpolation weight ``x_t = (1 - sigma) x0 + sigma eps``.
  Backends with another parameterisation map it to their own (SVD: same signal-to-noise ratio, see ``svd.py``).
* returns ``[F, 3, H, W]`` float32 in ``[0, 1]`` on the input's device, computed under ``torch.no_grad()`` with fresh
  random noise on every call. Backends pad ``F`` to their VAE's frame-count constraint internally and return exactly
  ``F`` frames.
"""

from __future__ import annotations

import gc
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch
from torch import Tensor, nn

from fourreal_ns.guidance.errors import GuidanceConfigError
from fourreal_ns.guidance.loading import accelerate_available, load_diffusers_pipeline
from fourreal_ns.model_registry import torch_dtype

if TYPE_CHECKING:
    from fourreal_ns.guidance.config import GuidanceConfig


logger = logging.getLogger(__name__)


def classifier_free_guidance(uncond: Tensor, cond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance (Ho & Salimans): ``uncond + scale * (cond - uncond)``."""
    return uncond + scale * (cond - uncond)


def pad_frames(video: Tensor, multiple: int) -> Tensor:
    """Pad ``[B, C, F, H, W]`` to ``multiple * k + 1`` frames by repeating the last frame.

    Causal video VAEs (LTX: 8k+1, Wan: 4k+1) encode the first frame alone and every following group of ``multiple``
    frames into one latent frame. Repeating the last frame keeps the padded tail consistent with the video, so it
    perturbs the real frames as little as possible; the extra decoded frames are dropped.
    """
    num_frames = video.shape[2]
    target = ((num_frames - 1 + multiple - 1) // multiple) * multiple + 1
    if target == num_frames:
        return video
    tail = video[:, :, -1:].expand(-1, -1, target - num_frames, -1, -1)
    return torch.cat([video, tail], dim=2)


class VideoGuidance(ABC):
    """A frozen, frames-conditioned video diffusion model used as a one-step denoiser for SDS.

    Subclasses set the class attributes below and implement :meth:`_load` and :meth:`_predict_x0`.
    After construction the public attributes are:

    * ``sds_size``: ``(H, W)`` the caller must resize frames to before :meth:`predict_x0`;
    * ``num_frames``: number of frames the SDS video has (informational; any ``F >= 1`` works);
    * ``denoiser``: the diffusion network (transformer or UNet) -- tests replace it with a stand-in;
    * ``vae``: the video autoencoder; ``text_encoder``/``tokenizer``: ``None`` after the prompt was embedded;
    * ``guidance_scale``, ``dtype``, ``device`` (where the networks run).
    """

    #: registry name of the backend and the hub id used when ``GuidanceConfig.model_id`` is None; both set by
    #: ``@register_guidance`` (fourreal_ns.model_registry)
    name: str = ""
    default_model_id: str = ""
    #: ``(H, W)`` frames are resized to, unless overridden by ``sds_height``/``sds_width``
    default_sds_size: Tuple[int, int] = (288, 512)
    #: classifier-free guidance scale used when ``GuidanceConfig.guidance_scale`` is None
    default_guidance_scale: float = 3.0
    #: ``(H, W)`` must be multiples of this (VAE compression x transformer patch)
    size_multiple: int = 32
    #: pipeline attributes that must exist after loading
    required_components: Tuple[str, ...] = ("vae",)
    #: number of frames of the SDS videos (paper: M = 16)
    num_frames: int = 16

    def __init__(self, config: "GuidanceConfig", prompt: Optional[str], device: torch.device | str,
                 pipe=None) -> None:
        """Load (or take) the diffusers pipeline, embed the prompt once, free the text encoder.

        Args:
            config: the guidance configuration.
            prompt: text prompt used when ``config.prompt`` is None.
            device: device used when ``config.device`` is None.
            pipe: an already built diffusers pipeline (benchmarks with random weights); None loads
                ``config.model_id`` (or :attr:`default_model_id`) with ``DiffusionPipeline.from_pretrained``.
        """
        self.config = config
        self.model_id = config.model_id or self.default_model_id
        self.dtype = torch_dtype(config.dtype)
        self.device = torch.device(config.device if config.device is not None else device)
        self.guidance_scale = float(config.guidance_scale if config.guidance_scale is not None
                                    else self.default_guidance_scale)
        self.negative_prompt = config.negative_prompt
        self.prompt = config.prompt if config.prompt is not None else prompt
        if config.cpu_offload:
            self._check_offload_possible()

        if pipe is None:
            pipe = load_diffusers_pipeline(self.model_id, self.name, self.dtype, self.required_components,
                                           self._fp32_pinned_classes())
        self.pipe = pipe
        self.denoiser: nn.Module
        self.vae: nn.Module = pipe.vae
        self.text_encoder: Optional[nn.Module] = getattr(pipe, "text_encoder", None)
        self.tokenizer = getattr(pipe, "tokenizer", None)
        self._freeze(pipe)
        # VAEs marked force_upcast (SD-family, e.g. SVD's) overflow in float16: keep them in float32 then.
        self.vae_dtype = self.dtype
        if self.dtype == torch.float16 and getattr(self.vae.config, "force_upcast", False):
            self.vae_dtype = torch.float32
            self.vae.to(dtype=torch.float32)
        if not config.cpu_offload:
            pipe.to(self.device)
        elif self.text_encoder is not None:
            self.text_encoder.to(self.device)  # runs once, then it is freed
        self._load()  # may refine size_multiple from the loaded model's compression factors
        self.sds_size: Tuple[int, int] = self._resolve_sds_size(config.sds_height, config.sds_width)
        self._free_text_encoder()
        if config.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)

    # ------------------------------------------------------------------ public API
    @property
    def do_cfg(self) -> bool:
        """Classifier-free guidance needs a second (unconditional) pass only when the scale exceeds 1."""
        return self.guidance_scale > 1.0

    def targets_for_trajectory(self, trajectory, view) -> Optional[Tensor]:
        """The SDS targets of a rendered trajectory when the guidance knows the scene itself (an oracle that renders
        the ground truth at the trajectory's cameras and times, seen through `view`); None for a video model, whose
        targets come from `predict_x0`. A named, optional hook (FourRealPipeline.score_distillation)."""
        return None

    def predict_x0(self, frames: Tensor, cond_frame: Optional[Tensor], sigma: float) -> Tensor:
        """One-step denoised estimate of ``frames`` noised at ``sigma`` (paper eq. 5); see the module docstring."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [F, 3, H, W], got {tuple(frames.shape)}")
        if cond_frame is not None and tuple(cond_frame.shape) != tuple(frames.shape[1:]):
            raise ValueError(f"cond_frame must be [3, H, W] = {tuple(frames.shape[1:])}, got {tuple(cond_frame.shape)}")
        sigma = float(sigma)
        if not 0.0 < sigma <= 1.0:
            raise ValueError(f"sigma must be in (0, 1], got {sigma}")
        multiple = self.size_multiple
        if frames.shape[2] % multiple or frames.shape[3] % multiple:
            raise ValueError(f"{self.name}: frame size {tuple(frames.shape[2:])} must be a multiple of {multiple} "
                             f"(resize to guidance.sds_size={self.sds_size} first)")
        with torch.no_grad():
            device = self.execution_device
            x = frames.detach().to(device=device, dtype=torch.float32)
            c = cond_frame.detach().to(device=device, dtype=torch.float32) if cond_frame is not None else None
            x0 = self._predict_x0(x, c, sigma)
            if x0.shape != frames.shape:
                raise RuntimeError(f"{self.name}: predicted {tuple(x0.shape)} for input {tuple(frames.shape)}")
            return x0.to(device=frames.device, dtype=torch.float32).clamp_(0.0, 1.0)

    @property
    def execution_device(self) -> torch.device:
        """Where inputs must live (with CPU offload: the accelerator the hooks move each model to)."""
        return self.device

    def modules(self) -> List[nn.Module]:
        """Every network the guidance still holds (for checks that nothing requires grad)."""
        candidates = [self.denoiser, self.vae, self.text_encoder] + list(self._extra_modules())
        return [m for m in candidates if isinstance(m, nn.Module)]

    def parameters(self):
        for module in self.modules():
            yield from module.parameters()

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _load(self) -> None:
        """Pick the networks out of ``self.pipe`` (set ``denoiser``, ``vae``), embed the prompt, check the model."""

    @abstractmethod
    def _predict_x0(self, frames: Tensor, cond_frame: Optional[Tensor], sigma: float) -> Tensor:
        """Backend work: float32 ``[F, 3, H, W]`` in [0, 1] on ``execution_device`` -> ``x0`` of the same shape."""

    def _extra_modules(self) -> List[nn.Module]:
        return []

    def _fp32_pinned_classes(self) -> Tuple[type, ...]:
        return ()

    # ------------------------------------------------------------------ helpers
    def _adopt_transformer(self, spatial_ratio: int, temporal_ratio: int, spatial_patch: int,
                           temporal_patch: int) -> None:  # fmt: skip
        """For the diffusion transformers (LTX, Wan): the denoiser, the latent grid (VAE compression x patch) and
        the scheduler's training timesteps. Temporal patches other than 1 are not supported."""
        if int(temporal_patch) != 1:
            raise NotImplementedError(f"{self.name} guidance assumes temporal patch size 1, got {temporal_patch}")
        self.denoiser = self.pipe.transformer
        self.spatial_ratio, self.temporal_ratio = int(spatial_ratio), int(temporal_ratio)
        self.size_multiple = self.spatial_ratio * int(spatial_patch)
        self.num_train_timesteps = float(self.pipe.scheduler.config.get("num_train_timesteps", 1000))

    def _text_prompt(self) -> str:
        """The prompt to embed (the empty prompt, with a warning, when none was given)."""
        if self.prompt is None:
            logger.warning("%s guidance: no prompt given, using the empty prompt", self.name)
        return self.prompt or ""

    def _resolve_sds_size(self, height: Optional[int], width: Optional[int]) -> Tuple[int, int]:
        h = height if height is not None else self.default_sds_size[0]
        w = width if width is not None else self.default_sds_size[1]
        if h % self.size_multiple or w % self.size_multiple or h <= 0 or w <= 0:
            raise GuidanceConfigError(
                f"guidance backend '{self.name}' needs sds_height/sds_width to be positive multiples of "
                f"{self.size_multiple}, got {h}x{w}")
        return int(h), int(w)

    def _check_offload_possible(self) -> None:
        if not torch.cuda.is_available() or self.device.type != "cuda":
            raise GuidanceConfigError(
                "guidance.cpu_offload uses diffusers' enable_model_cpu_offload, which needs a CUDA device "
                f"(got device '{self.device}', CUDA available: {torch.cuda.is_available()}). "
                "Set --pipeline.guidance.cpu-offload False.")
        if not accelerate_available():
            raise GuidanceConfigError("guidance.cpu_offload needs the `accelerate` package: pip install accelerate")

    @staticmethod
    def _freeze(pipe) -> None:
        """The guidance model is a fixed prior: eval mode and ``requires_grad=False`` for every network."""
        for component in pipe.components.values():
            if isinstance(component, nn.Module):
                component.eval()
                component.requires_grad_(False)

    def _free_text_encoder(self) -> None:
        """Prompt embeddings are computed once in :meth:`_load`; the (large) text encoder is then released."""
        for name in ("text_encoder", "tokenizer"):
            if getattr(self.pipe, name, None) is not None:
                setattr(self.pipe, name, None)
        self.text_encoder = None
        self.tokenizer = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model_id={self.model_id!r}, sds_size={self.sds_size}, "
                f"guidance_scale={self.guidance_scale}, dtype={self.dtype}, device={self.device})")
