"""The pipeline's prompt arguments per family, with weighting and prompt length handled.

SD 1.5 and SDXL: weighting (`(word:1.3)`, `(word)1.3`, `word++`, `word--`) and prompts past CLIP's
77 tokens go through compel; a plain prompt that fits goes to the pipeline as text. Flux: weighting
through compel's Flux encoder (CLIP pooled + T5); T5 reads the whole prompt up to the model's
``max_sequence_length``, and a longer prompt is refused rather than cut; no negative prompt unless
the model is set up for true CFG. SD3: no weighting (compel has no SD3 encoder), T5 length as Flux.
compel is imported lazily: it takes seconds to import.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from gpu_worker.model_settings import a1111_clip_skip
from gpu_worker.pipelines import LoadedModel
from studio.families import FAMILIES
from studio.recipe import EXPLICIT_WEIGHT, Recipe


class PromptRefused(ValueError):
    """A prompt this model cannot take as it is; the message is for the person who wrote it."""


# T5 tokens read when the catalogue entry says nothing (Flux dev 512, schnell 256; SD 3.5 256).
T5_TOKENS = {"flux": 512, "sd3": 256}

# Weighting syntax: parentheses, a "+"/"-" run at the end of a word, .blend() / .and().
_WEIGHTING = re.compile(r"[()]|\w(\+\+?|--?)(?=\s|,|$)|\.(blend|and)\(")


# A1111's explicit weight, "(text:1.3)", which compel writes "(text)1.3".
_A1111_WEIGHT = re.compile(r"\(([^():]+):\s*([0-9]*\.?[0-9]+)\s*\)")


def to_compel_syntax(text: str) -> str:
    """Accept A1111's `(word:1.3)` as well as compel's own `(word)1.3`, `word++`, `word--`."""
    return _A1111_WEIGHT.sub(lambda m: f"({m[1].strip()}){m[2]}", text)


def needs_compel(model: LoadedModel, recipe: Recipe) -> bool:
    texts = (recipe.prompt, recipe.negative_prompt)
    if any(_WEIGHTING.search(text) for text in texts) or _clip_skip_by_compel(model):
        return True
    tokenizer = model.text2img.tokenizer
    limit = int(tokenizer.model_max_length)
    return any(len(tokenizer(text).input_ids) > limit for text in texts if text)


def _clip_skip_by_compel(model: LoadedModel) -> bool:
    """SD 1.5 with A1111's "Clip skip 2": compel encodes both prompts from CLIP's penultimate layer,
    as A1111 does (diffusers' ``clip_skip`` leaves the negative prompt at the last layer)."""
    return model.ref.family == "sd15" and a1111_clip_skip(model.ref) == 2


def _compel(model: LoadedModel) -> Any:
    if model.compel is None:
        from compel import CompelForSD, CompelForSDXL

        wrapper = CompelForSDXL if model.ref.family == "sdxl" else CompelForSD
        model.compel = wrapper(model.text2img)
        if _clip_skip_by_compel(model):
            from compel import ReturnedEmbeddingsType

            provider = model.compel.compel.conditioning_provider
            provider.returned_embeddings_type = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NORMALIZED
    return model.compel


def prompt_arguments(model: LoadedModel, recipe: Recipe) -> dict[str, Any]:
    """Pipeline keyword arguments for the prompt and negative prompt of a whole batch.

    Raises PromptRefused for a prompt the model cannot take as written.
    """
    if model.ref.family == "flux":
        return _flux_arguments(model, recipe)
    if model.ref.family == "sd3":
        return _sd3_arguments(model, recipe)
    batch = recipe.batch
    if not needs_compel(model, recipe):
        return {"prompt": [recipe.prompt] * batch, "negative_prompt": [recipe.negative_prompt] * batch}
    with torch.no_grad():
        encoded = _compel(model)(
            to_compel_syntax(recipe.prompt), negative_prompt=to_compel_syntax(recipe.negative_prompt)
        )
    arguments = {
        "prompt_embeds": encoded.embeds.repeat(batch, 1, 1),
        "negative_prompt_embeds": encoded.negative_embeds.repeat(batch, 1, 1),
    }
    if model.ref.family == "sdxl":
        arguments["pooled_prompt_embeds"] = encoded.pooled_embeds.repeat(batch, 1)
        arguments["negative_pooled_prompt_embeds"] = encoded.negative_pooled_embeds.repeat(batch, 1)
    return arguments


def t5_limit(model: LoadedModel) -> int:
    """The T5 tokens the model reads (its ``max_sequence_length``): the entry's, or the family's."""
    return model.ref.max_tokens or T5_TOKENS[model.ref.family]


def check_t5_length(model: LoadedModel, recipe: Recipe, tokenizer: Any) -> int:
    """The model's T5 limit, once the prompt and negative prompt are known to fit in it (the
    pipelines would cut a longer one silently)."""
    limit = t5_limit(model)
    for what, text in (("prompt", recipe.prompt), ("negative prompt", recipe.negative_prompt)):
        if not text:
            continue
        count = len(tokenizer(text, truncation=False, verbose=False).input_ids)  # counts the end token
        if count > limit:
            raise PromptRefused(
                f"the {what} is {count} T5 tokens long and model {model.ref.id} reads at most {limit}; "
                f"shorten it by about {count - limit} tokens so nothing is cut off"
            )
    return limit


def _flux_arguments(model: LoadedModel, recipe: Recipe) -> dict[str, Any]:
    ref, batch = model.ref, recipe.batch
    negative = recipe.negative_prompt
    if negative and ref.true_cfg <= 1:
        raise PromptRefused(
            f"{FAMILIES['flux'].label} model {ref.id} takes no negative prompt (it is guidance-distilled); "
            "say what you want in the prompt instead"
        )
    pipe = model.text2img
    limit = check_t5_length(model, recipe, pipe.tokenizer_2)
    arguments: dict[str, Any] = {"max_sequence_length": limit}
    if negative:  # true CFG: a second pass per step with the negative prompt
        arguments["true_cfg_scale"] = ref.true_cfg
    if not any(_WEIGHTING.search(text) for text in (recipe.prompt, negative)):
        arguments["prompt"] = [recipe.prompt] * batch
        if negative:
            arguments["negative_prompt"] = [negative] * batch
        return arguments
    with torch.no_grad():
        encoded = _flux_compel(model, limit)(
            to_compel_syntax(recipe.prompt), negative_prompt=to_compel_syntax(negative) if negative else None
        )
    arguments["prompt_embeds"] = encoded.embeds.repeat(batch, 1, 1)
    arguments["pooled_prompt_embeds"] = encoded.pooled_embeds.repeat(batch, 1)
    if negative:
        arguments["negative_prompt_embeds"] = encoded.negative_embeds.repeat(batch, 1, 1)
        arguments["negative_pooled_prompt_embeds"] = encoded.negative_pooled_embeds.repeat(batch, 1)
    return arguments


def _flux_compel(model: LoadedModel, limit: int) -> Any:
    if model.compel is None:
        from compel import Compel, CompelForFlux

        pipe = model.text2img
        compel = CompelForFlux(pipe)
        # Its T5 half pads to the tokenizer's 512; the model reads `limit` (schnell: 256), as the
        # pipeline's own encoding does.
        compel.compel_2 = Compel(
            tokenizer=pipe.tokenizer_2,
            text_encoder=pipe.text_encoder_2,
            truncate_long_prompts=True,
            model_max_length=limit,
        )
        model.compel = compel
    return model.compel


def _sd3_arguments(model: LoadedModel, recipe: Recipe) -> dict[str, Any]:
    for text in (recipe.prompt, recipe.negative_prompt):
        if found := EXPLICIT_WEIGHT.search(text):  # the recipe rules refuse these; kept for old recipes
            raise PromptRefused(
                f"{FAMILIES['sd3'].label} models take no prompt weights such as `{found[0]}`; "
                "write the words plainly"
            )
    limit = check_t5_length(model, recipe, model.text2img.tokenizer_3)
    return {
        "prompt": [recipe.prompt] * recipe.batch,
        "negative_prompt": [recipe.negative_prompt] * recipe.batch,
        "max_sequence_length": limit,
    }
