"""The roster a community office keeps (花名册): who works in the community, their role, phone,
grids, region and department, as an Excel workbook (XLSX) or a CSV file, read into
:class:`~gis.people.accounts.Person` rows and written through :func:`accounts.save_person`.

What the clerk's file may look like, and how it is read:

- Headers in Chinese or English (``用户名``/``username``, ``姓名``/``name``, ``手机号``/``phone``,
  ``角色``/``role``, ``网格编码``/``grid``, ``管辖区域``/``region``, ``部门``/``department``,
  ``初始密码``/``password``); spaces around them, a UTF-8 BOM, a ``*`` marking a required column
  and a note in brackets (``手机号（选填）``) do not matter. The header is the first row, among the
  first ten, that has a username column (a title row above it is fine). Other columns (序号,
  备注...) are ignored and named in the result.
- CSV as UTF-8 (with or without BOM), GB18030/GBK (what Excel on a Chinese Windows writes) or
  UTF-16 (Excel's "Unicode text"); commas or tabs between cells.
- Cells typed as numbers read as the digits the clerk typed: a phone 13800001111.0, a grid code
  1.40429100001001E14. A number Excel shortened (``1.40429E+14``) is refused: its digits are lost.
- Several grids in one cell are separated by 、 ; , (also full-width ；，) or spaces.
- Rows are numbered as the spreadsheet shows them (the header's row number + 1 is the first
  person), so a clerk can find them.

A column that is present is the truth for every row: an empty grid cell means "holds no grid",
an empty phone cell "no phone". A column that is absent leaves that field as it is (a re-import of
just username and grid reassigns grids). A re-import updates people by username; changing their
grids keeps the assignment history. The initial password applies to new accounts only: a row
without one gets a generated password, returned once in :class:`RosterResult`; a password given
for an existing account is not applied (they keep their own), and the result says so.

Every row is checked (the file's own rules, then the database's: region, department, grids,
password policy), and any bad row means nothing is imported: :class:`~gis.errors.ImportFailed`
lists every bad row with its reason in English and Chinese.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy.orm import Session

from gis.errors import GridMapError, ImportFailed, InvalidParameter
from gis.people import accounts
from gis.people.accounts import Person
from gis.people.passwords import PasswordPolicy

SUFFIXES = (".xlsx", ".xlsm", ".csv")
HEADER_SEARCH_ROWS = 10

# field -> the headers that name it (compared after _header_key).
COLUMNS: dict[str, tuple[str, ...]] = {
    "username": ("用户名", "username", "账号", "登录名", "user"),
    "display_name": ("姓名", "name", "display_name", "displayname"),
    "phone": ("手机号", "phone", "手机", "手机号码", "联系电话", "电话", "mobile"),
    "role": ("角色", "role"),
    "grids": ("网格编码", "grid", "grids", "网格", "gridcode", "grid_code", "网格号"),
    "region": ("管辖区域", "region", "区域", "管辖范围"),
    "department": ("部门", "department", "所属部门", "单位"),
    "password": ("初始密码", "password", "密码", "initial_password"),
}
_GRID_SEPARATORS = re.compile(r"[、;,；，\s]+")
_INTEGRAL = re.compile(r"^[0-9]+\.0*$")
_SCIENTIFIC = re.compile(r"^([0-9])(?:\.([0-9]+))?[eE]\+?([0-9]+)$")


def _header_key(header: object) -> str:
    text = str(header or "").replace("\ufeff", "")
    text = re.sub(r"[（(【\[].*?[）)】\]]", "", text)  # 手机号（选填）
    return re.sub(r"[\s\u3000*＊:：]+", "", text).lower()


_FIELD_BY_HEADER = {_header_key(h): f for f, names in COLUMNS.items() for h in names}


@dataclass(frozen=True)
class RosterRow:
    row: int  # as the spreadsheet numbers it
    person: Person


@dataclass
class Roster:
    """A file read: its people, the rows already known to be bad, the columns found."""

    source: str
    rows: list[RosterRow]
    problems: list[tuple[int, str]]
    columns: dict[str, str]  # field -> header as written
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class RosterResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    generated: list[tuple[str, str]] = field(default_factory=list)  # (username, password), once
    kept_passwords: list[str] = field(default_factory=list)  # existing accounts given a password


# -- reading ----------------------------------------------------------------------------------------
def read_roster(path: str | Path, *, sheet: str | None = None) -> Roster:
    """Read the roster at ``path`` (XLSX: ``sheet`` or the first worksheet; CSV). Raises
    ImportFailed when the file as a whole cannot be read; bad rows are in ``Roster.problems``."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ImportFailed(
            f"{path.name}: a roster is an Excel workbook (.xlsx) or a CSV file, got "
            f"'{path.suffix or '(no extension)'}' (save an .xls file as .xlsx first)",
            zh=f"{path.name}：花名册应为 Excel 工作簿（.xlsx）或 CSV 文件，收到 "
               f"'{path.suffix or '（无扩展名）'}'（.xls 文件请先另存为 .xlsx）")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file", zh=f"{path}：文件不存在")
    table = _xlsx_rows(path, sheet) if path.suffix.lower() != ".csv" else _csv_rows(path)
    return _people(path.name, table)


def _xlsx_rows(path: Path, sheet: str | None) -> list[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, data_only=True)  # formulas read as the values Excel saved
    except Exception as exc:  # a zip that is no workbook, a damaged file: openpyxl raises many kinds
        raise ImportFailed(f"{path.name}: not a readable Excel workbook ({type(exc).__name__})",
                           zh=f"{path.name}：无法读取该 Excel 工作簿") from exc
    if sheet is not None and sheet not in book.sheetnames:
        raise ImportFailed(f"{path.name}: no worksheet {sheet!r}; it has {', '.join(book.sheetnames)}",
                           zh=f"{path.name}：没有名为 {sheet!r} 的工作表；现有：{'、'.join(book.sheetnames)}")
    ws = book[sheet] if sheet is not None else book.worksheets[0]
    return [(n, list(cells)) for n, cells in enumerate(ws.iter_rows(min_row=1, values_only=True), 1)]


def _csv_rows(path: Path) -> list[tuple[int, list[object]]]:
    text = _decode(path)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, line = [], 1
    for cells in reader:
        rows.append((line, cells))
        line = reader.line_num + 1
    return rows


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFailed(f"{path.name}: the text is neither UTF-8 nor GB18030/GBK",
                       zh=f"{path.name}：文件编码既不是 UTF-8 也不是 GB18030/GBK")


def _people(source: str, table: list[tuple[int, list[object]]]) -> Roster:
    at = next((i for i, (_, cells) in enumerate(table[:HEADER_SEARCH_ROWS])
               if any(_FIELD_BY_HEADER.get(_header_key(c)) == "username" for c in cells)), None)
    if at is None:
        raise ImportFailed(
            f"{source}: no header row with a username column (用户名 or username) in the first "
            f"{HEADER_SEARCH_ROWS} rows; expected headers: "
            + ", ".join(f"{names[0]}/{names[1]}" for names in COLUMNS.values()),
            zh=f"{source}：前 {HEADER_SEARCH_ROWS} 行中没有含“用户名”列的表头；应有的列："
               + "、".join(names[0] for names in COLUMNS.values()))
    header_row, headers = table[at]
    columns, ignored, positions = _columns(source, header_row, headers)
    rows: list[RosterRow] = []
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, cells in table[at + 1:]:
        values = {f: _cell(cells[i]) if i < len(cells) else "" for f, i in positions.items()}
        if not any(_cell(c) for c in cells):
            continue  # an empty line between blocks
        try:
            person = _person(values)
        except GridMapError as exc:
            problems.append((number, reason(exc)))
            continue
        key = person.username.casefold()
        if key in seen:
            problems.append((number, f"username {person.username!r} is already on row {seen[key]} / "
                                     f"用户名 {person.username!r} 与第 {seen[key]} 行重复"))
            continue
        seen[key] = number
        rows.append(RosterRow(number, person))
    return Roster(source, rows, problems, columns, ignored)


def _columns(source: str, header_row: int, headers: list[object]):
    columns: dict[str, str] = {}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for i, header in enumerate(headers):
        name = _cell(header).replace("\ufeff", "")
        found = _FIELD_BY_HEADER.get(_header_key(header))
        if found is None:
            if name:
                ignored.append(name)
            continue
        if found in columns:
            raise ImportFailed(
                f"{source}: row {header_row} has two {found} columns ({columns[found]!r} and {name!r})",
                zh=f"{source}：第 {header_row} 行表头中有两列表示同一项（{columns[found]!r} 与 {name!r}）")
        columns[found], positions[found] = name, i
    return columns, ignored, positions


def _person(values: dict[str, str]) -> Person:
    """The person a row describes; raises the first problem of the row."""
    username = accounts.check_username(values.get("username", ""))
    role, phone, grids = values.get("role"), values.get("phone"), values.get("grids")
    return Person(
        username=username,
        display_name=values.get("display_name") or None,  # empty: keep the name (needed if new)
        role=accounts.parse_role(role) if role else None,
        phone=(accounts.check_phone(typed_digits(phone, "phone")) or "") if phone is not None else None,
        grids=(tuple(typed_digits(g, "grid code") for g in _GRID_SEPARATORS.split(grids) if g)
               if grids is not None else None),
        region=values.get("region"),
        department=values.get("department"),
        password=values.get("password") or None,
    )


def _cell(value: object) -> str:
    """A cell as the text a clerk typed: whole numbers without '.0', text trimmed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).replace("\u3000", " ").strip()


def typed_digits(text: str, what: str) -> str:
    """``13800001111.0`` -> ``13800001111``; ``1.40429100001001E14`` -> ``140429100001001``;
    other text is returned as it is. A number in scientific notation that lost digits is refused."""
    text = text.strip()
    if _INTEGRAL.match(text):
        return text.split(".", 1)[0]
    shown = _SCIENTIFIC.match(text)
    if shown is None:
        return text
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    digits = 1 + len(shown.group(2) or "")
    if value != value.to_integral_value() or len(str(int(value))) > digits:
        raise InvalidParameter(
            f"the {what} {text!r} was shortened by Excel to {digits} digits; format the column as "
            "text and type it again",
            zh=f"{'手机号' if what == 'phone' else '网格编码'} {text!r} 已被 Excel 截成 {digits} 位有效数字；"
               "请将该列设为文本格式后重新填写")
    return str(int(value))


def reason(exc: GridMapError) -> str:
    """A row's problem in English and Chinese."""
    return f"{exc} / {exc.zh}" if exc.zh else str(exc)


# -- writing ----------------------------------------------------------------------------------------
def import_roster(session: Session, roster: Roster, *, by: str | None, address: str | None = None,
                  policy: PasswordPolicy | None = None) -> RosterResult:
    """Write ``roster`` in the caller's transaction: everyone, or (ImportFailed listing every bad
    row) no one. The caller commits."""
    policy = policy or PasswordPolicy()
    problems = list(roster.problems)
    result = RosterResult()
    known = accounts.existing_usernames(session, (r.person.username for r in roster.rows))
    with session.begin_nested():
        for entry in roster.rows:
            person = _with_password(entry.person, entry.person.username in known, policy, result)
            try:
                with session.begin_nested():
                    accounts.save_person(session, person, by=by, address=address, policy=policy)
            except GridMapError as exc:
                problems.append((entry.row, reason(exc)))
                continue
            (result.updated if person.username in known else result.created).append(person.username)
        if problems:
            raise _failed(roster.source, problems)  # leaving the block rolls every row back
    return result


def _with_password(person: Person, exists: bool, policy: PasswordPolicy, result: RosterResult) -> Person:
    if exists:
        if person.password:
            result.kept_passwords.append(person.username)
        return replace(person, password=None)
    if person.password:
        return person
    password = policy.generate()
    result.generated.append((person.username, password))
    return replace(person, password=password)


def _failed(source: str, problems: list[tuple[int, str]]) -> ImportFailed:
    problems = sorted(problems)
    rows = _row_list(r for r, _ in problems)
    return ImportFailed(f"{source}: {len(problems)} bad row(s) (row {rows}); nothing was imported",
                        rows=problems, zh=f"{source}：有 {len(problems)} 行有误（第 {rows} 行），未导入任何人员")


def _row_list(numbers: Iterable[int]) -> str:
    return ", ".join(str(n) for n in dict.fromkeys(numbers))
