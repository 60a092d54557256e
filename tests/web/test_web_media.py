"""Image files and thumbnails on the web: who may fetch them, and how large a thumbnail is."""

from __future__ import annotations

import io

from PIL import Image

from tests.api.server import ApiServer
from tests.web.conftest import ALICE, BOB, OTHER_SERVER, SERVER, png, seed_images, sign_in


async def test_public_images_are_shared_and_private_ones_are_not_there_for_others(web_api: ApiServer) -> None:
    public = (await seed_images(web_api.deployment, ALICE, 1))[0]
    private = (await seed_images(web_api.deployment, ALICE, 1, private=True, project="secret"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    bob = await sign_in(web_api, BOB, "Bob", servers=(SERVER, OTHER_SERVER))
    for image in (public, private):
        mine = await alice.http.get(f"/s/{SERVER}/media/{image.generation_id}/0.png")
        assert mine.status_code == 200 and mine.headers["content-type"] == "image/png"
    assert (await bob.http.get(f"/s/{SERVER}/media/{public.generation_id}/0.png")).status_code == 200
    for path in (f"{private.generation_id}/0.png", f"{private.generation_id}/0/thumb.webp"):
        refused = await bob.http.get(f"/s/{SERVER}/media/{path}")
        assert refused.status_code == 404
        assert "does not exist" in refused.text
    # A public image of one server is not served through another server's pages.
    assert (await bob.http.get(f"/s/{OTHER_SERVER}/media/{public.generation_id}/0.png")).status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


async def test_a_thumbnail_is_small_webp_made_once(web_api: ApiServer) -> None:
    image = (await seed_images(web_api.deployment, ALICE, 1))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    first = await alice.http.get(f"/s/{SERVER}/media/{image.generation_id}/0/thumb.webp")
    assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
    assert len(first.content) < 40 * 1024
    with Image.open(io.BytesIO(first.content)) as picture:
        assert picture.format == "WEBP" and max(picture.size) <= 320
    cached = web_api.deployment.data_dir / "thumbnails" / f"{image.artifact}.webp"
    assert cached.read_bytes() == first.content
    again = await alice.http.get(f"/s/{SERVER}/media/{image.generation_id}/0/thumb.webp")
    assert again.content == first.content
    await alice.http.aclose()


def test_a_large_picture_still_makes_a_small_thumbnail() -> None:
    from web.thumbnails import make_thumbnail

    noisy = Image.effect_noise((1024, 1024), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "PNG")
    thumbnail = make_thumbnail(out.getvalue())
    assert len(thumbnail) < 40 * 1024, len(thumbnail)
    assert len(make_thumbnail(png(64, 64))) < 2000
