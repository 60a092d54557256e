"""Links into the web studio on the bot's messages: the URLs, and the layouts checked against the
fake Discord's component rules (5 rows, 5 buttons a row, links with a url and no custom id)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.ui.generation import result_view
from bot.ui.outpaint import single_image_view
from bot.ui.weblinks import (
    IN_A_DM,
    NOT_SET_UP,
    OPEN,
    image_page,
    image_pages,
    link_button,
    studio_answer,
    studio_base,
)
from tests.fake_discord import rules

BASE = "https://studio.example.test"
GEN = "0123456789abcdef0123456789abcdef"
SERVER = "111222333444555666"


def links(components: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(row, label, url) of each link button."""
    return [
        (r, button["label"], button["url"])
        for r, row in enumerate(components)
        for button in row["components"]
        if button.get("style") == 5
    ]


def valid(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errs = rules.FormErrors()
    rules.check_components(components, 0, errs)
    assert errs.flat == []
    return components


def test_the_base_is_a_web_address_or_nothing() -> None:
    assert studio_base(None) is None and studio_base("") is None
    assert studio_base("ftp://studio.example.test") is None  # a link button opens web addresses only
    assert studio_base(BASE + "/") == BASE
    assert image_page(BASE, SERVER, GEN, 2) == f"{BASE}/s/{SERVER}/images/{GEN}/2"
    assert image_page(None, SERVER, GEN, 0) is None and image_page(BASE, None, GEN, 0) is None
    assert image_pages(BASE, SERVER, GEN, 2) == [image_page(BASE, SERVER, GEN, i) for i in range(2)]
    assert image_pages(BASE, None, GEN, 4) == []


async def test_a_link_discord_would_refuse_is_left_out() -> None:
    assert link_button(OPEN, BASE + "/" + "x" * 512) is None
    button = link_button(OPEN, BASE)
    assert button is not None and button.url == BASE and button.custom_id is None


@pytest.mark.parametrize("count", range(1, 9))
async def test_result_links_fit_beside_the_result_controls(count: int) -> None:
    plain = valid(result_view(GEN, count).to_components())
    pages = image_pages(BASE, SERVER, GEN, count)
    linked = valid(result_view(GEN, count, pages).to_components())
    assert links(plain) == []
    found = links(linked)
    if 2 <= count <= 5:  # room for a link per image, in a row of their own above the menu
        assert [(label, url) for _, label, url in found] == [
            (f"Studio {i + 1}", pages[i]) for i in range(count)
        ]
        assert {row for row, _, _ in found} == {len(linked) - 2}
    else:  # one image, or no room for eight links: one link, to the first image, after 🔁
        ((row, label, url),) = found
        assert (label, url) == (OPEN, pages[0]) and row == len(linked) - 2
    # The result's own controls are all still there, the menu last.
    assert [c.get("custom_id") for r in plain for c in r["components"]] == [
        c.get("custom_id") for r in linked for c in r["components"] if c.get("style") != 5
    ]
    assert linked[-1]["components"][0]["type"] == 3


async def test_a_posted_image_links_to_its_page() -> None:
    page = image_page(BASE, SERVER, GEN, 3)
    assert page is not None
    plain = valid(single_image_view(GEN, 3).to_components())
    linked = valid(single_image_view(GEN, 3, page).to_components())
    assert links(plain) == [] and links(linked) == [(3, OPEN, page)]
    assert linked[:3] == plain


def test_the_web_command_says_where_to_go() -> None:
    assert studio_answer(BASE, None, "") == (IN_A_DM, [])
    assert studio_answer(None, 42, "Guild") == (NOT_SET_UP, [])
    assert "ATELIER_API_PUBLIC_URL" in NOT_SET_UP
    text, found = studio_answer(BASE + "/", 42, "The *Guild* @everyone")
    assert found == [("Gallery", f"{BASE}/s/42/gallery"), ("Your library", f"{BASE}/s/42/library")]
    assert "The \\*Guild\\*" in text and "@everyone" not in text  # the name is shown inert
