"""Render Folium pages without reading data as templates.

While a page renders, Folium and branca put each element's finished output (a popup's HTML, a
GeoJSON layer's script with all its properties) into a new ``branca.element.Element(text)``, and
that constructor compiles ``text`` as a Jinja template, which the page then renders again. Text
from data is thereby read as Jinja: an issue description containing "{{" failed the whole page
with a TemplateSyntaxError, and one containing "{{ 7*7 }}" was evaluated on the server (Jinja is
not sandboxed there, so that is code execution from a resident's report).

:func:`literal_elements` turns that second pass off for the current thread: inside it, an
``Element(text)`` holds ``text`` as a value and renders it unchanged. Outside it (building a map,
branca's own templates such as the Figure's), branca behaves as it always does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from branca.element import Element
from jinja2 import Template

_state = threading.local()
_LITERAL = Template("{{ this._template_str }}")
_branca_init = Element.__init__


def _element_init(self, template: str | None = None, *args, **kwargs) -> None:
    if template is not None and getattr(_state, "depth", 0):
        _branca_init(self, None, *args, **kwargs)
        self._template_str = template  # shown as it is: see the module text
        self._template = _LITERAL
    else:
        _branca_init(self, template, *args, **kwargs)


Element.__init__ = _element_init  # type: ignore[method-assign]


@contextmanager
def literal_elements() -> Iterator[None]:
    """Within this block (this thread only), ``Element(text)`` renders ``text`` verbatim."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
