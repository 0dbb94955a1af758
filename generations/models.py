"""Every model of the generations app, for Django to register. Each lives in its domain's package:

- providers/models.py   Backend, Price            (what a provider offers and costs)
- billing/models.py     CostEntry, Budget         (the ledger and monthly caps)
                        SpendingDay, SpendingMonth, CharacterSpendingMonth, VideoSpendingMonth
                                                  (the ledger summed, what the spending report reads)
- storyboards/models.py Series, Scene, SceneImage, Export (stories told in scenes; zips built by a worker)
- jobs/models.py        Generation, GenerationImage, GenerationEvent, PumpLease, CreatorSettings (video jobs,
                        their start and end images, routing)
- webhooks/models.py    WebhookDelivery           (completion callbacks seen, against replays)

Code imports models from their package; this module is only the app's index (and the name
migrations and `apps.get_model("generations", ...)` know).
"""

from generations.billing.models import (
    Budget,
    CharacterSpendingMonth,
    CostEntry,
    CostKind,
    SpendingDay,
    SpendingMonth,
    VideoSpendingMonth,
)
from generations.jobs.models import (
    CreatorSettings,
    Generation,
    GenerationEvent,
    GenerationImage,
    Policy,
    PumpLease,
    upload_thumbnail,
    upload_video,
)
from generations.providers.models import Backend, Price, PriceUnit, Tier
from generations.states import ACTIVE, IN_FLIGHT, TERMINAL, Status
from generations.storyboards.models import Export, ExportStatus, Scene, SceneImage, Series
from generations.webhooks.models import WebhookDelivery

__all__ = [
    "ACTIVE",
    "IN_FLIGHT",
    "TERMINAL",
    "Backend",
    "Budget",
    "CharacterSpendingMonth",
    "CostEntry",
    "CostKind",
    "CreatorSettings",
    "Export",
    "ExportStatus",
    "Generation",
    "GenerationEvent",
    "GenerationImage",
    "Policy",
    "Price",
    "PriceUnit",
    "PumpLease",
    "Scene",
    "SceneImage",
    "Series",
    "SpendingDay",
    "SpendingMonth",
    "Status",
    "Tier",
    "VideoSpendingMonth",
    "WebhookDelivery",
    "upload_thumbnail",
    "upload_video",
]
