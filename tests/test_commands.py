"""The headless interface: management commands a script (or a test) drives."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from generations.providers import registry
from generations.providers.models import Backend, Price

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_add_backend_installs_the_default_prices_of_its_protocol():
    run("add_backend", "Official", protocol="openai_videos", base_url="https://api.example.com/v1", api_key="sk-1")
    run("add_backend", "Agg", protocol="task_api", base_url="https://agg.example.com/v1", api_key="sk-2")
    official, agg = Backend.objects.get(name="Official"), Backend.objects.get(name="Agg")
    assert official.tier == "official" and agg.tier == "aggregator"
    assert official.key == "sk-1"
    assert {(p.model, p.size, p.amount) for p in official.prices.filter(unit="per_second")} == {
        ("sora-2", "", Decimal("0.100000")),
        ("sora-2-pro", "", Decimal("0.300000")),
        ("sora-2-pro", "1024x1792", Decimal("0.500000")),
        ("sora-2-pro", "1792x1024", Decimal("0.500000")),
    }
    assert Price.objects.get(backend=agg, unit="per_request").amount == Decimal("0.12")


def test_add_backend_refuses_a_bad_url():
    with pytest.raises(CommandError, match="not an http"):
        run("add_backend", "X", protocol="task_api", base_url="ftp://nope", api_key="k")


def test_generate_waits_and_prints_the_result_as_json(alice, official):
    out = run("generate", user="alice", prompt="A snail race", backend=official.name, seconds="4", wait=True, json=True)
    result = json.loads(out)
    assert result["status"] == "completed"
    assert result["cost_usd"] == "0.40"
    assert result["backend"] == "Simulated official" and result["model"] == "sora-2"
    assert result["seconds"] == "4" and result["size"] == "720x1280"
    assert result["prompt_sent"] == "A snail race"
    assert result["video_file"].endswith(".mp4") and result["error"] is None


def test_generate_on_the_aggregator_defaults_to_its_shortest_length(alice, aggregator):
    result = json.loads(run("generate", user="alice", prompt="A kettle", backend=aggregator.name, wait=True, json=True))
    assert result["seconds"] == "10" and result["cost_usd"] == "0.12"


def test_generate_routes_by_the_policy_asked_for(alice, official, aggregator):
    aggregator.offers = {"sora-2": {"seconds": ["4"], "sizes": ["720x1280"]}}
    aggregator.save()
    cheapest = json.loads(run("generate", user="alice", prompt="A kite", seconds="4", policy="cost", json=True))
    stable = json.loads(run("generate", user="alice", prompt="A kite", seconds="4", policy="stability", json=True))
    assert cheapest["backend"] == "Simulated aggregator" and cheapest["routing"].startswith("cost:")
    assert stable["backend"] == "Simulated official" and stable["routing"].startswith("stability:")
    with pytest.raises(CommandError, match="invalid choice"):
        run("generate", "--user=alice", "--prompt=A kite", "--policy=fastest")


def test_generate_exits_non_zero_with_one_clear_line_on_failure(alice, official):
    with pytest.raises(CommandError, match="failed: The simulated renderer failed halfway"):
        run("generate", user="alice", prompt="Boom #fail", backend=official.name, seconds="4", wait=True)
    with pytest.raises(CommandError, match="No user called 'carol'"):
        run("generate", user="carol", prompt="x")
    with pytest.raises(CommandError, match="No backend called 'Nope'"):
        run("generate", user="alice", prompt="x", backend="Nope")
    with pytest.raises(CommandError, match="@ghost"):
        run("generate", user="alice", prompt="@ghost", backend=official.name, seconds="4")


def test_add_character_from_a_url_waits_for_every_backend(alice, official, aggregator):
    source = json.loads(
        run("generate", user="alice", prompt="Source clip", backend=aggregator.name, wait=True, json=True)
    )
    from generations.models import Generation

    url = Generation.objects.get(pk=source["id"]).remote_video_url
    out = run("add_character", user="alice", name="Kite", handle="kite", video_url=url, wait=True, json=True)
    result = json.loads(out)
    assert {b["backend"]: b["status"] for b in result["bindings"]} == {
        "Simulated official": "ready",
        "Simulated aggregator": "ready",
    }


def test_add_character_refuses_a_bad_handle(alice, official):
    with pytest.raises(CommandError, match="handle"):
        run("add_character", user="alice", name="X", handle="Not OK!", video_url="http://127.0.0.1:9/x.mp4")


def test_spending_reports_the_month_per_backend(alice, official, aggregator):
    run("generate", user="alice", prompt="One", backend=official.name, seconds="4", wait=True)
    run("generate", user="alice", prompt="Two", backend=aggregator.name, wait=True)
    with pytest.raises(CommandError):
        run("generate", user="alice", prompt="Three #fail", backend=aggregator.name, wait=True)

    report = json.loads(run("spending", user="alice", json=True))

    lines = {line["backend"]: line for line in report["backends"]}
    assert lines["Simulated official"]["net_usd"] == "0.40"
    assert lines["Simulated aggregator"]["charged_usd"] == "0.24"
    assert lines["Simulated aggregator"]["refunded_usd"] == "0.12"
    assert report["net_usd"] == "0.52"
    assert "net $0.52" in run("spending", user="alice")


def test_spending_refuses_a_bad_month():
    with pytest.raises(CommandError, match="YYYY-MM"):
        run("spending", month="November")


def test_a_new_backend_spells_out_what_it_offers_for_the_admin_to_edit():
    run("add_backend", "Official", protocol="openai_videos", base_url="https://api.example.com/v1", api_key="k")
    offers = Backend.objects.get(name="Official").offers
    assert offers["sora-2"]["seconds"] == ["4", "8", "12"]
    assert "1792x1024" in offers["sora-2-pro"]["sizes"]


def test_a_fresh_seed_makes_a_random_simulator_key_that_the_seeded_backends_use(live_server, settings, tmp_path):
    import requests

    settings.SITE_URL = live_server.url
    settings.SIMULATOR_API_KEYS = []  # a fresh install: no key configured
    settings.ENV_FILE = tmp_path / ".env"
    out = run("seed_demo", site_url=live_server.url)

    assert "Simulator API key: a new random one, kept in .env" in out and "Login: demo / demo" in out
    lines = settings.ENV_FILE.read_text().splitlines()
    key = dict(line.split("=", 1) for line in lines if not line.startswith("#"))["SIMULATOR_API_KEYS"]
    assert len(key) == 48 and key != "sim-local-key"
    assert {b.key for b in Backend.objects.all()} == {key}
    assert settings.ENV_FILE.stat().st_mode & 0o077 == 0  # only the owner may read it

    # The web process started next reads the key from .env: the seeded backends work, the old default does not.
    settings.SIMULATOR_API_KEYS = [key]
    aggregator = Backend.objects.get(name="Simulated aggregator")
    assert (
        requests.get(
            f"{aggregator.base_url}/sora/characters", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).status_code
        == 200
    )
    assert (
        requests.get(
            f"{aggregator.base_url}/sora/characters", headers={"Authorization": "Bearer sim-local-key"}, timeout=10
        ).status_code
        == 401
    )
    run("seed_demo", site_url=live_server.url)  # the next `make run`: same key, nothing written
    assert settings.ENV_FILE.read_text().splitlines() == lines and {b.key for b in Backend.objects.all()} == {key}


def test_another_install_gets_another_simulator_key(settings, tmp_path):
    settings.SIMULATOR_API_KEYS = []
    keys = set()
    for install in ("one", "two"):
        settings.ENV_FILE = tmp_path / f"{install}.env"
        run("seed_demo", site_url="http://127.0.0.1:9")
        keys.add(Backend.objects.get(name="Simulated official").key)
    assert len(keys) == 2


def test_seed_demo_makes_backends_logins_and_a_ready_demo_character(live_server, settings):
    from characters.models import Character

    settings.SITE_URL = live_server.url
    run("seed_demo", site_url=live_server.url)
    run("seed_demo", site_url=live_server.url)  # idempotent

    simulated = {spec.simulator_backend for spec in registry.specs() if spec.simulator_path}
    assert {"Simulated official", "Simulated aggregator", "Simulated Veo"} <= simulated
    assert set(Backend.objects.values_list("name", flat=True)) == simulated  # one per protocol
    mossy = Character.objects.get(handle="mossy", owner__username="demo")
    assert {b.status for b in mossy.bindings.all()} == {"ready"} and mossy.bindings.count() == len(simulated)
    assert mossy.avatar


@pytest.mark.django_db
@pytest.mark.parametrize("flag, unit", [("price_per_second", "per_second"), ("price_per_request", "per_request")])
def test_add_backend_writes_the_first_price_row_from_a_flag(flag, unit):
    call_command(
        "add_backend",
        "Priced",
        protocol="task_api",
        base_url="http://127.0.0.1:9/v1",
        api_key="k",
        **{flag: Decimal("0.07")},
        stdout=StringIO(),
    )
    backend = Backend.objects.get(name="Priced")
    assert backend.prices.filter(unit=unit, amount=Decimal("0.07"), model="", size="").exists()
    # The flag is the backend's price: the protocol's default video prices are not installed beside it.
    assert not backend.prices.filter(unit__in=["per_second", "per_request"]).exclude(amount=Decimal("0.07")).exists()
    assert backend.prices.filter(unit="per_character").exists()


@pytest.mark.django_db
def test_add_backend_refuses_a_negative_price_with_one_line():
    with pytest.raises(CommandError, match="non-negative"):
        call_command(
            "add_backend",
            "Priced",
            protocol="task_api",
            base_url="http://127.0.0.1:9/v1",
            api_key="k",
            price_per_second=Decimal("-1"),
            stdout=StringIO(),
        )


def test_seed_demo_prices_every_simulated_model_so_each_can_be_routed_to(live_server, settings):
    from generations.providers.fal_queue import KLING_IMAGE, KLING_MASTER

    settings.SITE_URL = live_server.url
    run("seed_demo", site_url=live_server.url)
    fal = Backend.objects.get(name="Simulated fal")
    fal.offers.pop(KLING_IMAGE)  # seeded before the image-to-video app was in fal's default offer
    fal.save()
    fal.prices.filter(model=KLING_IMAGE).delete()

    run("seed_demo", site_url=live_server.url)  # the next `make run`

    fal.refresh_from_db()
    assert KLING_IMAGE in fal.offers
    assert fal.price_for("per_second", KLING_IMAGE).amount == Decimal("0.10")  # the demo price
    assert fal.price_for("per_second", KLING_MASTER).amount == Decimal("0.28")  # its own, untouched
    run("seed_demo", site_url=live_server.url)
    assert fal.prices.filter(model=KLING_IMAGE).count() == 1
