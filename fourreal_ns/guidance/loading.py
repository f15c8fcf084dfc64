"""Loading diffusers pipelines for guidance, with a clear error when the weights are not available.

The same ``DiffusionPipeline.from_pretrained`` call is used for a hub id (``"Lightricks/LTX-Video-0.9.5"``) and for a
local folder written by ``pipe.save_pretrained`` (what the tests do with tiny random pipelines). Every failure to find
the files (missing folder, incomplete folder, model not in the offline cache, no network, invalid id) becomes a
:class:`~fourreal_ns.guidance.errors.GuidanceWeightsNotFoundError` naming the model id and how to fetch it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from typing import Iterator, Sequence, Type

import torch

from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """Whether the user asked for offline mode (``HF_HUB_OFFLINE``), read now rather than at import time."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a diffusers dependency
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hub_problem(model_id: str, timeout: float) -> "str | None":
    """None when the Hugging Face hub answers for `model_id` within `timeout` seconds, else what went wrong
    (unreachable, no such model, gated without a token), as the end of a sentence."""
    from huggingface_hub import HfApi, constants

    try:
        HfApi().model_info(model_id, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - connection, timeout, HTTP and validation errors all mean "not there"
        name = type(error).__name__
        if "RepositoryNotFound" in name:
            return f"{constants.ENDPOINT} has no model '{model_id}' (or it is private: log in with `hf auth login`)"
        if "GatedRepo" in name:
            return f"{constants.ENDPOINT} keeps '{model_id}' gated: accept its licence there and log in"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{constants.ENDPOINT} could not be reached within {timeout:g} s ({name}: {first_line[:200]})"
    return None


def looks_like_local_path(model_id: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything absolute, relative (``./``, ``~``) or deeper is a folder."""
    if os.path.exists(model_id):
        return True
    return (os.path.isabs(model_id) or model_id.startswith((".", "~")) or "\\" in model_id
            or model_id.count("/") >= 2)


def accelerate_available() -> bool:
    """``accelerate`` enables low-memory loading and ``enable_model_cpu_offload``; it is optional here."""
    return importlib.util.find_spec("accelerate") is not None


@contextlib.contextmanager
def _without_fp32_pinning(model_classes: Sequence[type]) -> Iterator[None]:
    """Work around diffusers refusing to load models that pin modules to fp32 when ``accelerate`` is missing.

    diffusers forces ``low_cpu_mem_usage=False`` without ``accelerate`` and then raises for any model class with
    ``_keep_in_fp32_modules`` (e.g. ``WanTransformer3DModel``). Clearing the attribute for the duration of the load
    lets it load; those modules then run in the requested dtype instead of fp32 (harmless in float32).
    """
    if accelerate_available() or not model_classes:
        yield
        return
    missing = object()
    saved = [(cls, cls.__dict__.get("_keep_in_fp32_modules", missing)) for cls in model_classes]
    logger.warning("`accelerate` is not installed: loading %s without keeping modules in float32",
                   ", ".join(cls.__name__ for cls in model_classes))
    for cls, _ in saved:
        cls._keep_in_fp32_modules = None
    try:
        yield
    finally:
        for cls, value in saved:
            if value is missing:
                del cls._keep_in_fp32_modules  # it was inherited
            else:
                cls._keep_in_fp32_modules = value


def load_diffusers_pipeline(
    model_id: str,
    backend: str,
    torch_dtype: torch.dtype,
    required_components: Sequence[str],
    fp32_pinned_classes: Sequence[Type[torch.nn.Module]] = (),
):
    """``DiffusionPipeline.from_pretrained(model_id)`` with offline-aware error reporting.

    Args:
        model_id: hub id or local folder holding ``model_index.json``.
        backend: backend name, for the error message.
        torch_dtype: dtype the weights are loaded in.
        required_components: pipeline attributes that must be present (e.g. ``("vae", "transformer")``).
        fp32_pinned_classes: model classes with ``_keep_in_fp32_modules`` (see :func:`_without_fp32_pinning`).
    """
    from diffusers import DiffusionPipeline
    from huggingface_hub.errors import HFValidationError, HfHubHTTPError, LocalEntryNotFoundError

    if looks_like_local_path(model_id):
        folder = os.path.expanduser(model_id)
        if not os.path.isdir(folder):
            raise GuidanceWeightsNotFoundError(model_id, backend, f"the folder '{folder}' does not exist.")
        if not os.path.isfile(os.path.join(folder, "model_index.json")):
            raise GuidanceWeightsNotFoundError(
                model_id, backend, f"the folder '{folder}' has no model_index.json (not a diffusers pipeline).")
        model_id = folder

    offline = hub_offline()
    load_errors = (OSError, LocalEntryNotFoundError, HfHubHTTPError, HFValidationError, ConnectionError)
    try:
        with _without_fp32_pinning(fp32_pinned_classes):
            pipe = DiffusionPipeline.from_pretrained(model_id, dtype=torch_dtype,
                                                     local_files_only=True if offline else None)
    except load_errors as error:
        reason = f"{type(error).__name__}: {error}".strip()
        if offline:
            reason += " (HF_HUB_OFFLINE is set, so only the local cache was searched)"
        raise GuidanceWeightsNotFoundError(model_id, backend, reason) from error

    missing = [name for name in required_components if getattr(pipe, name, None) is None]
    if missing:
        raise GuidanceWeightsNotFoundError(
            model_id, backend, f"the pipeline {type(pipe).__name__} has no component(s) {missing}.")
    return pipe
