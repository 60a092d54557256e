"""LoRA files made elsewhere (kohya/A1111, diffusers, peft, BFL/ai-toolkit, XLabs): read, recognised, checked.

Everything here reads the safetensors header and slices the data section as bytes: nothing is
unpickled, and nothing needs torch. A file is recognised by its tensor names; where the names
cannot tell two families apart (our tiny models are shaped alike), the tensor shapes decide,
compared with the real models' widths or with the chosen base model's own weights. Flux and
peft files are then rewritten into diffusers' naming (``studio/lora_rewrite.py``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import LoraRejected
from studio.lora_rewrite import Format, flux_to_diffusers, peft_to_diffusers
from studio.safetensors_header import HeaderError, Safetensors, is_pickle, read_file_header, read_header

SUPPORTED_FAMILIES = ("sd15", "sdxl", "flux")
FAMILY_NAMES = {"sd15": "SD 1.5", "sdxl": "SDXL", "flux": "Flux", "sd3": "SD 3.5"}
FORMAT_NAMES = {
    "kohya": "kohya",
    "diffusers": "diffusers",
    "peft": "peft",
    "bfl": "BFL/ai-toolkit",
    "xlabs": "XLabs",
}
# Cross-attention widths of the real UNets: the text embedding they attend to.
_CROSS_ATTENTION = {768: "sd15", 2048: "sdxl"}
_FLUX_WIDTH = 3072  # Flux.1's hidden size (SD 3.5 large is 2432, medium 1536)


@dataclass(frozen=True)
class ImportedLora:
    """A recognised LoRA: its layout, family, training metadata, and the file the worker loads."""

    format: Format
    family: str
    triggers: list[str]
    rank: int
    modules: int
    weights: bytes  # diffusers-loadable: the original file, or its Flux/peft rewrite
    original_kohya: bool  # the original is what A1111/ComfyUI read (kept as the kohya export)
    notes: list[str] = field(default_factory=list)


# Reading the file


def check_not_pickle(data: bytes, filename: str = "") -> None:
    """Pickles (.ckpt, .pt, torch zip files) are refused by name and by their first bytes, never opened."""
    if is_pickle(filename, data[:9]):
        raise LoraRejected(
            "That file is a pickle (.ckpt/.pt), which can run code when opened, so Atelier never opens "
            "one: please use the .safetensors version of the LoRA."
        )


def read_safetensors(data: bytes, filename: str = "") -> Safetensors:
    """The header and data section, every declared tensor checked to lie inside the file."""
    check_not_pickle(data, filename)
    try:
        header = read_header(data, strict=True)
    except HeaderError as error:
        if error.problem in ("header_cut", "data_cut"):
            raise LoraRejected(
                "That .safetensors file is truncated (shorter than its header says): please upload it again."
            ) from None
        raise LoraRejected(
            "That file is not a .safetensors file, so it cannot be imported as a LoRA."
        ) from None
    return Safetensors(header.tensors, header.metadata, data[8 + header.length :])


# Recognising the layout


def lora_format(names: Iterable[str]) -> Format:
    """Which tool's layout the tensor names follow; LoraRejected if they are not a LoRA's."""
    names = list(names)
    if any(re.search(r"\.(hada_w|lokr_w|oft_)", name) for name in names):
        raise LoraRejected(
            "That file is a LyCORIS network (LoHa, LoKr or OFT), not a LoRA; Atelier imports LoRA files only."
        )
    if any(".processor." in name and "_lora" in name for name in names):
        return "xlabs"
    if not any(_is_lora_weight(name) for name in names):
        raise LoraRejected(
            "That file holds no LoRA weights (no lora_up/lora_down or lora_A/lora_B tensors): it looks "
            "like a full model checkpoint, which is added to the catalogue by the operator, not imported."
        )
    if any(name.startswith(("lora_unet_", "lora_te", "lora_transformer_")) for name in names):
        return "kohya"
    stripped = [name.removeprefix("diffusion_model.") for name in names]
    if any(name.startswith(("double_blocks.", "single_blocks.")) for name in stripped):
        return "bfl"
    if any(name.startswith("base_model.model.") for name in names):
        return "peft"
    return "diffusers"


def _is_lora_weight(name: str) -> bool:
    return any(
        part in name
        for part in (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.", ".lora.down.", ".lora.up.")
    )


def candidate_families(names: list[str], fmt: Format) -> set[str]:
    """The families the tensor names allow (more than one where only shapes can tell)."""
    joined = "\n".join(names)
    if re.search(r"double_blocks|single_blocks|single_transformer_blocks|guidance_embedder", joined):
        return {"flux"}
    if fmt == "kohya" and "lora_transformer_" in joined:
        return {"flux"}  # kohya-named diffusers Flux modules (lora_transformer_transformer_blocks_0_...)
    if re.search(
        r"(^|\n)(transformer\.|base_model\.model\.)?(transformer_blocks|pos_embed|context_embedder)", joined
    ):
        return {"flux", "sd3"}
    if re.search(
        r"lora_te2_|text_encoder_2\.|input_blocks[._]4[._]1|middle_block[._]1|label_emb|add_embedding", joined
    ):
        return {"sdxl"}
    if re.search(r"transformer_blocks[._][1-9]", joined):
        return {"sdxl"}  # SDXL's deep blocks hold up to 10 transformer blocks; SD 1.5's hold one
    if re.search(r"down_blocks[._]0[._]attentions|up_blocks[._][23][._]attentions", joined):
        return {"sd15"}  # SD 1.5 attends in its first down block and last up blocks; SDXL there holds none
    if re.search(
        r"down_blocks|up_blocks|mid_block|lora_unet_|lora_te_|lora_te1_|text_encoder\.|unet\.", joined
    ):
        return {"sd15", "sdxl"}
    raise LoraRejected("That file's weights don't match any model family Atelier knows (SD 1.5, SDXL, Flux).")


def _cross_attention_width(file: Safetensors) -> int | None:
    """The text width the UNet's cross-attention reads: in-features of an ``attn2`` key/value LoRA."""
    for name, info in file.tensors.items():
        if re.search(r"attn2[._]to_[kv]", name) and re.search(
            r"lora_down|lora_A|lora\.down|down\.weight", name
        ):
            return info.shape[1] if len(info.shape) >= 2 else None
    return None


def _flux_width(file: Safetensors) -> int | None:
    for name, info in file.tensors.items():
        if re.search(r"attn[._](to_q|qkv)", name) and re.search(r"lora_down|lora_A|down\.weight", name):
            return info.shape[1] if len(info.shape) >= 2 else None
    return None


def detect_family(
    file: Safetensors, fmt: Format, base_family: str, base_shapes: dict[str, tuple[int, ...]] | None = None
) -> str:
    """The family the LoRA was made for: names first, then the real models' widths, then the base's shapes."""
    candidates = candidate_families(list(file.tensors), fmt)
    if len(candidates) == 1:
        return candidates.pop()
    if candidates == {"sd15", "sdxl"}:
        width = _cross_attention_width(file)
        if width in _CROSS_ATTENTION:
            return _CROSS_ATTENTION[width]
    elif candidates == {"flux", "sd3"} and _flux_width(file) == _FLUX_WIDTH:
        return "flux"
    if base_family not in candidates:
        return sorted(candidates)[0]
    if base_shapes is not None and fits(file, fmt, base_shapes) is False:
        return sorted(candidates - {base_family})[0]  # the same names, other widths: the other family
    return base_family  # fits the base, or nothing tells them apart here (the worker's loader checks last)


def fits(file: Safetensors, fmt: Format, base_shapes: dict[str, tuple[int, ...]]) -> bool | None:
    """Whether every LoRA module whose base module can be named has the base's in/out widths.

    None: no module could be matched with one of the base model's (nothing to compare).
    """
    kohya_names = {"lora_unet_" + key.removesuffix(".weight").replace(".", "_"): key for key in base_shapes}
    checked = 0
    for name, info in file.tensors.items():
        if len(info.shape) < 2:
            continue
        if fmt == "kohya":
            base_key = kohya_names.get(name.partition(".")[0])
        else:
            module = _diffusers_module(name, fmt)
            base_key = None if module is None else module + ".weight"
        base = base_shapes.get(base_key) if base_key else None
        if base is None or len(base) < 2:
            continue
        down = re.search(r"lora_A|lora_down|lora\.down|\.down\.", name) is not None
        if (info.shape[1] != base[1]) if down else (info.shape[0] != base[0]):
            return False
        checked += 1
    return True if checked else None


def _diffusers_module(name: str, fmt: Format) -> str | None:
    """A LoRA tensor's base module inside the UNet/transformer, in diffusers' naming (None: not derivable)."""
    for prefix in ("unet.", "transformer.", "base_model.model."):
        if name.startswith(prefix):
            name = name.removeprefix(prefix)
            break
    else:
        return None  # a text encoder's module, or another layout
    match = re.match(r"(.+?)\.(lora_A|lora_B|lora\.down|lora\.up)\.weight$", name)
    if match is None:
        return None
    return match[1].replace(".processor", "")


def read_base_shapes(source: str) -> dict[str, tuple[int, ...]] | None:
    """The denoiser's weight shapes in a base model folder (from safetensors headers), if readable here."""
    folder = Path(source)
    for part in ("unet", "transformer"):
        directory = folder / part
        if not directory.is_dir():
            continue
        shapes: dict[str, tuple[int, ...]] = {}
        for path in sorted(directory.glob("*.safetensors")):
            shapes |= _header_shapes(path)
        return shapes or None
    return None


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        tensors = read_file_header(path).tensors
    except (OSError, HeaderError):
        return {}
    return {name: info.shape for name, info in tensors.items()}


# Training metadata


def trigger_words(metadata: dict[str, str], most: int = 3) -> list[str]:
    """What calls the LoRA up in a prompt: the file's trigger phrase, else its most frequent caption tags.

    kohya's ``ss_tag_frequency`` counts each caption tag per dataset folder; the trigger is the tag
    every caption carries, so the top count wins (ties at the top are kept, up to ``most``).
    """
    phrase = metadata.get("modelspec.trigger_phrase", "").strip()
    if phrase:
        return [part.strip() for part in phrase.split(",") if part.strip()][:most]
    try:
        frequencies = json.loads(metadata.get("ss_tag_frequency", "{}"))
    except json.JSONDecodeError:
        frequencies = {}
    counts: Counter[str] = Counter()
    if isinstance(frequencies, dict):
        for tags in frequencies.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if isinstance(count, int | float) and str(tag).strip():
                        counts[str(tag).strip()] += int(count)
    if counts:
        top = counts.most_common(1)[0][1]
        return [tag for tag, count in counts.most_common() if count == top][:most]
    output_name = metadata.get("ss_output_name", "").strip()
    return [output_name] if output_name else []


# The whole check


def import_lora(
    data: bytes,
    base_family: str,
    *,
    filename: str = "",
    max_bytes: int | None = None,
    base_shapes: dict[str, tuple[int, ...]] | None = None,
) -> ImportedLora:
    """Recognise a LoRA file for a base model of ``base_family``; LoraRejected with one sentence if not."""
    if max_bytes is not None and len(data) > max_bytes:
        raise too_big(len(data), max_bytes)
    file = read_safetensors(data, filename)
    fmt = lora_format(file.tensors)
    family = detect_family(file, fmt, base_family, base_shapes)
    if family not in SUPPORTED_FAMILIES:
        raise LoraRejected(
            f"That LoRA is for {FAMILY_NAMES.get(family, family)} models; Atelier imports LoRAs for "
            "SD 1.5, SDXL and Flux."
        )
    if family != base_family:
        raise LoraRejected(
            f"That LoRA was made for {FAMILY_NAMES[family]} models, and the base model you chose is "
            f"{FAMILY_NAMES.get(base_family, base_family)}: choose one of the {FAMILY_NAMES[family]} "
            "base models."
        )
    if base_shapes is not None and fits(file, fmt, base_shapes) is False:
        raise LoraRejected(
            "That LoRA's layers have other sizes than the base model you chose: it was made for another "
            f"{FAMILY_NAMES[family]} model."
        )
    weights = data
    if family == "flux" and fmt in ("kohya", "bfl", "xlabs"):
        weights = flux_to_diffusers(file, fmt)
    elif fmt == "peft":
        weights = peft_to_diffusers(file, "transformer" if family == "flux" else "unet")
    return ImportedLora(
        format=fmt,
        family=family,
        triggers=trigger_words(file.metadata),
        rank=_rank(file),
        modules=sum(
            1 for name in file.tensors if re.search(r"lora_down|lora_A|lora\.down|\.down\.weight", name)
        ),
        weights=weights,
        original_kohya=fmt in ("kohya", "bfl", "xlabs"),
    )


def too_big(size: int, limit: int) -> LoraRejected:
    return LoraRejected(
        f"That file is {size / 1_048_576:.1f} MiB, above the {limit / 1_048_576:.0f} MiB limit for "
        "LoRA imports."
    )


def _rank(file: Safetensors) -> int:
    ranks = Counter(
        info.shape[0]
        for name, info in file.tensors.items()
        if re.search(r"lora_down|lora_A|lora\.down|\.down\.weight", name) and info.shape
    )
    return ranks.most_common(1)[0][0] if ranks else 0
