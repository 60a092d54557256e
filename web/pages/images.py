"""One image's page: the picture, its recipe, credit, counts and lineage as pictures; favourite it,
copy its /imagine text, remix it (a form prefilled with its recipe) or open it in the mask editor.

Who may see it is the media rule (web.pages.media.viewable): one's own images, and public ones
of the server; anything else answers 404 as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Response
from fastapi.responses import RedirectResponse

from api.errors import status_of
from studio.entities import ImageRecord, Requester
from studio.errors import StudioError
from studio.recipe import Recipe
from web.context import Page, SignedIn
from web.launch import job_url, launch
from web.pages.gallery import image_page_url
from web.pages.media import GenerationId, Index, image_url, thumbnail_url, viewable
from web.sessions import CSRF_HEADER, check_csrf

router = APIRouter(include_in_schema=False)
# A remix started on the web has no Discord thread to open a project in (the bot opens one per
# remix): it goes into the person's project named this, made on first use, in the server asked from.
REMIX_PROJECT = "Web remixes"
MAX_REMIX_TEXT = 6000  # the prompt (<= 2,000 characters) plus its flags; the recipe checks the rest


@dataclass(frozen=True)
class Step:
    """One link of the lineage as shown: a picture linking to its page, or a sentence instead."""

    prompt: str
    href: str | None = None
    thumbnail: str | None = None
    placeholder: str | None = None
    current: bool = False


def recipe_rows(recipe: Recipe) -> list[tuple[str, str]]:
    """The recipe as label/value pairs, leaving out what it does not use."""
    rows = [("Model", recipe.model), ("Prompt", recipe.prompt)]
    if recipe.negative_prompt:
        rows.append(("Negative prompt", recipe.negative_prompt))
    rows += [
        ("Seed", str(recipe.seed)),
        ("Steps", str(recipe.steps)),
        ("Guidance", f"{recipe.guidance:g}"),
        ("Size", f"{recipe.width} × {recipe.height}" + (f" ({recipe.aspect})" if recipe.aspect else "")),
        ("Sampler", recipe.sampler),
    ]
    if recipe.loras:
        rows.append(("LoRAs", ", ".join(f"{lora.name} ({lora.weight:g})" for lora in recipe.loras)))
    if recipe.style:
        rows.append(("Style", recipe.style))
    if recipe.edit:
        rows.append(("Edit", recipe.edit))
    if recipe.strength is not None:
        rows.append(("Strength", f"{recipe.strength:g}"))
    if recipe.mask is not None:
        rows.append(("Mask", "repainted where the mask is white"))
    if recipe.references:
        refs = ", ".join(f"{ref.kind} ({ref.weight:g})" for ref in recipe.references)
        rows.append(("References", refs))
    if recipe.control is not None:
        rows.append(("Control", f"{recipe.control.mode} ({recipe.control.strength:g})"))
    if recipe.chaos:
        rows.append(("Chaos", str(recipe.chaos)))
    if recipe.tile:
        rows.append(("Tiling", "seamless"))
    return rows


async def lineage(current: Page, server_id: str, requester: Requester, image: ImageRecord) -> list[Step]:
    """The image's ancestors and itself, oldest first, as the lineage use case allows them to be
    seen; a flagged ancestor of someone else's is a sentence too (its thumbnail would not open)."""
    studio = current.studio
    steps = await studio.refine.lineage(requester, image.generation_id, image.index)
    shown: list[Step] = []
    for step in steps:
        link = step.image
        if step.removed:
            shown.append(Step("", placeholder="An earlier image was removed"))
        elif step.hidden:
            shown.append(Step("", placeholder="A private image"))
        elif step.elsewhere:
            shown.append(Step("", placeholder="An image from another server"))
        elif link.owner_id != requester.id and link.index in await studio.store.policy.flagged_indices(
            link.generation_id
        ):
            shown.append(Step("", placeholder="A hidden image"))
        else:
            shown.append(
                Step(
                    link.recipe.prompt,
                    image_page_url(server_id, link),
                    thumbnail_url(server_id, link),
                    current=link.id == image.id,
                )
            )
    return shown[::-1]


@router.get("/s/{server_id}/images/{generation_id}/{index}")
async def image_page(
    server_id: str, generation_id: GenerationId, index: Index, current: SignedIn
) -> Response:
    requester = current.me.requester(server_id)
    image = await viewable(current, server_id, generation_id, index)
    studio = current.studio
    steps = await lineage(current, server_id, requester, image)
    favourites, favoured = await studio.store.favourite_standing(image.id, requester.id)
    creator = await studio.store.user_name(image.owner_id)
    text = studio.refine.remix_text(image)
    return current.web.pages.render(
        current.request,
        "image.html",
        viewer=current.me,
        server=current.me.server(server_id),
        nav="gallery",
        image=image,
        page_url=image_page_url(server_id, image),
        full=image_url(server_id, image),
        rows=recipe_rows(image.recipe),
        creator=creator or "someone",
        mine=image.owner_id == requester.id,
        favourites=favourites,
        favoured=favoured,
        remixes=await studio.store.remix_count(image.id),
        steps=steps,
        imagine=f"/imagine prompt:{text}",
    )


@router.post("/s/{server_id}/images/{generation_id}/{index}/favourite")
async def favourite(
    server_id: str,
    generation_id: GenerationId,
    index: Index,
    current: SignedIn,
    on: Annotated[bool, Form()],
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_csrf(current.me, csrf_token or current.request.headers.get(CSRF_HEADER))
    requester = current.me.requester(server_id)
    image = await viewable(current, server_id, generation_id, index)  # the server's, not flagged
    await current.studio.refine.set_favourite(requester, generation_id, index, on)
    return RedirectResponse(image_page_url(server_id, image), 303)


def _remix_form(
    current: Page, server_id: str, image: ImageRecord, text: str, status: int = 200, error: str | None = None
) -> Response:
    return current.web.pages.render(
        current.request,
        "remix.html",
        status,
        viewer=current.me,
        server=current.me.server(server_id),
        nav="gallery",
        image=image,
        page_url=image_page_url(server_id, image),
        thumbnail=thumbnail_url(server_id, image),
        text=text,
        error=error,
        limit=MAX_REMIX_TEXT,
        project=REMIX_PROJECT,
    )


@router.get("/s/{server_id}/images/{generation_id}/{index}/remix")
async def remix_form(
    server_id: str, generation_id: GenerationId, index: Index, current: SignedIn
) -> Response:
    image = await viewable(current, server_id, generation_id, index)
    return _remix_form(current, server_id, image, current.studio.refine.remix_text(image))


@router.post("/s/{server_id}/images/{generation_id}/{index}/remix")
async def remix(
    server_id: str,
    generation_id: GenerationId,
    index: Index,
    current: SignedIn,
    prompt: Annotated[str, Form(max_length=MAX_REMIX_TEXT)],
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Start a remix as the bot's Remix button does (prepare_clone, then start), then its job page."""
    check_csrf(current.me, csrf_token)
    requester = current.me.requester(server_id)
    image = await viewable(current, server_id, generation_id, index)
    studio = current.studio
    try:
        plan = await studio.refine.prepare_clone(requester, image, prompt)
    except StudioError as refused:  # the form again, with the text as typed and what to fix
        return _remix_form(current, server_id, image, prompt, status_of(refused), str(refused))
    project = await studio.projects.named(requester, REMIX_PROJECT)
    generation = await launch(current, plan, project=project)
    return RedirectResponse(job_url(server_id, generation), 303)
