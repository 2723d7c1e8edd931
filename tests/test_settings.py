"""The settings contract (DESIGN.md, "Configuration and CLI"): defaults, one TOML file,
KEYTURN_* environment variables on top, and a SettingsError naming the key and where the
bad value came from for anything malformed or unsafe.

Every test passes ``environ`` explicitly: nothing here reads the real environment."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import MappingProxyType

import pytest

from keyturn.settings import ConfigFileError, Settings, SettingsError, configured_keys, load_settings

SECRET = "s" * 32
FULL_CONFIG = """\
issuer = "https://auth.example.com"
database_url = "postgresql://user@db/keyturn"
redis_url = "redis://127.0.0.1:6379/0"
env = "development"
secret = "0123456789abcdef0123456789abcdef"
default_scopes = ["sms"]
access_token_ttl = 1800
refresh_token_ttl = 86400
refresh_token_reuse_grace = 0
authorization_code_ttl = 30
token_format = "jwt"
signing_alg = "EdDSA"
error_style = "onlinesim"
api_key_query_parameters = ["key"]
require_pkce = true
max_body_size = 4096

[scopes]
sms = "Send SMS messages"
balance = "Query balance"
"""


def write_config(tmp_path: Path, text: str, name: str = "keyturn.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_names(error: SettingsError, key: str, source: str) -> None:
    """The error, and its message, name the setting and where its value came from."""
    assert error.key == key
    assert error.source == source
    assert key in str(error)
    assert source in str(error)


def from_file(tmp_path: Path, text: str) -> tuple[SettingsError, str]:
    path = write_config(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={})
    return caught.value, str(path)


def from_env(**variables: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, environ=variables)
    return caught.value


# ---- defaults ----


def test_no_file_and_an_empty_environment_give_the_documented_defaults() -> None:
    settings = load_settings(None, environ={})

    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.database_url == "sqlite:///keyturn.db"
    assert settings.redis_url is None
    assert settings.env == "development"
    assert settings.production is False
    assert settings.secret is None
    assert settings.default_scopes == ()
    assert settings.access_token_ttl == 3600
    assert settings.refresh_token_ttl == 2_592_000
    assert settings.refresh_token_reuse_grace == 10
    assert settings.authorization_code_ttl == 60
    assert settings.token_format == "opaque"
    assert settings.signing_alg == "ES256"
    assert settings.error_style == "rfc6750"
    assert settings.api_key_query_parameters == ("api_key", "apikey")
    assert settings.require_pkce is False
    assert settings.max_body_size == 16_384
    assert settings.password_min_length == 12
    assert settings.signups_per_address_per_hour == 10
    assert dict(settings.scopes) == {}


def test_loaded_defaults_equal_the_dataclass_defaults() -> None:
    assert load_settings(None, environ={}) == Settings()


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write_config(tmp_path, ""), environ={}) == Settings()


def test_load_settings_reads_only_the_environ_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYTURN_ACCESS_TOKEN_TTL", "not a number")
    monkeypatch.setenv("KEYTURN_DATABSE_URL", "typo")
    assert load_settings(None, environ={}) == Settings()


# ---- the TOML file ----


def test_a_file_can_set_every_key_including_the_scopes_table(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, FULL_CONFIG), environ={})

    assert settings.issuer == "https://auth.example.com"
    assert settings.database_url == "postgresql://user@db/keyturn"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.env == "development"
    assert settings.secret == "0123456789abcdef0123456789abcdef"
    assert settings.default_scopes == ("sms",)
    assert settings.access_token_ttl == 1800
    assert settings.refresh_token_ttl == 86400
    assert settings.refresh_token_reuse_grace == 0
    assert settings.authorization_code_ttl == 30
    assert settings.token_format == "jwt"
    assert settings.signing_alg == "EdDSA"
    assert settings.error_style == "onlinesim"
    assert settings.api_key_query_parameters == ("key",)
    assert settings.require_pkce is True
    assert settings.max_body_size == 4096
    assert dict(settings.scopes) == {"sms": "Send SMS messages", "balance": "Query balance"}


def test_keyturn_config_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "access_token_ttl = 120\n")
    assert load_settings(None, environ={"KEYTURN_CONFIG": str(path)}).access_token_ttl == 120


def test_an_explicit_config_path_wins_over_keyturn_config(tmp_path: Path) -> None:
    chosen = write_config(tmp_path, "access_token_ttl = 120\n", name="chosen.toml")
    settings = load_settings(chosen, environ={"KEYTURN_CONFIG": str(tmp_path / "missing.toml")})
    assert settings.access_token_ttl == 120


def test_a_trailing_slash_on_the_issuer_is_dropped(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'issuer = "https://auth.example.com/"\n')
    assert load_settings(path, environ={}).issuer == "https://auth.example.com"


def test_repeated_list_entries_collapse_keeping_their_order(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'api_key_query_parameters = ["b", "a", "b"]\n')
    assert load_settings(path, environ={}).api_key_query_parameters == ("b", "a")


@pytest.mark.parametrize(
    "url",
    ["sqlite:///keyturn.db", "sqlite:////var/lib/keyturn.db", "postgres://u@h:5432/kt", "postgresql+psycopg://h/kt"],
)
def test_supported_database_urls_are_kept_as_given(tmp_path: Path, url: str) -> None:
    path = write_config(tmp_path, f'database_url = "{url}"\n')
    assert load_settings(path, environ={}).database_url == url


# ---- environment variables ----


def test_an_environment_variable_overrides_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "access_token_ttl = 1800\nrefresh_token_ttl = 86400\n")
    settings = load_settings(path, environ={"KEYTURN_ACCESS_TOKEN_TTL": "7200"})
    assert settings.access_token_ttl == 7200
    assert settings.refresh_token_ttl == 86400


@pytest.mark.parametrize("value", ['["a","b"]', '[ "a", "b" ]', "a,b", "a b", " a,  b ", "a, a, b"], ids=repr)
def test_a_list_variable_may_be_json_or_comma_or_space_separated(value: str) -> None:
    settings = load_settings(None, environ={"KEYTURN_API_KEY_QUERY_PARAMETERS": value})
    assert settings.api_key_query_parameters == ("a", "b")


def test_an_empty_list_variable_gives_an_empty_list() -> None:
    assert load_settings(None, environ={"KEYTURN_DEFAULT_SCOPES": ""}).default_scopes == ()


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("yes", True), ("off", False)])
def test_a_boolean_variable_accepts_the_usual_spellings(value: str, expected: bool) -> None:
    assert load_settings(None, environ={"KEYTURN_REQUIRE_PKCE": value}).require_pkce is expected


def test_a_section_variable_adds_to_the_files_scopes_table(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[scopes]\nbalance = "Query balance"\n')
    settings = load_settings(path, environ={"KEYTURN_SCOPES__SMS": "Send SMS"})
    assert dict(settings.scopes) == {"balance": "Query balance", "sms": "Send SMS"}


def test_a_section_variable_replaces_a_scope_description_from_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[scopes]\nsms = "Send SMS messages"\n')
    settings = load_settings(path, environ={"KEYTURN_SCOPES__SMS": "Send SMS"})
    assert dict(settings.scopes) == {"sms": "Send SMS"}


def test_a_section_variable_builds_the_scopes_table_without_a_file() -> None:
    settings = load_settings(None, environ={"KEYTURN_SCOPES__SMS": "Send SMS", "KEYTURN_SCOPES__BALANCE": "Balance"})
    assert dict(settings.scopes) == {"sms": "Send SMS", "balance": "Balance"}


def test_client_sdk_variables_are_ignored() -> None:
    environ = {"KEYTURN_CLIENT_ID": "client-123", "KEYTURN_CLIENT_SECRET": "kt_cs_abc"}
    assert load_settings(None, environ=environ) == Settings()


def test_variables_without_the_keyturn_prefix_are_ignored() -> None:
    environ = {"DATABASE_URL": "mysql://nope", "ACCESS_TOKEN_TTL": "-1", "PATH": "/usr/bin"}
    assert load_settings(None, environ=environ) == Settings()


# ---- the settings object ----


def test_settings_cannot_be_mutated() -> None:
    settings = load_settings(None, environ={"KEYTURN_SCOPES__SMS": "Send SMS"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.access_token_ttl = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.scopes["voice"] = "Make calls"  # type: ignore[index]
    assert settings.access_token_ttl == 3600
    assert dict(settings.scopes) == {"sms": "Send SMS"}


def test_the_scopes_catalogue_is_a_read_only_mapping(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, FULL_CONFIG), environ={})
    assert isinstance(settings.scopes, MappingProxyType)


def test_the_secret_is_not_in_the_repr() -> None:
    settings = load_settings(None, environ={"KEYTURN_SECRET": SECRET})
    assert settings.secret == SECRET
    assert SECRET not in repr(settings)


def test_with_overrides_returns_a_validated_copy() -> None:
    base = Settings()
    changed = base.with_overrides(access_token_ttl="600", scopes={"sms": "Send SMS"})
    assert changed.access_token_ttl == 600
    assert isinstance(changed.scopes, MappingProxyType)
    assert dict(changed.scopes) == {"sms": "Send SMS"}
    assert base.access_token_ttl == 3600
    assert dict(base.scopes) == {}


def test_with_overrides_refuses_a_bad_value() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().with_overrides(access_token_ttl=0)
    assert_names(caught.value, "access_token_ttl", "override")


def test_with_overrides_refuses_an_unknown_key() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().with_overrides(acces_token_ttl=60)
    assert_names(caught.value, "acces_token_ttl", "override")


def test_with_overrides_checks_consistency() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().with_overrides(env="production")
    assert caught.value.key == "secret"


# ---- bad values: each names the key and the file or variable it came from ----


def test_an_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    error, path = from_file(tmp_path, 'databse_url = "sqlite:///x.db"\n')
    assert_names(error, "databse_url", path)
    assert "unknown setting" in str(error)


def test_the_rotation_interval_is_said_in_days() -> None:
    assert "must be zero (never) or a positive number of days, got -1" in str(
        from_env(KEYTURN_SIGNING_KEY_ROTATION_DAYS="-1")
    )


def test_a_renamed_key_names_its_new_name(tmp_path: Path) -> None:
    error, path = from_file(tmp_path, "login_failures_per_account = 5\n")
    assert_names(error, "login_failures_per_account", path)
    assert "was renamed to login_failures_per_account_and_address" in str(error)


def test_an_unknown_table_in_the_file_is_refused(tmp_path: Path) -> None:
    error, path = from_file(tmp_path, '[database]\nurl = "sqlite:///x.db"\n')
    assert_names(error, "database", path)


def test_an_unknown_keyturn_variable_is_refused() -> None:
    error = from_env(KEYTURN_DATABSE_URL="sqlite:///x.db")
    assert_names(error, "databse_url", "KEYTURN_DATABSE_URL")
    assert "unknown setting" in str(error)


def test_a_section_variable_on_a_plain_value_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'issuer = "https://auth.example.com"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"KEYTURN_ISSUER__HOST": "x"})
    assert_names(caught.value, "issuer", "KEYTURN_ISSUER__HOST")


def test_a_list_variable_that_is_broken_json_is_refused() -> None:
    error = from_env(KEYTURN_DEFAULT_SCOPES='["sms",')
    assert_names(error, "default_scopes", "KEYTURN_DEFAULT_SCOPES")
    assert "JSON" in str(error)


BAD_FILE_VALUES = [
    ("access_token_ttl", "0"),
    ("access_token_ttl", "-60"),
    ("refresh_token_ttl", "-1"),
    ("refresh_token_ttl", "0"),
    ("authorization_code_ttl", "0"),
    ("refresh_token_reuse_grace", "-1"),
    ("access_token_ttl", '"an hour"'),
    ("access_token_ttl", "3600.5"),
    ("access_token_ttl", "true"),
    ("refresh_token_reuse_grace", "false"),
    ("database_url", '"keyturn.db"'),
    ("database_url", '"mysql://user@db/keyturn"'),
    ("database_url", '"postgresql://user@db"'),
    ("database_url", '"postgresql://user@db/"'),
    ("database_url", '"postgresql://user@db:port/keyturn"'),
    ("database_url", '"postgresql://user@db:99999/keyturn"'),
    ("database_url", '"postgresql+asyncpg://user@db/keyturn"'),
    ("database_url", '"sqlite://keyturn.db"'),
    ("database_url", '""'),
    ("redis_url", '"http://cache:6379"'),
    ("token_format", '"paseto"'),
    ("token_format", '"JWT"'),
    ("error_style", '"rfc7807"'),
    ("signing_alg", '"HS256"'),
    ("env", '"staging"'),
    ("require_pkce", '"maybe"'),
    ("max_body_size", "10"),
    ("issuer", '"https://auth.example.com/?tenant=1"'),
    ("issuer", '"https://auth.example.com/#top"'),
    ("issuer", '"ftp://auth.example.com"'),
    ("issuer", '"auth.example.com"'),
    ("issuer", '"https://"'),
    ("secret", '"too-short"'),
    ("default_scopes", '["has space"]'),
    ("default_scopes", '["quote\\"d"]'),
    ("default_scopes", '"sms"'),
    ("api_key_query_parameters", '["api key"]'),
    ("scopes", '"sms"'),
    ("password_min_length", "7"),
    ("password_min_length", "129"),
    ("password_min_length", '"twelve"'),
    ("signups_per_address_per_hour", "-1"),
    ("signups_per_address_per_hour", "1.5"),
]


@pytest.mark.parametrize(("key", "toml_value"), BAD_FILE_VALUES, ids=lambda v: str(v))
def test_a_bad_value_in_the_file_is_refused(tmp_path: Path, key: str, toml_value: str) -> None:
    error, path = from_file(tmp_path, f"{key} = {toml_value}\n")
    assert_names(error, key, path)


BAD_ENV_VALUES = [
    ("access_token_ttl", "0"),
    ("access_token_ttl", "-5"),
    ("access_token_ttl", "1h"),
    ("access_token_ttl", "3600.0"),
    ("access_token_ttl", "true"),
    ("refresh_token_reuse_grace", "-1"),
    ("database_url", "keyturn.db"),
    ("database_url", "mysql://user@db/keyturn"),
    ("database_url", "postgresql://user@db"),
    ("database_url", "postgresql://user@db:port/keyturn"),
    ("token_format", "paseto"),
    ("error_style", "plain"),
    ("issuer", "https://auth.example.com?tenant=1"),
    ("issuer", "ftp://auth.example.com"),
    ("secret", "too-short"),
    ("default_scopes", '["has space"]'),
    ("login_failures_per_account_and_address", "-1"),
    ("login_failures_per_address", "five"),
    ("login_failures_before_account_slowdown", "-3"),
    ("login_account_slowdown_max_delay", "0"),
    ("login_device_cookie_ttl", "-1"),
    ("client_auth_failures_per_client_and_address", "-1"),
    ("password_min_length", "4"),
    ("signups_per_address_per_hour", "ten"),
]


@pytest.mark.parametrize(("key", "value"), BAD_ENV_VALUES, ids=lambda v: str(v))
def test_a_bad_value_in_the_environment_is_refused(key: str, value: str) -> None:
    name = "KEYTURN_" + key.upper()
    assert_names(from_env(**{name: value}), key, name)


def test_a_bad_environment_value_is_blamed_on_the_variable_not_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "access_token_ttl = 1800\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"KEYTURN_ACCESS_TOKEN_TTL": "0"})
    assert_names(caught.value, "access_token_ttl", "KEYTURN_ACCESS_TOKEN_TTL")


def test_the_ttl_messages_say_what_is_wrong(tmp_path: Path) -> None:
    assert "positive number of seconds, got 0" in str(from_env(KEYTURN_ACCESS_TOKEN_TTL="0"))
    assert "must be an integer, got True" in str(from_file(tmp_path, "access_token_ttl = true\n")[0])


def test_the_throttling_settings_take_zero_for_off_and_say_so() -> None:
    settings = load_settings(
        None,
        environ={
            "KEYTURN_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS": "0",
            "KEYTURN_LOGIN_FAILURES_BEFORE_ACCOUNT_SLOWDOWN": "0",
            "KEYTURN_LOGIN_DEVICE_COOKIE_TTL": "0",
            "KEYTURN_CLIENT_AUTH_FAILURES_PER_CLIENT_AND_ADDRESS": "0",
        },
    )
    assert settings.login_failures_per_account_and_address == 0
    assert settings.login_failures_before_account_slowdown == 0
    assert settings.login_device_cookie_ttl == 0
    assert settings.client_auth_failures_per_client_and_address == 0
    assert "zero (no limit) or a positive number, got -1" in str(
        from_env(KEYTURN_CLIENT_AUTH_FAILURES_PER_CLIENT_AND_ADDRESS="-1")
    )


def test_the_password_length_and_signup_limit_messages_say_what_is_wrong() -> None:
    assert "must be between 8 and 128 characters, got 6" in str(from_env(KEYTURN_PASSWORD_MIN_LENGTH="6"))
    problem = "must be zero (no limit) or a positive number, got -1"
    assert problem in str(from_env(KEYTURN_SIGNUPS_PER_ADDRESS_PER_HOUR="-1"))


def test_password_length_and_signup_limit_can_be_set() -> None:
    settings = load_settings(
        None, environ={"KEYTURN_PASSWORD_MIN_LENGTH": "16", "KEYTURN_SIGNUPS_PER_ADDRESS_PER_HOUR": "0"}
    )
    assert (settings.password_min_length, settings.signups_per_address_per_hour) == (16, 0)


def test_a_zero_reuse_grace_is_allowed() -> None:
    assert load_settings(None, environ={"KEYTURN_REFRESH_TOKEN_REUSE_GRACE": "0"}).refresh_token_reuse_grace == 0


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    error = from_env(KEYTURN_SECRET="hunter2-hunter2")
    assert_names(error, "secret", "KEYTURN_SECRET")
    assert "at least 32 characters" in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("issuer", ["https://auth.example.com?", "https://auth.example.com#"])
def test_an_issuer_with_an_empty_query_or_fragment_is_refused(tmp_path: Path, issuer: str) -> None:
    # RFC 8414 §2: the issuer "has no query or fragment components"; an empty one is still one.
    error, path = from_file(tmp_path, f'issuer = "{issuer}"\n')
    assert_names(error, "issuer", path)


@pytest.mark.parametrize("name", ["has space", 'quo"te', "back\\slash", ""])
def test_a_bad_scope_name_in_the_catalogue_is_refused(tmp_path: Path, name: str) -> None:
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    error, path = from_file(tmp_path, f'[scopes]\n"{quoted}" = "Something"\n')
    assert_names(error, f"scopes.{name}", path)
    assert "RFC 6749 §3.3" in str(error)


def test_a_scope_description_must_be_a_string(tmp_path: Path) -> None:
    error, path = from_file(tmp_path, "[scopes]\nsms = 1\n")
    assert_names(error, "scopes.sms", path)


def test_a_bad_scope_name_from_a_section_variable_names_the_variable() -> None:
    error = from_env(**{"KEYTURN_SCOPES__SMS\\SEND": "Send SMS"})
    assert_names(error, "scopes.sms\\send", "KEYTURN_SCOPES__SMS\\SEND")


def test_a_bad_scope_from_the_file_is_blamed_on_the_file_when_a_variable_adds_another(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[scopes]\n"bad scope" = "Something"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"KEYTURN_SCOPES__SMS": "Send SMS"})
    assert_names(caught.value, "scopes.bad scope", str(path))


def test_default_scopes_must_be_in_a_non_empty_catalogue(tmp_path: Path) -> None:
    error, path = from_file(tmp_path, 'default_scopes = ["voice"]\n[scopes]\nsms = "Send SMS"\n')
    assert_names(error, "default_scopes", path)
    assert "'voice' is not in the [scopes] catalogue" in str(error)


def test_default_scopes_are_free_when_there_is_no_catalogue() -> None:
    assert load_settings(None, environ={"KEYTURN_DEFAULT_SCOPES": "voice"}).default_scopes == ("voice",)


def test_default_scopes_from_the_environment_are_checked_against_the_files_catalogue(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[scopes]\nsms = "Send SMS"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"KEYTURN_DEFAULT_SCOPES": "sms,voice"})
    assert_names(caught.value, "default_scopes", "KEYTURN_DEFAULT_SCOPES")


# ---- production mode ----


def production(**variables: str) -> dict[str, str]:
    return {"KEYTURN_ENV": "production", **variables}


def test_production_accepts_an_https_issuer_and_a_secret() -> None:
    settings = load_settings(None, environ=production(KEYTURN_ISSUER="https://auth.example.com", KEYTURN_SECRET=SECRET))
    assert settings.production is True
    assert settings.issuer == "https://auth.example.com"
    assert settings.secret == SECRET


def test_production_refuses_an_http_issuer_on_a_public_host() -> None:
    error = from_env(**production(KEYTURN_ISSUER="http://auth.example.com", KEYTURN_SECRET=SECRET))
    assert_names(error, "issuer", "KEYTURN_ISSUER")
    assert "https://" in str(error)


def test_development_allows_an_http_issuer_on_a_public_host() -> None:
    settings = load_settings(None, environ={"KEYTURN_ISSUER": "http://auth.example.com"})
    assert settings.issuer == "http://auth.example.com"


@pytest.mark.parametrize("issuer", ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"])
def test_production_allows_an_http_issuer_on_a_local_host(issuer: str) -> None:
    settings = load_settings(None, environ=production(KEYTURN_ISSUER=issuer, KEYTURN_SECRET=SECRET))
    assert settings.issuer == issuer


@pytest.mark.parametrize("secret", [None, ""])
def test_production_requires_a_secret(secret: str | None) -> None:
    environ = production(KEYTURN_ISSUER="https://auth.example.com")
    if secret is not None:
        environ["KEYTURN_SECRET"] = secret
    with pytest.raises(SettingsError) as caught:
        load_settings(None, environ=environ)
    assert caught.value.key == "secret"
    assert str(caught.value).startswith("invalid setting secret")
    assert "required in production" in str(caught.value)


def test_production_can_be_set_in_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'env = "production"\nissuer = "http://auth.example.com"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"KEYTURN_SECRET": SECRET})
    assert_names(caught.value, "issuer", str(path))


# ---- the config file itself: ConfigFileError names the path ----


def config_file_error(path: Path | str, environ: dict[str, str] | None = None) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as caught:
        load_settings(path, environ=environ or {})
    error = caught.value
    assert isinstance(error, SettingsError)
    assert error.key == "config"
    assert error.source == str(path)
    assert str(path) in str(error)
    return error


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert "no such file" in str(config_file_error(tmp_path / "missing.toml"))


def test_a_missing_file_named_by_keyturn_config_is_refused(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigFileError) as caught:
        load_settings(None, environ={"KEYTURN_CONFIG": missing})
    assert caught.value.source == missing
    assert missing in str(caught.value)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in str(config_file_error(tmp_path))


def test_malformed_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'access_token_ttl = 60\nissuer "https://auth.example.com"\n')
    message = str(config_file_error(path))
    assert "TOML" in message
    assert "line 2" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "access_token_ttl = 60\n")
    path.chmod(0)
    try:
        assert "permission denied" in str(config_file_error(path))
    finally:
        path.chmod(0o600)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[scopes]\nsms = "Envoyer des SMS à café"\n'.encode("latin-1"))
    assert "TOML" in str(config_file_error(path))


def test_configured_keys_names_what_the_file_and_the_environment_set(tmp_path: Path) -> None:
    config = tmp_path / "keyturn.toml"
    config.write_text('issuer = "https://auth.example.com"\n[scopes]\nsms = "Send SMS"\n')
    env = {"KEYTURN_ACCESS_TOKEN_TTL": "60", "KEYTURN_CLIENT_ID": "kt_ci", "KEYTURN_TEST_POSTGRES_URL": ""}
    assert configured_keys(config, env) == {"issuer", "scopes", "access_token_ttl"}
    assert configured_keys(None, {}) == frozenset()
