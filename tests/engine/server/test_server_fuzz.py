"""A schemathesis run over the server's own OpenAPI schema: every operation, generated valid and invalid
requests, against a real uvicorn (with a fake engine). No 5xx, every status and body as the schema says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_rig import TOKEN, RunningServer, thread_server

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with thread_server(tmp_path_factory.mktemp("data"), max_upload_bytes=256 * 1024) as running:
        yield running


def test_every_operation_survives_generated_requests(server: RunningServer, tmp_path: Path) -> None:
    import httpx

    spec = httpx.get(f"{server.url}/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=AUTH, checks=checks, timeout=10)

        check()
