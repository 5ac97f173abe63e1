"""The one issue filter, and the small parts every query composes: a bounding box, SQL
conditions with bound parameters, and the category check.

The issue list, the statistics, the heatmap, OGC API Features and the exports all select issues
with :class:`IssueFilter`, so a leader can open the list behind any number on a map or a table.
Its conditions read the ``issues`` row alone (grids and communities through sub-queries), so a
scan that needs no join gets none.

Times: ``since`` and ``until`` are both inclusive. A day (a ``date``) is a whole Beijing day, so
``until=2026-03-31`` takes in every report of 31 March; an instant (a ``datetime``) is taken as
it is, Beijing time when it has no offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidCoordinates, InvalidParameter, UnknownCategory
from gis.rules import BEIJING, ISSUE_STATUSES, STATUS_GROUPS


@dataclass(frozen=True)
class BBox:
    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, raw: str) -> BBox:
        """Parse ``minx,miny,maxx,maxy`` (lon/lat, RFC 7946 order)."""
        parts = raw.split(",")
        if len(parts) != 4:
            raise InvalidCoordinates(f"bbox needs 4 numbers minx,miny,maxx,maxy; got {raw!r}",
                                     zh=f"bbox 需要 4 个数 minx,miny,maxx,maxy，收到 {raw!r}")
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError as exc:
            raise InvalidCoordinates(f"bbox has a value that is not a number: {raw!r}",
                                     zh=f"bbox 中有不是数字的值：{raw!r}") from exc
        box = cls(minx, miny, maxx, maxy)
        box.validate()
        return box

    def validate(self) -> None:
        if not (-180 <= self.minx <= 180 and -180 <= self.maxx <= 180):
            raise InvalidCoordinates(f"bbox longitudes must be within [-180, 180]; got {self}",
                                     zh=f"bbox 的经度须在 [-180, 180] 之内，收到 {self}")
        if not (-90 <= self.miny <= 90 and -90 <= self.maxy <= 90):
            raise InvalidCoordinates(f"bbox latitudes must be within [-90, 90]; got {self}",
                                     zh=f"bbox 的纬度须在 [-90, 90] 之内，收到 {self}")
        if self.minx > self.maxx or self.miny > self.maxy:
            raise InvalidCoordinates(f"bbox min must not exceed max; got {self}",
                                     zh=f"bbox 的最小值不能大于最大值，收到 {self}")


@dataclass
class Where:
    """SQL conditions joined by AND, and their bound parameters (never values in the SQL)."""

    clauses: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def add(self, clause: str, **params) -> None:
        self.clauses.append(clause)
        self.params |= params

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"

    def bbox(self, column: str, box: BBox | None) -> None:
        if box is not None:
            self.add(f"ST_Intersects({column}, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))",
                     **box.__dict__)

    def community(self, alias: str, community: str | None) -> None:
        if community:
            self.add(f"({alias}.name = :community OR {alias}.code = :community)",
                     community=community)

    def text_search(self, columns: tuple[str, ...], q: str | None) -> None:
        if q and q.strip():
            ors = " OR ".join(f"{c} ILIKE :q" for c in columns)
            self.add(f"({ors})", q=f"%{_escape_like(q.strip())}%")


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def local_time(value: datetime | None) -> datetime | None:
    """A time without an offset is Beijing time; one with an offset is kept as it is."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=BEIJING)


def start_of(value: date | datetime) -> datetime:
    """The first instant ``value`` stands for: a day's Beijing midnight, or the instant itself."""
    if isinstance(value, datetime):
        return local_time(value)
    return datetime.combine(value, time.min, tzinfo=BEIJING)


def check_categories(session: Session, kind: str, codes) -> None:
    """Raise UnknownCategory naming the codes that are not ``kind`` categories, and the known ones."""
    codes = [codes] if isinstance(codes, str) else list(codes)
    if not codes:
        return
    known = set(session.execute(text("SELECT code FROM categories WHERE kind = :k"),
                                {"k": kind}).scalars())
    unknown = [c for c in codes if c not in known]
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise UnknownCategory(
            f"unknown {kind} categor{'y' if len(unknown) == 1 else 'ies'} {listed}; "
            f"known: {', '.join(sorted(known))}",
            zh=f"未知的{'部件' if kind == 'facility' else '事件'}类别 {listed}；"
               f"已有类别：{', '.join(sorted(known))}")


@dataclass(frozen=True)
class IssueFilter:
    """Which issues count. ``ids`` names issues outright (Open311 asks by id); ``statuses`` may
    name the groups ``"open"`` (every status the loop has
    not ended in) and ``"final"`` (closed or rejected); ``grid`` is a grid code (every version of it counts); ``community`` a name or
    code; ``q`` text the description contains. Statuses and categories are kept sorted, so equal
    filters have equal :meth:`key`."""

    bbox: BBox | None = None
    ids: tuple[int, ...] = ()
    grid: str | None = None
    community: str | None = None
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    since: date | datetime | None = None
    until: date | datetime | None = None
    q: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(sorted(set(self.ids))))
        object.__setattr__(self, "categories", tuple(sorted(set(self.categories))))
        object.__setattr__(self, "statuses", _expand_statuses(self.statuses))
        if self.since is not None and self.until is not None and self.since_at() > self.until_at():
            raise InvalidParameter(
                f"since ({self.since}) is after until ({self.until}); no issue can match",
                zh=f"起始时间 since({self.since})晚于结束时间 until({self.until})")

    def since_at(self) -> datetime | None:
        return None if self.since is None else start_of(self.since)

    def until_at(self) -> datetime | None:
        """The last instant ``until`` takes in (the end of a day)."""
        if self.until is None or isinstance(self.until, datetime):
            return local_time(self.until)
        return start_of(self.until + timedelta(days=1)) - timedelta(microseconds=1)

    def key(self) -> tuple:
        """A hashable key for caches: equal filters give equal keys."""
        return (self.bbox, self.ids, self.grid, self.community, self.categories, self.statuses,
                self.since_at(), self.until_at(), (self.q or "").strip())

    def where(self, session: Session, t: str = "i") -> Where:
        """Conditions on the ``issues`` row aliased ``t``; the categories are checked first."""
        check_categories(session, "issue", self.categories)
        where = Where()
        where.bbox(f"{t}.geom", self.bbox)
        if self.ids:
            where.add(f"{t}.id = ANY(:ids)", ids=list(self.ids))
        if self.grid:
            where.add(f"{t}.grid_id IN (SELECT id FROM grids WHERE code = :grid)", grid=self.grid)
        if self.community:
            where.add(f"""{t}.grid_id IN (SELECT fg.id FROM grids fg
                            JOIN regions fc ON fc.id = fg.community_id
                           WHERE fc.name = :community OR fc.code = :community)""",
                      community=self.community)
        if self.categories:
            where.add(f"{t}.category = ANY(:categories)", categories=list(self.categories))
        if self.statuses:
            where.add(f"{t}.status = ANY(:statuses)", statuses=list(self.statuses))
        if self.since is not None:
            where.add(f"{t}.reported_at >= :since", since=self.since_at())
        if self.until is not None:
            where.add(f"{t}.reported_at <= :until", until=self.until_at())
        where.text_search((f"{t}.description",), self.q)
        return where


def _expand_statuses(statuses) -> tuple[str, ...]:
    expanded: set[str] = set()
    for s in statuses:
        expanded.update(STATUS_GROUPS.get(s, (s,)))
    unknown = expanded - set(ISSUE_STATUSES)
    if unknown:
        raise InvalidParameter(
            f"unknown status {', '.join(sorted(unknown))}; expected one of "
            f"{', '.join(ISSUE_STATUSES)} or the groups 'open', 'final'",
            zh=f"未知的状态 {', '.join(sorted(unknown))}；可用：{', '.join(ISSUE_STATUSES)}，"
               "或 open(全部未结)、final(已结案或不予立案)")
    return tuple(sorted(expanded))
