"""A single image's Vary (Subtle/Strong/Region), Zoom Out and pan through the real bot, on tiny models."""

from __future__ import annotations

import io
import sqlite3
from typing import Any

import numpy as np
from PIL import Image

from studio.outpaint import blend_band
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    ephemeral_answer,
    finished,
    generation_count,
    generation_of,
    imagine,
    status_message,
)
from tests.e2e.test_bot_finish import link, new_bot_message
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import MessageRecord
from tests.integration.workers import Deployment

MANAGE_GUILD = 1 << 5


def images_of(deployment: Deployment, message: MessageRecord) -> list[np.ndarray]:
    """The images a result message shows, as stored (its grid has numbered tiles), in order."""
    settings = deployment.settings()
    with sqlite3.connect(settings.database_path) as db:
        rows = db.execute(
            "SELECT artifact FROM images WHERE generation_id = ? ORDER BY idx", (generation_of(message),)
        ).fetchall()
    assert rows, "the result's images are recorded"
    return [rgb((settings.artifacts_dir / sha[:2] / f"{sha}.png").read_bytes()) for (sha,) in rows]


def seeds_of(deployment: Deployment, message: MessageRecord) -> list[int]:
    with sqlite3.connect(deployment.settings().database_path) as db:
        rows = db.execute(
            "SELECT seed FROM images WHERE generation_id = ? ORDER BY idx", (generation_of(message),)
        ).fetchall()
    return [int(seed) for (seed,) in rows]


def rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


async def posted_single(
    fake: FakeDiscord, result: MessageRecord, thread_id: int, index: int = 0
) -> MessageRecord:
    """U under ``result``: image ``index`` posted on its own, with the single image's buttons."""
    known = {m.id for m in fake.bot_messages(thread_id)}
    pressed = await fake.click(result.id, f"at:u:{generation_of(result)}:{index}")
    assert f"Posted image {index + 1}" in await ephemeral_answer(pressed)
    return await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, f"Image {index + 1}"))


async def press(
    fake: FakeDiscord, single: MessageRecord, edit: str, thread_id: int
) -> tuple[str, MessageRecord]:
    """Press an edit button on the single image; its answer and its finished result."""
    known = {m.id for m in fake.bot_messages(thread_id)}
    button = next(c for c in custom_ids(single) if c.startswith(f"at:e:{edit}:"))
    answer = await ephemeral_answer(await fake.click(single.id, button))
    result = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert result.content.startswith("✅"), result.content
    return answer, result


async def lineage_of(fake: FakeDiscord, message: MessageRecord, thread_id: int) -> str:
    return await ephemeral_answer(
        await fake.slash("lineage", {"link": link(fake, message)}, channel_id=thread_id)
    )


async def test_zoom_out_and_pans_keep_the_original_and_grow_the_canvas(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a lighthouse on a cliff --seed 3"})
    result = await finished(fake, status.id)
    [source] = images_of(e2e_deployment, result)
    assert source.shape == (64, 64, 3)
    single = await posted_single(fake, result, thread_id)
    ids = custom_ids(single)
    for edit in ("subtle", "strong", "region", "z1.5", "z2", "zoom", "left", "right", "up", "down"):
        assert any(i.startswith(f"at:e:{edit}:") for i in ids), (edit, ids)
    band = blend_band(64, 64)

    # Zoom Out 2x: a canvas twice the size, the original in its centre (exactly, inside the band).
    answer, zoomed = await press(fake, single, "z2", thread_id)
    assert "Zoom out 2x of image 1" in answer
    [out] = images_of(e2e_deployment, zoomed)
    assert out.shape == (128, 128, 3)
    kept = slice(32 + band, 96 - band)
    assert np.array_equal(out[kept, kept], source[band:-band, band:-band])
    stretched = np.broadcast_to(source[0, :], (32, 64, 3))  # the canvas's start above the image
    assert np.abs(out[:32, 32:96] - stretched).mean() > 1  # the new area was painted
    assert "zoom out 2x" in await lineage_of(fake, zoomed, thread_id)

    # Pan left: half as wide again, the original against the right edge.
    answer, panned = await press(fake, single, "left", thread_id)
    assert "Pan left of image 1" in answer
    [out] = images_of(e2e_deployment, panned)
    assert out.shape == (64, 96, 3)
    assert np.array_equal(out[:, 32 + band :], source[:, band:])
    assert "pan left" in await lineage_of(fake, panned, thread_id)

    # Custom Zoom: a form for the factor; 1.5 grows 64 to 96.
    button = next(c for c in custom_ids(single) if c.startswith("at:e:zoom:"))
    modal = await (await fake.click(single.id, button)).wait_response()
    assert modal.type == 9
    known = {m.id for m in fake.bot_messages(thread_id)}
    submitted = await fake.submit_modal(modal.data["custom_id"], {"at:em:factor": "1.5"})
    assert "Zoom out 1.5x of image 1" in await ephemeral_answer(submitted)
    custom = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert images_of(e2e_deployment, custom)[0].shape == (96, 96, 3)
    fake.assert_clean()


async def test_vary_subtle_strong_and_region(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a red fox in snow --seed 11", "batch": 4})
    result = await finished(fake, status.id)
    source = images_of(e2e_deployment, result)[1]
    single = await posted_single(fake, result, thread_id, index=1)

    # Vary (Subtle) and (Strong): batches of four (the source's batch) from image 2, pressed once
    # each: they share seeds, so only the strength differs.
    varied, seeds = {}, {}
    for intent in ("subtle", "strong"):
        answer, made = await press(fake, single, intent, thread_id)
        assert f"Vary ({intent}) of image 2" in answer
        assert f"vary ({intent})" in await lineage_of(fake, made, thread_id)
        varied[intent] = images_of(e2e_deployment, made)
        seeds[intent] = seeds_of(e2e_deployment, made)
    assert seeds["subtle"] == seeds["strong"]
    subtle = mean_distance(varied["subtle"], source)
    strong = mean_distance(varied["strong"], source)
    print(f"mean pixel distance from the source: subtle {subtle:.1f}, strong {strong:.1f}")
    assert subtle < strong, (subtle, strong)

    # Vary (Region): a form for the box; only the box changes.
    button = next(c for c in custom_ids(single) if c.startswith("at:e:region:"))
    modal = await (await fake.click(single.id, button)).wait_response()
    assert modal.type == 9
    known = {m.id for m in fake.bot_messages(thread_id)}
    submitted = await fake.submit_modal(modal.data["custom_id"], {"at:em:box": "25, 25, 50, 50"})
    assert "Vary (region) of image 2" in await ephemeral_answer(submitted)
    region = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert "vary (region)" in await lineage_of(fake, region, thread_id)
    outside = np.ones((64, 64), dtype=bool)
    outside[16:48, 16:48] = False
    for image in images_of(e2e_deployment, region):
        assert np.array_equal(image[outside], source[outside])
        assert np.abs(image[16:48, 16:48] - source[16:48, 16:48]).mean() > 1
    fake.assert_clean()


async def test_bad_edits_get_one_sentence_and_queue_nothing(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a tin robot --seed 5", "batch": 2})
    grid = await finished(fake, status.id)
    single = await posted_single(fake, grid, thread_id)
    before = generation_count(e2e_deployment)

    # Someone else's image.
    button = next(c for c in custom_ids(single) if c.startswith("at:e:z2:"))
    assert "Only the person who made these images" in await ephemeral_answer(
        await fake.click(single.id, button, user="bob")
    )
    # A custom zoom out of range, and a box outside the image.
    for edit, field, value, words in (
        ("zoom", "at:em:factor", "9", "Zoom out goes from 1.1x to 4x (got 9)."),
        ("zoom", "at:em:factor", "wide", "A zoom is a number from 1.1 to 4"),
        ("region", "at:em:box", "50,50,60,10", "runs outside the image"),
    ):
        button = next(c for c in custom_ids(single) if c.startswith(f"at:e:{edit}:"))
        modal = await (await fake.click(single.id, button)).wait_response()
        answer = await ephemeral_answer(await fake.submit_modal(modal.data["custom_id"], {field: value}))
        assert words in answer, answer
    # On a grid: these buttons never appear under one; a message carrying them (an old or
    # forged one) is answered in one sentence, for the buttons and for the forms alike.
    generation = generation_of(grid)
    grid.components.append(
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": label, "custom_id": f"at:e:{edit}:{generation}:0"}
                for edit, label in (("z2", "Zoom"), ("left", "Pan"), ("subtle", "Vary"), ("region", "Region"))
            ],
        }
    )
    for edit in ("z2", "left", "subtle", "region"):
        answer = await first_answer(await fake.click(grid.id, f"at:e:{edit}:{generation}:0"))
        assert answer == (
            "Vary, Zoom Out and pan work on a single image: press U under the grid, "
            "then use the buttons under that image."
        ), answer

    # The server's Vary strengths: admins only, checked in words; then Vary (Subtle) uses them.
    async def server(options: dict[str, object]) -> str:
        return await ephemeral_answer(await fake.slash("settings", options, user="mod", subcommand="server"))

    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    try:
        assert "`vary_subtle` is an img2img strength from 0.05 to 1 (got 2)." in await server(
            {"vary_subtle": 2}
        )
        words = "`vary_subtle` (0.7) must be below `vary_strong` (0.5)."
        assert words in await server({"vary_subtle": 0.7, "vary_strong": 0.5})
        assert generation_count(e2e_deployment) == before  # nothing was queued by any of the above
        saved = await server({"vary_subtle": 0.3, "vary_strong": 0.8})
        assert "vary_subtle 0.3, vary_strong 0.8" in saved, saved
        _, varied = await press(fake, single, "subtle", thread_id)
        fields = {f["name"]: f["value"] for f in varied.embeds[0]["fields"]}
        assert fields["Strength"] == "0.3", fields
        # 0.1 of the tiny model's 4 steps would be no step at all: at least one runs (0.25).
        assert "vary_strong 0.1" in await server({"vary_subtle": 0.05, "vary_strong": 0.1})
        _, varied = await press(fake, single, "strong", thread_id)
        fields = {f["name"]: f["value"] for f in varied.embeds[0]["fields"]}
        assert fields["Strength"] == "0.25", fields
    finally:
        await ephemeral_answer(await fake.slash("settings", user="mod", subcommand="server-reset"))
    fake.assert_clean()


async def first_answer(record: Any) -> str:
    """The ephemeral answer: at once (a form's button answers instead of opening it) or after "thinking…"."""
    response = await record.wait_response()
    if response.type == 4:
        assert response.data.get("flags", 0) & 64, "ephemeral"
        return str(response.data["content"])
    return await ephemeral_answer(record)


def mean_distance(results: list[np.ndarray], source: np.ndarray) -> float:
    return float(np.mean([np.abs(image - source).mean() for image in results]))
