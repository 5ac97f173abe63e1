"""The Jinja2 environment the wire formats are written with (templates in ./templates).

Autoescaping is on for every template: all of them are HTML or XML, and every value in them
(names, descriptions, addresses) may come from a user.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

# Characters XML 1.0 cannot hold even escaped: C0 controls other than tab, LF and CR, lone
# surrogates and the two non-characters U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: Any) -> str:
    """A value as text; None is empty."""
    return "" if value is None else str(value)


def xml_text(value: Any) -> Markup:
    """A value as XML character data: ``&``, ``<`` and ``>`` escaped (quotes need none outside
    attributes, and XML readers show them as sent), characters XML cannot hold dropped."""
    data = _NOT_XML.sub("", text(value))
    return Markup(data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


environment = Environment(
    loader=PackageLoader("api.protocols", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["text"] = text
environment.filters["xml_text"] = xml_text


def render(template: str, **context: Any) -> str:
    return environment.get_template(template).render(**context)
