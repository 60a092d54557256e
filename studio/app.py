"""Wiring: settings -> catalogue, store, queue, artifacts -> the feature use cases. In one place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from studio.acknowledgements import Acknowledgements
from studio.apikeys import ApiKeys
from studio.artifacts import Artifacts, ArtifactStore
from studio.boards import Boards
from studio.catalogue import Catalogue, load_catalogue
from studio.community import Community
from studio.describe import Describer
from studio.finisher import Finisher
from studio.forge import Forge
from studio.generations import Generations
from studio.ideas import Ideas
from studio.ideate import Vocabulary, load_vocabulary
from studio.models import Models
from studio.notices import DeliveryNotices
from studio.policy import Policy
from studio.preferences import Preferences
from studio.projects import Projects
from studio.queue import JobQueue
from studio.quotas import Quotas
from studio.refine import Refine
from studio.removal import Removal
from studio.results import Results
from studio.settings import Settings
from studio.store import Store
from studio.styles import StyleBook, load_styles
from studio.training_sets import TrainingSets


@dataclass(frozen=True)
class Studio:
    """The studio as front ends see it: its ports and one object per feature.

    Reads may go to the ports directly (``store`` queries, ``queue.position``/``depth``,
    ``artifacts.read``), and so may a front end's own bookkeeping of where it posted a message
    and that it delivered a result (``store.add_post``, ``store.mark_delivered``): they carry no
    rule. Every other change, and every read with a rule (who may see or use what), goes
    through a feature's use case.
    """

    settings: Settings
    catalogue: Catalogue
    styles: StyleBook
    store: Store
    queue: JobQueue
    artifacts: ArtifactStore  # a local folder or an S3-compatible bucket
    preferences: Preferences  # /settings: defaults beneath every prompt
    projects: Projects
    boards: Boards  # mood boards
    generations: Generations  # prepare + start: every generation, whatever made it
    results: Results  # follow a generation and record its images
    refine: Refine  # reroll, variations, remix clones, favourites, lineage
    ideas: Ideas  # /ideate brainstorms
    finishing: Finisher  # inpaint, upscale, grade, export
    community: Community  # the feed, remix channels, model samples
    models: Models  # what a person may generate with; custom LoRAs' deletion and export
    forge: Forge  # training custom LoRA models
    keys: ApiKeys
    acknowledged: Acknowledgements
    training_sets: TrainingSets
    removal: Removal  # a moderator's removal, a person's /forget
    policy: Policy  # each server's prompt blocklist (content policy)
    quotas: Quotas  # daily GPU-seconds per person per server, role limits
    describer: Describer  # /describe and /train caption:auto: image -> prompts ([describe])


def build_studio(
    settings: Settings,
    catalogue: Catalogue,
    styles: StyleBook,
    vocabulary: Vocabulary,
    store: Store,
    queue: JobQueue,
    artifacts: ArtifactStore,
) -> Studio:
    models = Models(catalogue, store, queue, artifacts, settings)
    preferences = Preferences(catalogue, styles, store)
    boards = Boards(settings, store, queue, artifacts)
    projects = Projects(store)
    generations = Generations(
        settings, catalogue, styles, store, queue, artifacts, models, boards, preferences, projects
    )
    refine = Refine(store, artifacts, generations)
    return Studio(
        settings=settings,
        catalogue=catalogue,
        styles=styles,
        store=store,
        queue=queue,
        artifacts=artifacts,
        preferences=preferences,
        projects=projects,
        boards=boards,
        generations=generations,
        results=Results(settings, store, queue, artifacts, generations),
        refine=refine,
        ideas=Ideas(vocabulary, store, generations, preferences),
        finishing=Finisher(settings, catalogue, store, queue, artifacts, generations, refine, preferences),
        community=Community(catalogue, styles, store, artifacts),
        models=models,
        forge=Forge(settings, catalogue, store, queue, artifacts),
        keys=ApiKeys(settings, store, DeliveryNotices(queue.redis, settings.queue_prefix)),
        acknowledged=Acknowledgements(store),
        training_sets=TrainingSets(settings, store, artifacts),
        removal=Removal(store, artifacts),
        policy=generations.policy,
        quotas=generations.quotas,
        describer=Describer(settings, catalogue.path, queue),
    )


def open_artifacts(settings: Settings) -> ArtifactStore:
    """The artifact store the settings choose; an S3 bucket is checked first (blocks: call in a thread)."""
    if settings.artifact_store == "local":
        return Artifacts(settings.artifacts_dir)
    from studio.artifacts.s3 import S3Artifacts  # boto3 loads only for those who use it

    assert settings.s3_bucket is not None  # the settings refuse s3 without a bucket
    bucket = S3Artifacts(
        settings.s3_bucket,
        settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
    )
    bucket.check()
    return bucket


@contextlib.asynccontextmanager
async def open_studio(settings: Settings) -> AsyncIterator[Studio]:
    catalogue = load_catalogue(settings.models_file)  # invalid catalogue: fail before anything runs
    styles = load_styles(settings.styles_file)
    vocabulary = load_vocabulary(settings.vocabulary_file)
    artifacts = await asyncio.to_thread(open_artifacts, settings)  # a bucket that fails: fail here
    queue = await JobQueue.connect(settings)
    try:
        async with Store(settings.database) as store:
            yield build_studio(settings, catalogue, styles, vocabulary, store, queue, artifacts)
    finally:
        await queue.close()
