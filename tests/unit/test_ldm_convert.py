"""gpu_worker.ldm_convert inverts diffusers' own LDM converters for any block layout: a UNet and a
VAE shaped like the real SDXL ones (three/four levels, two layers per block, attention-free first
level, deep transformers) go to LDM names and come back through diffusers unchanged."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

from gpu_worker.ldm_convert import UNET, VAE, unet_to_ldm, vae_to_ldm


def same(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_an_sdxl_shaped_unet_round_trips_through_diffusers_converter() -> None:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(  # SDXL's layout with narrow channels
        sample_size=8,
        block_out_channels=(8, 16, 32),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 3),
        attention_head_dim=(2, 4, 8),
        cross_attention_dim=16,
        norm_num_groups=8,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 16,
    )
    state = unet.state_dict()
    ldm = unet_to_ldm(state, unet.config)
    assert all(key.startswith(UNET) for key in ldm)
    assert UNET + "input_blocks.8.1.transformer_blocks.2.attn2.to_k.weight" in ldm  # SDXL's deepest block
    assert UNET + "output_blocks.2.2.conv.weight" in ldm  # an upsampler after an attention
    assert same(state, convert_ldm_unet_checkpoint(ldm, unet.config))


def test_a_real_shaped_vae_round_trips_through_diffusers_converter() -> None:
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=8,
    )
    state = vae.state_dict()
    ldm = vae_to_ldm(state, vae.config)
    assert all(key.startswith(VAE) for key in ldm)
    assert ldm[VAE + "encoder.mid.attn_1.q.weight"].ndim == 4  # 1x1 convs, as in LDM files
    assert VAE + "decoder.up.1.block.0.nin_shortcut.weight" in ldm  # diffusers up_blocks.2: LDM counts upward
    assert VAE + "decoder.up.0.block.2.conv1.weight" in ldm  # three resnets a decoder level
    assert same(state, convert_ldm_vae_checkpoint(ldm, vae.config))
