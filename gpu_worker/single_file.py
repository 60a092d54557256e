"""Single-file checkpoints (A1111/Civitai style): one .safetensors loaded with ``from_single_file``,
fully offline: the configs and tokenizers come from ``ref.config`` (a local diffusers folder, or a
hub id already in the local cache), never from the network."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DiffusionPipeline

from studio.jobs import ModelRef


def load_single_file(cls: type[DiffusionPipeline], ref: ModelRef, dtype: torch.dtype) -> Any:
    return cls.from_single_file(ref.source, config=ref.config, torch_dtype=dtype, local_files_only=True)
