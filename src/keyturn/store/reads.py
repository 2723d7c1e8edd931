"""The hot reads, on the driver: a token, an API key, a session with its consent, a
code. These run on every token request, introspection and API call; each is one
indexed statement (store/connections.py)."""

from __future__ import annotations

from keyturn.core.models import ApiKey, AuthorizationCode, Consent, Session, Token

from .connections import Connections
from .rows import api_key_from_row, code_from_row, consent_from_row, session_from_row, token_from_row
from .schema import API_KEY_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS, SESSION_COLUMNS, TOKEN_COLUMNS


def _columns(names: tuple[str, ...], alias: str = "") -> str:
    return ", ".join(alias + name for name in names)


class Reads:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        mark = connections.mark
        # Constant column names and markers only: the values travel as parameters.
        self._token = f"SELECT {_columns(TOKEN_COLUMNS)} FROM tokens WHERE token_hash = {mark}"  # noqa: S608
        self._live_of_grant = f"SELECT count(*) FROM tokens WHERE grant_id = {mark} AND revoked_at IS NULL"  # noqa: S608
        self._api_key = f"SELECT {_columns(API_KEY_COLUMNS)} FROM api_keys WHERE key_hash = {mark}"  # noqa: S608
        self._code = (
            f"SELECT {_columns(CODE_COLUMNS)} FROM authorization_codes "  # noqa: S608
            f"WHERE code_hash = {mark} AND client_id = {mark}"
        )
        session, consent = _columns(SESSION_COLUMNS, "s."), _columns(CONSENT_COLUMNS, "c.")
        self._session = f"SELECT {session} FROM sessions s WHERE s.session_hash = {mark}"  # noqa: S608
        self._consent = f"SELECT {consent} FROM consents c WHERE c.account_id = {mark} AND c.client_id = {mark}"  # noqa: S608
        self._session_and_consent = (
            f"SELECT {session}, {consent} FROM sessions s LEFT JOIN consents c "  # noqa: S608
            f"ON c.account_id = s.account_id AND c.client_id = {mark} WHERE s.session_hash = {mark}"
        )
        self._session_width = len(SESSION_COLUMNS)

    def token(self, token_hash: bytes) -> Token | None:
        row = self._connections.one(self._token, (token_hash,))
        return None if row is None else token_from_row(row)

    def live_tokens_of_grant(self, grant_id: str) -> int:
        return int(self._connections.one(self._live_of_grant, (grant_id,))[0])

    def api_key(self, key_hash: bytes) -> ApiKey | None:
        row = self._connections.one(self._api_key, (key_hash,))
        return None if row is None else api_key_from_row(row)

    def code(self, code_hash: bytes, client_id: str) -> AuthorizationCode | None:
        row = self._connections.one(self._code, (code_hash, client_id))
        return None if row is None else code_from_row(row)

    def session(self, session_hash: bytes) -> Session | None:
        row = self._connections.one(self._session, (session_hash,))
        return None if row is None else session_from_row(row)

    def consent(self, account_id: int, client_id: str) -> Consent | None:
        row = self._connections.one(self._consent, (account_id, client_id))
        return None if row is None else consent_from_row(row)

    def session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        row = self._connections.one(self._session_and_consent, (client_id, session_hash))
        if row is None:
            return None, None
        width = self._session_width
        return session_from_row(row), None if row[width] is None else consent_from_row(row[width:])
