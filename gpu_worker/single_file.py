"""Single-file checkpoints (A1111/Civitai style): one .safetensors loaded with ``from_single_file``,
fully offline. The configs, tokenizers and scheduler come from ``ref.config`` (a local diffusers
folder, or a hub id already in the local Hugging Face cache) or, without one, from the family's
reference repository in that cache; never from the network. Parts the file lacks (a Flux or SD 3.5
transformer-only file has no VAE or text encoders) are loaded from that same folder."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from safetensors import safe_open

from gpu_worker.ldm_convert import SDXL_OPEN_CLIP
from studio.checkpoints import Checkpoint, CheckpointError, inspect_checkpoint
from studio.jobs import ModelRef

# Where diffusers itself takes each kind of checkpoint's configs from (DIFFUSERS_DEFAULT_PIPELINE_PATHS).
REFERENCE_CONFIGS = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "flux-dev": "black-forest-labs/FLUX.1-dev",
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
    "sd3-medium": "stabilityai/stable-diffusion-3-medium-diffusers",
    "sd35-medium": "stabilityai/stable-diffusion-3.5-medium",
    "sd35-large": "stabilityai/stable-diffusion-3.5-large",
}


def _error(message: str) -> Exception:
    from gpu_worker.pipelines import ModelLoadError  # here: pipelines imports this module

    return ModelLoadError(message)


def load_single_file(cls: type[DiffusionPipeline], ref: ModelRef, dtype: torch.dtype) -> Any:
    path = Path(ref.source)
    try:
        found = inspect_checkpoint(path)
    except CheckpointError as error:
        raise _error(f"model {ref.id}: {error}") from None
    if found.family != ref.family:
        raise _error(
            f"model {ref.id}: the catalogue says family `{ref.family}` but {path.name} is a "
            f"`{found.family}` checkpoint ({found.variant}); correct the entry's family."
        )
    config = config_folder(ref, found)
    parts = {name: _component(ref, config, name, dtype) for name in found.missing}
    if found.family == "sdxl" and "text_encoder_2" not in parts:
        parts["text_encoder_2"] = _open_clip_encoder(path, config, dtype)
    return cls.from_single_file(
        str(path), config=str(config), torch_dtype=dtype, local_files_only=True, **parts
    )


def config_folder(ref: ModelRef, found: Checkpoint) -> Path:
    """The local diffusers folder a single file takes its configs (and missing parts) from."""
    wanted = ref.config or REFERENCE_CONFIGS[found.variant]
    if wanted.startswith("/"):
        folder = Path(wanted)
        if not (folder / "model_index.json").is_file():
            raise _error(
                f"model {ref.id}: its `config` {wanted} is not a diffusers model folder "
                "(no model_index.json); point it at a diffusers folder of the same family."
            )
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(wanted, local_files_only=True))
    except Exception:  # not cached (or offline and never fetched): say what to put where
        what = "configs and tokenizers"
        fetch = f"hf download {wanted} --exclude '*.safetensors' '*.bin' '*.pth'"
        if found.missing:
            what += f", and the {', '.join(found.missing)} that {Path(ref.source).name} lacks"
            fetch = f"hf download {wanted}"
        raise _error(
            f"model {ref.id}: the single file takes its {what} from {wanted}, which is not in this "
            f"machine's Hugging Face cache and is never downloaded at run time; run `{fetch}` once "
            "(where there is internet, then copy the cache), or set the entry's `config` to a local "
            "diffusers folder of the same model."
        ) from None


def _component(ref: ModelRef, config: Path, name: str, dtype: torch.dtype) -> Any:
    """A part the file lacks (VAE, a text encoder), loaded from the config folder's own weights."""
    index = json.loads((config / "model_index.json").read_text(encoding="utf-8"))
    if name not in index or not isinstance(index[name], list) or index[name][0] is None:
        raise _error(f"model {ref.id}: its single file has no {name} and {config} has none to lend either.")
    library, class_name = index[name]
    cls = getattr(importlib.import_module(library), class_name)
    dtype_kwarg = "dtype" if library == "transformers" else "torch_dtype"
    try:
        return cls.from_pretrained(config, subfolder=name, local_files_only=True, **{dtype_kwarg: dtype})
    except Exception as exc:
        raise _error(
            f"model {ref.id}: its single file has no {name}, and {config / name} holds no weights for it "
            f"({type(exc).__name__}); give `config` a complete diffusers folder of the same model."
        ) from exc


def _open_clip_encoder(path: Path, config: Path, dtype: torch.dtype) -> Any:
    """SDXL's second text encoder, read from its OpenCLIP weights.

    diffusers picks the conversion for each CLIP by its width; when both encoders are equally
    wide (as in the tiny test models) it gives the second one the first one's weights.
    """
    from accelerate import init_empty_weights
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextModelWithProjection

    settings = CLIPTextModelWithProjection.config_class.from_pretrained(
        config, subfolder="text_encoder_2", local_files_only=True
    )
    with init_empty_weights():
        model = CLIPTextModelWithProjection(settings)
    with safe_open(str(path), framework="pt") as file:
        weights = {key: file.get_tensor(key) for key in file.keys() if key.startswith(SDXL_OPEN_CLIP)}  # noqa: SIM118
    state = convert_open_clip_checkpoint(model, weights, prefix=SDXL_OPEN_CLIP)
    model.load_state_dict(state, strict=False, assign=True)
    left = [name for name, param in model.named_parameters() if param.is_meta]
    if left:
        raise _error(f"{path.name}: SDXL's second text encoder lacks {', '.join(left[:3])}.")
    return model.to(dtype).eval()
