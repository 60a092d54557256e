"""The library page over real HTTP: a person's own work in one server (private included, never
another person's), their favourites, trained models with a loss chart and comparison, and
finishes made by a real post worker, downloaded with their bytes."""

from __future__ import annotations

import json
import re

import httpx

from studio.app import open_artifacts, open_studio
from studio.entities import ImageRecord, Requester
from studio.finishing import ExportSpec, Grade
from studio.store import Store
from studio.store.connection import new_id
from tests.api.server import ApiServer
from tests.web.conftest import ALICE, BOB, OTHER_SERVER, SERVER, WebClient, png, seed_images, sign_in

CAROL = "discord:100000000000000003"


def marked(html: str, testid: str, attribute: str) -> list[str]:
    """The ``attribute`` of every element marked ``data-testid=testid``, in page order."""
    found = []
    for tag in re.findall(r"<[a-z]+\b[^>]*>", html):
        if f'data-testid="{testid}"' in tag:
            value = re.search(rf'\b{attribute}="([^"]*)"', tag)
            assert value is not None, tag
            found.append(value.group(1))
    return found


async def library(client: WebClient, path: str = f"/s/{SERVER}/library") -> str:
    page = await client.http.get(path)
    assert page.status_code == 200, page.text
    html = page.text
    assert "style=" not in html and "<script>" not in html  # the CSP allows neither
    return html


async def seed_lora(
    api: ApiServer,
    owner: str,
    name: str,
    *,
    server: str | None = SERVER,
    losses: list[float] | None = None,
    comparison: bytes | None = None,
    failed: str | None = None,
) -> str:
    """A training run recorded as the Forge records one: done with its losses and comparison, or failed."""
    settings = api.deployment.settings()
    digest = open_artifacts(settings).put(comparison) if comparison else None
    lora_id = new_id()
    async with Store(settings.database_path) as store:
        await store.ensure_user(owner, owner)
        await store.loras.add(
            lora_id,
            owner_id=owner,
            project_id=None,
            server=server,
            name=name,
            version=1,
            trigger=f"{name.lower()}zx",
            base_model="tiny-sd15",
            family="sd15",
            visibility="private",
            params_json=json.dumps({"steps": 500}),
            image_count=4,
        )
        await store.loras.mark_running(lora_id, attempt=1)
        if failed is not None:
            await store.loras.end(lora_id, "failed", failed)
        else:
            artifacts: dict[str, str | None] = {
                "weights": "w",
                "kohya": "k",
                "sample": None,
                "comparison": digest,
            }
            assert await store.loras.finish(lora_id, artifacts, 1000, losses or [], 12.0, attempts=1)
    return lora_id


async def test_the_library_shows_the_persons_own_projects_private_included_and_never_anothers(
    web_api: ApiServer,
) -> None:
    dep = web_api.deployment
    public = await seed_images(dep, ALICE, 2, project="fox studies")
    private = await seed_images(dep, ALICE, 1, private=True, project="secret plans")
    many = await seed_images(dep, ALICE, 10, project="big project")
    elsewhere = await seed_images(dep, ALICE, 1, server=OTHER_SERVER, project="other server work")
    bobs = await seed_images(dep, BOB, 2, project="bob's things")
    bobs_private = await seed_images(dep, BOB, 1, private=True, project="bob's secrets")
    alice = await sign_in(web_api, ALICE, "Alice", servers=(SERVER, OTHER_SERVER))
    bob = await sign_in(web_api, BOB, "Bob")
    html = await library(alice)

    async with Store(dep.settings().database_path) as store:
        projects = {
            name: found.id
            for name in ("fox studies", "secret plans", "big project", "other server work", "bob's things")
            if (found := await store.project_by_name(BOB if name.startswith("bob") else ALICE, name))
        }
    listed = marked(html, "library-project", "data-project-id")
    assert set(listed) == {projects["fox studies"], projects["secret plans"], projects["big project"]}
    shown = set(marked(html, "library-image", "data-generation-id"))
    assert {i.generation_id for i in public + private} <= shown
    assert not shown & {i.generation_id for i in bobs + bobs_private + elsewhere}
    assert "bob&#39;s things" not in html and "other server work" not in html
    assert len(marked(html, "private-badge", "class")) == 1
    # The big project shows its newest 8 and links to all of them.
    big = re.search(rf'data-project-id="{projects["big project"]}".*?</section>', html, re.S)
    assert big is not None
    assert len(marked(big.group(0), "library-image", "data-generation-id")) == 8
    more = marked(big.group(0), "project-more", "href")
    assert more == [f"/s/{SERVER}/library/projects/{projects['big project']}"]
    # Each tile opens the image page and shows the person's thumbnail, private ones too.
    assert f'href="/s/{SERVER}/images/{private[0].generation_id}/0"' in html
    thumb = await alice.http.get(f"/s/{SERVER}/media/{private[0].generation_id}/0/thumb.webp")
    assert thumb.status_code == 200 and f"/s/{SERVER}/media/{private[0].generation_id}/0/thumb.webp" in html

    whole = await library(alice, more[0])
    assert sorted(marked(whole, "library-image", "data-generation-id")) == sorted(
        i.generation_id for i in many
    )
    assert "empty-project" in await library(alice, more[0] + "?page=2")

    # The other server's library holds that server's work only.
    other = await library(alice, f"/s/{OTHER_SERVER}/library")
    assert marked(other, "library-project", "data-project-id") == [projects["other server work"]]

    # Another person's project answers exactly as a missing one does.
    bobs_project, secret = projects["bob's things"], projects["secret plans"]
    missing = await alice.http.get(f"/s/{SERVER}/library/projects/{new_id()}")
    theirs = await alice.http.get(f"/s/{SERVER}/library/projects/{bobs_project}")
    mine_for_bob = await bob.http.get(f"/s/{SERVER}/library/projects/{secret}")
    assert missing.status_code == theirs.status_code == mine_for_bob.status_code == 404
    assert theirs.text == missing.text
    bobs_page = await library(bob)
    assert not set(marked(bobs_page, "library-image", "data-generation-id")) & shown
    assert private[0].generation_id not in bobs_page
    # A server the person is not in (or the bot is not in) does not exist for them.
    assert (await bob.http.get(f"/s/{OTHER_SERVER}/library")).status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


async def test_favourites_appear_and_an_empty_library_says_what_to_do(web_api: ApiServer) -> None:
    dep = web_api.deployment
    bobs = await seed_images(dep, BOB, 2, project="bob's favourites source")
    bobs_elsewhere = await seed_images(dep, BOB, 1, server=OTHER_SERVER, project="bob's other server")
    carol = Requester(CAROL, "Carol", server=SERVER)
    async with open_studio(dep.settings()) as studio:
        for image in (bobs[1], bobs_elsewhere[0]):
            await studio.refine.set_favourite(carol, image.generation_id, image.index, True)
    client = await sign_in(web_api, CAROL, "Carol")
    html = await library(client)
    assert marked(html, "favourite", "data-generation-id") == [bobs[1].generation_id]
    assert f'href="/s/{SERVER}/images/{bobs[1].generation_id}/0"' in html
    for empty in ("empty-projects", "empty-models", "empty-finishes"):
        assert f'data-testid="{empty}"' in html
    assert 'data-testid="empty-favourites"' not in html

    newcomer = await sign_in(web_api, "discord:100000000000000009", "Dan")
    fresh = await library(newcomer)
    for empty in ("empty-projects", "empty-favourites", "empty-models", "empty-finishes"):
        assert f'data-testid="{empty}"' in fresh
    await client.http.aclose()
    await newcomer.http.aclose()


async def test_a_trained_model_shows_its_status_comparison_and_loss_chart(web_api: ApiServer) -> None:
    comparison = png(128, 64, (10, 200, 90))
    losses = [1.0 / (1 + step / 50) for step in range(1000)]
    fox = await seed_lora(web_api, ALICE, "Fox", losses=losses, comparison=comparison)
    broken = await seed_lora(web_api, ALICE, "Broken", failed="The training ran out of memory.")
    elsewhere = await seed_lora(
        web_api, ALICE, "Owl", server=OTHER_SERVER, losses=[0.5], comparison=comparison
    )
    bobs = await seed_lora(web_api, BOB, "Cat", losses=[0.3, 0.2], comparison=png(32, 32))
    alice = await sign_in(web_api, ALICE, "Alice")
    bob = await sign_in(web_api, BOB, "Bob")
    html = await library(alice)

    assert set(marked(html, "library-model", "data-lora-id")) >= {fox, broken}
    assert not {elsewhere, bobs} & set(marked(html, "library-model", "data-lora-id"))
    card = re.search(rf'data-lora-id="{fox}".*?</article>', html, re.S)
    assert card is not None
    chart = card.group(0)
    assert 'role="img"' in chart and "<polyline" in chart and "<title>" in chart
    assert marked(chart, "loss-chart", "data-points") == ["300"]  # 1000 losses, downsampled
    assert f"lowest {min(losses):.4g}, highest 1." in chart  # the last loss and the first
    assert marked(chart, "model-loss", "data-testid") and f"{losses[-1]:.4g}" in chart
    assert "500 of 500" in chart and "Ready" in chart
    failed = re.search(rf'data-lora-id="{broken}".*?</article>', html, re.S)
    assert failed is not None and "ran out of memory" in failed.group(0) and "Failed" in failed.group(0)
    assert 'data-testid="no-losses"' in failed.group(0) and "<svg" not in failed.group(0)

    (url,) = marked(chart, "model-comparison", "src")
    served = await alice.http.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == comparison
    # Nobody else gets it; nor does its owner through another person's run or server.
    assert (await bob.http.get(url)).status_code == 404
    for other in (bobs, elsewhere, broken, new_id()):
        refused = await alice.http.get(f"/s/{SERVER}/library/models/{other}/comparison.png")
        assert refused.status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


async def _export(studio_image: ImageRecord, requester: Requester, api: ApiServer) -> tuple[str, bytes]:
    async with open_studio(api.deployment.settings()) as studio:
        data = await studio.artifacts.read(studio_image.artifact)
        plan = await studio.finishing.prepare_export(
            requester, data, ExportSpec(preset="discord-emoji"), studio_image
        )
        exported = await studio.finishing.export(plan)
        return exported.finish.id, exported.data


async def test_finishes_download_with_their_bytes_and_only_for_their_owner(web_api: ApiServer) -> None:
    dep = web_api.deployment
    dep.start_worker("post")
    await dep.wait_ready(("post",))
    alice_r, bob_r = Requester(ALICE, "Alice", server=SERVER), Requester(BOB, "Bob", server=SERVER)
    (mine,) = await seed_images(dep, ALICE, 1, project="to finish")
    (theirs,) = await seed_images(dep, BOB, 1, project="bob to finish")
    export_id, exported = await _export(mine, alice_r, web_api)
    bobs_export, _ = await _export(theirs, bob_r, web_api)
    async with open_studio(dep.settings()) as studio:
        data = await studio.artifacts.read(mine.artifact)
        graded = await studio.finishing.preview_grade(
            await studio.finishing.prepare_grade(alice_r, data, Grade(preset="noir"), mine)
        )
    alice = await sign_in(web_api, ALICE, "Alice")
    bob = await sign_in(web_api, BOB, "Bob")
    html = await library(alice)

    listed = marked(html, "library-finish", "data-finish-id")
    assert {export_id, graded.id} <= set(listed) and bobs_export not in listed
    assert marked(html, "finish-download", "href").count(f"/s/{SERVER}/finishes/{export_id}/file") == 1
    grade_row = re.search(rf'data-finish-id="{graded.id}".*?</li>', html, re.S)
    assert grade_row is not None and 'data-testid="finish-preview-only"' in grade_row.group(0)

    download = await alice.http.get(f"/s/{SERVER}/finishes/{export_id}/file")
    assert download.status_code == 200, download.text
    assert download.content == exported and download.content.startswith(b"\x89PNG")
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("attachment;")
    preview_only = await alice.http.get(f"/s/{SERVER}/finishes/{graded.id}/file")
    assert preview_only.status_code == 409 and "only previewed" in preview_only.text

    missing = await alice.http.get(f"/s/{SERVER}/finishes/{new_id()}/file")
    for refused in (
        await alice.http.get(f"/s/{SERVER}/finishes/{bobs_export}/file"),
        await bob.http.get(f"/s/{SERVER}/finishes/{export_id}/file"),
    ):
        assert refused.status_code == 404 and "does not exist" in refused.text
        assert refused.content != exported
    assert missing.status_code == 404
    json_refusal = await bob.http.get(
        f"/s/{SERVER}/finishes/{export_id}/file", headers={"Accept": "application/json"}
    )
    assert json_refusal.status_code == 404 and json_refusal.json()["detail"] == missing_detail(missing)
    await alice.http.aclose()
    await bob.http.aclose()


def missing_detail(response: httpx.Response) -> str:
    found = re.search(r"<p>([^<]+)</p>", response.text)
    assert found is not None
    return found.group(1).replace("&#39;", "'")
