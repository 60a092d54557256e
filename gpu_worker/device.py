"""The torch device a worker runs on, checked before the worker says it is ready.

Only torch is imported here (not diffusers), so the check is quick and prints nothing else.
"""

from __future__ import annotations

import torch

from studio.errors import ConfigError


def pick_device(setting: str) -> str:
    """The torch device for ``setting`` (auto, cpu, cuda, mps), proven usable.

    A device asked for by name that this machine cannot use is a ConfigError at worker start
    (one line, exit 2), not a worker that says "ready" and then fails every job.
    """
    if setting == "auto":
        if torch.cuda.is_available():
            setting = "cuda"
        elif torch.backends.mps.is_available():
            setting = "mps"
        else:
            return "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a build without CUDA"
        raise ConfigError(
            f"ATELIER_DEVICE is cuda, but no CUDA GPU is usable here (torch {torch.__version__} is "
            f"{build}, or no GPU is visible). Install a CUDA build of torch, or set "
            "ATELIER_DEVICE=cpu or auto."
        )
    if setting == "mps" and not torch.backends.mps.is_available():
        why = "this torch build has no MPS support" if not torch.backends.mps.is_built() else "no MPS device"
        raise ConfigError(
            f"ATELIER_DEVICE is mps, but Apple's Metal (MPS) is not usable here ({why}; it needs "
            "macOS 12.3+ on Apple silicon or an AMD GPU). Set ATELIER_DEVICE=cpu or auto."
        )
    if setting != "cpu":
        try:  # available is not the same as usable (a busy, broken or exclusive-mode GPU)
            torch.zeros(1, device=setting).add_(1)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"ATELIER_DEVICE is {setting}, but a first tensor on it failed: {first[:200]}"
            ) from None
    return setting
