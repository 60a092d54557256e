"""The fake refuses buttons Discord refuses: a link button needs a web url of at most 512 characters
and no custom id; any other button needs a custom id and no url (Discord's component reference)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.test_fake_discord import fake  # noqa: F401 (fixture)
from tests.fake_discord import FakeDiscord

WEB = "https://studio.example.test/s/1/gallery"


def row(*buttons: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": 1, "components": list(buttons)}]


def link(**fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 5, "label": "Open", **fields}


@pytest.mark.parametrize(
    ("button", "refusal"),
    [
        (link(), "components.0.components.0.url: This field is required"),
        (link(url=WEB, custom_id="at:x"), "A link button cannot have a custom id"),
        (link(url="ftp://studio.example.test/x"), "url: Not a well formed URL"),
        (link(url="javascript:alert(1)"), "url: Not a well formed URL"),
        (link(url="https://" + "a" * 505), "url: Must be 512 or fewer in length"),
        ({"type": 2, "style": 1, "label": "Go", "url": WEB}, "custom_id: This field is required"),
        ({"type": 2, "style": 2, "label": "Go", "custom_id": "go", "url": WEB}, "Only a link button"),
    ],
)
async def test_link_buttons_follow_discords_rules(
    fake: FakeDiscord,  # noqa: F811
    button: dict[str, Any],
    refusal: str,
) -> None:
    headers = {"Authorization": f"Bot {fake.token}"}
    url = f"{fake.api_base}/channels/{fake.channel_id}/messages"
    longest = "https://" + "a" * 504  # 512 characters: the most Discord takes
    async with aiohttp.ClientSession(headers=headers) as http:
        body = {"content": "links", "components": row(button)}
        async with http.post(url, json=body) as refused:
            assert refused.status == 400 and (await refused.json())["code"] == 50035
        fake.expect_violation(refusal)
        fine = row(link(url=WEB), link(url=longest, label="Longest"))
        async with http.post(url, json={"content": "links", "components": fine}) as sent:
            assert sent.status == 200
    (message,) = fake.channel_messages()
    assert [b["url"] for b in message.components[0]["components"]] == [WEB, longest]
    fake.assert_clean()
