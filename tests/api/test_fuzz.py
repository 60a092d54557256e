"""Schemathesis over every operation of the live OpenAPI document: no input may cause a 5xx or hang.

The studio has no workers and low caps, so fuzzed generations that pass every check stay few
and queued (then answer 429), and nothing is generated.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from studio.apikeys import MintedKey
from studio.entities import Requester
from tests.api.conftest import open_keys, queued_jobs
from tests.api.server import ApiServer
from tests.integration.workers import Deployment

EXAMPLES = 12  # per operation and mode: ~17 operations x 2 modes
REQUEST_TIMEOUT_S = 10.0
SLOW_S = 5.0


@pytest.fixture(scope="module")
def fuzz_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        models_file=tiny_catalogue,
        extra_env={
            "ATELIER_MAX_JOBS_PER_USER": "2",
            "ATELIER_API_BATCH_MAX_JOBS": "2",
            "ATELIER_MAX_UPLOAD_BYTES": "100000",
            "ATELIER_API_RATE_PER_MINUTE": "1000000",
            "ATELIER_API_RATE_BURST": "100000",
        },
    )


@pytest.fixture(scope="module")
async def fuzz_api(fuzz_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(fuzz_deployment)
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def fuzz_key(fuzz_api: ApiServer) -> MintedKey:
    async for keys in open_keys(fuzz_api.deployment):
        return await keys.mint(Requester(id="discord:4242", name="fuzzer", server="guild-9"), "fuzz")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as shared:
        yield shared


def test_no_operation_answers_5xx_or_hangs(
    fuzz_api: ApiServer, fuzz_key: MintedKey, session: requests.Session
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json", timeout=REQUEST_TIMEOUT_S)
    auth = {"Authorization": f"Bearer {fuzz_key.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    tried: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def fuzz(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
                started = time.monotonic()
                response = case.call(
                    base_url=fuzz_api.url, session=session, headers=auth, timeout=REQUEST_TIMEOUT_S
                )
                elapsed = time.monotonic() - started
                case.validate_response(response, checks=[not_a_server_error])
                assert elapsed < SLOW_S, f"{case.operation.label} took {elapsed:.1f} s"
                tried[case.operation.label] = tried.get(case.operation.label, 0) + 1

            fuzz()
    assert len(tried) == len(operations), sorted(set(o.label for o in operations) - set(tried))
    assert queued_jobs(fuzz_api.deployment) <= 4  # the caps held: the queue was not flooded
    assert "Traceback" not in fuzz_api.log(), fuzz_api.log()
