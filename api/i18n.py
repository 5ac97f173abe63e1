"""The caller's language for messages (Chinese or English) and validation errors in Chinese.

GridMap answers in Chinese when ``Accept-Language`` prefers Chinese (``zh``, ``zh-CN``,
``zh-Hans-CN``...) to English, weighing q-values; in English otherwise, which includes no header,
a wildcard and every other language. Machine-readable fields (``code``, ``loc``, ``type``) are the
same in both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

Language = Literal["zh", "en"]


def preferred_language(accept_language: str | None) -> Language:
    """``zh`` when the header weighs Chinese above English; ``en`` otherwise (ties: first named)."""
    weights = _weights(accept_language or "")
    zh = weights.get("zh", 0.0)
    en = weights.get("en", weights.get("*", 0.0))
    if zh > en or (zh == en and zh > 0 and _first_named(accept_language or "") == "zh"):
        return "zh"
    return "en"


def terminal_language(environ: Mapping[str, str] | None = None) -> Language:
    """The language of the ``gridmap`` command's messages: ``zh`` when the locale that decides
    messages is Chinese (the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set, the POSIX
    order: ``zh_CN.UTF-8``, ``zh_TW``...), ``en`` otherwise."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def _weights(header: str) -> dict[str, float]:
    """The highest q-value given to each primary language subtag (and ``*``)."""
    weights: dict[str, float] = {}
    for tag, q in _ranges(header):
        primary = tag.split("-", 1)[0]
        weights[primary] = max(weights.get(primary, 0.0), q)
    return weights


def _ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        if not tag:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # a malformed weight counts as "not acceptable"
        ranges.append((tag.lower(), q))
    return ranges


def _first_named(header: str) -> str | None:
    for tag, q in _ranges(header):
        primary = tag.split("-", 1)[0]
        if q > 0 and primary in ("zh", "en", "*"):
            return "zh" if primary == "zh" else "en"
    return None


# -- validation errors (pydantic error types) in Chinese -------------------------------------------
_NUMBER = "应为数字"
_DATETIME = "应为日期时间，如 2025-03-01T08:00:00+08:00"
_DATE = "应为日期，如 2025-03-01"
VALIDATION_ZH: dict[str, str] = {
    "missing": "缺少此项（必填）",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数，不能有小数部分",
    "float_parsing": _NUMBER,
    "float_type": _NUMBER,
    "finite_number": "应为有限的数字（不能是 NaN 或无穷大）",
    "decimal_parsing": _NUMBER,
    "bool_parsing": "应为布尔值（true 或 false）",
    "bool_type": "应为布尔值（true 或 false）",
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "datetime_type": _DATETIME,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": "应为日期，不能带时间",
    "date_type": _DATE,
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "string_too_long": "最多 {max_length} 个字符",
    "string_too_short": "至少 {min_length} 个字符",
    "too_long": "最多 {max_length} 项",
    "too_short": "至少 {min_length} 项",
    "string_type": "应为文本",
    "string_pattern_mismatch": "格式不符，应匹配 {pattern}",
    "enum": "应为以下之一：{expected}",
    "literal_error": "应为以下之一：{expected}",
    "json_invalid": "JSON 格式错误：{error}",
    "json_type": "应为 JSON 文本",
    "extra_forbidden": "不接受此字段",
    "uuid_parsing": "应为 UUID，如 0c9e3f43-5a1e-4f0f-b1a2-311311311311",
    "uuid_type": "应为 UUID",
    "url_parsing": "应为网址（URL）",
    "url_scheme": "网址应以 {expected_schemes} 开头",
    "url_type": "应为网址（URL）",
    "list_type": "应为列表",
    "dict_type": "应为对象（JSON 对象）",
    "model_type": "应为对象（JSON 对象）",
    "model_attributes_type": "应为对象（JSON 对象）",
    "union_tag_invalid": "类型 {tag} 无法识别，应为以下之一：{expected_tags}",
    "union_tag_not_found": "缺少用以区分类型的字段 {discriminator}",
    "value_error": "取值无效：{error}",
}
# Where the value itself helps the reader, it is quoted after the message.
_QUOTE_INPUT = {"int_parsing", "int_type", "float_parsing", "float_type", "bool_parsing",
                "bool_type", "datetime_parsing", "datetime_from_date_parsing", "date_parsing",
                "date_from_datetime_parsing", "uuid_parsing", "enum", "literal_error",
                "decimal_parsing", "finite_number"}


def validation_message(error: dict[str, Any], lang: Language) -> str:
    """One pydantic error as a sentence in ``lang``; an unknown type keeps pydantic's English."""
    english = str(error.get("msg", "invalid"))
    template = VALIDATION_ZH.get(str(error.get("type"))) if lang == "zh" else None
    if template is None:
        return english
    ctx = {k: _plain(k, v) for k, v in (error.get("ctx") or {}).items()}
    try:
        text = template.format(**ctx)
    except (KeyError, IndexError, ValueError):
        text = template.split("{", 1)[0].rstrip("：: ")
    if error.get("type") in _QUOTE_INPUT and "input" in error:
        text += f"，收到 {_short(error['input'])}"
    return text


def _plain(key: str, value: Any) -> str:
    text = str(value).removeprefix("Value error, ")
    # pydantic lists the expected values as "'a', 'b' or 'c'"
    if key in ("expected", "expected_tags"):
        return text.replace(", ", "、").replace(" or ", "、")
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
