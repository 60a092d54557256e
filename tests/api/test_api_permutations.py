"""`{a, b}` permutations through the API: one generation per prompt, a batch's answer, and
`"confirm": true` above the threshold (else 400 with the count, nothing queued)."""

from __future__ import annotations

from studio.apikeys import ApiKeys
from studio.entities import Requester
from tests.api.conftest import generation_count
from tests.api.server import ApiServer
from tests.api.test_api import api, api_deployment, client, keys, until_done
from tests.integration.workers import Deployment

__all__ = ["api", "api_deployment", "keys"]  # the API module's fixtures, for this module

DORA = Requester(id="discord:1004", name="dora", server="guild-1")


async def test_permutations_start_one_generation_each_and_ask_for_confirmation(
    api: ApiServer, keys: ApiKeys, api_deployment: Deployment
) -> None:
    dora = await keys.mint(DORA, "permutations")
    async with client(api, dora) as http:
        answer = await http.post("/v1/generations", json={"prompt": "a {red, blue} fox --seed 5", "steps": 1})
        assert answer.status_code == 202, answer.text
        started = answer.json()
        assert started["count"] == 2 and [g["row"] for g in started["generations"]] == [1, 2]
        done = [await until_done(http, g["id"]) for g in started["generations"]]
        assert [d["recipe"]["prompt"] for d in done] == ["a red fox", "a blue fox"]
        assert all(d["status"] == "done" and d["recipe"]["seed"] == 5 for d in done)

        before = generation_count(api_deployment)
        five = {"prompt": "a {red, blue, green, gold, grey} kite", "steps": 1}
        answer = await http.post("/v1/generations", json=five)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "confirm" and "make 5 prompts" in answer.json()["detail"]
        for bad, words in (
            ("{a, b} {c, d} {e, f} {g, h} {i, j} fox", "make 32 prompts; the limit is 16"),
            ("a {red, blue fox", "without its `}`"),
        ):
            answer = await http.post("/v1/generations", json={"prompt": bad, "confirm": True})
            assert answer.status_code == 422 and words in answer.json()["detail"], answer.text
        assert generation_count(api_deployment) == before

        answer = await http.post("/v1/generations", json={**five, "confirm": True})
        assert answer.status_code == 202, answer.text
        started = answer.json()
        assert started["count"] == 5  # past max_jobs_per_user (3): a set is one request
        done = [await until_done(http, g["id"]) for g in started["generations"]]
        assert all(d["status"] == "done" for d in done)
        seeds = {d["recipe"]["seed"] for d in done}
        assert len(seeds) == 1  # without a seed of their own the prompts share one
