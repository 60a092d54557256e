from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.render import fit_image, quote, strip_mentions, thread_name


def noisy_png(size: int) -> bytes:
    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_small_images_pass_untouched() -> None:
    png = noisy_png(16)
    assert fit_image(png, len(png), "x") == (png, "x.png")


@pytest.mark.parametrize("limit", [200_000, 50_000, 5_000])
def test_large_images_are_reencoded_then_downscaled_to_fit(limit: int) -> None:
    png = noisy_png(512)  # ~790 kB of incompressible noise
    data, name = fit_image(png, limit, "grid")
    assert len(data) <= limit and name == "grid.jpg"
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_mentions_are_stripped_from_prompts_and_inert_when_shown() -> None:
    assert strip_mentions("<@123> a cat <@&456> @everyone on <#789> a mat @here") == "a cat on a mat"
    assert strip_mentions("<@!1> <@&2> @everyone") == ""
    shown = quote("@everyone look **bold** " + "x" * 400, limit=50)
    assert "@everyone" not in shown and "\\*\\*" in shown and len(shown) < 80


def test_thread_names_fit_discord() -> None:
    assert thread_name("  a   lighthouse ") == "a lighthouse"
    assert len(thread_name("x" * 500)) <= 100
    assert thread_name("   ") == "Atelier project"


def test_a1111_weights_become_compel_weights() -> None:
    from gpu_worker.prompting import to_compel_syntax

    assert to_compel_syntax("a (red:1.3) cat, (soft light: 0.8)") == "a (red)1.3 cat, (soft light)0.8"
    assert to_compel_syntax("a (red)1.3 cat++ (no weight)") == "a (red)1.3 cat++ (no weight)"
