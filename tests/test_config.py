"""Settings come from crmsync.toml, the environment and a secrets file; all problems at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.config import (
    STARTER_TOML,
    Secret,
    Settings,
    SettingsError,
    load_settings,
    write_starter,
)
from crmsync.errors import ConfigError, ExitCode

TOKEN = "pat-na1-0123456789abcdef"


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings looks for ./crmsync.toml; never pick up the repo's or a neighbour's.
    monkeypatch.chdir(tmp_path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def _load_error(path: Path | None = None, env: dict[str, str] | None = None) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load_settings(path, env or {})
    return info.value


def test_file_values_are_loaded_and_typed(tmp_path: Path) -> None:
    config = _write(tmp_path / "crmsync.toml", f"""
[crm]
type = "salesforce"
auth = "session"
base_url = "https://example.my.salesforce.com"
token = "{TOKEN}"
objects = ["Lead", "Contact"]
field_map = "connectors/sf.json"
[rules]
path = "rules/mine.json"
[sync]
batch_size = 150
retry_budget_s = 30
full = true
""")
    settings = load_settings(None, {})  # found in the working directory
    assert settings.config_file == Path("crmsync.toml")
    assert settings.crm.type == "salesforce" and settings.crm.auth == "session"
    assert settings.crm.objects == ("Lead", "Contact")
    assert settings.crm.secret("token") == TOKEN
    # relative paths in a file are anchored at the file's folder
    assert settings.crm.field_map == tmp_path / "connectors/sf.json"
    assert settings.rules.path == tmp_path / "rules/mine.json"
    assert settings.sync.batch_size == 150 and settings.sync.full is True
    assert settings.sync.retry_budget_s == 30.0 and isinstance(settings.sync.retry_budget_s, float)
    assert settings.sync.page_size is None and settings.sync.max_attempts == 5
    assert settings.state.url == "sqlite:///.crmsync/state.db"  # the default, cwd-relative
    assert load_settings(config, {}) == settings.__class__(**{
        **{f: getattr(settings, f) for f in ("crm", "rules", "state", "sync")},
        "config_file": config})


def test_env_overrides_file_and_is_coerced(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", '[crm]\ntype = "salesforce"\n[sync]\nbatch_size = 10\n')
    settings = load_settings(config, {
        "CRMSYNC_CRM__TYPE": "hubspot",
        "CRMSYNC_CRM__BASE_URL": "http://127.0.0.1:8765",
        "CRMSYNC_CRM__TOKEN": TOKEN,
        "CRMSYNC_CRM__OBJECTS": "Lead, Contact,",
        "CRMSYNC_RULES__PATH": "rules/default.json",
        "CRMSYNC_STATE__URL": "sqlite:///state.db",
        "CRMSYNC_SYNC__BATCH_SIZE": "75",
        "CRMSYNC_SYNC__FULL": "yes",
        "CRMSYNC_SYNC__RETRY_BUDGET_S": "2.5",
        "CRMSYNC_TEST_POSTGRES_URL": "ignored: not a CRMSYNC_<SECTION>__<KEY> name",
    })
    assert (settings.crm.type, settings.crm.auth) == ("hubspot", "private_app")
    assert settings.crm.base_url == "http://127.0.0.1:8765"
    assert settings.crm.objects == ("Lead", "Contact")
    assert settings.rules.path == Path("rules/default.json")  # env paths stay cwd-relative
    assert settings.state.url == "sqlite:///state.db"
    assert (settings.sync.batch_size, settings.sync.full, settings.sync.retry_budget_s) == (
        75, True, 2.5)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", """
[crm]
type = "salesforce"
auth = "pasword"
[sync]
batch_size = "many"
concurrency = 0
full = "maybe"
colour = "blue"
[rule]
path = "x.json"
""")
    error = _load_error(config, {"CRMSYNC_SYNC__PAGE_SIZE": "ten", "CRMSYNC_CRM__TOKNE": "x"})
    text = str(error)
    assert isinstance(error, ConfigError) and error.exit_code == ExitCode.BAD_CONFIG
    assert len(error.problems) == 8, text
    for expected in (
        "[crm] auth: expected one of session, password, jwt, got 'pasword' "
        "(did you mean password?)",
        "[sync] batch_size: expected an integer, got 'many'",
        "[sync] concurrency: expected at least 1, got 0",
        "[sync] full: expected true or false",
        "unknown key [sync] colour",
        "unknown section [rule] (did you mean rules?)",
        "[sync] page_size: expected an integer, got 'ten' (from env CRMSYNC_SYNC__PAGE_SIZE)",
        "unknown setting CRMSYNC_CRM__TOKNE (did you mean CRMSYNC_CRM__TOKEN?)",
    ):
        assert expected in text


def test_missing_values_name_every_place_looked(tmp_path: Path) -> None:
    secrets = _write(tmp_path / "secrets.toml", "[crm]\n")
    config = _write(tmp_path / "c.toml", '[crm]\ntype = "salesforce"\nauth = "password"\n')
    error = _load_error(config, {"CRMSYNC_SECRETS_FILE": str(secrets)})
    [username] = [p for p in error.problems if "username" in p]
    [password] = [p for p in error.problems if "password is missing" in p]
    assert "env CRMSYNC_CRM__USERNAME" in username and f"in {config}" in username
    assert "secrets file" not in username  # a user name is not a secret
    assert "env CRMSYNC_CRM__PASSWORD" in password
    assert f"secrets file {secrets}" in password and f"[crm] password in {config}" in password
    assert len(error.problems) == 2


def test_missing_type_without_any_file() -> None:
    error = _load_error(None, {})
    [problem] = error.problems
    assert "[crm] type is missing" in problem and "env CRMSYNC_CRM__TYPE" in problem
    assert "crmsync.toml (not found)" in problem
    assert load_settings(None, {}, require_crm=False).state.url == "sqlite:///.crmsync/state.db"


def test_an_empty_credential_counts_as_missing() -> None:
    error = _load_error(None, {"CRMSYNC_CRM__TYPE": "hubspot", "CRMSYNC_CRM__TOKEN": ""})
    [problem] = error.problems
    assert "[crm] token is missing" in problem


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    error = _load_error(tmp_path / "nope.toml", {"CRMSYNC_CRM__TYPE": "hubspot"})
    assert any("nope.toml does not exist" in p for p in error.problems)


def test_invalid_toml_is_located(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", '[crm]\ntype = "hubspot\n')
    error = _load_error(config, {})
    assert any(p.startswith(f"{config}: invalid TOML") and "line 2" in p for p in error.problems)


def test_secrets_file_supplies_credentials_and_env_still_wins(tmp_path: Path) -> None:
    _write(tmp_path / "secrets.toml", f'[crm]\ntoken = "{TOKEN}"\n')
    config = _write(tmp_path / "c.toml",
                    '[crm]\ntype = "hubspot"\nsecrets_file = "secrets.toml"\n')
    settings = load_settings(config, {})
    assert settings.crm.secret("token") == TOKEN
    assert settings.crm.secrets_file == tmp_path / "secrets.toml"
    assert load_settings(config, {"CRMSYNC_CRM__TOKEN": "from-env"}).crm.secret("token") == (
        "from-env")


def test_secrets_file_holds_only_secrets(tmp_path: Path) -> None:
    secrets = _write(tmp_path / "s.toml", '[crm]\ntoken = "t"\ntype = "salesforce"\n')
    error = _load_error(None, {"CRMSYNC_SECRETS_FILE": str(secrets),
                               "CRMSYNC_CRM__TYPE": "hubspot"})
    assert error.problems == [f"{secrets}: [crm] type does not belong in a secrets file"]
    error = _load_error(None, {"CRMSYNC_SECRETS_FILE": str(tmp_path / "gone.toml"),
                               "CRMSYNC_CRM__TYPE": "hubspot", "CRMSYNC_CRM__TOKEN": "t"})
    assert error.problems == [
        f"secrets file {tmp_path / 'gone.toml'} does not exist (named by env CRMSYNC_SECRETS_FILE)"]


def test_secrets_never_show(tmp_path: Path) -> None:
    password = "hunter2-very-secret"
    settings = load_settings(None, {
        "CRMSYNC_CRM__TYPE": "salesforce", "CRMSYNC_CRM__USERNAME": "ops@example.com",
        "CRMSYNC_CRM__PASSWORD": password, "CRMSYNC_CRM__SECURITY_TOKEN": TOKEN,
        "CRMSYNC_STATE__URL": f"postgresql+psycopg://crmsync:{password}@db:5432/crmsync",
    })
    assert settings.crm.auth == "password"
    for shown in (repr(settings), str(settings), repr(settings.crm), f"{settings.crm.password}"):
        assert password not in shown and TOKEN not in shown
    assert "password='***'" in repr(settings.crm)
    assert "crmsync:***@db:5432" in repr(settings.state)
    assert settings.crm.secret("password") == password
    assert settings.state.url.endswith(f"{password}@db:5432/crmsync")  # usable, just not shown
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    with pytest.raises(AttributeError):
        settings.crm.secret("username")


def test_wrong_secret_values_are_not_echoed(tmp_path: Path) -> None:
    # A secret pasted under the wrong key, or given the wrong type, must not leak into errors.
    config = _write(tmp_path / "c.toml", f"""
[crm]
type = "hubspot"
token = 987654321
tokn = "{TOKEN}"
base_url = "{TOKEN}"
""")
    text = str(_load_error(config, {}))
    assert "[crm] token: expected a string (from" in text
    assert "987654321" not in text
    assert "unknown key [crm] tokn" in text
    assert "[crm] base_url: expected an http:// or https:// URL" in text
    assert TOKEN in text  # base_url is not a secret; shown so the user sees what was read


def test_settings_are_frozen() -> None:
    settings = load_settings(None, {"CRMSYNC_CRM__TYPE": "hubspot", "CRMSYNC_CRM__TOKEN": "t"})
    assert isinstance(settings, Settings)
    with pytest.raises(AttributeError):
        settings.crm.type = "salesforce"  # type: ignore[misc]


def test_starter_file_loads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    [written] = write_starter(tmp_path / "proj")
    assert written == tmp_path / "proj" / "crmsync.toml"
    assert written.read_text("utf-8") == STARTER_TOML
    error = _load_error(written, {})
    [problem] = error.problems  # only the credential is missing, and it says where to put it
    assert "[crm] token is missing" in problem and "CRMSYNC_CRM__TOKEN" in problem
    settings = load_settings(written, {"CRMSYNC_CRM__TOKEN": TOKEN})
    assert settings.crm.type == "hubspot" and settings.crm.base_url is None
    assert settings.rules.path == tmp_path / "proj" / "rules/default.json"
    assert settings.state.url.endswith("/proj/.crmsync/state.db")
    assert settings.sync.task_close_policy == "rule"
    assert "http://127.0.0.1:8765" in STARTER_TOML
    written.write_text("# mine\n", "utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        write_starter(tmp_path / "proj")
    assert written.read_text("utf-8") == "# mine\n"
    assert write_starter(tmp_path / "proj", force=True) == [written]
    assert written.read_text("utf-8") == STARTER_TOML


def test_salesforce_login_domain_is_configurable(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('[crm]\ntype = "salesforce"\nauth = "password"\n'
                      'username = "u@x.example"\n', "utf-8")
    env = {"CRMSYNC_CRM__PASSWORD": "pw", "CRMSYNC_CRM__SECURITY_TOKEN": "tok"}
    assert load_settings(config, env=env).crm.domain == "login"
    assert load_settings(config, env={**env, "CRMSYNC_CRM__DOMAIN": "test"}).crm.domain == "test"


# -- credentials with stray whitespace or control characters (issue #13.1) -----------------------


@pytest.mark.parametrize("suffix", ["\r", "\n", "\r\n", "  ", "\t"])
def test_credentials_lose_surrounding_whitespace_from_env(suffix: str) -> None:
    settings = load_settings(None, {"CRMSYNC_CRM__TYPE": "hubspot" + suffix,
                                    "CRMSYNC_CRM__TOKEN": TOKEN + suffix})
    assert settings.crm.type == "hubspot"
    assert settings.crm.secret("token") == TOKEN


def test_credentials_lose_surrounding_whitespace_from_secrets_file(tmp_path: Path) -> None:
    # A secrets file saved with Windows line ends, with a stray CR escaped inside the string too.
    secrets = tmp_path / "secrets.toml"
    secrets.write_bytes(f'[crm]\r\ntoken = "{TOKEN}\\r"\r\n[state]\r\nurl = " sqlite:///s.db "\r\n'
                        .encode())
    settings = load_settings(None, {"CRMSYNC_CRM__TYPE": "hubspot",
                                    "CRMSYNC_SECRETS_FILE": str(secrets)})
    assert settings.crm.secret("token") == TOKEN
    assert settings.state.url == f"sqlite:///{(tmp_path / 's.db').as_posix()}"


def test_credential_with_an_inner_control_character_is_refused_without_showing_it(
    tmp_path: Path,
) -> None:
    config = _write(tmp_path / "crmsync.toml", '[crm]\ntype = "hubspot"\npassword = "a"\n')
    error = _load_error(config, {"CRMSYNC_CRM__TOKEN": "pat-na1-abc\rdef"})
    assert error.exit_code == ExitCode.BAD_CONFIG
    text = str(error)
    assert "[crm] token" in text and "CRMSYNC_CRM__TOKEN" in text
    assert "control character" in text
    assert "pat-na1" not in text and "abc" not in text


# -- named connections and schedules --------------------------------------------------------

CONNECTIONS = """
[crm]
type = "hubspot"

[connections.emea_sf]
type = "salesforce"
auth = "session"
base_url = "https://emea.example.com"
rules = "rules/emea.json"
field_map = "connectors/emea.json"
reserve_daily_percent = 20
state_url = "sqlite:///emea.db"

[connections.us_hubspot]
type = "hubspot"
"""


def test_connections_are_selected_with_their_own_rules_state_and_credentials(
    tmp_path: Path,
) -> None:
    config = _write(tmp_path / "crmsync.toml", CONNECTIONS)
    env = {"CRMSYNC_CRM__TOKEN": "default-token",
           "CRMSYNC_CONNECTIONS__EMEA_SF__TOKEN": TOKEN,
           "CRMSYNC_CONNECTIONS__US_HUBSPOT__TOKEN": "us-token"}
    default = load_settings(config, env)
    assert (default.connection, default.crm.type) == ("default", "hubspot")
    assert default.connection_names() == ["default", "emea_sf", "us_hubspot"]
    emea = load_settings(config, env, connection="emea_sf")
    assert (emea.connection, emea.crm.type, emea.crm.auth) == ("emea_sf", "salesforce", "session")
    assert emea.crm.secret("token") == TOKEN
    assert emea.rules.path == tmp_path / "rules/emea.json"
    assert emea.crm.field_map == tmp_path / "connectors/emea.json"
    assert emea.crm.reserve_daily_percent == 20.0
    assert emea.state.url == f"sqlite:///{(tmp_path / 'emea.db').as_posix()}"
    assert emea.sync == default.sync  # [sync] is shared
    us = load_settings(config, env, connection="us_hubspot")
    assert us.crm.secret("token") == "us-token" and us.state.url == default.state.url
    assert us.rules.path is None  # the packaged default rule set
    # Environment overrides apply per connection.
    moved = load_settings(config, {**env, "CRMSYNC_CONNECTIONS__EMEA_SF__BASE_URL":
                                   "http://127.0.0.1:9"}, connection="emea_sf")
    assert moved.crm.base_url == "http://127.0.0.1:9"
    assert TOKEN not in repr(emea) and "us-token" not in repr(default)


def test_connection_credentials_never_come_from_the_config_file(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS + f'token = "{TOKEN}"\n')
    error = _load_error(config, {"CRMSYNC_CRM__TOKEN": "t"})
    assert error.problems == [
        f"{config}: [connections.us_hubspot] token does not belong in a config file; set "
        "CRMSYNC_CONNECTIONS__US_HUBSPOT__TOKEN or put it in a secrets file"]
    assert TOKEN not in str(error)


def test_connection_credentials_from_secrets_files(tmp_path: Path) -> None:
    shared = _write(tmp_path / "secrets.toml",
                    f'[crm]\ntoken = "d"\n[connections.us_hubspot]\ntoken = "{TOKEN}"\n')
    _write(tmp_path / "emea.secrets.toml", '[crm]\ntoken = "emea-session"\n')
    config = _write(tmp_path / "c.toml",
                    CONNECTIONS.replace('[connections.us_hubspot]',
                                        'secrets_file = "emea.secrets.toml"\n\n'
                                        '[connections.us_hubspot]'))
    env = {"CRMSYNC_SECRETS_FILE": str(shared)}
    assert load_settings(config, env, connection="us_hubspot").crm.secret("token") == TOKEN
    assert load_settings(config, env, connection="emea_sf").crm.secret("token") == "emea-session"
    # The environment still wins over any file.
    assert load_settings(config, {**env, "CRMSYNC_CONNECTIONS__EMEA_SF__TOKEN": "env"},
                         connection="emea_sf").crm.secret("token") == "env"


def test_a_connection_missing_credentials_fails_only_when_selected(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS)
    assert load_settings(config, {"CRMSYNC_CRM__TOKEN": "t"}).crm.secret("token") == "t"
    with pytest.raises(SettingsError) as info:
        load_settings(config, {}, connection="us_hubspot")
    [problem] = info.value.problems
    assert problem.startswith("[connections.us_hubspot] token is missing")
    assert "env CRMSYNC_CONNECTIONS__US_HUBSPOT__TOKEN" in problem
    # Commands that never contact a CRM need no credentials.
    assert load_settings(config, {}, require_crm=False, connection="us_hubspot").connection == (
        "us_hubspot")


def test_unknown_connections_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS)
    with pytest.raises(SettingsError) as info:
        load_settings(config, {}, require_crm=False, connection="emea_fs")
    assert "unknown connection 'emea_fs' (did you mean emea_sf?)" in str(info.value)
    error = _load_error(config, {"CRMSYNC_CONNECTIONS__EMEA_FS__TOKEN": "x"})
    assert any("unknown connection 'emea_fs' (in env CRMSYNC_CONNECTIONS__EMEA_FS__TOKEN) "
               "(did you mean emea_sf?)" in p for p in error.problems)
    assert "x" not in [p.rsplit(" ", 1)[-1] for p in error.problems]


def test_a_config_of_named_connections_only_has_no_default(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS.replace('[crm]\ntype = "hubspot"\n', ""))
    settings = load_settings(config, {}, require_crm=False)
    assert settings.connection_names() == ["emea_sf", "us_hubspot"]
    error = _load_error(config, {})
    assert "no default connection" in str(error) and "--connection NAME" in str(error)


def test_bad_connection_values_are_all_reported(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", """
[connections.Bad-Name]
type = "hubspot"
[connections.default]
type = "hubspot"
[connections.x]
type = "salesfroce"
reserve_daily_percent = 100
colour = "blue"
""")
    text = str(_load_error(config, {}))
    for expected in (
        "[connections.Bad-Name]: a connection name is lower-case letters",
        "[connections.default]: the default connection is [crm]/[rules]",
        "[connections.x] type: expected one of hubspot, salesforce, got 'salesfroce' "
        "(did you mean salesforce?)",
        "[connections.x] reserve_daily_percent: expected 0 to 99.9, got 100",
        "unknown key [connections.x] colour",
    ):
        assert expected in text


def test_schedules_are_read_and_checked(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS + """
[schedules.nightly]
connection = "emea_sf"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
mode = "full"

[schedules.often]
every = "1h30m"
enabled = false
""")
    schedules = load_settings(config, {}, require_crm=False).schedules
    nightly, often = schedules["nightly"], schedules["often"]
    assert (nightly.connection, nightly.cron, nightly.timezone, nightly.mode, nightly.enabled) == (
        "emea_sf", "30 2 * * *", "Europe/Berlin", "full", True)
    assert (often.connection, often.every, often.cron, often.enabled) == (
        "default", timedelta(hours=1, minutes=30), None, False)
    # The environment overrides a schedule's keys too.
    env = {"CRMSYNC_SCHEDULES__OFTEN__ENABLED": "true"}
    assert load_settings(config, env, require_crm=False).schedules["often"].enabled is True


def test_bad_schedules_are_all_reported(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.toml", CONNECTIONS + """
[schedules.a]
connection = "emea_fs"
cron = "61 * * * *"
timezone = "Europe/Berln"
[schedules.b]
every = "5 minutes"
mode = "incrmental"
[schedules.c]
cron = "* * * * *"
every = "1m"
[schedules.d]
enabled = true
""")
    text = str(_load_error(config, {"CRMSYNC_CRM__TOKEN": "t"}))
    for expected in (
        "[schedules.a] connection: no connection 'emea_fs' (did you mean emea_sf?)",
        "[schedules.a] cron: expected five fields",
        "[schedules.a] timezone: no time zone 'Europe/Berln' (did you mean Europe/Berlin?)",
        "[schedules.b] every: expected an interval such as 90s, 15m, 1h30m or 1d",
        "[schedules.b] mode: expected one of incremental, full, got 'incrmental' "
        "(did you mean incremental?)",
        "[schedules.c]: set either cron",
        "[schedules.d]: set cron",
    ):
        assert expected in text


def test_crm_credentials_in_the_settings_file_get_a_warning_without_their_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = _write(tmp_path / "real.toml", f'[crm]\ntype = "hubspot"\ntoken = "{TOKEN}"\n')
    with caplog.at_level("WARNING", logger="crmsync.config"):
        assert load_settings(real, {}).crm.secret("token") == TOKEN  # it still works
    [warning] = [r.getMessage() for r in caplog.records]
    assert "[crm] token" in warning and "CRMSYNC_CRM__TOKEN" in warning
    assert TOKEN not in warning
    caplog.clear()
    # From the environment, or for the loopback sandbox (crmsync demo writes its token there).
    sandbox = _write(tmp_path / "sandbox.toml", '[crm]\ntype = "hubspot"\ntoken = "pat-sandbox"\n'
                     'base_url = "http://127.0.0.1:8790"\n')
    with caplog.at_level("WARNING", logger="crmsync.config"):
        load_settings(sandbox, {})
        load_settings(_write(tmp_path / "env.toml", '[crm]\ntype = "hubspot"\n'),
                      {"CRMSYNC_CRM__TOKEN": TOKEN})
    assert caplog.records == []
