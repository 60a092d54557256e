"""`atelier api` as a real child process for browser tests, on a free port of 127.0.0.1.

The process runs with a ``Deployment``'s environment (its Redis prefix, data folder, catalogue,
``extra_env`` such as ``ATELIER_DATABASE_URL``), ``HF_HUB_OFFLINE=1``, and this helper's own
``extra_env`` on top: the web studio's settings (``DISCORD_CLIENT_ID``, ``DISCORD_CLIENT_SECRET``,
``DISCORD_API_BASE``, ``DISCORD_OAUTH_URL``, ``ATELIER_API_PUBLIC_URL``, ...). ``DISCORD_*``
variables of the developer's own shell are not inherited, so a test sees only what it sets.

The port is chosen when the object is made, so ``api.url`` can go into ``extra_env`` (a public
URL, an OAuth redirect) before the process starts::

    api = ApiProcess(deployment)
    api.extra_env.update(ATELIER_API_PUBLIC_URL=api.url, DISCORD_CLIENT_ID="1234")
    async with api.running():
        await page.goto(f"{api.url}/healthz")

or, when nothing needs the URL beforehand, ``async with running_api(deployment, {...}) as api:``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.integration.workers import ROOT, Deployment

POLL_S = 0.05  # between two /healthz probes while the API starts (each probe ends at its answer)


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on now (the API binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sketch_catalogue(folder: Path) -> Path:
    """A models.toml naming one model that is never loaded: enough for an API that generates
    nothing (pages, sign-in), without building the tiny models. Tests that generate use the
    session's ``tiny_catalogue`` instead."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "models.toml"
    path.write_text(
        'default_model = "sketch"\n\n'
        "[models.sketch]\n"
        'family = "sd15"\n'
        'source = "example/never-loaded"\n'
        'description = "never loaded: no worker runs"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class ApiProcess:
    """One `atelier api` process: ``start``, ``wait_healthy``, ``stop`` (or ``running()``)."""

    deployment: Deployment
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None  # the exit status, once stopped

    @property
    def url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The process's stdout and stderr, in the deployment's data folder."""
        return self.deployment.data_dir / f"api-{self.port}.log"

    def env(self) -> dict[str, str]:
        """The child's environment (see the module's docstring for the layers)."""
        inherited = self.deployment.env
        env = {
            k: v
            for k, v in inherited.items()
            if not k.startswith("DISCORD_") or k in self.deployment.extra_env
        }
        env["HF_HUB_OFFLINE"] = "1"
        env.update(self.extra_env)
        # Last, so the process listens where ``url`` points whatever extra_env says.
        env.update(ATELIER_API_HOST="127.0.0.1", ATELIER_API_PORT=str(self.port))
        return env

    def start(self) -> None:
        """Start the process (returns at once; ``wait_healthy`` waits for it)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"the API at {self.url} is already running")
        self.deployment.data_dir.mkdir(parents=True, exist_ok=True)
        self.returncode = None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "api"],
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_healthy(self, timeout: float = 60) -> None:
        """Return once GET /healthz answers 200 (uvicorn serves only after the app's start-up);
        raise with the log if the process exits first or the deadline passes."""
        if self.process is None:
            raise RuntimeError("start() the API first")
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the API exited with status {self.process.returncode} before it answered:\n"
                        + self.log()
                    )
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                await asyncio.sleep(POLL_S)
        raise RuntimeError(
            f"the API did not answer /healthz at {self.url} within {timeout:g} s:\n{self.log()}"
        )

    def log(self) -> str:
        """The last part of the process's log (for failure messages)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (uvicorn drains and runs the app's shutdown), SIGKILL after ``timeout`` s."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode

    @asynccontextmanager
    async def running(self, timeout: float = 60) -> AsyncIterator[ApiProcess]:
        """Started and healthy inside the block, stopped after it (also when start-up fails)."""
        self.start()
        try:
            await self.wait_healthy(timeout)
            yield self
        finally:
            # In a thread: the loop stays free for what the API may call while it shuts down
            # (a fake Discord served by this test process).
            await asyncio.to_thread(self.stop)


@asynccontextmanager
async def running_api(
    deployment: Deployment, extra_env: Mapping[str, str] | None = None, *, timeout: float = 60
) -> AsyncIterator[ApiProcess]:
    """``atelier api`` for ``deployment`` with ``extra_env``, healthy inside the block."""
    async with ApiProcess(deployment, dict(extra_env or {})).running(timeout) as api:
        yield api
