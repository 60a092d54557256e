"""Starting real worker processes for tests, and the settings that point at them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from studio.queue import JobQueue
from studio.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_URL = os.environ.get("ATELIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


@dataclass
class Deployment:
    """One isolated studio: its own queue prefix, data folder and (optionally) worker processes."""

    data_dir: Path
    models_file: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
        env.update(
            ATELIER_REDIS_URL=TEST_REDIS_URL,
            ATELIER_QUEUE_PREFIX=self.prefix,
            ATELIER_DATA_DIR=str(self.data_dir),
            ATELIER_MODELS_FILE=str(self.models_file),
            ATELIER_CONFIG=str(self.data_dir / "absent.toml"),
            HF_HUB_OFFLINE="1",
            PYTHONPATH=str(ROOT),
        )
        env.update(self.extra_env)
        return env

    def settings(self) -> Settings:
        env = self.env
        return load_settings(
            redis_url=env["ATELIER_REDIS_URL"],
            queue_prefix=self.prefix,
            data_dir=self.data_dir,
            models_file=self.models_file,
            **{
                k.removeprefix("ATELIER_").lower(): v
                for k, v in self.extra_env.items()
                if k.startswith("ATELIER_")
            },
        )

    def start_worker(self, kind: str) -> subprocess.Popen[bytes]:
        with (self.data_dir / f"worker-{kind}-{len(self.processes)}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--queue", kind],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    async def wait_ready(self, kinds: tuple[str, ...] = ("inference", "post"), minimum: int = 1) -> None:
        queue = await JobQueue.connect(self.settings())
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                live = await queue.live_workers()
                if all(live[k] >= minimum for k in kinds):
                    return
                if self.processes and all(p.poll() is not None for p in self.processes):
                    break  # every worker exited: no point waiting
                await asyncio.sleep(0.1)
            raise RuntimeError(f"workers did not start; logs in {self.data_dir}:\n{self.logs()}")
        finally:
            await queue.close()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.data_dir.glob("worker-*.log"))
        )

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
