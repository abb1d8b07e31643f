"""Signed verification tokens for licence QR codes, with a pluggable signature algorithm.

Token layout (URL-safe, fits a QR code): ``L1.<base64url(payload)>.<base64url(signature)>`` where the
payload is compact JSON ``[kid, status_index, identifier, masked holder name, masked holder code,
valid_from YYYYMMDD, valid_to YYYYMMDD or "", issued-at epoch seconds]`` and the signature covers
the bytes ``L1.<base64url(payload)>``. A verifier needs only the issuer's public key (published at
``/licences/keys.json``); the live status is in the status lists or at ``/verify/<token>``.

Algorithm: Ed25519 (RFC 8032) from ``cryptography``. GB/T 36905 names SM2/SM3 for licence seals,
but the only SM2 implementation on PyPI we could check (gmssl, pure Python) signs and verifies about
61 pairs per second and has no key-generation helper (STACK_NOTES), far below the 2,000
verifications per second target; Ed25519 verifies ~10,000 per second in one process. ``ALGORITHMS``
maps a name to an implementation, so an SM2 one (e.g. on a hardware module or a C library) can be
registered without changing the token format: the key id names the key and the key names its
algorithm.

Private keys are generated on first use per issuing department and kept under
``<instance>/licence_keys/`` (mode 0600), never in the repository or the database.
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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TOKEN_PREFIX = "L1"  # noqa: S105  (a format marker, not a secret)
MAX_TOKEN_LENGTH = 1200


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Algorithm(Protocol):
    name: str

    def generate(self) -> Any: ...
    def private_pem(self, private_key: Any) -> bytes: ...
    def load_private(self, pem: bytes) -> Any: ...
    def public_raw(self, private_key: Any) -> bytes: ...
    def sign(self, private_key: Any, data: bytes) -> bytes: ...
    def load_public(self, raw: bytes) -> Any: ...
    def verify(self, public_key: Any, signature: bytes, data: bytes) -> bool: ...


class Ed25519Algorithm:
    name = "Ed25519"

    def generate(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.generate()

    def private_pem(self, private_key: Ed25519PrivateKey) -> bytes:
        return private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def load_private(self, pem: bytes) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return key

    def public_raw(self, private_key: Ed25519PrivateKey) -> bytes:
        return private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, private_key: Ed25519PrivateKey, data: bytes) -> bytes:
        return private_key.sign(data)

    def load_public(self, raw: bytes) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(raw)

    def verify(self, public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
        try:
            public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


ALGORITHMS: dict[str, Algorithm] = {"Ed25519": Ed25519Algorithm()}
DEFAULT_ALGORITHM = "Ed25519"


def key_id(algorithm: str, public_raw: bytes) -> str:
    return hashlib.sha256(algorithm.encode() + b":" + public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    issuer_code: str
    private_key: Any
    public_raw: bytes

    def sign(self, data: bytes) -> bytes:
        return ALGORITHMS[self.algorithm].sign(self.private_key, data)


class KeyPermissionError(RuntimeError):
    """A private key file or its folder can be read by other users: refuse to start."""


class KeyStore:
    """Private keys under ``<instance>/licence_keys/<issuer USCC>.<algorithm>.pem``, created on first use.

    Creation is race-safe across processes (gunicorn workers): the key is written to a temporary
    file and hard-linked into place; a loser of the race reads the winner's key. ``rotate`` moves the
    current key to ``retired/`` (kept, mode 0600, never used to sign again) and makes a new one; every
    process notices because ``key_for`` re-reads a key whose file changed.
    """

    def __init__(self, folder: Path, algorithm: str = DEFAULT_ALGORITHM) -> None:
        self.folder = folder
        self.algorithm = algorithm
        self._cache: dict[str, tuple[tuple[int, int], SigningKey]] = {}

    def _path(self, issuer_code: str) -> Path:
        return self.folder / f"{issuer_code}.{self.algorithm}.pem"

    def has_key(self, issuer_code: str) -> bool:
        return self._path(issuer_code).exists()

    def created_at(self, issuer_code: str) -> datetime:
        """When the issuer's current key was made: its file's time (written once, linked into place)."""
        return datetime.fromtimestamp(self._path(issuer_code).stat().st_mtime, tz=UTC)

    def key_for(self, issuer_code: str) -> SigningKey:
        alg = ALGORITHMS[self.algorithm]
        path = self._path(issuer_code)
        if not path.exists():
            self._create(path)
        stat = path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns)
        cached = self._cache.get(issuer_code)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        private = alg.load_private(path.read_bytes())
        raw = alg.public_raw(private)
        key = SigningKey(key_id(self.algorithm, raw), self.algorithm, issuer_code, private, raw)
        self._cache[issuer_code] = (stamp, key)
        return key

    def _create(self, path: Path) -> None:
        alg = ALGORITHMS[self.algorithm]
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.folder.chmod(0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(alg.private_pem(alg.generate()))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()

    def rotate(self, issuer_code: str) -> tuple[SigningKey | None, SigningKey]:
        """Retire the issuer's current key (moved to ``retired/<kid>.pem``) and create a new one."""
        path = self._path(issuer_code)
        old = self.key_for(issuer_code) if path.exists() else None
        if old is not None:
            retired = self.folder / "retired"
            retired.mkdir(mode=0o700, exist_ok=True)
            os.replace(path, retired / f"{issuer_code}.{self.algorithm}.{old.kid}.pem")
        self._cache.pop(issuer_code, None)
        return old, self.key_for(issuer_code)

    def check_permissions(self) -> None:
        """Raise KeyPermissionError when the folder or a key file is open to group or others."""
        if not self.folder.exists():
            return
        for path in [self.folder, *self.folder.rglob("*")]:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise KeyPermissionError(
                    f"签名私钥权限过宽：{path}（{oct(mode)}），只允许属主读写"
                    f"（chmod {'700' if path.is_dir() else '600'} {path}）"
                )


@dataclass(frozen=True)
class PublicKey:
    kid: str
    algorithm: str
    issuer_code: str
    public_raw: bytes


@dataclass(frozen=True)
class TokenClaims:
    kid: str
    status_index: int
    identifier: str
    holder_name_masked: str
    holder_code_masked: str
    valid_from: date
    valid_to: date | None
    issued_at: int


@dataclass(frozen=True)
class TokenCheck:
    """Result of an offline check. ``reason`` (Chinese) says why a token is not valid."""

    ok: bool
    reason: str | None = None
    claims: TokenClaims | None = None
    kid: str | None = None


def _ymd(d: date | None) -> str:
    return d.strftime("%Y%m%d") if d else ""


def _parse_ymd(text: str) -> date | None:
    if not text:
        return None
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def make_token(key: SigningKey, claims: TokenClaims) -> str:
    payload = json.dumps(
        [
            claims.kid,
            claims.status_index,
            claims.identifier,
            claims.holder_name_masked,
            claims.holder_code_masked,
            _ymd(claims.valid_from),
            _ymd(claims.valid_to),
            claims.issued_at,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    signed = f"{TOKEN_PREFIX}.{b64e(payload)}"
    return f"{signed}.{b64e(key.sign(signed.encode('ascii')))}"


def new_claims(
    key: SigningKey,
    *,
    status_index: int,
    identifier: str,
    holder_name_masked: str,
    holder_code_masked: str,
    valid_from: date,
    valid_to: date | None,
) -> TokenClaims:
    return TokenClaims(
        key.kid,
        status_index,
        identifier,
        holder_name_masked,
        holder_code_masked,
        valid_from,
        valid_to,
        int(time.time()),
    )


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes a document signature covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(key: SigningKey, document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with a ``proof``: the signature over ``canonical(document)`` (without the proof)."""
    body = {k: v for k, v in document.items() if k != "proof"}
    return {
        **body,
        "proof": {
            "type": "DataSignature",
            "kid": key.kid,
            "alg": key.algorithm,
            "value": b64e(key.sign(canonical(body))),
        },
    }


def verify_document(document: Mapping[str, Any], keys: Mapping[str, PublicKey]) -> bool:
    """Offline check of a signed document (a status list) against published public keys."""
    proof = document.get("proof")
    if not isinstance(proof, dict):
        return False
    key = keys.get(str(proof.get("kid")))
    if key is None or key.algorithm not in ALGORITHMS:
        return False
    body = {k: v for k, v in document.items() if k != "proof"}
    try:
        signature = b64d(str(proof.get("value")))
    except ValueError:
        return False
    alg = ALGORITHMS[key.algorithm]
    return alg.verify(alg.load_public(key.public_raw), signature, canonical(body))


class Verifier:
    """Offline verification with a set of published public keys (public key objects are cached)."""

    def __init__(self, keys: Mapping[str, PublicKey]) -> None:
        self.keys = dict(keys)
        self._loaded: dict[str, Any] = {}

    def _public(self, key: PublicKey) -> Any:
        loaded = self._loaded.get(key.kid)
        if loaded is None:
            loaded = ALGORITHMS[key.algorithm].load_public(key.public_raw)
            self._loaded[key.kid] = loaded
        return loaded

    def check(self, token: str) -> TokenCheck:
        from licenses.identifiers import IdentifierError, parse_identifier

        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return TokenCheck(False, "令牌格式错误或长度异常")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
            return TokenCheck(False, "令牌格式错误或不完整（可能被截断）")
        try:
            payload = json.loads(b64d(parts[1]))
            signature = b64d(parts[2])
        except (ValueError, UnicodeDecodeError):
            return TokenCheck(False, "令牌内容无法解码（可能被截断或篡改）")
        if not (isinstance(payload, list) and len(payload) == 8 and isinstance(payload[0], str)):
            return TokenCheck(False, "令牌内容结构错误")
        kid = payload[0]
        key = self.keys.get(kid)
        if key is None:
            return TokenCheck(False, "签名密钥未知：令牌不是由本平台公布的颁发机构密钥签发的", kid=kid)
        if key.algorithm not in ALGORITHMS:
            return TokenCheck(False, f"不支持的签名算法 {key.algorithm}", kid=kid)
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not ALGORITHMS[key.algorithm].verify(self._public(key), signature, signed):
            return TokenCheck(False, "签名验证失败：令牌被篡改、被截断或由其他密钥签发", kid=kid)
        try:
            claims = TokenClaims(
                kid,
                int(payload[1]),
                str(payload[2]),
                str(payload[3]),
                str(payload[4]),
                _parse_ymd(str(payload[5])) or date.min,
                _parse_ymd(str(payload[6])),
                int(payload[7]),
            )
            ident = parse_identifier(claims.identifier)
        except (ValueError, TypeError, IdentifierError) as exc:
            return TokenCheck(False, f"令牌内容无效：{exc}", kid=kid)
        if ident.issuer_code != key.issuer_code:
            return TokenCheck(False, "签名密钥不属于证照标识中的颁发机构", kid=kid)
        return TokenCheck(True, None, claims, kid)
