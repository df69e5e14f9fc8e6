"""A job's delivery target and relay request, rebuilt from its row: how any process finishes any job.

Every job runs through a target made here, whether the interaction that asked is live in this
process or the job was resumed from the queue after a restart, so the path a resumed job takes
is the path every job takes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord

from bot.config import Settings
from bot.core.errors import UserFacingError
from bot.core.jobs.delivery import DeliveryTarget
from bot.core.jobs.requests import build_request
from bot.core.jobs.spec import StoredReference, StoredRequest
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.attachments import REFERENCES_GONE, refetch_references
from bot.discord_ui.deliveries import InteractionDelivery, MessageDelivery, parse_delivery
from bot.discord_ui.interaction_target import InteractionTarget
from bot.discord_ui.message_target import MessageTarget
from bot.storage.jobs import JobRecord, JobStore


def delivery_target(
    client: discord.Client,
    settings: Settings,
    delivery: InteractionDelivery | MessageDelivery,
    *,
    store: JobStore,
    job_id: str,
    quota_note: str | None = None,
) -> DeliveryTarget:
    """The target for `delivery`; changes to it (the status message, once posted) are stored."""
    remember = functools.partial(_remember, store, job_id)
    if isinstance(delivery, MessageDelivery):
        return MessageTarget(client, delivery, model=settings.image_model, quota_note=quota_note, remember=remember)
    metrics = getattr(client, "metrics", None)  # the bot's; a bare client (tests, tools) has none
    return InteractionTarget(client, delivery, model=settings.image_model, quota_note=quota_note,
                             token_margin=settings.interaction_token_margin_seconds, remember=remember,
                             on_fallback=metrics.delivery_fallback if metrics is not None else None)


async def _remember(store: JobStore, job_id: str, delivery: Mapping[str, Any]) -> None:
    await store.update_delivery(job_id, delivery)


async def restored_request(
    client: discord.Client, session: aiohttp.ClientSession, settings: Settings, stored: StoredRequest,
    requester_id: int,
) -> tuple[GenerationRequest, tuple[StoredReference, ...]]:
    """A stored request again, its references fetched afresh (Reroll, and a resumed job)."""
    if not stored.references_complete:
        raise UserFacingError(REFERENCES_GONE)
    prepared = await refetch_references(client, session, stored.references, transport=settings.reference_transport)
    request = build_request(
        settings,
        prompt=stored.prompt,
        requester_id=requester_id,
        size=stored.size,
        count=stored.count,
        watermark=stored.watermark,
        references=prepared.references,
        variations=stored.mode == "variations",
    )
    return request, prepared.stored


class DiscordRestorer:
    """The runner's `Restorer`: targets and requests of jobs claimed from the queue."""

    def __init__(self, client: discord.Client, session: aiohttp.ClientSession, settings: Settings,
                 store: JobStore) -> None:
        self._client, self._session, self._settings, self._store = client, session, settings, store

    def target(self, job: JobRecord) -> DeliveryTarget:
        return delivery_target(self._client, self._settings, parse_delivery(job), store=self._store, job_id=job.id)

    async def request(self, job: JobRecord) -> GenerationRequest:
        request, _ = await restored_request(self._client, self._session, self._settings, job.request,
                                            job.requester_id)
        return request
