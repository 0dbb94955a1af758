"""Characters: registered on each backend from the stored clip, mentioned as @handle, extracted."""

import pytest

from characters import mentions, registry
from characters.models import BindingStatus, CharacterBinding
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.states import Status
from simulator.render import look_for, render_mp4
from tests.conftest import drive
from tests.factories import make_character

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clip_bytes():
    return render_mp4(look_for("a mossy robot", "1280x720", "clip"), 2)


def test_a_character_is_registered_on_both_backends_from_its_stored_clip(alice, official, aggregator, clip_bytes):
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")

    registry.bind(mossy, official)  # uploads the clip
    registry.bind(mossy, aggregator)  # gives a signed link to the clip

    bindings = {b.backend_id: b for b in mossy.bindings.all()}
    assert bindings[official.pk].status == BindingStatus.READY, bindings[official.pk].error
    assert bindings[aggregator.pk].status == BindingStatus.READY, bindings[aggregator.pk].error
    assert bindings[official.pk].remote_id.startswith("char_")
    assert bindings[official.pk].remote_id != bindings[aggregator.pk].remote_id  # an id lives on one backend


def test_binding_twice_does_not_register_twice(alice, official, clip_bytes):
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    first = registry.bind(mossy, official)
    second = registry.bind(mossy, official)
    first.refresh_from_db()
    assert first.pk == second.pk and mossy.bindings.count() == 1


def test_a_mention_becomes_an_id_in_the_prompt_on_task_api(alice, aggregator, clip_bytes):
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, aggregator)
    remote_id = mossy.bindings.get().remote_id

    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice,
                prompt="@mossy waters the garden",
                model="sora-2",
                seconds=10,
                size="720x1280",
                backend=aggregator,
            )
        ).generation
    )

    assert generation.prompt_sent == f"@{remote_id} waters the garden"
    assert generation.status == Status.COMPLETED
    assert list(generation.characters.all()) == [mossy]


def test_a_mention_becomes_a_character_reference_and_the_name_on_openai_videos(alice, official, clip_bytes):
    mossy = make_character(alice, "mossy", name="Mossy the robot", clip=clip_bytes, description="A test character")
    registry.bind(mossy, official)

    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="@Mossy waters the garden", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )

    assert generation.prompt_sent == "Mossy the robot waters the garden"
    assert generation.characters_sent == [mossy.bindings.get().remote_id]
    assert generation.status == Status.COMPLETED


def test_an_unknown_handle_is_refused_naming_it(alice, official):
    with pytest.raises(lifecycle.GenerationRefused, match="@nobody") as exc:
        lifecycle.start(
            GenerationRequest(
                alice, prompt="@nobody dances", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        )
    assert exc.value.field == "prompt"


def test_another_creators_character_is_unknown_to_me(alice, bob, official, clip_bytes):
    make_character(bob, "mossy", clip=clip_bytes, description="A test character")
    with pytest.raises(lifecycle.GenerationRefused, match="@mossy"):
        lifecycle.start(
            GenerationRequest(
                alice, prompt="@mossy dances", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        )


def test_a_character_not_yet_on_the_chosen_backend_is_registered_there_before_the_video_is_sent(
    alice, official, aggregator, clip_bytes
):
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, aggregator)
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="@mossy dances", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    assert "(@mossy registered on Simulated official first)" in generation.routing_reason
    assert generation.prompt_sent == ""  # written for the backend once the character is ready there

    generation = drive(generation)

    binding = mossy.bindings.get(backend=official)
    assert generation.status == Status.COMPLETED
    assert binding.status == "ready" and binding.remote_id
    assert generation.characters_sent == [binding.remote_id]
    assert "@mossy" not in generation.prompt_sent


def test_a_character_that_cannot_be_registered_on_the_chosen_backend_is_refused_naming_it(alice, official):
    make_character(alice, "mossy", description="No clip, no stills")
    with pytest.raises(
        lifecycle.GenerationRefused, match="@mossy is not registered on Simulated official and has no clip"
    ):
        lifecycle.start(
            GenerationRequest(
                alice, prompt="@mossy dances", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        )


def test_automatic_routing_goes_where_the_character_is_ready(alice, official, aggregator, clip_bytes):
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, official)
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="@mossy dances", model="sora-2", seconds=4, size="720x1280")
    ).generation
    assert generation.backend == official
    assert "@mossy ready" in generation.routing_reason


def test_a_character_can_be_extracted_from_a_finished_task(alice, aggregator):
    source = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="A fox in a scarf", model="sora-2", seconds=10, size="720x1280", backend=aggregator
            )
        ).generation
    )
    fox = make_character(alice, "fox", source_generation=source)

    registry.bind(fox, aggregator, extract_from_task=source.remote_id)

    binding = fox.bindings.get()
    assert binding.status == BindingStatus.READY and binding.remote_id.startswith("char_")


def test_a_clip_url_that_cannot_be_fetched_fails_the_binding_with_a_reason(alice, official):
    ghost = make_character(alice, "ghost", source_url="http://127.0.0.1:9/nothing.mp4")
    registry.bind(ghost, official)
    binding = ghost.bindings.get()
    assert binding.status == BindingStatus.FAILED
    assert "Could not download the clip" in binding.error


@pytest.mark.parametrize(
    "prompt,handles",
    [
        ("@a1 and @b_2 meet @a1", ["a1", "b_2"]),
        ("mail me at x@example.com", []),
        ("@@mossy", []),
        ("(@Mossy)!", ["mossy"]),
    ],
)
def test_handles_are_found_in_prompts(prompt, handles):
    assert mentions.find_handles(prompt) == handles


def test_a_character_fee_is_charged_once_when_the_character_is_created(alice, aggregator, clip_bytes):
    from decimal import Decimal

    from generations.models import CostEntry

    aggregator.prices.filter(unit="per_character").update(amount=Decimal("0.05"))
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, aggregator)
    registry.register(mossy.bindings.get().pk)  # a second run of the task changes nothing

    fee = CostEntry.objects.get(binding__character=mossy)
    assert fee.kind == "charge" and fee.amount == Decimal("0.05") and fee.price.unit == "per_character"


def test_a_character_from_a_url_gets_an_avatar_once_its_clip_is_fetched(alice, aggregator, official):
    source = drive(
        lifecycle.start(
            GenerationRequest(alice, prompt="A heron", model="sora-2", seconds=10, size="720x1280", backend=aggregator)
        ).generation
    )
    heron = make_character(alice, "heron", source_url=source.remote_video_url)
    registry.bind(heron, official)
    heron.refresh_from_db()
    assert heron.source_clip and heron.avatar


def test_a_registration_that_hits_a_provider_outage_is_retried_until_it_works(alice, official, clip_bytes):
    from django.utils import timezone

    from generations.jobs import pump

    reachable = official.base_url
    official.base_url = "http://127.0.0.1:9/v1"  # down for a moment
    official.save()
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, official)
    binding = mossy.bindings.get()
    assert binding.status == BindingStatus.PROCESSING and binding.error.startswith("Retrying: ")
    assert binding.attempts == 1

    official.base_url = reachable  # back up
    official.save()
    CharacterBinding.objects.filter(pk=binding.pk).update(next_try_at=timezone.now())  # its wait is over
    pump.tick()

    binding.refresh_from_db()
    assert binding.status == BindingStatus.READY and binding.attempts == 2 and binding.error == ""


def test_a_registration_gives_up_after_a_few_transient_failures(alice, official, clip_bytes):
    from django.utils import timezone

    from generations.jobs import pump

    official.base_url = "http://127.0.0.1:9/v1"
    official.save()
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    registry.bind(mossy, official)
    for _ in range(registry.MAX_ATTEMPTS):
        CharacterBinding.objects.filter(character=mossy, status="processing").update(next_try_at=timezone.now())
        pump.tick()
    binding = mossy.bindings.get()
    assert binding.status == BindingStatus.FAILED and "Could not reach" in binding.error
    assert binding.attempts == registry.MAX_ATTEMPTS
