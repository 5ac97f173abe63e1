"""Schemathesis generates requests from our own OpenAPI document, as each role: none may get a
5xx, and every answer must conform to what the document declares for it.

Every operation is fuzzed as the anonymous caller and as each role (worker, leader, dispatcher,
department staff, admin) with that role's bearer token, so generated bodies reach the write
handlers, not only the log-in check: as the admin with every case the schema defines (boundary
and invalid values) and random ones, as the other roles with random ones. Requests go to the module's app on the test's connection,
each generated example in a savepoint of its own that is rolled back, so nothing generated stays
and one example never changes what the next one meets.

The checks: no 5xx; a documented answer carries the declared content type and matches the
declared schema (``content_type_conformance``, ``response_schema_conformance``). Statuses the
document does not list (401, 403, 404, 409...) are not a failure here: their bodies are
GridMap's, Open311's or OGC's error formats, which tests/api/test_error_table.py checks.
Bounded: a few examples per operation and role, so it fits every CI run.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.main import create_app
from tests.api.conftest import bearer
from tests.conftest import _forget_cached_state, app_settings

if os.environ.get("PYTEST_XDIST_WORKER"):
    # A failing operation is a subtest, and xdist drops subtest failures on the way back from
    # a worker: run green with a 5xx. `make test` runs this file in one process.
    pytest.fail("tests/api/test_schemathesis.py must run without pytest-xdist (-n): a failing "
                "operation would be lost; `make test` runs it apart", pytrace=False)

DOCUMENT = create_app(app_settings("postgresql://schema-only@127.0.0.1:1/none")).openapi()
# Every case the schema defines (schemathesis's coverage phase: boundaries and invalid values)
# and random ones: for the admin, whose writes reach every handler.
EVERY_CASE = schemathesis.openapi.from_dict(DOCUMENT)
# Random cases only (the explicit examples and the fuzzing phase): for the other roles.
RANDOM = schemathesis.openapi.from_dict(DOCUMENT)
RANDOM.config.phases.update(phases=["examples", "fuzzing"])
ROLES = ("worker03", "leader", "dispatcher", "shizheng01")
# The map pages are HTML and read only: fuzzed as the admin alone (each example builds a page).
PAGES = "^/maps/"
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def tokens(app_client) -> dict[str, dict]:
    return {user: bearer(app_client, user) for user in (*ROLES, "admin")}


def send(client, case, headers: dict):
    """The generated request through the test client (the app on the test's connection)."""
    sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    request = {"params": sent.get("params"), "headers": sent.get("headers"),
               "follow_redirects": False}
    if sent.get("cookies"):
        request["cookies"] = sent["cookies"]
    if "json" in sent:
        request["json"] = sent["json"]
    if sent.get("files") is not None:  # an empty multipart body comes as files=None
        request["files"] = [(name, _as_sent(part)) for name, part in sent["files"]]
    if "data" in sent:
        data = sent["data"]
        request["content" if isinstance(data, bytes | str) else "data"] = data
    response = client.request(sent["method"], sent["url"], **request)
    response.request.read()  # a multipart body (a photo) is a stream: schemathesis reads it back
    return response


def _as_sent(part: tuple) -> tuple:
    """A multipart part as a client sends it: a generated number or object in a form field
    (``taken_at=0``) goes as its text."""
    filename, content, *rest = part
    if not isinstance(content, bytes | str):
        content = json.dumps(content)
    return (filename, content, *rest)


def check(case, client, db_connection, headers: dict, who: str) -> None:
    savepoint = db_connection.begin_nested()
    try:
        response = send(client, case, headers)
    finally:
        savepoint.rollback()
        if case.method.upper() != "GET":  # a write moved the counters the caches are keyed by
            _forget_cached_state(client.app)
    assert response.status_code < 500, (who, case.method, case.formatted_path,
                                        response.status_code, response.text[:300])
    case.validate_response(response, checks=CHECKS)


@EVERY_CASE.exclude(path_regex=PAGES).parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_case_as_the_admin(case, client, tokens, db_connection):
    check(case, client, db_connection, tokens["admin"], "admin")


@pytest.mark.parametrize("role", ROLES)
@RANDOM.exclude(path_regex=PAGES).parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_cases_as_each_role(case, role, client, tokens, db_connection):
    check(case, client, db_connection, tokens[role], role)


@RANDOM.include(path_regex=PAGES).parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_pages_answer_the_admin_without_5xx(case, client, tokens, db_connection):
    check(case, client, db_connection, tokens["admin"], "admin")


@RANDOM.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_anonymous_get_no_5xx_either(case, client, db_connection):
    # most answers are 401 before any parameter is read: a few examples suffice
    check(case, client, db_connection, {}, "anonymous")
