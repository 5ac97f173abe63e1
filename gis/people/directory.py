"""What the admin's forms offer to choose from (the people helpers' own lists of users and
departments are in :mod:`gis.people.accounts`): the regions a leader or dispatcher can be given."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.rules import REGION_LEVELS


def regions(session: Session) -> list[dict]:
    """Every region (code, name, level) by code: a district's streets and communities follow
    it, as the codes nest (140429, 140429100, 140429100001)."""
    rows = session.execute(text(
        "SELECT code, name, level FROM regions WHERE level = ANY(:levels) ORDER BY code"),
        {"levels": list(REGION_LEVELS)}).mappings()
    return [dict(r) for r in rows]
