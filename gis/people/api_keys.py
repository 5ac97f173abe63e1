"""API keys for other systems (a 12345 hotline, a WeChat app) that post Open311 service requests.

A key is shown once, when created; only its SHA-256 is stored. Keys are revoked, never deleted,
so the requests a key posted stay attributable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden, InvalidParameter, NotFound

KEY_PREFIX = "gm311_"


def create_api_key(session: Session, label: str, created_by: str | None = None) -> tuple[int, str]:
    """A new key for another system: returns (id, key). The key is shown this once, never stored."""
    if not label.strip():
        raise InvalidParameter("an api key needs a label saying who uses it (e.g. '12345 hotline')",
                               zh="API 密钥需要一个说明使用者的标签（如 '12345 热线'）")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = session.execute(text(
        "INSERT INTO api_keys (key_hash, label, created_by) VALUES (:h, :l, :b) RETURNING id"),
        {"h": _digest(key), "l": label.strip(), "b": created_by}).scalar_one()
    return key_id, key


def list_api_keys(session: Session) -> list[dict]:
    rows = session.execute(text(
        "SELECT id, label, created_by, created_at, revoked_at FROM api_keys ORDER BY id")).mappings()
    return [dict(r) for r in rows]


def revoke_api_key(session: Session, key_id: int) -> None:
    done = session.execute(text(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :i RETURNING id"),
        {"i": key_id}).scalar()
    if done is None:
        raise NotFound(f"no api key with id {key_id}", zh=f"没有 id 为 {key_id} 的 API 密钥")


def authenticate_api_key(session: Session, key: str | None) -> int:
    """The id of the active key ``key``; Forbidden (the spec's 403) when missing, unknown or revoked.

    Keys are 256-bit random, so looking one up by its SHA-256 reveals nothing through timing; the
    final comparison is constant-time all the same.
    """
    if not key:
        raise Forbidden("api_key is required to post a service request; ask the city's GridMap "
                        "administrator for one",
                        zh="提交诉求需要 api_key；请向本市 GridMap 管理员申请")
    digest = _digest(key)
    row = session.execute(text(
        "SELECT id, key_hash FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
        {"h": digest}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Forbidden("api_key is not valid: unknown or revoked",
                        zh="api_key 无效：不存在或已被吊销")
    return row.id


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
