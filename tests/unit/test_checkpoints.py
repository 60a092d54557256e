"""Single-file checkpoints: family detection from synthetic safetensors headers (no tensor is
loaded), refusal of pickles, truncated files and files that are no base model; the catalogue
checks a single file's family and asks for a `config` where the file lacks parts."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from studio.catalogue import load_catalogue
from studio.checkpoints import CheckpointError, inspect_checkpoint
from studio.errors import CatalogueError

U = "model.diffusion_model."
SD15 = {
    U + "input_blocks.0.0.weight": (320, 4, 3, 3),
    U + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    U + "output_blocks.11.0.skip_connection.weight": (320, 640, 1, 1),
    "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
}
SDXL = {
    U + "input_blocks.0.0.weight": (320, 4, 3, 3),
    U + "label_emb.0.0.weight": (1280, 2816),
    "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
    "conditioner.embedders.1.model.positional_embedding": (77, 1280),
    "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": (1280,),
}
FLUX_DEV_COMFY = {  # ComfyUI's all-in-one layout
    U + "double_blocks.0.img_attn.norm.key_norm.scale": (128,),
    U + "guidance_in.in_layer.bias": (3072,),
    U + "img_in.weight": (3072, 64),
    "vae.decoder.conv_in.weight": (512, 16, 3, 3),
    "text_encoders.clip_l.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
    "text_encoders.t5xxl.transformer.shared.weight": (32128, 4096),
}
FLUX_SCHNELL_BFL = {  # Black Forest Labs' transformer-only file
    "double_blocks.0.img_attn.norm.key_norm.scale": (128,),
    "img_in.weight": (3072, 64),
}
SD35_MEDIUM = {
    "joint_blocks.0.context_block.adaLN_modulation.1.bias": (9216,),
    "pos_embed": (1, 147456, 1536),
}
SD35_LARGE_FULL = {
    U + "joint_blocks.0.context_block.adaLN_modulation.1.bias": (14592,),
    U + "joint_blocks.37.x_block.mlp.fc1.weight": (9728, 2432),
    "first_stage_model.decoder.conv_in.weight": (512, 16, 3, 3),
    "text_encoders.clip_l.transformer.text_model.embeddings.position_embedding.weight": (77, 768),
    "text_encoders.clip_g.transformer.text_model.embeddings.position_embedding.weight": (77, 1280),
    "text_encoders.t5xxl.transformer.shared.weight": (32128, 4096),
}


def write_safetensors(
    path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None
) -> Path:
    """A valid safetensors file with these tensor shapes (zeros; a sparse file, so no disk is used)."""
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + 2 * count]}
        offset += 2 * count
    raw = json.dumps(header).encode()
    with path.open("wb") as file:
        file.write(struct.pack("<Q", len(raw)) + raw)
        file.truncate(8 + len(raw) + offset)
    return path


@pytest.mark.parametrize(
    ("shapes", "family", "variant", "missing"),
    [
        (SD15, "sd15", "sd15", ()),
        (SDXL, "sdxl", "sdxl", ()),
        (FLUX_DEV_COMFY, "flux", "flux-dev", ()),
        (FLUX_SCHNELL_BFL, "flux", "flux-schnell", ("vae", "text_encoder", "text_encoder_2")),
        (SD35_MEDIUM, "sd3", "sd35-medium", ("vae", "text_encoder", "text_encoder_2", "text_encoder_3")),
        (SD35_LARGE_FULL, "sd3", "sd35-large", ()),
    ],
)
def test_family_from_tensor_names(
    tmp_path: Path, shapes: dict[str, tuple[int, ...]], family: str, variant: str, missing: tuple[str, ...]
) -> None:
    found = inspect_checkpoint(write_safetensors(tmp_path / "m.safetensors", shapes))
    assert (found.family, found.variant, found.missing) == (family, variant, missing)
    assert found.guidance_embeds == (variant == "flux-dev")


class _Shaped:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


@pytest.mark.parametrize(
    ("shapes", "diffusers_type"),
    [
        (SD15, "v1"),
        (SDXL, "xl_base"),
        (FLUX_DEV_COMFY, "flux-dev"),
        (FLUX_SCHNELL_BFL, "flux-schnell"),
        (SD35_MEDIUM, "sd35_medium"),
        (SD35_LARGE_FULL, "sd35_large"),
    ],
)
def test_diffusers_reads_the_same_headers_alike(
    shapes: dict[str, tuple[int, ...]], diffusers_type: str
) -> None:
    """Our key table restates diffusers' CHECKPOINT_KEY_NAMES; both must name these files alike."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    assert infer_diffusers_model_type({k: _Shaped(v) for k, v in shapes.items()}) == diffusers_type


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickle_files_are_refused_by_name(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04\x95whatever")
    with pytest.raises(CheckpointError, match=r"pickle.*can run any code"):
        inspect_checkpoint(path)


@pytest.mark.parametrize("start", [b"\x80\x02}q\x00(X", b"PK\x03\x04\x14\x00\x00\x00"])
def test_a_pickle_renamed_to_safetensors_is_refused(tmp_path: Path, start: bytes) -> None:
    path = tmp_path / "renamed.safetensors"
    path.write_bytes(start + b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"pickle.*can run any code"):
        inspect_checkpoint(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "cut.safetensors", SDXL)
    whole = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(whole - 100)
    with pytest.raises(CheckpointError, match=r"truncated.*interrupted download"):
        inspect_checkpoint(path)
    with path.open("r+b") as file:
        file.truncate(20)  # the header itself cut short
    with pytest.raises(CheckpointError, match="truncated"):
        inspect_checkpoint(path)


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)}, "is a LoRA"),
        ({"encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3)}, "VAE on its own"),
        ({"some.random.tensor": (3,)}, "not a Stable Diffusion, SDXL, Flux.1 or SD 3.5 checkpoint"),
        ({**SD15, U + "input_blocks.0.0.weight": (320, 9, 3, 3)}, "inpainting or instruct"),
        ({**SD15, "cond_stage_model.model.token_embedding.weight": (49408, 1024)}, "2.x"),
        ({**FLUX_SCHNELL_BFL, "img_in.weight": (3072, 384)}, "Flux Fill or Depth"),
    ],
)
def test_files_that_are_no_base_model_say_what_they_are(
    tmp_path: Path, shapes: dict[str, tuple[int, ...]], expected: str
) -> None:
    with pytest.raises(CheckpointError, match=expected):
        inspect_checkpoint(write_safetensors(tmp_path / "x.safetensors", shapes))


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.safetensors"
    path.write_text("these are my notes, not weights")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        inspect_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        inspect_checkpoint(tmp_path / "absent.safetensors")


def entry(source: str, family: str, extra: str = "") -> str:
    return f'[models.m]\nfamily = "{family}"\nsource = "{source}"\ndescription = "d"\n{extra}'


def test_catalogue_checks_a_single_files_family(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "xl.safetensors", SDXL)
    catalogue_file = tmp_path / "models.toml"
    catalogue_file.write_text(entry("./xl.safetensors", "sdxl"))
    assert load_catalogue(catalogue_file).get("m").source_kind == "file"
    catalogue_file.write_text(entry("./xl.safetensors", "sd15"))
    with pytest.raises(
        CatalogueError,
        match=r'xl.safetensors is a checkpoint of the SDXL family, not SD 1.5; set family = "sdxl"',
    ):
        load_catalogue(catalogue_file)


def test_catalogue_asks_for_a_config_where_the_file_lacks_parts(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "schnell.safetensors", FLUX_SCHNELL_BFL)
    catalogue_file = tmp_path / "models.toml"
    catalogue_file.write_text(entry("./schnell.safetensors", "flux"))
    with pytest.raises(CatalogueError, match=r"field `config`: schnell.safetensors has no vae, text_encoder"):
        load_catalogue(catalogue_file)
    catalogue_file.write_text(
        entry("./schnell.safetensors", "flux", 'config = "black-forest-labs/FLUX.1-schnell"\n')
    )
    assert load_catalogue(catalogue_file).get("m").config == "black-forest-labs/FLUX.1-schnell"
    catalogue_file.write_text(entry("./schnell.safetensors", "flux", 'config = "./nowhere"\n'))
    with pytest.raises(
        CatalogueError, match=r"field `config`: config './nowhere' is not a diffusers model folder"
    ):
        load_catalogue(catalogue_file)


def test_catalogue_refuses_a_pickle_source(tmp_path: Path) -> None:
    (tmp_path / "old.ckpt").write_bytes(b"\x80\x02")
    catalogue_file = tmp_path / "models.toml"
    catalogue_file.write_text(entry("./old.ckpt", "sd15"))
    with pytest.raises(
        CatalogueError, match=r"old.ckpt is a pickle checkpoint, and loading a pickle can run any code"
    ):
        load_catalogue(catalogue_file)


def test_add_detects_flux_schnell_defaults(tmp_path: Path) -> None:
    from cli.model_entries import detect

    schnell = detect(str(write_safetensors(tmp_path / "flux1-schnell.safetensors", FLUX_SCHNELL_BFL)))
    assert (schnell.family, schnell.kind, schnell.name) == ("flux", "file", "flux1-schnell")
    assert schnell.defaults == {"steps": 4, "guidance": 0.0, "max_tokens": 256}
    assert detect(str(write_safetensors(tmp_path / "dev.safetensors", FLUX_DEV_COMFY))).defaults == {}


def test_catalogue_text_is_quoted_safely() -> None:
    import tomllib

    from cli.model_entries import slug, toml_table

    tricky = 'a "quoted" \\ back\nslash\t\x7f and ünïcode'
    table = toml_table("sdxl-1.0", {"description": tricky, "steps": 4, "guidance": 0.0, "cpu_offload": True})
    parsed = tomllib.loads(table)["models"]["sdxl-1.0"]  # the dot stays in the id, not a sub-table
    assert parsed == {"description": tricky, "steps": 4, "guidance": 0.0, "cpu_offload": True}
    assert slug("Juggernaut XL v9 (RunDiffusion)") == "juggernaut-xl-v9-rundiffusion"
