"""Signing keys: created on first start, private parts sealed with the server secret,
public parts served as a JWKS (RFC 7517), rotated with ``keyturn keys rotate`` or on the
server's schedule (keyturn.core.key_rotation).

The key ring is cached in-process; the store is read only when the ring is reloaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyturn.core.clock import Clock
from keyturn.core.key_rotation import Rotation
from keyturn.core.models import SigningKey
from keyturn.core.ports import Conflict, Store
from keyturn.core.service import commit_now

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_NONCE_BYTES = 12
_RELOAD_PAUSE = 5.0
_SEAL_CONTEXT = b"keyturn/signing-key-seal/v1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


class KeySealer:
    """AES-256-GCM with a key derived from the server secret (HKDF-SHA256)."""

    __slots__ = ("_aead",)

    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_SEAL_CONTEXT).derive(server_secret.encode("utf-8"))
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, kid: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, kid.encode("utf-8"))

    def open(self, sealed: bytes, kid: str) -> bytes:
        """Raises cryptography.exceptions.InvalidTag when the server secret is not the one
        that sealed it."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, kid.encode("utf-8"))


def public_jwk(private_key: PrivateKey, alg: str) -> dict[str, str]:
    """The public JWK, with ``kid`` set to its RFC 7638 thumbprint."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    else:
        numbers = private_key.public_key().public_numbers()
        members = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(_int_bytes(numbers.x, 32)),
            "y": _b64url(_int_bytes(numbers.y, 32)),
        }
    # RFC 7638 §3: the thumbprint hashes the required members, sorted, without whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {**members, "kid": kid, "alg": alg, "use": "sig"}


def generate_signing_key(alg: str, sealer: KeySealer, now: int) -> SigningKey:
    private_key: PrivateKey
    if alg == "EdDSA":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    jwk = public_jwk(private_key, alg)
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(
        kid=jwk["kid"],
        alg=alg,
        public_jwk=jwk,
        private_key_sealed=sealer.seal(der, jwk["kid"]),
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class ActiveKey:
    kid: str
    alg: str
    private_key: PrivateKey


class KeyRing:
    """The published keys and the active signing key, cached in-process.

    ``reload()`` re-reads the store (after a rotation, or on a cache-invalidation
    message); everything else is served from memory.
    """

    def __init__(self, store: Store, sealer: KeySealer, clock: Clock) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock
        self._jwks: dict[str, Any] = {"keys": []}
        self._jwks_json = b'{"keys":[]}'
        self._active: ActiveKey | None = None
        self._public: dict[str, jwt.PyJWK] = {}
        self._loaded_at = 0.0
        self._active_created_at: int | None = None

    def ensure(self, alg: str) -> None:
        """Creates the first signing key if there is none; loads the ring."""
        self.reload()
        if self._active is None:
            key = generate_signing_key(alg, self._sealer, self._clock.now())
            # The first key replaces none: a server starting at the same moment may have
            # created it already, and the commit then refuses a second active one. No
            # audit event: the key is part of the installation, not a change to it.
            with contextlib.suppress(Conflict):
                commit_now(self._store, lambda unit: unit.add_signing_key(key, None, replaces=None))
            self.reload()

    def successor(self, alg: str, keep_previous_for: int | None) -> Rotation:
        """A new key to make active in place of the active one, which then stays
        published ``keep_previous_for`` seconds from now (None: until removed)."""
        now = self._clock.now()
        replaces = None if self._active is None else self._active.kid
        until = None if keep_previous_for is None else now + keep_previous_for
        return Rotation(generate_signing_key(alg, self._sealer, now), replaces, until)

    def active_since(self) -> int | None:
        return self._active_created_at

    def reload(self) -> None:
        self._loaded_at = time.monotonic()
        keys = self._store.list_signing_keys(self._clock.now())
        self._jwks = {"keys": [dict(k.public_jwk) for k in keys]}
        self._public = {k.kid: jwt.PyJWK(dict(k.public_jwk)) for k in keys}
        self._jwks_json = json.dumps(self._jwks, separators=(",", ":")).encode("utf-8")
        active = next((k for k in keys if k.active), None)
        self._active_created_at = None if active is None else active.created_at
        self._active = None if active is None else self._load_private(active)

    def _load_private(self, key: SigningKey) -> ActiveKey:
        der = self._sealer.open(key.private_key_sealed, key.kid)
        private_key = serialization.load_der_private_key(der, password=None)
        assert isinstance(private_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        return ActiveKey(kid=key.kid, alg=key.alg, private_key=private_key)

    @property
    def active(self) -> ActiveKey:
        if self._active is None:
            raise RuntimeError("no active signing key: the key ring was not initialised")
        return self._active

    def public_key(self, kid: str) -> jwt.PyJWK | None:
        """A published key by its id (for verifying this server's own tokens). An unknown
        id makes the ring re-read the store, at most every few seconds: another node may
        have rotated the keys."""
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._loaded_at >= _RELOAD_PAUSE:
            self.reload()
            key = self._public.get(kid)
        return key

    @property
    def jwks(self) -> Mapping[str, Any]:
        return self._jwks

    @property
    def jwks_json(self) -> bytes:
        return self._jwks_json
