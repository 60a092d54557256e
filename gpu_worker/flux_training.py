"""Flux's training objective: rectified flow on packed latents, as diffusers' own Flux LoRA script.

A noisy latent is the straight line between the image and noise, ``x_t = (1 - s) * x + s * noise``,
and the transformer learns the velocity ``noise - x``. The noise levels ``s`` are drawn from a
logit-normal density (SD3 paper; diffusers' ``compute_density_for_timestep_sampling``), which
favours the middle of the schedule where the image's layout is decided.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FluxPipeline
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3
from PIL import Image

from gpu_worker.latents import encode_images

__all__ = ["FLUX_TARGETS", "FluxObjective"]

# Every linear layer of both block kinds that kohya's Flux layout can name (so the kohya export is
# the same adapter): the double blocks' image and text attention and feed-forward, the single
# blocks' fused q/k/v + MLP input (kohya's linear1) and their output (linear2). Not the modulation
# layers, the embedders or the final projection (the top-level ``proj_out``), as diffusers' script.
_DOUBLE = (
    r"attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
    r"|ff\.net\.(0\.proj|2)|ff_context\.net\.(0\.proj|2)"
)
_SINGLE = r"attn\.(to_q|to_k|to_v)|proj_mlp|proj_out"
FLUX_TARGETS = rf"^(transformer_blocks\.\d+\.({_DOUBLE})|single_transformer_blocks\.\d+\.({_SINGLE}))$"
WEIGHTING = "logit_normal"
DEFAULT_MAX_TOKENS = 512  # FluxPipeline's default T5 length (what inference pads to)


class FluxObjective:
    """The data set (latents and caption embeddings, encoded once) and the flow-matching loss."""

    def __init__(
        self,
        pipe: Any,
        images: list[Image.Image],
        captions: list[str],
        resolution: int,
        guidance: float,
        max_tokens: int,
        generator: torch.Generator,
        device: str,
    ) -> None:
        if resolution % 16:
            raise ValueError(f"Flux trains at multiples of 16 px (got {resolution})")
        self.pipe = pipe
        self.device = device
        self.guidance = guidance
        self.latents = encode_images(pipe, images, resolution, generator, device)
        with torch.no_grad():  # the text encoders are frozen: one pass over the captions
            embeds, pooled, text_ids = pipe.encode_prompt(
                prompt=captions,
                prompt_2=None,
                device=device,
                num_images_per_prompt=1,
                max_sequence_length=max_tokens or DEFAULT_MAX_TOKENS,
            )
        self.embeds, self.pooled, self.text_ids = embeds, pooled, text_ids
        _, channels, height, width = self.latents.shape
        self.channels, self.height, self.width = channels, height, width
        self.image_ids = FluxPipeline._prepare_latent_image_ids(
            1, height // 2, width // 2, device, self.latents.dtype
        )

    def loss(
        self, index: torch.Tensor, generator: torch.Generator, autocast: torch.dtype | None
    ) -> torch.Tensor:
        """Velocity MSE on the images ``index`` at noise levels drawn from ``generator``."""
        transformer = self.pipe.transformer
        batch = len(index)
        latents = self.latents[index.to(self.latents.device)]
        noise = torch.randn(latents.shape, generator=generator).to(self.device)
        density = compute_density_for_timestep_sampling(
            weighting_scheme=WEIGHTING, batch_size=batch, logit_mean=0.0, logit_std=1.0, generator=generator
        )
        sigmas = density.to(self.device, latents.dtype).view(batch, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        target = self._pack(noise - latents)  # packing only reorders: the MSE is the same
        guidance = None
        if transformer.config.guidance_embeds:  # dev: the distilled guidance is an input
            guidance = torch.full((batch,), self.guidance, device=self.device, dtype=torch.float32)
        pick = index.to(self.embeds.device)
        if autocast is torch.float16:  # Flux's activations overflow fp16 (diffusers warns the same)
            autocast = torch.bfloat16
        device_type = torch.device(self.device).type
        with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
            prediction = transformer(
                hidden_states=self._pack(noisy).to(transformer.dtype),
                timestep=sigmas.flatten().to(transformer.dtype),  # the pipeline passes t / 1000 = sigma
                guidance=guidance,
                pooled_projections=self.pooled[pick],
                encoder_hidden_states=self.embeds[pick],
                txt_ids=self.text_ids,
                img_ids=self.image_ids,
                return_dict=False,
            )[0]
        weighting = compute_loss_weighting_for_sd3(
            weighting_scheme=WEIGHTING, sigmas=sigmas.view(batch, 1, 1)
        )
        errors = weighting.float() * (prediction.float() - target.float()) ** 2
        return errors.reshape(batch, -1).mean(dim=1).mean()

    def _pack(self, latents: torch.Tensor) -> torch.Tensor:
        return FluxPipeline._pack_latents(latents, len(latents), self.channels, self.height, self.width)
