"""The gallery and the image page over real HTTP to `atelier api`: ranking and filters as /browse,
paging, what never shows (private, flagged, other servers'), the recipe, lineage as pictures,
favourites (CSRF), and remixes (the form prefilled, a POST starting a web generation).

Each test uses a server of its own, so what its gallery shows is exactly what it seeded.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
from pathlib import Path

from studio.entities import ImageRecord
from studio.queue import JobQueue
from studio.refine import Refine
from studio.store import Store
from tests.api.server import ApiServer
from tests.web.conftest import ALICE, BOB, WebClient, seed_images, sign_in
from web.pages.gallery import PER_PAGE

CAROL = "discord:100000000000000003"
TILE = re.compile(r'<li data-testid="gallery-item">\s*<a href="/s/\d+/images/([\w-]+)/(\d)">')
REMIX_TIMEOUT_S = 180  # a fresh worker imports torch and loads the tiny model first


def tiles(page: str) -> list[str]:
    """The images a gallery page shows, in order, as generation ids."""
    return [generation for generation, _ in TILE.findall(page)]


def ids(images: list[ImageRecord]) -> list[str]:
    return [image.generation_id for image in images]


def database(api: ApiServer) -> Path:
    return api.deployment.settings().database_path


async def favour(api: ApiServer, image: ImageRecord, *people: str) -> None:
    async with Store(database(api)) as store:
        for person in people:
            await store.ensure_user(person, person)
            await store.set_favourite(person, image.id, True)


def backdate(api: ApiServer, image: ImageRecord, days: float) -> None:
    """Made ``days`` ago (the period filter's test): the store has no write for that, by design."""
    with sqlite3.connect(database(api)) as db:
        db.execute("UPDATE images SET created_at = ? WHERE id = ?", (time.time() - days * 86400, image.id))


def with_style(api: ApiServer, image: ImageRecord, style: str) -> None:
    with sqlite3.connect(database(api)) as db:
        recipe = image.recipe.model_copy(update={"style": style})
        db.execute("UPDATE images SET recipe_json = ? WHERE id = ?", (recipe.model_dump_json(), image.id))


async def gallery(client: WebClient, server: str, **query: str) -> str:
    answer = await client.http.get(f"/s/{server}/gallery", params=query)
    assert answer.status_code == 200, answer.text
    return answer.text


async def test_the_gallery_ranks_like_browse_without_what_others_must_not_see(
    web_api: ApiServer,
) -> None:
    server, elsewhere = "900000000000000101", "900000000000000102"
    dep = web_api.deployment
    plain, liked, loved = await seed_images(dep, ALICE, 3, server=server)
    remixed = (await seed_images(dep, BOB, 1, server=server))[0]
    remix = (await seed_images(dep, CAROL, 1, server=server, parent=remixed))[0]  # counts for `remixed`
    private = (await seed_images(dep, ALICE, 1, server=server, private=True, project="secret"))[0]
    flagged = (await seed_images(dep, BOB, 1, server=server))[0]
    other = (await seed_images(dep, ALICE, 1, server=elsewhere))[0]
    await favour(web_api, loved, BOB, CAROL)
    await favour(web_api, liked, BOB)
    await favour(web_api, flagged, ALICE, CAROL)
    async with Store(database(web_api)) as store:
        await store.policy.record_verdicts(flagged.generation_id, [(0, True, "nsfw", 0.99)])
    alice = await sign_in(web_api, ALICE, "Alice", servers=(server,))
    await sign_in(web_api, BOB, "Bob", servers=(server,))
    page = await gallery(alice, server)
    # Two favourites; one remix scores as one favourite, so the favourite wins the tie; then newest.
    shown = tiles(page)
    # Then the rest, newest first: carol's remix, then alice's plain one.
    assert shown == [ids(x)[0] for x in ([loved], [liked], [remixed], [remix], [plain])]
    for absent in (private, flagged, other):
        assert absent.generation_id not in shown
    # Exactly the community use case's order (what /browse shows, five at a time).
    async with Store(database(web_api)) as store:
        ranked = await store.top_public_images(server, time.time() - 7 * 86400, None, None, 50, 0)
    assert shown == [image.generation_id for image, _, _ in ranked]
    # Thumbnails are lazy, sized, and described by their prompts.
    img = re.search(r'<img src="(/s/\d+/media/[^"]+/thumb\.webp)" loading="lazy"[^>]*>', page)
    assert (
        img is not None
        and 'width="64" height="64"' in img.group(0)
        and 'alt="a red fox in the snow' in img.group(0)
    )
    thumb = await alice.http.get(img.group(1))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    # The creator filter lists the people with public images here, by name (not the flagged-only).
    assert re.search(rf'<option value="{BOB}"\s*>Bob</option>', page)
    assert re.search(rf'<option value="{ALICE}"\s*>Alice</option>', page)
    await alice.http.aclose()


async def test_filters_by_period_model_style_and_creator(web_api: ApiServer) -> None:
    server = "900000000000000103"
    dep = web_api.deployment
    old = (await seed_images(dep, ALICE, 1, server=server))[0]
    backdate(web_api, old, 3)
    ancient = (await seed_images(dep, ALICE, 1, server=server))[0]
    backdate(web_api, ancient, 60)
    xl = (await seed_images(dep, BOB, 1, server=server, model="tiny-sdxl"))[0]
    noir = (await seed_images(dep, BOB, 1, server=server))[0]
    with_style(web_api, noir, "noir")
    alice = await sign_in(web_api, ALICE, "Alice", servers=(server,))
    everything = {old.generation_id, ancient.generation_id, xl.generation_id, noir.generation_id}
    assert set(tiles(await gallery(alice, server, period="all"))) == everything
    assert set(tiles(await gallery(alice, server))) == everything - {ancient.generation_id}  # a week
    assert set(tiles(await gallery(alice, server, period="day"))) == {xl.generation_id, noir.generation_id}
    assert tiles(await gallery(alice, server, period="all", model="tiny-sdxl")) == [xl.generation_id]
    assert tiles(await gallery(alice, server, period="all", style="noir")) == [noir.generation_id]
    mine = set(tiles(await gallery(alice, server, period="all", creator=ALICE)))
    assert mine == {old.generation_id, ancient.generation_id}
    # An empty select is no filter; the chosen ones stay selected in the form.
    page = await gallery(alice, server, period="month", model="", style="", creator=BOB)
    assert set(tiles(page)) == {xl.generation_id, noir.generation_id}
    assert '<option value="month" selected>' in page
    # A filter that matches nothing: the empty state, with a way out.
    empty = await gallery(alice, server, period="day", creator=ALICE)
    assert 'data-testid="gallery-empty"' in empty and tiles(empty) == []
    assert f"/s/{server}/gallery?period=all&creator=discord%3A{ALICE[8:]}" in html.unescape(empty)
    # Bad values: a polite page saying what is wrong.
    for query, said in (
        ({"period": "decade"}, "Period must be one of"),
        ({"model": "no-such-model"}, "Unknown model"),
        ({"style": "no-such-style"}, "no-such-style"),
    ):
        refused = await alice.http.get(f"/s/{server}/gallery", params=query)
        assert refused.status_code in (400, 422), refused.text
        assert said in html.unescape(refused.text) and "<html" in refused.text
    assert (await alice.http.get(f"/s/{server}/gallery", params={"page": "0"})).status_code == 400
    await alice.http.aclose()


async def test_paging(web_api: ApiServer) -> None:
    server = "900000000000000104"
    made = await seed_images(web_api.deployment, BOB, PER_PAGE + 6, server=server)
    bob = await sign_in(web_api, BOB, "Bob", servers=(server,))
    first = await gallery(bob, server)
    assert tiles(first) == [image.generation_id for image in reversed(made)][:PER_PAGE]  # newest first
    assert 'id="page-next"' in first and 'id="page-prev"' not in first
    second_link = re.search(r'<a href="([^"]+)" rel="next" id="page-next">', first)
    assert second_link is not None
    second = (await bob.http.get(html.unescape(second_link.group(1)))).text
    assert tiles(second) == [image.generation_id for image in reversed(made)][PER_PAGE:]
    assert 'id="page-prev"' in second and 'id="page-next"' not in second
    beyond = await gallery(bob, server, page="3")
    assert tiles(beyond) == [] and "No more images" in beyond
    await bob.http.aclose()


async def test_another_server_gallery_is_not_there(web_api: ApiServer) -> None:
    alice = await sign_in(web_api, ALICE, "Alice", servers=("900000000000000105",))
    refused = await alice.http.get("/s/900000000000000106/gallery")
    assert refused.status_code == 404
    await alice.http.aclose()


async def test_the_image_page_recipe_credit_and_lineage_as_pictures(web_api: ApiServer) -> None:
    server = "900000000000000107"
    dep = web_api.deployment
    secret = (await seed_images(dep, CAROL, 1, server=server, private=True, project="secret"))[0]
    origin = (await seed_images(dep, CAROL, 1, server=server, parent=secret, prompt="a lighthouse"))[0]
    parent = (await seed_images(dep, ALICE, 1, server=server, parent=origin, prompt="a lighthouse at dusk"))[
        0
    ]
    child = (await seed_images(dep, BOB, 1, server=server, parent=parent, prompt="a lighthouse in fog"))[0]
    await favour(web_api, child, ALICE, CAROL)
    bob = await sign_in(web_api, BOB, "Bob", servers=(server,))
    alice = await sign_in(web_api, ALICE, "Alice", servers=(server,))
    answer = await alice.http.get(f"/s/{server}/images/{child.generation_id}/0")
    assert answer.status_code == 200
    page = html.unescape(answer.text)
    # The picture, credit, counts.
    assert f'src="/s/{server}/media/{child.generation_id}/0.png"' in page
    assert re.search(r'id="image-credit">By <strong>Bob</strong>', page)
    assert 'id="image-favourites" data-count="2"' in page and 'id="image-remixes" data-count="0"' in page
    # The recipe.
    recipe = dict(re.findall(r'<dt>([^<]+)</dt><dd data-field="[^"]+">([^<]*)</dd>', page))
    assert recipe["Model"] == "tiny-sd15" and recipe["Prompt"] == "a lighthouse in fog 0"
    assert recipe["Seed"] == "0" and recipe["Steps"] == "2" and recipe["Guidance"] == "5"
    assert recipe["Size"] == "64 × 64" and recipe["Sampler"] == child.recipe.sampler
    # Lineage, oldest first: the private origin only as a sentence, then pictures linking to pages.
    lineage = page[page.index('id="lineage"') : page.index("</ol>")]
    assert "A private image" in lineage
    links = re.findall(
        r'<a href="/s/\d+/images/([\w-]+)/0"( aria-current="page")?><img src="([^"]+)"', lineage
    )
    assert [(g, bool(current)) for g, current, _ in links] == [
        (origin.generation_id, False),
        (parent.generation_id, False),
        (child.generation_id, True),
    ]
    assert all(thumb.endswith("/thumb.webp") for _, _, thumb in links)
    for _, _, thumb in links:
        assert (await alice.http.get(thumb)).status_code == 200
    # The /imagine text to copy; a remix link; no mask editor on someone else's image.
    text = Refine.remix_text(child)
    assert f'<pre class="prompt" id="imagine-text">/imagine prompt:{text}</pre>' in page
    assert 'data-copy="imagine-text"' in page
    assert 'id="action-remix"' in page and 'id="action-edit"' not in page
    # Its owner gets the mask editor link; the parent's page counts its remix.
    own = (await bob.http.get(f"/s/{server}/images/{child.generation_id}/0")).text
    assert f'href="/s/{server}/images/{child.generation_id}/0/edit"' in own
    parent_page = (await bob.http.get(f"/s/{server}/images/{parent.generation_id}/0")).text
    assert 'id="image-remixes" data-count="1"' in parent_page
    await alice.http.aclose()
    await bob.http.aclose()


async def test_private_flagged_and_elsewhere_image_pages_are_not_there(web_api: ApiServer) -> None:
    server, elsewhere = "900000000000000108", "900000000000000109"
    dep = web_api.deployment
    private = (await seed_images(dep, ALICE, 1, server=server, private=True, project="secret"))[0]
    flagged = (await seed_images(dep, ALICE, 1, server=server))[0]
    other = (await seed_images(dep, ALICE, 1, server=elsewhere))[0]
    async with Store(database(web_api)) as store:
        await store.policy.record_verdicts(flagged.generation_id, [(0, True, "nsfw", 0.99)])
    alice = await sign_in(web_api, ALICE, "Alice", servers=(server, elsewhere))
    bob = await sign_in(web_api, BOB, "Bob", servers=(server, elsewhere))
    for image in (private, flagged):
        assert (await alice.http.get(f"/s/{server}/images/{image.generation_id}/0")).status_code == 200
        for path in ("", "/remix"):
            refused = await bob.http.get(f"/s/{server}/images/{image.generation_id}/0{path}")
            assert refused.status_code == 404 and "does not exist" in refused.text
    assert (await bob.http.get(f"/s/{server}/images/{other.generation_id}/0")).status_code == 404
    assert (await bob.http.get(f"/s/{elsewhere}/images/{other.generation_id}/0")).status_code == 200
    assert (await bob.http.get(f"/s/{server}/images/{other.generation_id}/9")).status_code in (400, 404)
    await alice.http.aclose()
    await bob.http.aclose()


async def test_favourite_needs_the_csrf_token(web_api: ApiServer) -> None:
    server = "900000000000000110"
    image = (await seed_images(web_api.deployment, ALICE, 1, server=server))[0]
    bob = await sign_in(web_api, BOB, "Bob", servers=(server,))
    page_url = f"/s/{server}/images/{image.generation_id}/0"
    refused = await bob.http.post(f"{page_url}/favourite", data={"on": "1"})
    assert refused.status_code == 403
    forged = await bob.http.post(f"{page_url}/favourite", data={"on": "1", "csrf_token": "forged"})
    assert forged.status_code == 403
    async with Store(database(web_api)) as store:
        assert await store.favourite_standing(image.id, BOB) == (0, False)
    done = await bob.http.post(f"{page_url}/favourite", data={"on": "1", "csrf_token": bob.csrf})
    assert done.status_code == 303 and done.headers["location"] == page_url
    page = (await bob.http.get(page_url)).text
    assert 'id="image-favourites" data-count="1"' in page
    assert 'id="action-favourite" aria-pressed="true"' in page and 'name="on" value="0"' in page
    undone = await bob.http.post(f"{page_url}/favourite", data={"on": "0", "csrf_token": bob.csrf})
    assert undone.status_code == 303
    async with Store(database(web_api)) as store:
        assert await store.favourite_standing(image.id, BOB) == (0, False)
    await bob.http.aclose()


async def test_the_remix_form_is_prefilled_and_its_post_starts_a_web_generation(web_api: ApiServer) -> None:
    server = "900000000000000111"
    dep = web_api.deployment
    dep.start_worker("inference")
    image = (await seed_images(dep, ALICE, 1, server=server, prompt="a paper boat"))[0]
    bob = await sign_in(web_api, BOB, "Bob", servers=(server,))
    form_url = f"/s/{server}/images/{image.generation_id}/0/remix"
    form = await bob.http.get(form_url)
    assert form.status_code == 200
    textarea = re.search(r'<textarea id="remix-prompt" name="prompt"[^>]*>(.*?)</textarea>', form.text, re.S)
    assert textarea is not None
    assert html.unescape(textarea.group(1)) == Refine.remix_text(image)
    assert "--seed 0" in Refine.remix_text(image) and "--steps 2" in Refine.remix_text(image)
    edited = Refine.remix_text(image).replace("a paper boat 0", "a paper boat on a pond")
    # No token: refused, nothing started.
    assert (await bob.http.post(form_url, data={"prompt": edited})).status_code == 403
    # A recipe the studio refuses: the form again, with the text as typed and why.
    bad = await bob.http.post(form_url, data={"prompt": edited + " --steps 9999", "csrf_token": bob.csrf})
    assert bad.status_code == 422
    assert 'id="remix-error"' in bad.text and "--steps 9999" in html.unescape(bad.text)
    started = await bob.http.post(form_url, data={"prompt": edited, "csrf_token": bob.csrf})
    assert started.status_code == 303, started.text
    match = re.fullmatch(rf"/s/{server}/jobs/([\w-]+)", started.headers["location"])
    assert match is not None
    generation_id = match.group(1)
    async with Store(database(web_api)) as store:
        generation = await store.get_generation(generation_id)
        project = await store.get_project(generation.project_id)
    assert generation.owner_id == BOB and generation.server == server
    assert generation.recipe.parent_image == image.id and generation.recipe.prompt == "a paper boat on a pond"
    assert project.name == "Web remixes" and project.owner_id == BOB
    with sqlite3.connect(database(web_api)) as db:
        recorded = db.execute(
            "SELECT user_id FROM web_generations WHERE generation_id = ?", (generation_id,)
        ).fetchall()
    assert recorded == [(BOB,)]
    # The worker makes it (the queue says so when it is done: no polling here).
    queue = await JobQueue.connect(dep.settings())
    try:
        ok, _ = await queue.wait(generation_id, timeout=REMIX_TIMEOUT_S)
    finally:
        await queue.close()
    assert ok
    await bob.http.aclose()
