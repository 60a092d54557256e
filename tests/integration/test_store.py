"""The store, query by query, on both databases: every test here runs on a SQLite file and on a
fresh PostgreSQL database (the ``database`` fixture), through the same code the studio runs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from studio.entities import Ideation
from studio.errors import NotFound
from studio.policy import PolicyRule
from studio.recipe import Recipe
from studio.store import Store
from studio.store.evolutions import Evolution, EvolutionRows
from studio.store.interactions import Acknowledged
from studio.store.migrations import available
from studio.store.removal import ErasedRows
from studio.store.training_sets import TrainingSetRows
from tests.postgres import fresh_database

RECIPE = Recipe(
    model="m", family="sd15", prompt="a cat", seed=1, steps=4, guidance=5.0, width=64, height=64, batch=2
)
TABLES = [
    "api_generations",
    "api_keys",
    "board_items",
    "bot_guilds",
    "defaults",
    "deliveries",
    "evolution_rounds",
    "evolutions",
    "favourites",
    "finishes",
    "generations",
    "ideations",
    "images",
    "interactions",
    "loras",
    "policy_rules",
    "posts",
    "projects",
    "quota_charges",
    "quota_role_limits",
    "remix_channels",
    "training_roles",
    "training_set_items",
    "upload_limits",
    "users",
    "web_generations",
    "web_sessions",
]


async def _finished(store: Store, generation_id: str, project_id: str, recipe: Recipe = RECIPE) -> list[str]:
    """A generation of two images, recorded as done; the images' ids."""
    await store.add_generation(generation_id, project_id, "cli:a", recipe, server="s1")
    images = [(i, f"{i:063x}{generation_id[-1]}", recipe.for_image(i)) for i in range(2)]
    assert await store.finish_generation(generation_id, images, None, 0.5, attempts=1)
    return [image.id for image in await store.images_of(generation_id)]


async def _store_with_project(store: Store) -> str:
    await store.ensure_user("cli:a", "a")
    return (await store.create_project("cli:a", "p", server="s1")).id


async def test_sqlite_migrations_apply_once_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Store(path):
        pass
    async with Store(path):  # a second start applies nothing twice
        pass
    async with aiosqlite.connect(path) as db:
        async with db.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
        async with db.execute("PRAGMA user_version") as cursor:
            assert (await cursor.fetchone())[0] == available()[-1][0]  # type: ignore[index]
        async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") as cursor:
            tables = [row[0] async for row in cursor]
    assert tables == TABLES


async def test_postgres_migrations_apply_once_with_wide_types() -> None:
    async with fresh_database() as url:
        await _check_postgres_schema(url)


async def _check_postgres_schema(url: str) -> None:
    # Two processes starting at once: the advisory lock lets one migrate, the other finds it done.
    stores = await asyncio.gather(Store(url).open(), Store(url).open())
    for store in stores:
        await store.close()
    connection = await asyncpg.connect(url)
    try:
        versions = [r["version"] for r in await connection.fetch("SELECT version FROM schema_version")]
        tables = [
            r["table_name"]
            for r in await connection.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_name != 'schema_version' ORDER BY table_name"
            )
        ]
        types = {
            (r["table_name"], r["column_name"]): r["data_type"]
            for r in await connection.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
            )
        }
    finally:
        await connection.close()
    assert versions == [v for v, _ in available()]
    assert tables == TABLES
    # Unix times keep their sub-second part, and seeds their 64 bits.
    assert types[("generations", "created_at")] == "double precision"
    assert types[("images", "seed")] == "bigint"


async def test_generation_lifecycle_records_images_once(database: Path | str) -> None:
    async with Store(database) as store:
        await store.ensure_user("cli:a", "a")
        await store.ensure_user("cli:a", "renamed")  # an upsert
        project = await store.create_project("cli:a", "p")
        assert (await store.project_by_name("cli:a", "p")) == project
        await store.add_generation("g1", project.id, "cli:a", RECIPE.model_copy(update={"seed": 2**32 - 2}))
        assert (await store.get_generation("g1")).status == "queued"
        await store.mark_running("g1", attempt=1)
        running = await store.get_generation("g1")
        assert running.status == "running" and running.attempts == 1 and running.started_at
        big = RECIPE.model_copy(update={"seed": 2**32 - 2})
        images = [(i, f"{i:064x}", big.for_image(i)) for i in range(2)]
        assert await store.finish_generation("g1", images, "f" * 64, 0.5, attempts=2) is True
        assert await store.finish_generation("g1", images, "f" * 64, 0.5, attempts=2) is False
        stored = await store.images_of("g1")
        assert [(i.index, i.seed) for i in stored] == [(0, 2**32 - 2), (1, 2**32 - 1)]
        assert (await store.image_at("g1", 1)).id == stored[1].id
        with pytest.raises(NotFound):
            await store.image_at("g1", 5)
        done = await store.get_generation("g1")
        assert (done.status, done.attempts, done.worker_seconds) == ("done", 2, 0.5)
        assert abs(done.created_at - time.time()) < 60  # full precision, not a float4's minutes
        # A late failure report cannot undo a finished generation.
        await store.end_generation("g1", "failed", "late")
        assert (await store.get_generation("g1")).status == "done"
        await store.set_favourite("cli:a", stored[1].id, True)
        await store.set_favourite("cli:a", stored[1].id, True)
        assert [i.id for i in await store.favourites_of("cli:a")] == [stored[1].id]
        assert [i.id for i in await store.favourites_of("cli:a", project.id)] == [stored[1].id]
        await store.set_favourite("cli:a", stored[1].id, False)
        assert await store.favourites_of("cli:a") == []
        assert await store.unfinished_generations() == []
        assert [g.id for g in await store.list_generations("cli:a")] == ["g1"]


async def test_the_in_flight_cap_holds_against_concurrent_submits(database: Path | str) -> None:
    """Two front ends (two connections: here two stores) submitting at once never pass the cap."""
    async with Store(database) as one, Store(database) as two:
        project_id = await _store_with_project(one)
        outcomes = await asyncio.gather(
            *(
                (one if n % 2 else two).add_generation(f"g{n}", project_id, "cli:a", RECIPE, limit=3)
                for n in range(12)
            )
        )
        assert sum(outcomes) == 3
        assert await one.count_in_flight("cli:a") == 3
        assert len(await two.in_flight("cli:a")) == 3
        # Finishing one frees a place.
        finished = next(g.id for g in await one.in_flight("cli:a"))
        await one.end_generation(finished, "failed", "x")
        assert await two.add_generation("late", project_id, "cli:a", RECIPE, limit=3)
        assert await one.count_requeue("late", 1) and not await one.count_requeue("late", 1)


async def test_concurrent_writers_share_the_connection_safely(database: Path | str) -> None:
    """Many generations finishing at once (a burst of /imagine) must not collide in one transaction."""
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        ids = [f"g{n}" for n in range(30)]
        for generation_id in ids:
            await store.add_generation(generation_id, project_id, "cli:a", RECIPE)

        async def finish(generation_id: str) -> bool:
            images = [(i, f"{i:064x}", RECIPE.for_image(i)) for i in range(2)]
            return await store.finish_generation(generation_id, images, None, 0.1, attempts=1)

        async def touch(generation_id: str) -> None:
            await store.mark_running(generation_id, attempt=1)
            await store.set_favourite("cli:a", "missing-image", False)

        results = await asyncio.gather(*(finish(g) for g in ids), *(touch(g) for g in ids))
        assert results[: len(ids)] == [True] * len(ids)
        for generation_id in ids:
            assert len(await store.images_of(generation_id)) == 2


async def test_posts_and_deliveries_are_recorded_once(database: Path | str) -> None:
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        await store.add_generation("g1", project_id, "cli:a", RECIPE)
        await store.add_delivery("g1", "c1", None)
        await store.add_delivery("g1", "c2", None)  # a second front end: the first one stands
        await store.set_status_message("g1", "c1", "m1")
        await store.add_post("m1", "c1", "g1", "status")
        await store.add_post("m1", "c1", "g1", "status")
        await store.add_post("m2", "c1", "g1", "image", image_index=0)
        assert [p.message_id for p in await store.posts_of("g1")] == ["m1", "m2"]
        assert (await store.post("m2")).image_index == 0  # type: ignore[union-attr]
        assert [d.generation_id for d in await store.undelivered()] == ["g1"]
        assert await store.mark_delivered("g1") and not await store.mark_delivered("g1")
        assert (await store.delivery("g1")).status_message_id == "m1"  # type: ignore[union-attr]
        assert await store.undelivered() == []


async def test_the_feed_lineage_and_samples(database: Path | str) -> None:
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        first = await _finished(store, "g1", project_id)
        child_recipe = RECIPE.model_copy(update={"parent_image": first[0], "style": "noir", "model": "other"})
        second = await _finished(store, "g2", project_id, child_recipe)
        await store.set_favourite("cli:a", first[1], True)
        feed = await store.top_public_images("s1", 0.0, None, None, 10, 0)
        # Most favoured and remixed first: image 0 of g1 (1 remix each), then image 1 (1 favourite).
        assert [(image.id, favs, remixes) for image, favs, remixes in feed][:2] == [
            (first[0], 0, 2),
            (first[1], 1, 0),
        ]
        assert [i.id for i, _, _ in await store.top_public_images("s1", 0.0, "other", None, 10, 0)] == second
        assert [i.id for i, _, _ in await store.top_public_images("s1", 0.0, None, "noir", 1, 1)] == second[
            1:
        ]
        assert await store.top_public_images("elsewhere", 0.0, None, None, 10, 0) == []
        assert [i.id for i in await store.ancestry(second[1])] == [second[1], first[0]]
        assert await store.remix_count(first[0]) == 2
        sample = await store.sample_image("m", "s1")
        assert sample is not None and sample.id == first[1]  # the most favoured plain base-model image
        assert await store.sample_image("m", None) is None


async def test_boards_ideations_defaults_and_remix_channels(database: Path | str) -> None:
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        for n in range(3):
            await store.add_board_item(project_id, f"{n:064x}", "cli:a")
        board = await store.board(project_id)
        assert [item.artifact for item in board] == [f"{n:064x}" for n in range(3)]
        await store.remove_board_items(project_id, board[0].id)
        assert len(await store.board(project_id)) == 2
        await store.remove_board_items(project_id)
        assert await store.board(project_id) == []

        await store.add_ideation(Ideation("m1", project_id, "cli:a", "a fox", 7))
        await store.reseed_ideation("m1", 2**33)
        assert (await store.ideation("m1")) == Ideation("m1", project_id, "cli:a", "a fox", 2**33)

        await store.set_defaults("user", "cli:a", '{"steps": 4}')
        await store.set_defaults("user", "cli:a", '{"steps": 5}')
        assert await store.defaults("user", "cli:a") == '{"steps": 5}'
        await store.set_defaults("user", "cli:a", None)
        assert await store.defaults("user", "cli:a") is None

        await store.set_remix_channel("s1", "c1", "cli:a", True)
        await store.set_remix_channel("s1", "c1", "cli:a", True)
        await store.set_remix_channel("s1", "c2", "cli:a", True)
        await store.set_remix_channel("s1", "c1", "cli:a", False)
        assert await store.remix_channels("s1") == ["c2"]


async def test_loras_keep_unique_live_names_and_finish_once(database: Path | str) -> None:
    from studio.errors import NameTaken

    async with Store(database) as store:
        project_id = await _store_with_project(store)
        row = {
            "owner_id": "cli:a",
            "project_id": project_id,
            "server": "s1",
            "name": "Fox",
            "version": 1,
            "trigger": "fxz",
            "base_model": "m",
            "family": "sd15",
            "visibility": "server",
            "params_json": json.dumps({"steps": 40}),
            "image_count": 4,
            "dataset_json": json.dumps({"images": ["a"], "captions": [""]}),
        }
        await store.loras.add("l1", **row)
        with pytest.raises(NameTaken):
            await store.loras.add("l2", **(row | {"name": "FOX"}))  # names are unique regardless of case
        await store.loras.mark_running("l1", attempt=1)
        await store.loras.record_step("l1", 10, 0.5)
        artifacts: dict[str, str | None] = {"weights": "w", "kohya": None, "sample": "s", "comparison": None}
        assert await store.loras.finish("l1", artifacts, 1234, [0.5, 0.25], 3.0, attempts=2)
        assert not await store.loras.finish("l1", artifacts, 1234, [0.5, 0.25], 3.0, attempts=2)
        lora = await store.loras.get("l1")
        assert (lora.status, lora.step, lora.attempts, lora.losses) == ("done", 40, 2, (0.5, 0.25))
        assert await store.loras.last_version("fox") == 1
        assert [x.id for x in await store.loras.named("fox")] == ["l1"]
        assert await store.loras.dataset("l1") == {"images": ["a"], "captions": [""]}
        await store.loras.add_imported("l3", **(row | {"name": "Owl", "owner_id": "cli:new"}))
        assert {x.id for x in await store.loras.usable()} == {"l1", "l3"}
        await store.loras.soft_delete("l1")
        await store.loras.add("l4", **row)  # a deleted model frees its name
        await store.loras.set_training_role("s1", "r1", "cli:a", True)
        await store.loras.set_training_role("s1", "r1", "cli:a", True)
        assert await store.loras.training_roles("s1") == ["r1"]


async def test_keys_interactions_quotas_policy_finishes_and_training_sets(database: Path | str) -> None:
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        key = await store.keys.add(
            "k1",
            owner_id="cli:a",
            owner_name="a",
            server="s1",
            name="ci",
            token_hash="h" * 64,
            prefix="atl_",
            webhook_secret="secret",
        )
        assert (await store.keys.by_hash("h" * 64)) == key
        await store.add_generation("g1", project_id, "cli:a", RECIPE)
        await store.add_delivery("g1", "c1", None)
        await store.keys.add_generation("g1", "k1", "https://example.invalid/hook")
        assert [g.generation_id for g in await store.keys.unfinished_generations()] == ["g1"]
        assert await store.keys.promised_threads() == [("g1", "c1")]
        await store.keys.webhook_attempted("g1", "pending", "timeout")
        assert (await store.keys.generation("g1")).webhook_attempts == 1  # type: ignore[union-attr]
        assert await store.keys.revoke("cli:a", "k1") and not await store.keys.revoke("cli:a", "k1")
        assert (await store.keys.generation("g1")).webhook_status == "failed"  # type: ignore[union-attr]
        assert await store.keys.live() == []

        now = time.time()
        ack = Acknowledged(
            "i1", "app", "tok", "imagine", {"prompt": "x"}, "u1", {}, "s1", "c1", 10, "g2", None, now
        )
        assert await store.interactions.add(ack) and not await store.interactions.add(ack)
        await store.interactions.set_thread("i1", "t1")
        assert [a.thread_id for a in await store.interactions.pending()] == ["t1"]
        assert await store.interactions.finish("i1", "answered") and not await store.interactions.finish(
            "i1", "x"
        )
        assert (await store.interactions.get("i1")).token == ""  # type: ignore[union-attr]
        await store.interactions.forget_before(now + 1)
        assert await store.interactions.get("i1") is None
        await store.interactions.set_upload_limit("s1", 10 << 20)
        await store.interactions.set_upload_limit("s1", 50 << 20)
        assert await store.interactions.upload_limits() == {"s1": 50 << 20}

        assert await store.quotas.charge("generation:g1", "cli:a", "s1", 2.5, now)
        assert not await store.quotas.charge("generation:g1", "cli:a", "s1", 2.5, now)
        await store.quotas.charge("generation:g2", "cli:a", None, 1.0, now)
        assert await store.quotas.used_since("cli:a", "s1", now - 1) == 2.5
        assert await store.quotas.used_since("cli:a", None, now - 1) == 1.0
        await store.quotas.set_role_limit("s1", "r1", 60.0, "cli:a")
        await store.quotas.set_role_limit("s1", "r1", 90.0, "cli:a")
        assert await store.quotas.role_limits("s1") == {"r1": 90.0}

        await store.policy.add("s1", PolicyRule("word", "gore"), "cli:a")
        await store.policy.add("s1", PolicyRule("word", "gore"), "cli:a")
        assert [r.pattern for r in await store.policy.rules("s1")] == ["gore"]
        assert await store.policy.remove("s1", "word", "gore") and not await store.policy.remove(
            "s1", "word", "gore"
        )

        finish = await store.finishes.add(
            "f1", owner_id="cli:a", kind="grade", source_image=None, source="s" * 64, params_json="{}"
        )
        await store.finishes.set_applied("f1", "a" * 64, (640, 480))
        await store.finishes.set_applied("f1", "b" * 64, (1, 1))  # a second Apply keeps the first
        assert (await store.finishes.get("f1")).artifact == "a" * 64
        assert [f.id for f in await store.finishes.of_owner("cli:a")] == [finish.id]

        training_set = TrainingSetRows(store)
        await training_set.add("cli:a", "s1", "c" * 64, "a red fox")
        assert await training_set.items("cli:a", "s1") == [("c" * 64, "a red fox")]
        assert await training_set.clear("cli:a", "s1") == 1


async def test_erasing_a_generation_keeps_its_children_working(database: Path | str) -> None:
    async with Store(database) as store:
        project_id = await _store_with_project(store)
        parent = await _finished(store, "g1", project_id)
        child = await _finished(
            store, "g2", project_id, RECIPE.model_copy(update={"parent_image": parent[0]})
        )
        await store.set_favourite("cli:a", parent[0], True)
        await store.policy.record_verdicts("g1", [(0, True, "nsfw", 0.9)])
        assert await store.policy.flagged_indices("g1") == [0]
        erased = ErasedRows()
        await store.removal.erase_generation("g1", erased)
        assert (erased.generations, erased.images) == (1, 2)
        assert await store.removal.parent_removed(child[0])
        assert (await store.image(child[0])).parent_image_id is None
        assert (await store.get_generation("g2")).recipe.parent_image is None
        assert not await store.removal.digest_in_use(f"{0:063x}1")
        assert await store.removal.digest_in_use(f"{0:063x}2")
        assert await store.removal.finished_generations("cli:a") == ["g2"]


async def test_evolutions_close_each_round_once(database: Path | str) -> None:
    async with Store(database) as store:
        rows = EvolutionRows(store)
        first = Evolution(
            id="e1", owner_id="cli:a", requester={"id": "cli:a", "name": "a", "roles": []}, server="s1",
            project_id="p1", thread_id="t1", prompt="a fox", rounds=2, minutes=60, round=1,
            state="generating", generation_id="g1", poll_message_id=None, closes_at=None,
            created_at=1.0, updated_at=1.0,
        )  # fmt: skip
        assert await rows.add(first) and not await rows.add(first)  # a resumed command adds nothing
        assert (await rows.by_generation("g1")).id == "e1"  # type: ignore[union-attr]
        assert await rows.claim_poll("e1", 1) and not await rows.claim_poll("e1", 1)
        assert await rows.poll_posted("e1", 1, "m1", 99.0)
        voting = await rows.by_poll("m1")
        assert voting is not None and voting.state == "voting" and voting.closes_at == 99.0
        # Two paths hear the poll's end at once: one closes the round, the other changes nothing.
        results = await asyncio.gather(
            rows.close_round("e1", 1, 2, [0, 1, 3, 3], "g2"), rows.close_round("e1", 1, 0, [9], "g3")
        )
        assert sorted(results) == [False, True]
        evolution = await rows.get("e1")
        assert (evolution.round, evolution.state, evolution.poll_message_id) == (2, "generating", None)
        assert evolution.generation_id in ("g2", "g3") and evolution.requester["name"] == "a"
        assert await rows.claim_poll("e1", 2) and await rows.poll_posted("e1", 2, "m2", 120.0)
        assert await rows.close_round("e1", 2, 1, [0, 2], None)
        assert not await rows.close_round("e1", 2, 0, [5, 0], None)
        done = await rows.get("e1")
        assert (done.state, done.round, done.closes_at) == ("done", 2, None)
        rounds = await rows.rounds_of("e1")
        assert [(r.round, r.poll_message_id) for r in rounds] == [(1, "m1"), (2, "m2")]
        assert rounds[1].winner == 1 and rounds[1].votes == [0, 2] and rounds[0].winner in (2, 0)
        assert await rows.unfinished() == [] and not await rows.fail("e1", 2)
