from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from studio.recipe import Recipe
from studio.store import Store
from studio.store.migrations import available

RECIPE = Recipe(
    model="m", family="sd15", prompt="a cat", seed=1, steps=4, guidance=5.0, width=64, height=64, batch=2
)


async def test_migrations_apply_once_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Store(path) as store, store.db.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
    async with Store(path):  # a second start applies nothing twice
        pass
    async with aiosqlite.connect(path) as db:
        async with db.execute("PRAGMA user_version") as cursor:
            assert (await cursor.fetchone())[0] == available()[-1][0]  # type: ignore[index]
        async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") as cursor:
            tables = [row[0] async for row in cursor]
    assert tables == [
        "api_generations",
        "api_keys",
        "board_items",
        "defaults",
        "deliveries",
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
    ]


async def test_generation_lifecycle_records_images_once(tmp_path: Path) -> None:
    async with Store(tmp_path / "a.db") as store:
        await store.ensure_user("cli:a", "a")
        project = await store.create_project("cli:a", "p")
        await store.add_generation("g1", project.id, "cli:a", RECIPE)
        assert (await store.get_generation("g1")).status == "queued"
        await store.mark_running("g1", attempt=1)
        running = await store.get_generation("g1")
        assert running.status == "running" and running.attempts == 1 and running.started_at
        images = [(i, f"{i:064x}", RECIPE.for_image(i)) for i in range(2)]
        assert await store.finish_generation("g1", images, "f" * 64, 0.5, attempts=2) is True
        assert await store.finish_generation("g1", images, "f" * 64, 0.5, attempts=2) is False
        stored = await store.images_of("g1")
        assert [(i.index, i.seed) for i in stored] == [(0, 1), (1, 2)]
        done = await store.get_generation("g1")
        assert (done.status, done.attempts, done.worker_seconds) == ("done", 2, 0.5)
        # A late failure report cannot undo a finished generation.
        await store.end_generation("g1", "failed", "late")
        assert (await store.get_generation("g1")).status == "done"
        await store.set_favourite("cli:a", stored[1].id, True)
        await store.set_favourite("cli:a", stored[1].id, True)
        assert [i.id for i in await store.favourites_of("cli:a")] == [stored[1].id]
        await store.set_favourite("cli:a", stored[1].id, False)
        assert await store.favourites_of("cli:a") == []
        assert await store.unfinished_generations() == []


async def test_concurrent_writers_share_the_connection_safely(tmp_path: Path) -> None:
    """Many generations finishing at once (a burst of /imagine) must not collide in one transaction."""
    async with Store(tmp_path / "a.db") as store:
        await store.ensure_user("cli:a", "a")
        project = await store.create_project("cli:a", "p")
        ids = [f"g{n}" for n in range(30)]
        for generation_id in ids:
            await store.add_generation(generation_id, project.id, "cli:a", RECIPE)

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
