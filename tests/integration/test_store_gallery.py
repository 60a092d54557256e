"""The store reads behind the web gallery, on both databases (the ``database`` fixture): the feed
filtered by creator, the people with public images in a server, and an image's favourites."""

from __future__ import annotations

from pathlib import Path

from studio.entities import ImageRecord
from studio.recipe import Recipe
from studio.store import Store

RECIPE = Recipe(model="m", family="sd15", prompt="a kite", seed=1, steps=4, guidance=5.0, width=64, height=64)


async def _image(
    store: Store, generation_id: str, owner: str, server: str | None, private: bool = False
) -> str:
    project = await store.create_project(owner, "p", server=server)
    await store.add_generation(generation_id, project.id, owner, RECIPE, private, server)
    sha = f"{generation_id:0>64}"
    assert await store.finish_generation(generation_id, [(0, sha, RECIPE)], None, 0.5, attempts=1)
    return (await store.images_of(generation_id))[0].id


async def test_the_feed_by_creator_and_the_creators_of_a_server(database: Path | str) -> None:
    async with Store(database) as store:
        await store.ensure_user("u:ann", "Ann")
        await store.ensure_user("u:bo", "Bo")
        await store.ensure_user("u:cy", "Cy")
        ann = [await _image(store, f"a{n}", "u:ann", "s1") for n in range(2)]
        bo = await _image(store, "b0", "u:bo", "s1")
        await _image(store, "b1", "u:bo", "s2")  # another server's
        await _image(store, "c0", "u:cy", "s1", private=True)  # private: Cy has no public image
        await store.set_favourite("u:bo", ann[1], True)

        def ids(rows: list[tuple[ImageRecord, int, int]]) -> list[str]:
            return [image.id for image, _, _ in rows]

        assert ids(await store.top_public_images("s1", 0.0, None, None, 10, 0, creator="u:ann")) == [
            ann[1],
            ann[0],
        ]
        assert ids(await store.top_public_images("s1", 0.0, None, None, 10, 0, creator="u:bo")) == [bo]
        assert await store.top_public_images("s1", 0.0, None, None, 10, 0, creator="u:cy") == []
        assert len(await store.top_public_images("s1", 0.0, None, None, 10, 0)) == 3
        assert await store.public_creators("s1") == [("u:ann", "Ann"), ("u:bo", "Bo")]
        assert await store.public_creators("s2") == [("u:bo", "Bo")]
        assert await store.public_creators("s3") == []

        assert await store.favourite_standing(ann[1], "u:bo") == (1, True)
        assert await store.favourite_standing(ann[1], "u:ann") == (1, False)
        assert await store.favourite_standing(ann[0], "u:ann") == (0, False)
        assert await store.user_name("u:ann") == "Ann"
        assert await store.user_name("u:nobody") is None


async def test_a_flagged_image_makes_no_creator(database: Path | str) -> None:
    async with Store(database) as store:
        await store.ensure_user("u:dee", "Dee")
        await _image(store, "d0", "u:dee", "s1")
        assert await store.public_creators("s1") == [("u:dee", "Dee")]
        await store.policy.record_verdicts("d0", [(0, True, "nsfw", 0.9)])
        assert await store.public_creators("s1") == []
        assert await store.public_creators("s1", flagged=True) == [("u:dee", "Dee")]
