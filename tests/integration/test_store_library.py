"""The library's reads (studio/store/library.py) on both databases: only the owner's rows, of the
server asked about or of none."""

from __future__ import annotations

import json
from pathlib import Path

from studio.recipe import Recipe
from studio.store import Store

RECIPE = Recipe(model="m", family="sd15", prompt="a cat", seed=1, steps=4, guidance=5.0, width=64, height=64)


async def _images(
    store: Store, generation_id: str, project_id: str, owner: str, server: str | None, count: int = 1
) -> list[str]:
    await store.add_generation(generation_id, project_id, owner, RECIPE, server=server)
    made = [(i, f"{i:063x}{generation_id[-1]}", RECIPE.for_image(i)) for i in range(count)]
    assert await store.finish_generation(generation_id, made, None, 0.5, attempts=1)
    return [image.id for image in await store.images_of(generation_id)]


async def test_projects_and_their_images_are_the_owners_of_the_server(database: Path | str) -> None:
    async with Store(database) as store:
        for user in ("cli:a", "cli:b"):
            await store.ensure_user(user, user)
        here = await store.create_project("cli:a", "here", server="s1")
        elsewhere = await store.create_project("cli:a", "elsewhere", server="s2")
        unscoped = await store.create_project("cli:a", "command line")
        empty = await store.create_project("cli:a", "empty", server="s1")
        theirs = await store.create_project("cli:b", "theirs", server="s1")
        await _images(store, "g1", here.id, "cli:a", "s1", count=3)
        await _images(store, "g2", here.id, "cli:a", "s2")  # the same project used in another server
        await _images(store, "g3", elsewhere.id, "cli:a", "s2")
        await _images(store, "g4", unscoped.id, "cli:a", None)
        await _images(store, "g5", theirs.id, "cli:b", "s1")
        # A project of s2 in which the owner also made images in s1 shows here, with those only.
        await _images(store, "g6", elsewhere.id, "cli:a", "s1")
        library = store.library

        listed = await library.projects("cli:a", "s1", limit=10)
        assert {p.id for p in listed} == {here.id, unscoped.id, empty.id, elsewhere.id}
        assert listed[0].id == elsewhere.id  # the most recently used first
        assert [p.id for p in await library.projects("cli:a", "s1", limit=2, offset=3)] == [empty.id]
        assert await library.project("cli:a", "s1", theirs.id) is None
        assert await library.project("cli:b", "s1", here.id) is None
        assert (await library.project("cli:a", "s1", elsewhere.id)) is not None
        assert await library.project("cli:a", "s3", elsewhere.id) is None

        newest = await library.newest_images("cli:a", "s1", [here.id, elsewhere.id, empty.id], per_project=2)
        assert newest[here.id].total == 3 and len(newest[here.id].images) == 2
        assert {i.generation_id for i in newest[here.id].images} == {"g1"}
        assert [i.generation_id for i in newest[elsewhere.id].images] == ["g6"]
        assert newest[empty.id].total == 0 and newest[empty.id].images == []
        assert await library.newest_images("cli:a", "s1", [], per_project=2) == {}

        page = await library.project_images("cli:a", "s1", here.id, limit=2, offset=2)
        assert page.total == 3 and [i.index for i in page.images] == [2]
        assert (await library.project_images("cli:b", "s1", here.id, limit=10)).total == 0


async def test_models_and_finishes_follow_their_owner_and_server(database: Path | str) -> None:
    async with Store(database) as store:
        for user in ("cli:a", "cli:b"):
            await store.ensure_user(user, user)
        project = await store.create_project("cli:a", "p", server="s1")
        (here,) = await _images(store, "g1", project.id, "cli:a", "s1")
        (there,) = await _images(store, "g2", project.id, "cli:a", "s2")
        row = {
            "project_id": None,
            "version": 1,
            "trigger": "fxz",
            "base_model": "m",
            "family": "sd15",
            "visibility": "private",
            "params_json": json.dumps({"steps": 40}),
            "image_count": 4,
        }
        await store.loras.add("l1", **row, owner_id="cli:a", server="s1", name="Fox")
        await store.loras.add("l2", **row, owner_id="cli:a", server="s2", name="Owl")
        await store.loras.add("l3", **row, owner_id="cli:b", server="s1", name="Cat")
        await store.loras.add("l4", **row, owner_id="cli:a", server=None, name="Elk")
        await store.loras.add("l5", **row, owner_id="cli:a", server="s1", name="Gone")
        await store.loras.soft_delete("l5")
        assert {x.id for x in await store.library.loras("cli:a", "s1", limit=10)} == {"l1", "l4"}
        assert await store.library.lora("cli:a", "s1", "l2") is None
        assert await store.library.lora("cli:a", "s1", "l3") is None
        assert (await store.library.lora("cli:a", "s1", "l1")) is not None

        finish = {"kind": "export", "source": "s" * 64, "params_json": "{}", "artifact": "a" * 64}
        await store.finishes.add("f1", owner_id="cli:a", source_image=here, **finish)
        await store.finishes.add("f2", owner_id="cli:a", source_image=there, **finish)
        await store.finishes.add("f3", owner_id="cli:a", source_image=None, **finish)  # an upload
        await store.finishes.add("f4", owner_id="cli:b", source_image=here, **finish)
        assert {f.id for f in await store.library.finishes("cli:a", "s1", limit=10)} == {"f1", "f3"}
        assert await store.library.finish("cli:a", "s1", "f2") is None
        assert await store.library.finish("cli:a", "s1", "f4") is None
        assert (await store.library.finish("cli:a", "s1", "f1")) is not None
