"""What operators see of a catalogue model (`/models list`, `atelier models list`): its family,
where its weights come from, the hash Civitai knows it by, its defaults and its switches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from studio.catalogue import ModelEntry
from studio.model_hashes import HashCache, shared_cache

log = logging.getLogger(__name__)

SOURCE_LABELS = {"folder": "folder", "file": "single file", "hub": "hub id"}
NO_HASH = "—"  # the weights are not on this host (a hub id not downloaded here, a worker's disk)


@dataclass(frozen=True)
class ModelSummary:
    entry: ModelEntry
    model_hash: str | None  # AutoV2; None when the weights are not on this host

    @property
    def family_label(self) -> str:
        return self.entry.family_spec.label

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS[self.entry.source_kind]

    @property
    def hash_text(self) -> str:
        return self.model_hash or NO_HASH

    @property
    def defaults_text(self) -> str:
        entry = self.entry
        steps, guidance = entry.default_steps, f"{entry.default_guidance:g}"
        return f"{steps} steps, guidance {guidance}, {entry.default_sampler}, {entry.native_size} px"

    @property
    def switches(self) -> list[str]:
        """The per-model settings that are on, in words."""
        entry = self.entry
        found = []
        if entry.clip_skip > 1:
            found.append(f"clip skip {entry.clip_skip}")
        if entry.vae:
            found.append("own VAE")
        if entry.true_cfg > 1:
            found.append(f"true CFG {entry.true_cfg:g}")
        if entry.max_tokens:
            found.append(f"{entry.max_tokens} prompt tokens")
        if entry.cpu_offload:
            found.append("CPU offload")
        if entry.vae_tiling:
            found.append("VAE tiling")
        if entry.attention:
            found.append(f"attention {entry.attention}")
        return found

    def details(self, hash_text: str | None = None) -> str:
        """``family · kind · hash · defaults [· switches]`` (``hash_text``: the hash as shown)."""
        shown = f"hash {hash_text or self.hash_text}"
        return " · ".join([self.family_label, self.source_label, shown, self.defaults_text, *self.switches])


def summarise(entries: Iterable[ModelEntry], hashes: HashCache | None = None) -> list[ModelSummary]:
    """Blocking (a model's first hash reads its weights once): run it in a thread."""
    cache = hashes or shared_cache()
    summaries = []
    for entry in entries:
        try:
            found = cache.model_hash(entry.source, entry.source_kind, entry.variant)
        except (OSError, ValueError) as exc:  # unreadable weights: listed anyway, without a hash
            log.warning("model %s: no hash: %s", entry.id, exc)
            found = None
        summaries.append(ModelSummary(entry, found))
    return summaries


async def summaries(entries: Iterable[ModelEntry], hashes: HashCache | None = None) -> list[ModelSummary]:
    return await asyncio.to_thread(summarise, list(entries), hashes)
