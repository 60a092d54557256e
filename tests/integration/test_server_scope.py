"""Everything community-facing keeps to its server (Discord guild), through real Redis, SQLite and workers.

One bot serves many servers and a person can only open a jump link into a server they belong
to, so the feed, remixing, lineage, remix channels, model samples, favourites and shared LoRA
models show nothing of another server. Counts (favourites, remixes) stay global: a number shows
no image and no link.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiosqlite
import pytest

from studio.app import Studio, open_studio
from studio.entities import Generation, ImageRecord, Requester
from studio.errors import NotFound, UnknownLora
from studio.forge import TrainingRequest
from studio.generations import GenerationPlan
from studio.recipe import Recipe
from studio.store import Store
from studio.store.migrations import available
from studio.training import TrainingImage, TrainingOptions
from tests.integration.test_forge import subject
from tests.integration.workers import Deployment


def guild() -> str:
    return str(uuid.uuid4().int >> 66)  # a snowflake-like id, fresh per test: feeds start empty


def member(name: str, server: str | None, **flags: bool) -> Requester:
    return Requester(id=f"discord:{name}-{uuid.uuid4().hex[:6]}", name=name, server=server, **flags)


async def made(studio: Studio, requester: Requester, prompt: str, **submit: object) -> ImageRecord:
    """A real generation through the worker; its one image once recorded."""
    generation = await studio.generations.imagine(requester, f"{prompt} --steps 2 --batch 1")
    finished = await asyncio.wait_for(studio.results.follow(generation.id), 120)
    return finished.images[0]


async def feed(studio: Studio, requester: Requester) -> list[str]:
    """Every image id the requester's /browse shows for today, page after page."""
    ids: list[str] = []
    for page in range(1000):
        entries = await studio.community.browse(requester, "day", page=page)
        ids += [entry.image.id for entry in entries]
        if len(entries) < 5:
            return ids
    raise AssertionError("the feed never ended")


async def test_browse_shows_only_the_viewers_server(studio: Studio) -> None:
    a, b = guild(), guild()
    alice, bob = member("alice", a), member("bob", b)
    in_a = await made(studio, alice, "a lighthouse in server a")
    in_b = await made(studio, bob, "a lighthouse in server b")
    cli = await made(studio, Requester(id="cli:dora", name="dora"), "a lighthouse from the command line")
    assert (in_a.server, in_b.server, cli.server) == (a, b, None)

    assert await feed(studio, member("carol", a)) == [in_a.id]
    assert await feed(studio, member("dave", b)) == [in_b.id]
    assert await feed(studio, member("erin", guild())) == []
    unscoped = await feed(studio, Requester(id="cli:frank", name="frank"))  # CLI, DMs, keys of no server
    assert cli.id in unscoped and in_a.id not in unscoped and in_b.id not in unscoped

    # Posts (the feed's jump links) come only with images of the viewer's server.
    await studio.generations.record_status_post(in_a.generation_id, "chan-a", "msg-a")
    entries = await studio.community.browse(member("carol", a), "day")
    assert [p.message_id for p in entries[0].posts] == ["msg-a"]


async def test_remixing_reading_and_favourites_keep_to_the_server(studio: Studio) -> None:
    a, b = guild(), guild()
    alice, bob = member("alice", a), member("bob", b)
    in_a = await made(studio, alice, "a fox in server a")
    in_b = await made(studio, bob, "a fox in server b")

    # Someone of server B cannot remix (or, through the API, read) server A's public image...
    with pytest.raises(NotFound):
        await studio.refine.remixable(bob, in_a.generation_id, in_a.index)
    # ...a member of A can, and its owner can anywhere (an API key minted elsewhere included).
    assert (await studio.refine.remixable(member("carol", a), in_a.generation_id, 0)).id == in_a.id
    alice_in_b = Requester(id=alice.id, name="alice", server=b)
    assert (await studio.refine.remixable(alice_in_b, in_a.generation_id, 0)).id == in_a.id

    # Alice is in both servers and favourites one image in each: /favourites lists each one
    # only where it was made, where its link opens.
    await studio.refine.set_favourite(alice, in_a.generation_id, 0, True)
    await studio.refine.set_favourite(alice_in_b, in_b.generation_id, 0, True)
    assert [i.id for i in await studio.refine.favourites(alice)] == [in_a.id]
    assert [i.id for i in await studio.refine.favourites(alice_in_b)] == [in_b.id]


async def test_lineage_shows_another_servers_ancestor_without_a_link(studio: Studio) -> None:
    a, b = guild(), guild()
    alice, carol, bob = member("alice", a), member("carol", a), member("bob", b)
    original = await made(studio, alice, "a red boat --seed 7")
    await studio.generations.record_status_post(original.generation_id, "chan-a", "msg-original")
    # Alice remixes her own image from server B: the remix belongs to B, its parent to A.
    alice_in_b = Requester(id=alice.id, name="alice", server=b)
    project = await studio.projects.open(alice_in_b, "remix", thread_id=f"thread-{uuid.uuid4().hex}")
    plan = await studio.refine.prepare_clone(alice_in_b, original, "a blue boat")
    remix = await studio.generations.start(plan, project=project)
    assert remix.server == b
    done = await asyncio.wait_for(studio.results.follow(remix.id), 120)
    await studio.generations.record_status_post(remix.id, "chan-b", "msg-remix")

    steps = await studio.refine.lineage(bob, remix.id, 0)
    assert [s.image.id for s in steps] == [done.images[0].id, original.id]
    assert [p.message_id for p in steps[0].posts] == ["msg-remix"]
    assert steps[1].elsewhere and steps[1].posts == [] and not steps[1].hidden

    # In server A the original shows with its link and its (global) remix count; the remix made
    # in B cannot be looked up from A, and the original not from B.
    seen_in_a = await studio.refine.lineage(carol, original.generation_id, 0)
    assert [p.message_id for p in seen_in_a[0].posts] == ["msg-original"]
    assert seen_in_a[0].remixes == 1
    with pytest.raises(NotFound):
        await studio.refine.lineage(carol, remix.id, 0)
    with pytest.raises(NotFound):
        await studio.refine.lineage(bob, original.generation_id, 0)


async def test_remix_channels_get_only_their_own_servers_results(studio: Studio) -> None:
    a, b = guild(), guild()
    await studio.community.set_remix_channel(member("admin", a, admin=True), "remix-a", True)
    await studio.community.set_remix_channel(member("admin", b, admin=True), "remix-b", True)
    public = await studio.generations.imagine(member("alice", a), "a kite --steps 2 --batch 1")
    private = await studio.generations.start(GenerationPlan(member("alice", a), public.recipe, private=True))
    from_cli = await studio.generations.imagine(
        Requester(id="cli:dora", name="dora"), "a kite --steps 2 --batch 1"
    )
    assert await studio.community.share_channels(public) == ["remix-a"]
    assert await studio.community.share_channels(private) == []
    assert await studio.community.share_channels(from_cli) == []
    for generation in (public, private, from_cli):
        await asyncio.wait_for(studio.results.follow(generation.id), 120)


async def test_a_results_server_is_its_threads_server(studio: Studio) -> None:
    """An API key minted in server B that delivers into its owner's thread in A: the result is A's."""
    a, b = guild(), guild()
    alice = member("alice", a)
    project = await studio.projects.open(alice, "thread project", thread_id=f"thread-{uuid.uuid4().hex}")
    assert project.server == a
    key_in_b = Requester(id=alice.id, name="alice", server=b)
    moth = "a moth --steps 2 --batch 1"
    in_thread = await studio.generations.start(
        GenerationPlan(key_in_b, studio.generations.recipe(moth), project)
    )
    elsewhere = await studio.generations.start(
        GenerationPlan(key_in_b, studio.generations.recipe(moth), "api project")
    )
    assert (in_thread.server, elsewhere.server) == (a, b)
    for generation in (in_thread, elsewhere):
        await asyncio.wait_for(studio.results.follow(generation.id), 120)


async def test_a_models_sample_image_comes_from_the_viewers_server(studio: Studio) -> None:
    a, b = guild(), guild()
    alice, bob = member("alice", a), member("bob", b)
    in_a = await made(studio, alice, "a sample in server a --model tiny-sdxl")
    in_b = await made(studio, bob, "a sample in server b --model tiny-sdxl")
    assert await studio.community.sample_of_model(
        member("carol", a), "tiny-sdxl"
    ) == await studio.artifacts.read(in_a.artifact)
    assert await studio.community.sample_of_model(
        member("dave", b), "tiny-sdxl"
    ) == await studio.artifacts.read(in_b.artifact)
    assert await studio.community.sample_of_model(member("erin", guild()), "tiny-sdxl") is None


async def test_a_model_shared_with_a_server_exists_only_there(idle: Deployment) -> None:
    """LoRA visibility `server` means that server: not listed, offered or usable in another.

    No training worker here: the run is recorded finished with real weights bytes, as the Forge
    records a worker's result (training itself is covered by test_forge).
    """
    a, b = guild(), guild()
    alice, carol, bob = member("alice", a), member("carol", a), member("bob", b)
    name = f"scoped{uuid.uuid4().hex[:6]}"
    async with open_studio(idle.settings()) as studio:
        request = TrainingRequest(
            name, "zqx", options=TrainingOptions(steps=10, resolution=64), visibility="server"
        )
        lora, _ = await studio.forge.train(alice, request, [TrainingImage(subject(i)) for i in range(3)])
        weights = await asyncio.to_thread(studio.artifacts.put, b"weights", ".safetensors")
        artifacts: dict[str, str | None] = {
            "weights": weights,
            "kohya": None,
            "sample": None,
            "comparison": None,
        }
        assert await studio.store.loras.finish(lora.id, artifacts, 7, [0.5], 1.0, 1)

        assert name in [m.name for m in (await studio.models.available(carol)).loras]
        assert (await studio.models.lora(carol, name)).id == lora.id
        await studio.generations.imagine(carol, f"zqx --lora {name}")  # accepted (queued: no worker here)
        assert name not in [m.name for m in (await studio.models.available(bob)).loras]
        with pytest.raises(UnknownLora):
            await studio.models.lora(bob, name)
        with pytest.raises(UnknownLora):
            await studio.generations.imagine(bob, f"zqx --lora {name}")
        # Its owner keeps using it wherever they are (their own models follow them).
        assert (await studio.models.lora(Requester(id=alice.id, name="alice", server=b), name)).id == lora.id


async def test_rows_from_before_scoping_stay_out_of_every_servers_feed(tmp_path: Path) -> None:
    """The migration leaves existing rows unscoped (NULL): only the unscoped feed shows them."""
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path) as db:
        for version, sql in available():
            if version < 10:
                await db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
        now = time.time()
        recipe = Recipe(
            model="tiny-sd15",
            family="sd15",
            prompt="an old picture",
            seed=1,
            steps=2,
            guidance=5.0,
            width=64,
            height=64,
        )
        await db.executescript(
            "INSERT INTO users VALUES ('discord:1', 'old', 0);"
            "INSERT INTO projects (id, owner_id, name, thread_id, created_at) "
            "VALUES ('p', 'discord:1', 'p', 't', 0);"
        )
        await db.execute(
            "INSERT INTO generations (id, project_id, owner_id, recipe_json, status, created_at) "
            "VALUES ('g', 'p', 'discord:1', ?, 'done', ?)",
            (recipe.to_json(), now),
        )
        await db.execute(
            "INSERT INTO images (id, generation_id, idx, artifact, recipe_json, seed, width, height, "
            "owner_id, created_at) VALUES ('i', 'g', 0, 'sha', ?, 1, 64, 64, 'discord:1', ?)",
            (recipe.to_json(), now),
        )
        await db.commit()
    async with Store(path) as store:
        generation: Generation = await store.get_generation("g")
        assert generation.server is None and (await store.image("i")).server is None
        assert [i.id for i, _, _ in await store.top_public_images(None, 0.0, None, None, 5, 0)] == ["i"]
        assert await store.top_public_images("123", 0.0, None, None, 5, 0) == []
