"""Who may talk to `segue serve`: the token on every route but health, the bind rule, browsers, the client's
words when the token is wrong or the server is gone. A real uvicorn on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_rig import TOKEN, RunningServer, free_port, thread_server
from starlette.routing import Route

from engine import entrypoints
from engine.errors import BadInputError, EngineError
from engine.remote import RemoteEngine
from engine.server.config import ServerConfig, parse_devices


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with thread_server(tmp_path_factory.mktemp("data")) as running:
        yield running


def flat_routes(routes: list[Any], prefix: str = "") -> Iterator[Route]:
    """The app's routes, through the routers it includes (FastAPI wraps each in an included-router object)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from flat_routes(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            assert isinstance(route, Route), f"unexpected route type {type(route)}"
            yield Route(prefix + route.path, route.endpoint, methods=list(route.methods or ()))


def every_route(server: RunningServer) -> list[tuple[str, str]]:
    """(method, concrete path) for every route of the app, path parameters filled in."""
    found = []
    for route in flat_routes(server.app.routes):  # type: ignore[attr-defined]
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, path))
    assert len(found) >= 13
    return found


def test_every_route_but_health_refuses_a_missing_or_wrong_token(server: RunningServer) -> None:
    routes = every_route(server)
    paths = {p for _, p in routes}
    assert {"/v1/health", "/v1/jobs", "/v1/models", "/v1/devices", "/openapi.json", "/v1/jobs/x1/events",
            "/v1/jobs/x1/files/x1", "/v1/jobs/x1/result.zip", "/v1/jobs/x1/cancel"} <= paths  # fmt: skip
    client = httpx.Client(base_url=server.url, timeout=5)
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
            response = client.request(method, path, headers=headers)
            if path == "/v1/health":
                assert response.status_code == 200, (method, path)
            else:
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert "token" in response.json()["detail"]
        right = client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code in (200, 404, 422), (method, path, right.status_code, right.text)
    client.close()


def test_the_schema_is_served_behind_the_token_and_declares_bearer_auth(server: RunningServer) -> None:
    schema = httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/v1/jobs/{job_id}/events" in schema["paths"] and "/v1/health" in schema["paths"]


def test_browsers_are_refused(server: RunningServer) -> None:
    response = httpx.get(
        f"{server.url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}", "Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and "browsers" in response.json()["detail"]


def test_a_server_without_a_token_answers_loopback_names_only(tmp_path: Path) -> None:
    with thread_server(tmp_path, token=None) as running:
        assert httpx.get(f"{running.url}/v1/models").status_code == 200
        rebound = httpx.get(f"{running.url}/v1/models", headers={"Host": "evil.example:8750"})
        assert rebound.status_code == 421
        assert RemoteEngine(running.url).models()[0].name == "fake-midi"


def test_the_client_says_the_token_is_wrong_and_what_to_do(server: RunningServer) -> None:
    engine = entrypoints.open_engine(server.url, token="not-the-token-0123456789")
    with pytest.raises(EngineError) as error:
        engine.models()
    message = str(error.value)
    assert server.url in message and "refused the token" in message and "--token" in message
    names = [m.name for m in entrypoints.open_engine(server.url, token=TOKEN).models()]
    assert names == ["fake-midi", "fake-slow", "fake-steady"]


def test_the_client_says_when_no_server_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EngineError) as error:
        RemoteEngine(url, TOKEN).models()
    assert f"cannot reach the Segue server at {url}" in str(error.value) and "segue serve" in str(error.value)
    with pytest.raises(BadInputError, match="not a server URL"):
        entrypoints.open_engine("http://")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"host": "0.0.0.0"}, "refusing to listen on 0.0.0.0 without a token"),
        ({"host": "192.168.1.20"}, "refusing to listen on 192.168.1.20 without a token"),
        ({"host": "::"}, "without a token"),
        ({"host": "0.0.0.0", "token": "short"}, "at least 16"),
        ({"token": "ünïcödé-töken-0123456789"}, "printable ASCII"),
        ({"devices": ("gpu0",)}, "unknown device 'gpu0'"),
        ({"devices": ("cpu", "cpu")}, "names a device twice"),
        ({"server_id": "Node 1"}, "--server-id"),
    ],
)
def test_settings_are_checked_before_listening(settings: dict[str, object], expected: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=re.escape(expected)):
        ServerConfig(data_dir=tmp_path, **settings).check()  # type: ignore[arg-type]


def test_loopback_needs_no_token_and_devices_parse(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        ServerConfig(host=host, data_dir=tmp_path).check()
    ServerConfig(host="0.0.0.0", token=TOKEN, data_dir=tmp_path).check()
    assert parse_devices("cuda:0, cuda:1") == ("cuda:0", "cuda:1")


def test_cuda_devices_must_exist_for_the_local_engine() -> None:
    torch = pytest.importorskip("torch")
    from engine.server.config import check_devices_exist

    count = torch.cuda.device_count()
    check_devices_exist(("cpu",))
    check_devices_exist(tuple(f"cuda:{i}" for i in range(count)))
    with pytest.raises(BadInputError, match=f"names cuda:{count}, but this machine has {count} CUDA device"):
        check_devices_exist((f"cuda:{count}",))
