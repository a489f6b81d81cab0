"""Login rules: none on loopback by default; the [console] token beyond it, or no start."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from crmsync.cli import main
from crmsync.config import Secret
from crmsync.console import Console, check_bind, create_app, is_loopback
from crmsync.errors import ConfigError, ExitCode

TOKEN = "s3cret-console-token"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A settings file with a state store and nothing else (no CRM needed for these pages)."""
    path = tmp_path / "crmsync.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{(tmp_path / "state.db").as_posix()}"\n', "utf-8")
    return path


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "localhost", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)  # no error


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "crm-admin.example"])
def test_any_other_address_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="without a login"):
        check_bind(host, None)
    with pytest.raises(ConfigError):
        check_bind(host, Secret(""))  # an empty token is no token
    check_bind(host, Secret(TOKEN))


def test_serve_refuses_a_public_address_without_a_token(config: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--host", "0.0.0.0"],
                                env={"CRMSYNC_CONSOLE__TOKEN": ""})
    assert result.exit_code == ExitCode.BAD_CONFIG, result.output
    assert "crmsync: error: refusing to serve the console on 0.0.0.0" in result.stderr
    assert "hint: set [console] token" in result.stderr
    assert "Traceback" not in result.output


def test_with_a_token_every_request_must_present_it(config: Path) -> None:
    app = create_app(Console(config), token=Secret(TOKEN))
    with TestClient(app, base_url="http://192.0.2.1") as client:
        bare = client.get("/runs")
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"].startswith("Basic realm=")
        assert TOKEN not in bare.text
        assert client.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(f"/runs?token={TOKEN}").status_code == 401  # never in a URL
        bearer = client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "Runs" in bearer.text
        assert TOKEN not in bearer.text
        basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
        assert client.get("/funnel", headers={"Authorization": f"Basic {basic}"}
                          ).status_code == 200
        wrong = base64.b64encode(b"admin:nope").decode()
        assert client.get("/funnel", headers={"Authorization": f"Basic {wrong}"}
                          ).status_code == 401
        assert client.post("/schedules/x/pause", data={"token": "t"}).status_code == 401


def test_without_a_token_loopback_pages_are_open(config: Path) -> None:
    with TestClient(create_app(Console(config)), base_url="http://127.0.0.1") as client:
        response = client.get("/runs")
        assert response.status_code == 200
        assert "No runs recorded yet" in response.text
        assert client.get("/favicon.ico").status_code == 204


def test_the_token_comes_from_the_environment_or_the_secrets_file(
        config: Path, tmp_path: Path) -> None:
    from crmsync.config import load_settings

    assert load_settings(config, env={"CRMSYNC_CONSOLE__TOKEN": TOKEN},
                         require_crm=False).console.token == Secret(TOKEN)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[console]\ntoken = "{TOKEN}"\n', "utf-8")
    settings = load_settings(config, env={"CRMSYNC_SECRETS_FILE": str(secrets)},
                             require_crm=False)
    assert settings.console.token == Secret(TOKEN)
    assert TOKEN not in repr(settings)


def test_without_a_token_only_loopback_host_names_are_answered(config: Path) -> None:
    # A site whose name the attacker re-points at 127.0.0.1 (DNS rebinding) gets nothing.
    with TestClient(create_app(Console(config)), base_url="http://evil.example:8765") as client:
        response = client.get("/runs")
        assert response.status_code == 403 and "answers only to" in response.text
    for base in ("http://localhost:8765", "http://[::1]:8765", "http://127.0.0.1"):
        with TestClient(create_app(Console(config)), base_url=base) as client:
            assert client.get("/runs").status_code == 200, base


def test_a_post_from_another_site_is_refused(config: Path) -> None:
    with TestClient(create_app(Console(config)), base_url="http://127.0.0.1:8765") as client:
        response = client.post("/schedules/nightly/pause", data={"token": "x"},
                               headers={"Origin": "https://evil.example"})
        assert response.status_code == 403 and "another site" in response.text
        same = client.post("/schedules/nightly/pause", data={"token": "x"},
                           headers={"Origin": "http://127.0.0.1:8765"})
        assert same.status_code == 403 and "stale" in same.text  # passed on, bad form token
