"""The Jinja2 environment of GridMap's own pages (templates in ./templates).

Autoescaping is on for every template: names, usernames and messages shown in them may come from
a user. Each page is rendered with its language and the word table (:mod:`api.pages.words`).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from api.pages.words import role_name, t
from gis.queries.statistics import STATISTICS_ROLES

environment = Environment(
    loader=PackageLoader("api.pages", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals["dash_roles"] = STATISTICS_ROLES  # who the user bar links to /dash


def render(template: str, *, lang: str, **context: Any) -> str:
    """``template`` in ``lang``; templates call ``t(key)`` and ``role_name(role)``."""
    return environment.get_template(template).render(
        lang=lang, t=lambda key, **values: t(key, lang, **values),
        role_name=lambda role: role_name(role, lang), **context)
