"""Single-file checkpoints (A1111/Civitai/ComfyUI style): what a ``.safetensors`` file holds, read
from its JSON header alone (no tensor is loaded), and which of our families it is.

Pickle checkpoints (``.ckpt``, ``.pt``, ``.bin``) are refused: unpickling runs whatever code the
file carries. The tensor names used for detection are diffusers' own
(``diffusers.loaders.single_file_utils.CHECKPOINT_KEY_NAMES``), restated here because studio/
does not import diffusers; tests check that both agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.families import FamilyName
from studio.safetensors_header import PICKLE_SUFFIXES, Header, HeaderError, is_pickle, read_file_header

__all__ = ["PICKLE_SUFFIXES", "Checkpoint", "CheckpointError", "inspect_checkpoint", "pickle_sentence"]

_UNET = "model.diffusion_model."


class CheckpointError(StudioError):
    """A file that cannot be served as a base model; the message says why in one sentence."""


@dataclass(frozen=True)
class Checkpoint:
    """A base-model checkpoint: its family, its variant and the parts the file lacks."""

    path: Path
    family: FamilyName
    variant: str  # sd15, sdxl, flux-dev, flux-schnell, sd3-medium, sd35-medium, sd35-large
    missing: tuple[str, ...]  # pipeline components not in the file (taken from `config`)
    tensors: int
    guidance_embeds: bool = False  # Flux: dev has a guidance embedding, schnell none

    @property
    def complete(self) -> bool:
        return not self.missing


def refuse_pickle(path: Path) -> None:
    """Raise CheckpointError if ``path`` is a pickle checkpoint (by its name or its first bytes)."""
    try:
        with path.open("rb") as file:
            start = file.read(9)
    except OSError:
        start = b""
    if is_pickle(path.name, start):
        raise CheckpointError(pickle_sentence(path))


def pickle_sentence(path: Path) -> str:
    return (
        f"{path.name} is a pickle checkpoint, and loading a pickle can run any code hidden in it; "
        "use the .safetensors version of the model (or convert it to .safetensors on a machine you trust)."
    )


def read_header(path: Path) -> Header:
    """The tensor names, dtypes and shapes of a ``.safetensors`` file, from its header only."""
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (or is not a file).")
    try:
        return read_file_header(path)
    except HeaderError as error:
        if error.problem in ("header_cut", "data_cut"):
            truncated = f"{path.name} is truncated: {error.detail} (an interrupted download?)."
            raise CheckpointError(truncated) from None
        raise CheckpointError(f"{path.name} is not a safetensors file ({error.detail}).") from None


def inspect_checkpoint(path: Path) -> Checkpoint:
    """Read ``path``'s header and detect its family; CheckpointError says why one is refused."""
    header = read_header(path)
    return detect(path, header)


def _any(keys: set[str], *names: str) -> bool:
    return any(name in keys for name in names)


def _prefixed(keys: set[str], *prefixes: str) -> bool:
    return any(key.startswith(prefixes) for key in keys)


def detect(path: Path, header: Header) -> Checkpoint:
    """The family of a checkpoint from its tensor names (diffusers' CHECKPOINT_KEY_NAMES)."""
    tensors = header.tensors
    keys = set(tensors)
    name = path.name
    if not keys:
        raise CheckpointError(f"{name} holds no tensors.")

    def checkpoint(
        family: FamilyName, variant: str, missing: list[str], guidance: bool = False
    ) -> Checkpoint:
        return Checkpoint(path, family, variant, tuple(missing), len(keys), guidance)

    vae = _prefixed(keys, "first_stage_model.", "vae.")
    # Flux.1: the original (BFL) transformer layout, bare or under model.diffusion_model.
    if _prefixed(keys, "single_stream_modulation.", _UNET + "single_stream_modulation.") or _prefixed(
        keys, "distilled_guidance_layer.", _UNET + "distilled_guidance_layer."
    ):
        raise CheckpointError(
            f"{name} is a Flux.2 or Chroma checkpoint; Atelier serves Flux.1, SD 3.5, SDXL and SD 1.5."
        )
    flux_key = "double_blocks.0.img_attn.norm.key_norm.scale"
    if _any(keys, flux_key, _UNET + flux_key):
        prefix = _UNET if _UNET + flux_key in keys else ""
        img_in = tensors.get(prefix + "img_in.weight")
        if img_in is not None and len(img_in.shape) == 2 and img_in.shape[1] in (128, 384):
            raise CheckpointError(
                f"{name} is a Flux Fill or Depth model (extra image channels), "
                "not a base model Atelier can serve."
            )
        guidance = prefix + "guidance_in.in_layer.bias" in keys
        missing = [part for part, there in _flux_parts(keys, vae).items() if not there]
        return checkpoint("flux", "flux-dev" if guidance else "flux-schnell", missing, guidance)
    # SD 3 / 3.5: the MMDiT's joint blocks.
    sd3_key = "joint_blocks.0.context_block.adaLN_modulation.1.bias"
    if _any(keys, sd3_key, _UNET + sd3_key):
        prefix = _UNET if _UNET + sd3_key in keys else ""
        pos_embed = tensors.get(prefix + "pos_embed")
        if prefix + "joint_blocks.37.x_block.mlp.fc1.weight" in keys:
            variant = "sd35-large"
        elif pos_embed is not None and len(pos_embed.shape) > 1 and pos_embed.shape[1] == 36864:
            variant = "sd3-medium"  # SD 3 medium; SD 3.5 medium has 147456 positions
        else:
            variant = "sd35-medium"
        parts = {
            "vae": vae,
            "text_encoder": _prefixed(keys, "text_encoders.clip_l."),
            "text_encoder_2": _prefixed(keys, "text_encoders.clip_g."),
            "text_encoder_3": _prefixed(keys, "text_encoders.t5xxl."),
        }
        return checkpoint("sd3", variant, [p for p, there in parts.items() if not there])
    if "edm_mean" in keys:
        raise CheckpointError(f"{name} is a Playground v2.5 (EDM) checkpoint, which Atelier does not serve.")
    conv_in = tensors.get(_UNET + "input_blocks.0.0.weight")
    if conv_in is not None:
        if len(conv_in.shape) == 4 and conv_in.shape[1] != 4:
            raise CheckpointError(
                f"{name} is an inpainting or instruct checkpoint ({conv_in.shape[1]} input channels); "
                "Atelier inpaints with ordinary base checkpoints, so add the base model instead."
            )
        v2_key = _UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
        if _prefixed(keys, "cond_stage_model.model.") or (
            v2_key in tensors and tensors[v2_key].shape[-1] == 1024
        ):
            raise CheckpointError(
                f"{name} is a Stable Diffusion 2.x checkpoint, which Atelier does not serve."
            )
        if _prefixed(keys, "conditioner.embedders.0.model.") and not _prefixed(
            keys, "conditioner.embedders.1."
        ):
            raise CheckpointError(f"{name} is an SDXL refiner; Atelier serves base models only.")
        if _prefixed(keys, "conditioner.embedders.") or _UNET + "label_emb.0.0.weight" in keys:
            parts = {
                "vae": vae,
                "text_encoder": _prefixed(keys, "conditioner.embedders.0.transformer."),
                "text_encoder_2": _prefixed(keys, "conditioner.embedders.1.model."),
            }
            return checkpoint("sdxl", "sdxl", [p for p, there in parts.items() if not there])
        parts = {"vae": vae, "text_encoder": _prefixed(keys, "cond_stage_model.transformer.")}
        return checkpoint("sd15", "sd15", [p for p, there in parts.items() if not there])
    raise CheckpointError(_not_a_base_model(name, keys))


def _flux_parts(keys: set[str], vae: bool) -> dict[str, bool]:
    return {
        "vae": vae,
        "text_encoder": _prefixed(keys, "text_encoders.clip_l."),
        "text_encoder_2": _prefixed(keys, "text_encoders.t5xxl."),
    }


def _not_a_base_model(name: str, keys: set[str]) -> str:
    if any("lora_" in key or ".lora_A." in key or ".lora_down." in key for key in keys):
        return f"{name} is a LoRA, not a base model; import it with `atelier models import-lora`."
    if _prefixed(keys, "encoder.down.", "decoder.up.", "encoder.down_blocks.", "decoder.up_blocks."):
        return f"{name} is a VAE on its own, not a base model; set it as a model's `vae` instead."
    if _prefixed(keys, "transformer_blocks.", "single_transformer_blocks.", "down_blocks.", "up_blocks."):
        return (
            f"{name} is one component in diffusers layout, not a checkpoint; "
            "point the catalogue at the whole diffusers folder instead."
        )
    return (
        f"{name} is not a Stable Diffusion, SDXL, Flux.1 or SD 3.5 checkpoint "
        "(none of its tensor names is one Atelier knows)."
    )


# A diffusers folder's family, from model_index.json's pipeline class.
PIPELINE_FAMILIES: dict[str, FamilyName] = {
    "StableDiffusionPipeline": "sd15",
    "StableDiffusionXLPipeline": "sdxl",
    "FluxPipeline": "flux",
    "StableDiffusion3Pipeline": "sd3",
}


def folder_family(folder: Path) -> FamilyName | None:
    """The family of a diffusers folder (None: a pipeline Atelier does not serve)."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return PIPELINE_FAMILIES.get(str(index.get("_class_name"))) if isinstance(index, dict) else None


def flux_guidance_embeds(folder: Path) -> bool:
    """Whether a diffusers Flux folder's transformer takes embedded guidance (dev: yes, schnell: no)."""
    try:
        config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return bool(config.get("guidance_embeds", True))
