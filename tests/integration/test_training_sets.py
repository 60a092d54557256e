"""Training sets in the store: per person and per server, verified before kept, capped, cleared."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from studio.artifacts import Artifacts
from studio.entities import Requester
from studio.errors import DatasetRejected, StudioError
from studio.settings import load_settings
from studio.store import Store
from studio.training import TrainingImage
from studio.training_sets import TrainingSets


def png(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (shade, shade, 255 - shade)).save(out, format="PNG")
    return out.getvalue()


async def test_a_training_set_per_person_and_server(
    tmp_path: Path, tiny_catalogue: Path, database: Path | str
) -> None:
    settings = load_settings(data_dir=tmp_path, models_file=tiny_catalogue, max_training_images=4)
    alice_here = Requester(id="discord:1", name="alice", server="100")
    alice_there = Requester(id="discord:1", name="alice", server="200")
    bob = Requester(id="discord:2", name="bob", server="100")
    async with Store(database) as store:
        sets = TrainingSets(settings, store, Artifacts(tmp_path / "artifacts"))
        assert await sets.add(alice_here, [TrainingImage(png(10), "by the sea"), TrainingImage(png(20))]) == 2
        assert await sets.add(alice_there, [TrainingImage(png(30))]) == 1
        with pytest.raises(StudioError, match="empty"):
            await sets.images(bob)
        with pytest.raises(StudioError):  # not an image: refused, and nothing of the batch kept
            await sets.add(alice_here, [TrainingImage(png(40)), TrainingImage(b"not a picture")])
        with pytest.raises(DatasetRejected, match="at most 4"):
            await sets.add(alice_here, [TrainingImage(png(s)) for s in (50, 60, 70)])
        mine = await sets.images(alice_here)
        assert [(i.data, i.caption) for i in mine] == [(png(10), "by the sea"), (png(20), None)]
        assert await sets.clear(alice_here) == 2
        assert [i.data for i in await sets.images(alice_there)] == [png(30)]  # the other server's stays
