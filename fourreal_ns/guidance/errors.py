"""Errors raised while building a video-guidance model.

Real guidance weights (several GB) come from the Hugging Face hub. On a machine without network access, or with
``HF_HUB_OFFLINE=1``, a model that is not already in the local cache cannot be loaded; diffusers then raises a mix
of ``OSError``, ``huggingface_hub`` errors and ``ValueError``. :class:`GuidanceWeightsNotFoundError` replaces all of
them with one message that names the model id and says how to make the weights available.
"""

from __future__ import annotations

from fourreal_ns.errors import FourRealError


class GuidanceError(FourRealError, RuntimeError):
    """Base class of the guidance package's own errors."""


class GuidanceConfigError(GuidanceError, ValueError):
    """The guidance configuration cannot work on this machine (unknown backend, CPU offload without CUDA, ...)."""


class GuidanceWeightsNotFoundError(GuidanceError, OSError):
    """The weights of a guidance model could not be found locally and could not be downloaded."""

    def __init__(self, model_id: str, backend: str, reason: str = "") -> None:
        self.model_id = model_id
        self.backend = backend
        self.reason = reason
        super().__init__(weights_not_found_message(model_id, backend, reason))


def weights_not_found_message(model_id: str, backend: str, reason: str = "") -> str:
    """The user-facing explanation of how to make a guidance model available offline."""
    lines = [f"Could not load the '{backend}' video-guidance model '{model_id}'."]
    if reason:
        lines.append(f"Reason: {reason}")
    lines += [
        "To make the weights available:",
        f"  * on a machine with network access run `huggingface-cli download {model_id}` (or `hf download "
        f"{model_id}`) to fill the Hugging Face cache (~/.cache/huggingface, or $HF_HOME), then copy the cache "
        "to this machine and keep HF_HUB_OFFLINE=1 set so nothing tries the network;",
        "  * or download it into a folder (`huggingface-cli download "
        f"{model_id} --local-dir <folder>`) and pass that folder as `--pipeline.guidance.model-id <folder>`;",
        "  * or disable score distillation with `--pipeline.guidance.enabled False`.",
    ]
    return "\n".join(lines)
