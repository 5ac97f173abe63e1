"""Personal data in free text: mobile phone numbers and resident ID-card numbers, masked for those
without the right to see them (PIPL). "5号楼1单元902室，电话13812345678" reads
"5号楼1单元902室，电话138****5678" to them.

What counts:
- a mainland mobile number, 1[3-9] and nine more digits, optionally written 138-1234-5678 or
  138 1234 5678, optionally after +86;
- a resident ID-card number: 18 characters (17 digits and a digit or X) or the old 15 digits.

A number counts only when no digit stands right before or after it, so a longer digit string
(an order number) is left alone. Full-width digits (１３８…), as Chinese input methods type them,
count too. Masked: the first three and the last four digits stay, the rest become ``*``
(138****5678, 110***********123X), as hotlines print them.
"""

from __future__ import annotations

import re

_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ－", "0123456789Xx-")
_SEP = r"[ \-]?"
_ID_CARD = re.compile(r"(?<![0-9])(?:[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14})(?![0-9])")
# Before a mobile number: no digit, or the country code 86 (+86, 0086, 86-).
_MOBILE_START = r"(?:(?<![0-9])|(?<=(?<![0-9])86)|(?<=\+86)|(?<=0086)|(?<=86[ \-]))"
_MOBILE = re.compile(rf"{_MOBILE_START}1[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}(?![0-9])")


def mask_text(value: str | None) -> str | None:
    """``value`` with every phone and ID-card number in it masked; None stays None."""
    if not value:
        return value
    ascii_view = value.translate(_FULL_WIDTH)  # one character for one, so spans carry over
    spans = [m.span() for m in _ID_CARD.finditer(ascii_view)]
    spans += [m.span() for m in _MOBILE.finditer(ascii_view) if not _overlaps(m.span(), spans)]
    if not spans:
        return value
    out, last = [], 0
    for start, end in sorted(spans):
        out.append(value[last:start])
        out.append(_mask_number(ascii_view[start:end]))
        last = end
    out.append(value[last:])
    return "".join(out)


def redact(value: str) -> str:
    """``value`` with every phone and ID-card number replaced whole by ``<phone>`` or
    ``<id-card>``: for logs, which keep no part of a number."""
    ascii_view = value.translate(_FULL_WIDTH)
    spans = [(m.span(), "<id-card>") for m in _ID_CARD.finditer(ascii_view)]
    spans += [(m.span(), "<phone>") for m in _MOBILE.finditer(ascii_view)
              if not _overlaps(m.span(), [s for s, _ in spans])]
    out, last = [], 0
    for (start, end), word in sorted(spans):
        out += [value[last:start], word]
        last = end
    out.append(value[last:])
    return "".join(out)


def mask_phone(value: str | None) -> str | None:
    """A phone number field (a reporter's contact): masked the same way, whatever its shape."""
    return mask_text(value)


def contains_personal(value: str | None) -> bool:
    """Does ``value`` hold a phone or ID-card number that :func:`mask_text` would mask?"""
    if not value:
        return False
    ascii_view = value.translate(_FULL_WIDTH)
    return bool(_ID_CARD.search(ascii_view) or _MOBILE.search(ascii_view))


def _mask_number(number: str) -> str:
    digits = number.replace(" ", "").replace("-", "")
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)
