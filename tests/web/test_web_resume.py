"""After its own restart the API follows the generations started from web pages too: a remix
started on the web, whose API stopped before it finished, is recorded once the API is back."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.api.server import ApiServer
from tests.api.test_api_resume import generation_row, result_waits_in_redis, until
from tests.integration.workers import Deployment
from tests.web.conftest import ALICE, SERVER, WEB_ENV, seed_images, sign_in


async def test_a_restarted_api_records_a_web_generation_nobody_asked_about(
    tiny_catalogue: Path, tmp_path: Path
) -> None:
    dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue)
    api = ApiServer(dep, dict(WEB_ENV))
    api.start()
    try:
        await api.wait_ready()
        image = (await seed_images(dep, ALICE, 1))[0]
        alice = await sign_in(api, ALICE, "Alice")
        page = f"/s/{SERVER}/images/{image.generation_id}/0/remix"
        form = await alice.http.get(page)
        text = re.search(r"<textarea[^>]*>([^<]*)</textarea>", form.text)
        assert text is not None
        started = await alice.http.post(page, data={"prompt": text.group(1), "csrf_token": alice.csrf})
        assert started.status_code == 303, started.text
        generation_id = started.headers["location"].rsplit("/", 1)[-1]
        await alice.http.aclose()
        api.stop()  # nobody follows the job now; it runs and its result waits in Redis

        dep.start_worker("inference")
        dep.start_worker("post")
        await result_waits_in_redis(dep, generation_id)
        assert generation_row(dep, generation_id) == ("queued", 0)
        with sqlite3.connect(dep.settings().database_path) as db:
            assert db.execute(
                "SELECT 1 FROM web_generations WHERE generation_id = ?", (generation_id,)
            ).fetchone()

        api.start()  # no page asks about it: the API takes it up on its own
        await api.wait_ready()
        await until(lambda: generation_row(dep, generation_id) == ("done", 1), 60, "the API to record it")
        assert "Traceback" not in api.log(), api.log()
    finally:
        api.stop()
        dep.stop()
