"""Tiny random-weight SD 1.5-, SDXL-, Flux- and SD 3.5-shaped pipelines, for tests and the offline demo.

They are saved with ``save_pretrained`` and loaded back through exactly the code that loads
real weights, so the whole path is exercised without downloading anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

TINY_VERSION = 3  # bump when the tiny models change, so stale copies are rebuilt
WORDS = (
    "a an the of at in on with and lighthouse dusk dawn night sea sky city forest portrait cat dog "
    "red blue green gold light dark soft cinematic photo painting style mood fog rain sun moon"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def write_tokenizer(folder: Path) -> int:
    """A minimal byte-level BPE CLIP tokenizer (bytes, bytes + </w>, merges for a few words)."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(token, len(vocab))
    merges: list[str] = []
    for word in WORDS:  # merge each word left to right into one token
        pieces = [*list(word[:-1]), word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = f"{pieces[0]} {pieces[1]}"
            merged = pieces[0] + pieces[1]
            if pair not in merges:
                merges.append(pair)
                vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    from transformers import CLIPTokenizer

    # transformers 5 takes `vocab=`/`merges=`; the old `vocab_file=` names are silently ignored
    # and leave a 2-token tokenizer that maps every prompt to the same ids.
    tokenizer = CLIPTokenizer(
        vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77
    )
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tiny tokenizer lost its vocabulary ({len(tokenizer)} of {len(vocab)} tokens)")
    tokenizer.save_pretrained(folder)
    return len(vocab)


def _text_config(vocab_size: int, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_size=32,
        intermediate_size=64,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        vocab_size=vocab_size,
        projection_dim=projection or 32,
        hidden_act="gelu",
    )


def _vae(scaling: float) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling,
    )


def _scheduler() -> Any:
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )


def _unet(**family: Any) -> Any:
    """The tiny UNet: two blocks, one cross-attention; ``family`` adds the family's conditioning."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        norm_num_groups=8,
        **family,
    )


def make_sd15(folder: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = folder / "_tokenizer_src"
    vocab_size = write_tokenizer(tok_dir)
    unet = _unet(cross_attention_dim=32)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=_vae(0.18215),
        text_encoder=CLIPTextModel(_text_config(vocab_size)),
        tokenizer=CLIPTokenizer.from_pretrained(tok_dir),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    _cleanup(tok_dir)
    return folder


def make_sdxl(folder: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = folder / "_tokenizer_src"
    vocab_size = write_tokenizer(tok_dir)
    unet = _unet(
        cross_attention_dim=64,  # both text encoders, 32 each
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
    )
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    pipe = StableDiffusionXLPipeline(
        unet=unet,
        vae=_vae(0.13025),
        text_encoder=CLIPTextModel(_text_config(vocab_size)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(vocab_size, projection=32)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=_scheduler(),
    )
    pipe.save_pretrained(folder)
    _cleanup(tok_dir)
    return folder


def write_t5_tokenizer(folder: Path) -> int:
    """A small T5 Unigram tokenizer built locally (words, characters, specials) as tokenizer.json."""
    from transformers import T5Tokenizer

    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()"
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
    pieces += [("\u2581" + word, -1.0) for word in WORDS]
    pieces += [(char, -5.0) for char in letters]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def _t5(vocab_size: int, width: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=width,
            d_kv=8,
            d_ff=2 * width,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )


def _flow_vae(scaling: float, shift: float) -> Any:
    """Flux and SD3's VAE shape: 16 latent channels, no quant convs, the real 1/8 latent scale."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=16,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling,
        shift_factor=shift,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def make_flux(folder: Path, seed: int = 0) -> Path:
    """Flux.1-dev-shaped: CLIP (pooled) + T5 text encoders, a guidance-embedding transformer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5Tokenizer

    torch.manual_seed(seed)
    clip_dir, t5_dir = folder / "_tokenizer_src", folder / "_t5_src"
    vocab_size = write_tokenizer(clip_dir)
    t5_size = write_t5_tokenizer(t5_dir)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2, as the real model
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5's width
        pooled_projection_dim=32,  # CLIP's pooled width
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )
    pipe = FluxPipeline(
        transformer=transformer,
        vae=_flow_vae(0.3611, 0.1159),
        text_encoder=CLIPTextModel(_text_config(vocab_size)),
        tokenizer=CLIPTokenizer.from_pretrained(clip_dir),
        text_encoder_2=_t5(t5_size, 32),
        tokenizer_2=T5Tokenizer.from_pretrained(t5_dir),
        scheduler=FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
        ),
    )
    pipe.save_pretrained(folder)
    _cleanup(clip_dir)
    _cleanup(t5_dir)
    return folder


def make_sd3(folder: Path, seed: int = 0) -> Path:
    """SD 3.5-shaped: two CLIP encoders with projections + T5, an MMDiT transformer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer, T5Tokenizer

    torch.manual_seed(seed)
    clip_dir, t5_dir = folder / "_tokenizer_src", folder / "_t5_src"
    vocab_size = write_tokenizer(clip_dir)
    t5_size = write_t5_tokenizer(t5_dir)
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=64,  # T5's width; the two CLIPs' 32 + 32 are padded to it
        caption_projection_dim=32,
        pooled_projection_dim=64,  # both CLIPs' pooled projections
        pos_embed_max_size=96,
    )
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=_flow_vae(1.5305, 0.0609),
        text_encoder=CLIPTextModelWithProjection(_text_config(vocab_size, projection=32)),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_text_config(vocab_size, projection=32)),
        tokenizer_2=tokenizer,
        text_encoder_3=_t5(t5_size, 64),
        tokenizer_3=T5Tokenizer.from_pretrained(t5_dir),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    pipe.save_pretrained(folder)
    _cleanup(clip_dir)
    _cleanup(t5_dir)
    return folder


def make_safety(folder: Path, seed: int = 0) -> Path:
    """A tiny random image safety classifier (ViT, labels "normal" and "nsfw") and its processor.

    Its scores mean nothing; tests decide the verdict with the threshold: 0 flags every image,
    above 1 none."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        id2label={0: "normal", 1: "nsfw"},
        label2id={"normal": 0, "nsfw": 1},
    )
    folder.mkdir(parents=True, exist_ok=True)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _cleanup(folder: Path) -> None:
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()


def make_tiny(root: Path) -> dict[str, Path]:
    """Build the tiny models under ``root`` (skipping any already there)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        library.set_verbosity_error()
    from gpu_worker.tiny_annotators import make_annotators
    from gpu_worker.tiny_controlnet import make_tiny_controlnets
    from gpu_worker.tiny_ip_adapter import make_ip_adapters

    built = {}
    from gpu_worker.tiny_describe import make_describe

    makers = (
        ("tiny-sd15", make_sd15),
        ("tiny-sdxl", make_sdxl),
        ("tiny-flux", make_flux),
        ("tiny-sd3", make_sd3),
        ("tiny-safety", make_safety),
        ("tiny-describe", make_describe),  # gpu_worker/tiny_describe.py: a BLIP captioner
    )
    for name, maker in makers:
        folder = root / name
        marker = folder / "atelier-tiny.json"
        current = marker.is_file() and json.loads(marker.read_text()).get("version") == TINY_VERSION
        if not current:  # missing, or built by an older builder: build afresh
            shutil.rmtree(folder, ignore_errors=True)
            maker(folder)
            marker.write_text(json.dumps({"version": TINY_VERSION}))
        built[name] = folder
    # The tiny SDXL again as one A1111-layout checkpoint (rewritten whenever its folder is rebuilt).
    single, marker = root / "tiny-sdxl.safetensors", built["tiny-sdxl"] / "atelier-tiny.json"
    if not single.is_file() or single.stat().st_mtime < marker.stat().st_mtime:
        from gpu_worker.ldm_convert import write_single_file

        write_single_file(built["tiny-sdxl"], single)
    built["tiny-sdxl.safetensors"] = single
    built.update(make_ip_adapters(root, built))  # gpu_worker/tiny_ip_adapter.py
    built.update(make_tiny_controlnets(root, built))  # gpu_worker/tiny_controlnet.py
    built.update(make_annotators(root, built))  # gpu_worker/tiny_annotators.py: depth and pose
    return built
