"""What both adapters (ASGI and WSGI) decide the same way: which paths are public, where
the credential is, which scopes a request needs, and how a refusal looks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from ._credentials import Shape, find_credential
from ._errors import (
    ERROR_STYLES,
    AuthError,
    AuthServerUnavailable,
    ErrorResponse,
    ErrorStyle,
    InsufficientScope,
    render,
)
from ._principal import Principal

if TYPE_CHECKING:
    from ._verifier import Verifier

log = logging.getLogger("keyturn.resource")

#: The seeds' spellings: OnlineSIM documents both ``?api_key=`` and ``?apikey=``.
DEFAULT_QUERY_PARAMETERS = ("api_key", "apikey")

App = TypeVar("App")


class Gate:
    def __init__(
        self,
        *,
        scopes: Iterable[str],
        public_paths: Iterable[str],
        query_parameters: Iterable[str],
        error_style: ErrorStyle,
        realm: str,
    ) -> None:
        if error_style not in ERROR_STYLES:
            raise ValueError(f"error_style must be one of {', '.join(ERROR_STYLES)}")
        if isinstance(scopes, str) or isinstance(public_paths, str) or isinstance(query_parameters, str):
            raise TypeError("scopes, public_paths and query_parameters are lists of strings, not a string")
        self.scopes = tuple(scopes)
        paths = tuple(public_paths)
        # "/docs/*" opens everything under /docs/; any other entry is one exact path.
        self._public_prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
        self._public_exact = frozenset(p for p in paths if not p.endswith("*"))
        self.query_parameters = tuple(query_parameters)
        self.error_style: ErrorStyle = error_style
        self.realm = realm

    def is_public(self, path: str) -> bool:
        return path in self._public_exact or path.startswith(self._public_prefixes)

    def credential(self, authorization: Iterable[str], query_string: str) -> tuple[str, Shape | None]:
        """The request's one credential, and its shape if it came in the query (see
        :func:`find_credential`; the verifier checks the others')."""
        return find_credential(authorization, query_string, self.query_parameters)

    def check_scopes(self, principal: Principal) -> Principal:
        """The scopes every protected path of this middleware needs."""
        return require(principal, self.scopes) if self.scopes else principal

    def refusal(self, exc: AuthError) -> ErrorResponse:
        if isinstance(exc, AuthServerUnavailable):
            log.error("refusing a request: the authorization server cannot be asked (%s)", exc.detail)
        else:
            log.info("refusing a request: %s (%s)", exc.error or "no credential", exc.detail or exc.description)
        return render(exc, realm=self.realm, style=self.error_style)


def require(principal: Principal, needed: tuple[str, ...]) -> Principal:
    """``principal`` if it carries every scope in ``needed``; InsufficientScope otherwise."""
    if not principal.scopes.issuperset(needed):
        # RFC 6750 §3.1: the scope attribute names "the scope necessary to access the
        # protected resource"; all of it, not only what is missing.
        raise InsufficientScope(needed, detail=f"missing {' '.join(principal.missing_scopes(*needed))}")
    return principal


class Guard(Generic[App]):
    """A middleware's parts, the same for ASGI and WSGI: the application it protects, the
    verifier, and the gate its options make."""

    def __init__(
        self,
        app: App,
        verifier: Verifier,
        *,
        scopes: Iterable[str] = (),
        public_paths: Iterable[str] = (),
        query_parameters: Iterable[str] = DEFAULT_QUERY_PARAMETERS,
        error_style: ErrorStyle = "rfc6750",
        realm: str = "api",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.gate = Gate(
            scopes=scopes,
            public_paths=public_paths,
            query_parameters=query_parameters,
            error_style=error_style,
            realm=realm,
        )
