"""The web gallery with many public images: page weight, thumbnail sizes, server time, first paint.

A fresh SQLite database gets ``--images`` public images (500 by default) of 20 people in one
server, seeded through the store as the results follower records them, with favourites and
remixes so the ranking has work to do, and ``--pictures`` distinct photo-like 512 px PNGs behind
them (real files, so thumbnails are really made). `atelier api` then runs as a process, with no
worker (the gallery starts nothing), and a signed-in session is written as a Discord sign-in
writes it. Measured, against baselines taken in the same run:

* weight: the gallery page's HTML + CSS + JS bytes, before images (the issue's limit: 150 KB);
* thumbnails: the WebP bytes of every distinct picture (limit: 40 KB each), and the time to
  serve one the first time (made from the PNG) against once it is kept;
* server time: GET of the gallery's HTML, against the /healthz round trip and against the
  gallery of a server with no images (the same page without the feed's work);
* first paint: first-contentful-paint in headless Chromium (Debian's, through Playwright), one
  fresh browser context per load (nothing cached in the browser; thumbnails already made on the
  server), against the empty server's gallery; the issue's target is under 300 ms.

    .venv/bin/python -m bench.web_gallery --runs 15
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/web_gallery.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import hashlib
import io
import os
import random
import re
import secrets
import statistics
import subprocess
import time
from typing import Any

import httpx

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    write_json,
)
from bench._harness import REPO, Lab, Lane, entry
from studio.app import open_artifacts
from studio.recipe import Recipe
from studio.store import Store
from studio.store.connection import new_id
from studio.store.web import WebGuild
from web.sessions import COOKIE, SESSION_TTL_S, token_hash

SERVER, EMPTY = "700000000000000001", "700000000000000002"
VIEWER = "discord:700000000000000099"
PEOPLE = 20
LIMIT_PAGE_KB, LIMIT_THUMB_KB, TARGET_PAINT_MS = 150, 40, 300
STYLES = (None, None, "cinematic", "noir", "watercolour")
CATALOGUE = """default_model = "photo"

[models.photo]
family = "sd15"
source = "example/never-loaded"
description = "never loaded: no worker runs"

[models.illustration]
family = "sdxl"
source = "example/never-loaded-xl"
description = "never loaded: no worker runs"
"""
ASSET = re.compile(r'<(?:link rel="stylesheet" href|script src)="([^"]+)"')
THUMB = re.compile(r'<img src="([^"]+/thumb\.webp)"')
FCP_JS = """() => new Promise((resolve) => {
  // The entry may come after the load event in headless Chromium: wait for it (5 s at most).
  new PerformanceObserver((list) => {
    const paint = list.getEntriesByName("first-contentful-paint")[0];
    if (paint) resolve(paint.startTime);
  }).observe({ type: "paint", buffered: true });
  setTimeout(() => resolve(null), 5000);
})"""


def photo(seed: int, side: int = 512) -> bytes:
    """A photo-like picture: a gradient, many shapes and grain. Its thumbnail is ~15 KB, as those
    of generated pictures are (smooth ones make 4 KB; pure noise is tests/web/test_web_media's)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    top, bottom = rng.integers(0, 255, 3)[None, None, :], rng.integers(0, 255, 3)[None, None, :]
    image = Image.fromarray((top * (1 - ramp) + bottom * ramp).repeat(side, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = (int(v) for v in rng.integers(0, side, 2))
        r = int(rng.integers(side // 60, side // 5))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    grain = rng.normal(0, 16, (side, side, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


async def seed(lane: Lane, images: int, pictures: int) -> str:
    """``images`` public images in SERVER (none in EMPTY), and a session of VIEWER in both; its token."""
    rng = random.Random(7)
    artifacts = open_artifacts(lane.settings)
    shas = [artifacts.put(photo(n)) for n in range(pictures)]
    people = [f"discord:7000000000000001{n:02d}" for n in range(PEOPLE)]
    async with Store(lane.settings.database_path) as store:
        projects = {}
        for n, person in enumerate(people):
            await store.ensure_user(person, f"Member {n + 1}")
            projects[person] = (await store.create_project(person, "gallery bench", server=SERVER)).id
        made: list[str] = []
        for n in range(images):
            owner = rng.choice(people)
            recipe = Recipe(
                model="photo" if n % 3 else "illustration",
                family="sd15" if n % 3 else "sdxl",
                prompt=f"a lighthouse on a cliff at dusk, study {n}, soft light, film grain",
                seed=n,
                steps=20,
                guidance=6.0,
                width=512,
                height=512,
                style=STYLES[n % len(STYLES)],
                parent_image=rng.choice(made) if made and n % 5 == 0 else None,  # a fifth are remixes
            )
            generation_id = new_id()
            await store.add_generation(generation_id, projects[owner], owner, recipe, False, SERVER)
            await store.finish_generation(
                generation_id, [(0, shas[n % pictures], recipe.for_image(0))], None, 1.0, 1
            )
            made.append((await store.images_of(generation_id))[0].id)
        for image_id in made:  # a few favourites each, more for some (a feed's long tail)
            for person in rng.sample(people, min(PEOPLE, int(rng.paretovariate(1.2)) - 1)):
                await store.set_favourite(person, image_id, True)
        token = secrets.token_urlsafe(32)
        for server in (SERVER, EMPTY):
            await store.web.bot_joined(server, f"Bench {server[-1]}")
        await store.ensure_user(VIEWER, "Viewer")
        guilds = [WebGuild(SERVER, "Bench 1"), WebGuild(EMPTY, "Bench 2")]
        await store.web.add_session(
            token_hash(token), VIEWER, "Viewer", guilds, secrets.token_urlsafe(32), SESSION_TTL_S
        )
    return token


def start_api(lane: Lane, port: int) -> subprocess.Popen[bytes]:
    lane.logs.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in lane.env.items() if not k.startswith("DISCORD_")},
        "ATELIER_API_HOST": "127.0.0.1",
        "ATELIER_API_PORT": str(port),
        "DISCORD_CLIENT_ID": "424242",
        "DISCORD_CLIENT_SECRET": "bench",
    }
    with (lane.logs / "api.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "api"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )


async def healthy(url: str, process: subprocess.Popen[bytes], within: float = 120) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the API did not start; see its log (--keep)")


async def timed_get(http: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = await http.get(path)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed, answer


async def weigh(http: httpx.AsyncClient, path: str) -> dict[str, int]:
    """The bytes of one page and the stylesheets and scripts it loads (images aside)."""
    page = (await http.get(path)).text
    weight = {"html": len(page.encode())}
    for asset in ASSET.findall(page):
        kind = "css" if asset.endswith(".css") else "js"
        weight[kind] = weight.get(kind, 0) + len((await http.get(asset)).content)
    return weight


async def thumbnails(http: httpx.AsyncClient, pages: int) -> dict[str, Any]:
    """The thumbnails on the first ``pages`` gallery pages: the bytes of each distinct one, and the
    time of its first fetch (made from the PNG) against a second one (kept on disk)."""
    sizes: dict[str, int] = {}  # by content: images sharing a picture share its thumbnail
    cold: list[float] = []
    warm: list[float] = []
    for number in range(1, pages + 1):
        page = (await http.get(f"/s/{SERVER}/gallery?period=all&page={number}")).text
        for url in THUMB.findall(page):
            first, answer = await timed_get(http, url)
            key = hashlib.sha256(answer.content).hexdigest()
            if key in sizes:
                continue
            sizes[key] = len(answer.content)
            cold.append(first)
            warm.append((await timed_get(http, url))[0])
    return {"bytes": sorted(sizes.values()), "cold": cold, "warm": warm}


async def server_times(http: httpx.AsyncClient, runs: int) -> dict[str, list[float]]:
    paths = {
        "/healthz round trip": "/healthz",
        "gallery of a server with no images": f"/s/{EMPTY}/gallery",
        "gallery, page 1": f"/s/{SERVER}/gallery",
        "gallery, filtered (model + creator)": f"/s/{SERVER}/gallery?period=all&model=photo"
        "&creator=discord:700000000000000103",
    }
    samples: dict[str, list[float]] = {label: [] for label in paths}
    for path in paths.values():  # warm-up: templates compiled, connections open
        await timed_get(http, path)
    for _ in range(runs):
        for label, path in paths.items():  # interleaved: a noisy moment hits every kind alike
            samples[label].append((await timed_get(http, path))[0])
    return samples


async def first_paints(url: str, token: str, runs: int, chromium: str) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    pages = {"gallery, no images": f"/s/{EMPTY}/gallery", "gallery": f"/s/{SERVER}/gallery"}
    samples: dict[str, list[float]] = {label: [] for label in pages}
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            for run in range(runs + 1):  # the first round warms the browser process up
                for label, path in pages.items():
                    context = await browser.new_context(viewport={"width": 1280, "height": 800})
                    await context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
                    page = await context.new_page()
                    answer = await page.goto(url + path, wait_until="load")
                    if answer is None or answer.status != 200:
                        raise RuntimeError(f"{path} answered {answer and answer.status}")
                    paint = await page.evaluate(FCP_JS)
                    await context.close()
                    if paint is None:
                        raise RuntimeError(f"no first-contentful-paint entry for {path}")
                    if run:
                        samples[label].append(float(paint) / 1000)
        finally:
            await browser.close()
    return samples


async def measure(lane: Lane, args: Any) -> dict[str, Any]:
    started = time.perf_counter()
    token = await seed(lane, args.images, args.pictures)
    seeded = time.perf_counter() - started
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_api(lane, port)
    try:
        await healthy(url, process)
        async with httpx.AsyncClient(base_url=url, cookies={COOKIE: token}, timeout=60) as http:
            weight = await weigh(http, f"/s/{SERVER}/gallery")
            thumbs = await thumbnails(http, args.thumb_pages)
            times = await server_times(http, args.runs)
        paints = await first_paints(url, token, args.runs, args.chromium)
    finally:
        process.terminate()
        process.wait(timeout=20)
    return {"seed_s": seeded, "weight": weight, "thumbnails": thumbs, "server": times, "paint": paints}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def report(figures: dict[str, Any], images: int) -> None:
    weight = figures["weight"]
    total = sum(weight.values())
    print(f"\n{images} public images in one server, seeded in {figures['seed_s']:.1f} s")
    print(
        f"page weight (gallery page 1, before images): HTML {weight['html'] / 1024:.1f} KB + CSS "
        f"{weight.get('css', 0) / 1024:.1f} KB + JS {weight.get('js', 0) / 1024:.1f} KB = "
        f"{total / 1024:.1f} KB (limit {LIMIT_PAGE_KB} KB: "
        f"{'ok' if total < LIMIT_PAGE_KB * 1024 else 'OVER'})"
    )
    thumbs = figures["thumbnails"]
    sizes = thumbs["bytes"]
    print(
        f"thumbnails: {len(sizes)} distinct, median {statistics.median(sizes) / 1024:.1f} KB, max "
        f"{max(sizes) / 1024:.1f} KB (limit {LIMIT_THUMB_KB} KB each: "
        f"{'ok' if max(sizes) < LIMIT_THUMB_KB * 1024 else 'OVER'})"
    )
    rows = [
        summarize(thumbs["cold"]).row("thumbnail, first fetch (made from the PNG)"),
        summarize(thumbs["warm"]).row("thumbnail, kept"),
    ]
    server = figures["server"]
    base = summarize(server["/healthz round trip"]).median
    for label, samples in server.items():
        stats = summarize(samples)
        rows.append(stats.row(f"{label} ({stats.median / base:.1f}× /healthz)"))
    paint = figures["paint"]
    empty = summarize(paint["gallery, no images"]).median
    for label, samples in paint.items():
        stats = summarize(samples)
        rows.append(stats.row(f"first paint: {label} ({stats.median / empty:.2f}× empty)"))
    print(table(STATS_HEADERS, rows))
    print("(milliseconds)")
    fcp = summarize(paint["gallery"]).median * 1000
    verdict = "ok" if fcp < TARGET_PAINT_MS else "OVER"
    print(f"first paint of the gallery, median: {fcp:.0f} ms (target < {TARGET_PAINT_MS} ms: {verdict})")


def main() -> int:
    p = parser(__doc__.splitlines()[0] if __doc__ else "web gallery", 15)
    p.add_argument("--images", type=int, default=500, help="public images in the database (default 500)")
    p.add_argument("--pictures", type=int, default=96, help="distinct PNGs behind them (default 96)")
    p.add_argument("--thumb-pages", type=int, default=4, help="gallery pages whose thumbnails are fetched")
    p.add_argument(
        "--chromium",
        default=os.environ.get("ATELIER_TEST_CHROMIUM", "/usr/bin/chromium"),
        help="the Chromium Playwright drives (default $ATELIER_TEST_CHROMIUM or /usr/bin/chromium)",
    )
    args = p.parse_args()
    check_runs(p, args.runs, 3)
    print(machine_info())
    with Lab("web-gallery", args.redis_url, args.keep, tiny_models=False) as lab:
        catalogue = lab.root / "models.toml"
        catalogue.write_text(CATALOGUE, encoding="utf-8")
        lane = lab.lane("gallery", models_file=catalogue)
        figures = asyncio.run(measure(lane, args))
    report(figures, args.images)
    print(load_line())
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    entry(main)
