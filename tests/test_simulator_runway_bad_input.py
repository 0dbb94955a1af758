"""Whatever JSON a client sends the simulated Runway, it answers in Runway's shape and never with a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db

HEADERS = {"Authorization": f"Bearer {SIM_KEY}", "X-Runway-Version": "2024-11-06"}
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["gen4.5", "gen4_turbo", "veo3.1", "sora-2"]) | junk,
        "promptText": st.text(max_size=30) | junk,
        "ratio": st.sampled_from(["1280:720", "960:960", "1:1"]) | junk,
        "duration": st.sampled_from([2, 5, 10, 11, 5.5, "5", 1e400, -1, 10**40]) | junk,
        "promptImage": st.sampled_from(["https://cdn.example/a.png", "data:image/png;base64,aGk=", "nope"])
        | st.lists(st.fixed_dictionaries({"uri": junk, "position": st.sampled_from(["first", "last"]) | junk}))
        | junk,
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["text_to_video", "image_to_video"]), body=fields | junk)
def test_any_body_is_answered_in_runways_shape_without_a_500(client, path, body):
    response = client.post(
        f"/simulator/runway/v1/{path}", data=json.dumps(body), content_type="application/json", headers=HEADERS
    )
    assert response.status_code in (200, 400, 429), response.content[:300]
    data = response.json()
    if response.status_code == 200:
        assert isinstance(data["id"], str)
    else:
        assert isinstance(data["error"], str)
