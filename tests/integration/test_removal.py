"""Removal and /forget at the store: rows, favourites, feed, lineage links and shared artifact files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from studio.artifacts import Artifacts, digest
from studio.entities import Requester
from studio.errors import NotFound, NotYours
from studio.recipe import Recipe
from studio.removal import Removal
from studio.store import Store

RECIPE = Recipe(
    model="m", family="sd15", prompt="a cat", seed=1, steps=4, guidance=5.0, width=64, height=64, batch=2
)
SERVER = "42"
ALICE = Requester("discord:1", "Alice", server=SERVER)
BOB = Requester("discord:2", "Bob", server=SERVER)
MOD = Requester("discord:3", "Mod", server=SERVER, moderator=True)


async def finished(
    store: Store,
    artifacts: Artifacts,
    who: Requester,
    gen_id: str,
    pixels: list[bytes],
    recipe: Recipe = RECIPE,
) -> list[str]:
    """A done generation of ``who`` whose images are ``pixels``, shown in one message; image ids."""
    await store.ensure_user(who.id, who.name)
    project = await store.project_by_name(who.id, "p") or await store.create_project(
        who.id, "p", server=SERVER
    )
    await store.add_generation(gen_id, project.id, who.id, recipe, server=SERVER)
    shas = [artifacts.put(png) for png in pixels]
    images = [(i, sha, recipe.for_image(i)) for i, sha in enumerate(shas)]
    assert await store.finish_generation(gen_id, images, None, 1.0, 1)
    await store.add_post(f"m-{gen_id}", "c1", gen_id, "status")
    return [image.id for image in await store.images_of(gen_id)]


@pytest.fixture
async def world(tmp_path: Path, database: Path | str) -> AsyncIterator[tuple[Store, Artifacts, Removal]]:
    """On each database (SQLite, Postgres)."""
    async with Store(database) as store:
        artifacts = Artifacts(tmp_path / "artifacts")
        yield store, artifacts, Removal(store, artifacts)


async def test_a_moderator_removes_a_result_children_keep_working_shared_files_stay(
    world: tuple[Store, Artifacts, Removal],
) -> None:
    store, artifacts, removal = world
    alices = await finished(store, artifacts, ALICE, "g1", [b"alice-only", b"shared"])
    await finished(store, artifacts, BOB, "g2", [b"shared", b"bob-only"])
    remix = RECIPE.model_copy(update={"parent_image": alices[0], "batch": 1})
    (child,) = await finished(store, artifacts, BOB, "g3", [b"bob remix"], remix)
    await store.set_favourite(BOB.id, alices[0], True)
    with pytest.raises(NotYours):
        await removal.remove(BOB, "m-g1")
    with pytest.raises(NotFound):
        await removal.remove(Requester("discord:3", "Mod", server="99", moderator=True), "m-g1")

    erased = await removal.remove(MOD, "m-g1")

    assert (erased.generations, erased.images, erased.files) == (1, 2, 1)
    assert [p.message_id for p in erased.posts] == ["m-g1"]
    assert not artifacts.path(digest(b"alice-only")).exists()
    assert artifacts.get(digest(b"shared")) == b"shared"  # Bob's image has the same bytes
    assert await store.images_of("g1") == [] and await store.post("m-g1") is None
    assert await store.favourites_of(BOB.id) == []
    assert await store.top_public_images(SERVER, 0.0, None, None, 10, 0) != []
    assert all(
        image.owner_id == BOB.id
        for image, _, _ in await store.top_public_images(SERVER, 0.0, None, None, 10, 0)
    )
    survivor = await store.image(child)
    assert survivor.parent_image_id is None and survivor.recipe.parent_image is None
    assert await store.removal.parent_removed(child)
    assert (await store.get_generation("g3")).recipe.parent_image is None
    # A reroll of the child (same recipe, new generation) records fine: no dangling parent.
    await finished(store, artifacts, BOB, "g4", [b"reroll"], (await store.get_generation("g3")).recipe)
    with pytest.raises(NotFound):
        await removal.remove(MOD, "m-g1")  # already gone: one sentence, nothing else
    await store.close()


async def test_forget_everything_erases_only_the_persons_finished_work(
    world: tuple[Store, Artifacts, Removal],
) -> None:
    store, artifacts, removal = world
    await finished(store, artifacts, ALICE, "a1", [b"a1-0", b"a1-1"])
    await finished(store, artifacts, ALICE, "a2", [b"a2-0", b"b1-0"])  # one image's bytes equal Bob's
    bobs = await finished(store, artifacts, BOB, "b1", [b"b1-0", b"b1-1"])
    await store.set_favourite(ALICE.id, bobs[0], True)
    project = await store.project_by_name(ALICE.id, "p")
    assert project is not None
    await store.add_generation("a3", project.id, ALICE.id, RECIPE, server=SERVER)  # still queued
    posting = await finished(store, artifacts, ALICE, "a4", [b"a4-0"])
    await store.add_delivery("a4", "c1", "m-a4")  # done, but its result is being posted right now

    plan = await removal.prepare_forget(ALICE, "all")
    assert (len(plan.generation_ids), plan.images, plan.still_running) == (2, 4, 2)
    erased = await removal.forget(plan)

    assert (erased.generations, erased.images, erased.files, erased.still_running) == (2, 4, 3, 2)
    assert artifacts.get(digest(b"a4-0")) == b"a4-0"  # erased by a later /forget, once delivered
    assert {p.message_id for p in erased.posts} == {"m-a1", "m-a2"}
    for png in (b"a1-0", b"a1-1", b"a2-0"):
        assert not artifacts.path(digest(png)).exists()
    for png in (b"b1-0", b"b1-1"):
        assert artifacts.get(digest(png)) == png
    assert await store.favourites_of(ALICE.id) == []
    feed = await store.top_public_images(SERVER, 0.0, None, None, 10, 0)
    assert sorted(image.id for image, _, _ in feed) == sorted(bobs + posting)
    assert (await store.get_generation("a3")).status == "queued"  # left for when it ends
    assert await store.get_project(project.id)  # kept: a job still runs in it
    await store.close()


async def test_forget_a_project_needs_ones_own_project(world: tuple[Store, Artifacts, Removal]) -> None:
    store, artifacts, removal = world
    await finished(store, artifacts, ALICE, "a1", [b"x"])
    project = await store.project_by_name(ALICE.id, "p")
    with pytest.raises(NotYours):
        await removal.prepare_forget(BOB, "project", project)
    with pytest.raises(Exception, match="inside one of your project threads"):
        await removal.prepare_forget(ALICE, "project", None)
    erased = await removal.forget(await removal.prepare_forget(ALICE, "project", project))
    assert erased.images == 1
    with pytest.raises(NotFound):
        await store.get_project(project.id if project else "")  # emptied: gone too
    await store.close()
