"""Property-based requests generated from the API's own OpenAPI schema: whatever the path
parameters, query and JSON body, and whoever asks, the API never answers 500."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.web import create_app
from services.station import Station
from tests.conftest import make_settings
from tests.integration.test_http_api import ROLE_USER, USERS, add_users, login
from tests.unit.services.test_steps import registered, through_collection

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
#: The id of an open donation (registered by the fixture).
OPEN: list[str] = []
SEGMENT = st.one_of(
    st.deferred(lambda: st.sampled_from(OPEN)),
    st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20),
    st.just("9000626000001"),
    st.sampled_from(["general_exam", "informed_consent", "seal", "signature", "heat_seal"]),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    settings_ = make_settings(tmp / "home", f"sqlite:///{tmp / 'ledger.sqlite'}")
    Station.initialise(settings_).close()
    add_users(settings_)
    app = create_app(settings_)
    with TestClient(app) as client:
        station: Station = app.state.ctx.station
        through_collection(station, registered(station, sequence=41), "9000626000001")
        OPEN.append(str(registered(station, sequence=42)))
        tokens = {name: login(client, name).json()["access_token"] for name, _, _ in USERS}
        yield client, tokens


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    schema = client.get("/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if path not in ("/api/v1/auth/logout",)  # would end the token the others use
    ]


def body_strategy(operation: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema_ref = content["application/json"].get("schema", {})
        keys = list(schema_ref.get("properties", {}))
        fixed = st.fixed_dictionaries({k: JSON for k in keys}) if keys else JSON
        return st.one_of(JSON, fixed).map(lambda value: {"content": json.dumps(value)})
    if "multipart/form-data" in content:
        return st.binary(max_size=200).map(lambda data: {"files": {"file": ("f.pdf", data)}})
    if "application/x-www-form-urlencoded" in content:
        form = st.fixed_dictionaries({"username": st.text(max_size=10), "password": st.text()})
        return form.map(lambda data: {"data": data})
    return st.just({})


def test_no_request_from_the_schema_gets_a_500(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    ops = operations(client)
    assert len(ops) >= 10

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        method, path, operation = data.draw(st.sampled_from(ops))
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                path = path.replace("{" + parameter["name"] + "}", data.draw(SEGMENT))
        query = {
            p["name"]: data.draw(st.text(max_size=10))
            for p in operation.get("parameters", [])
            if p["in"] == "query"
        }
        role = data.draw(st.sampled_from([None, *ROLE_USER]))
        headers = {"Authorization": f"Bearer {tokens[ROLE_USER[role]]}"} if role else {}
        if role and method == "POST":
            headers["Content-Type"] = "application/json"
        kwargs = data.draw(body_strategy(operation))
        if "files" in kwargs or "data" in kwargs:
            headers.pop("Content-Type", None)
        answer = client.request(method, path, params=query, headers=headers, **kwargs)
        assert answer.status_code < 500, (method, path, answer.text)

    one()
