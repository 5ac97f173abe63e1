"""The evaluation as files (docs/ARCHITECTURE.md, "Evaluation"): an Excel workbook with a sheet
per role (Chinese sheet names and headers, the header row and the name columns frozen, rates as
percentages, column widths to fit) and a notes sheet with the period, the weights and the grades;
and one role as CSV (UTF-8 with a BOM, so that Excel reads the Chinese names).

They take what :func:`gis.queries.evaluation.evaluate` returns, so a file says exactly what the
API does."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gis.queries.evaluation import INDICATORS, Period, Scoring
from gis.rules import BEIJING, EVALUATION_ROLE_NAMES, GRADES

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NUMBER_FORMATS = {"rate": "0.0%", "count": "0", "hours": "0.00", "per_1000": "0.00",
                  "score": "0.0", "change": "+0.0;-0.0;0.0"}
_UNIT_SUFFIX = {"hours": "（工作小时）", "rate": "", "count": "", "per_1000": ""}
_KEY_HEADERS = {"department": ("部门编码", "部门名称"), "worker": ("账号", "姓名"),
                "grid": ("网格编码", "网格名称"), "community": ("社区编码", "社区名称")}
_SCORE_COLUMNS = (("score", "综合得分", "score"), ("grade", "等级", None),
                  ("previous_score", "上期得分", "score"), ("previous_grade", "上期等级", None),
                  ("score_change", "得分变化", "change"))
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_BETTER_ZH = {"higher": "越高越好", "lower": "越低越好"}
_UNIT_ZH = {"rate": "比率", "count": "件数", "hours": "工作小时", "per_1000": "每千户件数"}


def file_stem(period: Period, role: str | None = None) -> tuple[str, str]:
    """(ASCII, Chinese) names of an export without the extension:
    ('evaluation-department-2026-11', '综合评价-专业部门-2026-11')."""
    span = period.label if period.kind else f"{period.since}_{period.until}"
    span_zh = period.label if period.kind else f"{period.since}至{period.until}"
    role_en = f"-{role}" if role else ""
    role_zh = f"-{EVALUATION_ROLE_NAMES[role][0]}" if role else ""
    return f"evaluation{role_en}-{span}", f"综合评价{role_zh}-{span_zh}"


def columns(role: str) -> list[tuple[str, str, str | None]]:
    """(key, Chinese header, number format) of a role's sheet, in order."""
    key, name = _KEY_HEADERS[role]
    out: list[tuple[str, str, str | None]] = [("key", key, None), ("name", name, None)]
    out += [(i.key, i.zh + _UNIT_SUFFIX[i.unit], NUMBER_FORMATS[i.unit]) for i in INDICATORS[role]]
    out += [(k, zh, NUMBER_FORMATS[f] if f else None) for k, zh, f in _SCORE_COLUMNS]
    return out


def _cell(row: dict, key: str):
    return row["values"][key] if key in row["values"] else row.get(key)


def workbook_bytes(results: dict[str, dict], scoring: Scoring) -> bytes:
    """One sheet per role of ``results`` (role -> an evaluation), then the notes."""
    book = Workbook()
    book.remove(book.active)
    for role, result in results.items():
        _role_sheet(book.create_sheet(EVALUATION_ROLE_NAMES[role][0]), role, result)
    first = next(iter(results.values()))
    _notes_sheet(book.create_sheet("说明"), first, scoring, list(results))
    book.properties.title = f"综合评价 {first['period']['label']}"
    book.properties.creator = "GridMap"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _role_sheet(sheet: Worksheet, role: str, result: dict) -> None:
    cols = columns(role)
    sheet.append([header for _, header, _ in cols])
    for row in result["data"]:
        sheet.append([_cell(row, key) for key, _, _ in cols])
    for n, (_, _, number_format) in enumerate(cols, start=1):
        if number_format:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=n, max_col=n):
                cell.number_format = number_format
    _header_style(sheet)
    sheet.freeze_panes = "C2"  # the header row and the key and name columns
    sheet.auto_filter.ref = sheet.dimensions
    _fit_widths(sheet)


def _header_style(sheet: Worksheet) -> None:
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _display_width(value) -> int:
    """Characters as a spreadsheet shows them: wide (Chinese) ones count twice."""
    text = f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "")
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit_widths(sheet: Worksheet) -> None:
    for n, cells in enumerate(sheet.iter_cols(values_only=True), start=1):
        widest = max((_display_width(v) for v in cells), default=8)
        sheet.column_dimensions[get_column_letter(n)].width = min(max(widest + 2, 8), 40)


def _notes_sheet(sheet: Worksheet, result: dict, scoring: Scoring, roles: list[str]) -> None:
    period, previous = result["period"], result["previous"]
    made = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M")
    sheet.append(["评价周期", period["label"], f"{period['since']} 至 {period['until']}"])
    sheet.append(["对比上期", previous["label"], f"{previous['since']} 至 {previous['until']}"])
    sheet.append(["生成时间", made, "北京时间；已结案件按生成时的状态计"])
    sheet.append([])
    sheet.append(["等级", *GRADES])
    sheet.append(["最低得分", *(scoring.thresholds.get(g) for g in GRADES)])
    sheet.append([])
    start = sheet.max_row + 1
    sheet.append(["对象", "指标", "英文", "单位", "方向", "权重", "评级最少件数"])
    for role in roles:
        for indicator in INDICATORS[role]:
            sheet.append([EVALUATION_ROLE_NAMES[role][0], indicator.zh, indicator.en,
                          _UNIT_ZH[indicator.unit], _BETTER_ZH[indicator.better],
                          scoring.weights[role].get(indicator.key, 0.0),
                          scoring.min_cases[role]])
    for cell in [*sheet["A"], *sheet[5], *sheet[start]]:
        cell.font = Font(bold=True)
    _fit_widths(sheet)


def csv_text(result: dict) -> str:
    """One role's evaluation as CSV: the keys as headers (as the statistics' CSV), rates as
    fractions, with a BOM."""
    keys = [key for key, _, _ in columns(result["role"])]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(keys)
    for row in result["data"]:
        writer.writerow(["" if (v := _cell(row, k)) is None else v for k in keys])
    return "\ufeff" + out.getvalue()
