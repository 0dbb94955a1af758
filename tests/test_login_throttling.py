"""Guessing passwords: an account is locked after 5 failures, an address after 20, for 15 minutes."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db.models import F

from tests.factories import make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed log-in attempts"


def log_in(client, username, password, url="/login/", address="127.0.0.1", **headers):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def logged_in_as(client):
    response = client.get("/")
    return response.context["user"].get_username() if response.status_code == 200 else None


@pytest.fixture
def staff():
    return make_user("root", password="root-password", is_staff=True, is_superuser=True)


def test_the_right_password_is_refused_after_five_wrong_ones(client, alice):
    for _ in range(4):
        response = log_in(client, "alice", "guess")
        assert response.status_code == 200 and "Please enter a correct username and password" in response.text
    response = log_in(client, "alice", "guess")
    assert response.status_code == 429 and LOCKED in response.text

    response = log_in(client, "alice", "alice-password")
    assert response.status_code == 429
    assert "Too many failed log-in attempts\n      for this account" in response.text
    assert "about 15 minutes" in response.text
    assert 890 <= int(response["Retry-After"]) <= 900
    assert "<title>Too many attempts · Sora Studio</title>" in response.text  # the site's own page
    assert logged_in_as(client) is None


def test_the_admin_login_is_throttled_the_same_way(client, staff):
    for _ in range(5):
        response = log_in(client, "root", "guess", url="/admin/login/")
    assert response.status_code == 429 and LOCKED in response.text

    response = log_in(client, "root", "root-password", url="/admin/login/?next=/admin/")
    assert response.status_code == 429 and LOCKED in response.text and response["Retry-After"]
    assert client.get("/admin/").status_code == 302  # still sent to log in


def test_failures_on_the_site_and_the_admin_add_up(client, staff):
    for url in ["/login/", "/admin/login/"] * 2 + ["/login/"]:
        response = log_in(client, "root", "guess", url=url)
    assert response.status_code == 429


def test_one_address_guessing_many_accounts_is_throttled(client, alice, bob):
    for number in range(10):  # 20 failures, 2 per account: no account reaches its own limit
        for _ in range(2):
            response = log_in(client, f"user{number}", "guess", address="203.0.113.7")
    assert response.status_code == 429

    response = log_in(client, "bob", "bob-password", address="203.0.113.7")
    assert response.status_code == 429 and "from your network address" in response.text
    assert log_in(client, "bob", "bob-password", address="198.51.100.1").status_code == 302


def test_a_locked_account_is_locked_from_every_address(client, alice):
    for number in range(5):
        log_in(client, "alice", "guess", address=f"203.0.113.{number}")
    response = log_in(client, "alice", "alice-password", address="198.51.100.1")
    assert response.status_code == 429 and "for this account" in response.text


def test_a_lockout_ends_after_the_cool_off(client, alice):
    for _ in range(5):
        log_in(client, "alice", "guess")
    assert log_in(client, "alice", "alice-password").status_code == 429

    # A quarter of an hour passes (the attempts are moved back rather than the clock forward).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=15, seconds=1))
    response = log_in(client, "alice", "alice-password")
    assert response.status_code == 302 and logged_in_as(client) == "alice"


def test_trying_again_while_locked_does_not_extend_the_lockout(client, alice):
    for _ in range(5):
        log_in(client, "alice", "guess")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    response = log_in(client, "alice", "guess")
    assert response.status_code == 429 and int(response["Retry-After"]) <= 60
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=1, seconds=1))
    assert log_in(client, "alice", "alice-password").status_code == 302


def test_a_successful_login_resets_the_account_count(client, alice):
    for _ in range(4):
        log_in(client, "alice", "guess")
    assert log_in(client, "alice", "alice-password").status_code == 302
    client.post("/logout/")
    for _ in range(4):
        assert log_in(client, "alice", "guess").status_code == 200
    assert log_in(client, "alice", "alice-password").status_code == 302


def test_a_successful_login_keeps_the_address_count_of_other_accounts(client, alice):
    for number in range(19):
        log_in(client, f"user{number}", "guess", address="203.0.113.7")
    assert log_in(client, "alice", "alice-password", address="203.0.113.7").status_code == 302
    client.post("/logout/")
    assert log_in(client, "user0", "guess", address="203.0.113.7").status_code == 429


def test_limits_come_from_settings(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 2
    log_in(client, "alice", "guess")
    assert log_in(client, "alice", "guess").status_code == 429


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(client, alice):
    for number in range(20):  # a client rotating the header it writes itself gains nothing
        log_in(client, f"user{number}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
    assert log_in(client, "alice", "alice-password").status_code == 429


def test_behind_one_trusted_proxy_the_address_it_saw_is_counted(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for number in range(20):  # the client's own part of the header (on the left) is not believed
        log_in(client, f"user{number}", "guess", address=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}, 203.0.113.7")
    assert (
        log_in(client, "alice", "alice-password", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    )
    assert (
        log_in(client, "alice", "alice-password", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302
    )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_createsuperuser_still_works(django_user_model):
    call_command("createsuperuser", interactive=False, username="boss", email="boss@example.com", verbosity=0)
    assert django_user_model.objects.get(username="boss").is_superuser
