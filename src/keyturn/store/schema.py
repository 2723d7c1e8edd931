"""The tables. Alembic migrations (store/migrations) create them; a test checks the two agree.

Secrets appear only as 32-byte keyed digests (``*_hash``). Times are epoch seconds.
Scope lists on hot rows (codes, tokens, consents, API keys) are space-separated strings,
as OAuth writes them; the client's lists are JSON.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_DIGEST = LargeBinary(32)
# SQLite only auto-increments an INTEGER PRIMARY KEY.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def _timestamp(name: str, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    # The case-folded email: the unique key used for login look-ups.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("name", String(200), nullable=False, default=""),
    Column("company", String(200), nullable=False, default=""),
    Column("alias", String(200), nullable=False, default=""),
    Column("attributes", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_hash", _DIGEST, nullable=True),
    Column("kind", String(20), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("required_scopes", JSON, nullable=False),
    Column("allow_implicit", Boolean, nullable=False),
    Column("first_party", Boolean, nullable=False),
    Column("remember_consent", Boolean, nullable=False),
    Column("token_format", String(10), nullable=True),
    Column("access_token_ttl", Integer, nullable=True),
    Column("refresh_token_ttl", Integer, nullable=True),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_hash", _DIGEST, nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("display_prefix", String(32), nullable=False),
    # NULL: every scope the owner has.
    Column("scope", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("expires_at", nullable=True),
    _timestamp("last_used_at", nullable=True),
    _timestamp("revoked_at", nullable=True),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", _DIGEST, primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("redirect_uri", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(10), nullable=True),
    Column("grant_id", String(64), nullable=False),
    _timestamp("created_at"),
    _timestamp("expires_at"),
    _timestamp("consumed_at", nullable=True),
    Index(None, "expires_at"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", _DIGEST, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("grant_id", String(64), nullable=False),
    Column("parent_hash", _DIGEST, nullable=True),
    _timestamp("created_at"),
    _timestamp("expires_at"),
    _timestamp("revoked_at", nullable=True),
    _timestamp("rotated_at", nullable=True),
    Column("retry_blob", LargeBinary, nullable=True),
    Index(None, "grant_id"),
    Index(None, "expires_at"),
    Index(None, "account_id", "client_id"),
    Index(None, "client_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True),
    Column("scope", Text, nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index(None, "client_id"),
)

# Added in 0002: a client that is a protected API may introspect any credential.
clients.append_column(Column("resource_server", Boolean, nullable=False, server_default="0"))

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", _DIGEST, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    _timestamp("created_at"),
    _timestamp("expires_at"),
    Index(None, "expires_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    # The order keys were added in: the newest is first in the JWKS.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kid", String(64), nullable=False, unique=True),
    Column("alg", String(10), nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("private_key_sealed", LargeBinary, nullable=False),
    _timestamp("created_at"),
    _timestamp("retired_at", nullable=True),
    _timestamp("expires_at", nullable=True),
    # TRUE on the active key and NULL on the others: being unique, it lets the database
    # itself refuse a second active key when two servers start (or rotate) at once.
    Column("current", Boolean, nullable=True, unique=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    _timestamp("at"),
    Column("kind", String(64), nullable=False),
    # No foreign keys: the audit trail outlives the accounts and clients it names.
    Column("account_id", Integer, nullable=True),
    Column("client_id", String(64), nullable=True),
    Column("detail", JSON, nullable=False),
    Index(None, "at"),
    Index(None, "kind", "at"),
)


def _names(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


# The column lists of the records that store/rows.py maps by position: a row read with
# ``select(table)`` or with these names in this order maps the same way.
API_KEY_COLUMNS = _names(api_keys)
CODE_COLUMNS = _names(authorization_codes)
CONSENT_COLUMNS = _names(consents)
SESSION_COLUMNS = _names(sessions)
TOKEN_COLUMNS = _names(tokens)
AUDIT_COLUMNS = tuple(name for name in _names(audit_events) if name != "id")
