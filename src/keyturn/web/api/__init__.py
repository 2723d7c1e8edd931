"""The protocol API: the authorization server's back-channel endpoints, on bare ASGI
(the hot paths: no framework's per-request objects)."""

from .endpoints import ProtocolEndpoints

__all__ = ["ProtocolEndpoints"]
