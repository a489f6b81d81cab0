"""Failures become short pages: a CRM that does not answer, a bug; never a traceback or data."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from console.conftest import History
from crmsync.console import Console, create_app
from crmsync.console.failures import ContainFailures


def test_an_unreachable_crm_is_a_page_saying_so(history: History) -> None:
    broken = history.crm.workdir / "unreachable.toml"
    broken.write_text(history.crm.config.read_text("utf-8").replace(
        history.crm.server.base_url, "http://127.0.0.1:9") + "[sync]\nmax_attempts = 1\n",
        "utf-8")
    with TestClient(create_app(Console(broken)), base_url="http://127.0.0.1") as client:
        assert client.get("/runs").status_code == 200, "history needs no CRM"
        preview = client.get(f"/runs/{history.ok_id}/undo")
        assert preview.status_code in (502, 503), preview.text
        assert "127.0.0.1:9" in preview.text and "Traceback" not in preview.text
        assert history.crm.server.token not in preview.text


def test_an_unexpected_error_names_only_its_class(caplog: pytest.LogCaptureFixture) -> None:
    def boom(request: Request) -> Response:
        raise ValueError("jane.doe@example.com said no")  # what an SDK message may quote

    app = Starlette(routes=[Route("/", boom)])
    app.add_middleware(ContainFailures)
    with caplog.at_level(logging.ERROR), TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "ValueError" in response.text and "jane.doe" not in response.text
    assert "ValueError" in caplog.text and "jane.doe" not in caplog.text
