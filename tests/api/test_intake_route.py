"""The intake's route reads a JSON report itself (api.intake.IntakeRoute): the same answers as
FastAPI's own handler, and that handler for every request it would refuse."""

import json

import fastapi.routing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.intake import get_intake
from tests.api.conftest import bearer

INSIDE = {"lon": 112.8605, "lat": 36.8415}  # inside the demo's grids


@pytest.fixture(scope="module")
def worker(app_client):
    return bearer(app_client, "worker01")


@pytest.fixture
def solved(monkeypatch):
    """How many times FastAPI solved a route's parameters (its own handler ran)."""
    calls = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*args, **kwargs):
        calls.append(kwargs["dependant"].call)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


def post(client, headers, body, content_type="application/json"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    if content_type is not None:
        headers = headers | {"Content-Type": content_type}
    return client.post("/api/v1/issues", content=content, headers=headers)


def by_fastapi(client, *args, **kwargs):
    """The same request through FastAPI's own handler: the route gives way to it while a
    dependency of the intake's is overridden (here by itself)."""
    client.app.dependency_overrides[get_intake] = get_intake
    try:
        return post(client, *args, **kwargs)
    finally:
        client.app.dependency_overrides.pop(get_intake)


def test_a_json_report_is_read_without_fastapis_solving(client, worker, solved):
    for content_type in ("application/json", "application/json; charset=utf-8",
                         "Application/JSON", "application/geo+json"):
        r = post(client, worker, {"category": "garbage", **INSIDE}, content_type)
        assert r.status_code == 201, r.text
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [INSIDE["lon"],
               INSIDE["lat"]]}, "properties": {"category": "garbage"}}
    assert post(client, worker, feature).status_code == 201
    keyed = post(client, worker | {"Idempotency-Key": "route-k1"}, {"category": "garbage", **INSIDE})
    again = post(client, worker | {"Idempotency-Key": "route-k1"}, {"category": "garbage", **INSIDE})
    assert (keyed.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == keyed.json()["id"]
    assert solved == []  # the intake's own reading, every time


def test_the_same_report_gets_the_same_answer_both_ways(client, worker, solved):
    body = {"category": "garbage", "description": "垃圾堆积", "urgency": "urgent", **INSIDE}
    ours = post(client, worker, body)
    theirs = by_fastapi(client, worker, body)
    assert solved  # the second went FastAPI's way
    assert ours.status_code == theirs.status_code == 201
    a, b = ours.json(), theirs.json()
    assert a["geometry"] == b["geometry"]
    same = {k: v for k, v in a["properties"].items() if k not in ("id", "reported_at", "due_at")}
    assert same == {k: v for k, v in b["properties"].items() if k in same}


def test_a_feature_refused_by_the_endpoint_is_refused_alike(client, worker, solved):
    """A Feature's coordinates are checked by the endpoint (after the body's validation)."""
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [500, 36.84]},
            "properties": {"category": "garbage"}}
    ours = post(client, worker, body)
    assert solved == []
    theirs = by_fastapi(client, worker, body)
    assert ours.status_code == theirs.status_code == 422
    assert ours.json() == theirs.json()
    assert post(client, {}, body).status_code == 401


REFUSED = [  # (body, extra headers, content type): each refused by validation or its media type
    ({"category": "garbage"}, {}, "application/json"),
    ({"category": "garbage", "lon": "东经112度", "lat": 36.84}, {}, "application/json"),
    ({"category": "garbage", "lon": 112.86, "lat": 36.84, "colour": "red"}, {}, "application/json"),
    ({"category": "garbage", **INSIDE}, {"Idempotency-Key": "k" * 256}, "application/json"),
    ({"category": 7, "lon": 500}, {"Idempotency-Key": "k" * 256}, "application/json"),
    ([{"category": "garbage", **INSIDE}], {}, "application/json"),
    ("garbage", {}, "application/json"),
    (b"not json", {}, "application/json"),
    (b'{"category": "garbage", "lon": NaN, "lat": 36.84}', {}, "application/json"),
    (b"", {}, "application/json"),
    ({"category": "garbage", **INSIDE}, {}, "text/plain"),
    ({"category": "garbage", **INSIDE}, {}, None),
    ({"category": "garbage", **INSIDE}, {}, "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("body", "extra", "content_type"), REFUSED)
def test_what_the_route_would_refuse_is_answered_as_fastapi_would(client, worker, body, extra,
                                                                  content_type):
    ours = post(client, worker | extra, body, content_type)
    theirs = by_fastapi(client, worker | extra, body, content_type)
    assert ours.status_code == theirs.status_code and ours.status_code >= 400
    assert ours.json() == theirs.json()
    # and a caller who may not report hears that first, as before
    assert post(client, {}, body, content_type).status_code == 401


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=False)
    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
FIELDS = ["category", "lon", "lat", "crs", "description", "reporter_contact", "facility_id",
          "photo_urls", "channel", "client_uuid", "location_from_photo", "urgency", "type",
          "geometry", "properties"]
REPORTS = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6) | st.fixed_dictionaries(
    {"category": st.sampled_from(["garbage", "sewer_blocked", "unknown"]),
     "lon": st.floats(112.85, 112.87) | VALUES, "lat": st.floats(36.83, 36.85) | VALUES},
    optional={"urgency": st.sampled_from(["normal", "urgent", "soon"]),
              "description": st.text(max_size=20), "location_from_photo": st.booleans()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=REPORTS, key=st.none() | st.text(min_size=1, max_size=300).filter(str.isprintable))
def test_any_report_gets_the_same_status_both_ways(client, worker, body, key):
    """Whatever the body, the two ways agree: both accept it (each storing a report of its own)
    or both refuse it with the same answer."""
    extra = {} if key is None or not key.isascii() else {"Idempotency-Key": key}
    theirs = by_fastapi(client, worker | extra, body)
    ours = post(client, worker | extra, body)
    if theirs.status_code < 300:
        assert ours.status_code in (200, 201), ours.text
    else:
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
