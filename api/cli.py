"""The `gridmap` command: database lifecycle, demo data, import/export, checks and the server.

The one Settings object is built once in :func:`main` and handed to every command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

from pydantic import ValidationError

from api.cli_audit import add_audit_commands, report_application_role
from api.cli_calendar import add_calendar_commands
from api.cli_command import add_command_centre_commands
from api.cli_evaluation import add_evaluation_commands
from api.i18n import terminal_language
from api.settings import Settings
from gis.errors import GridMapError, InvalidParameter

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        settings = Settings()
    except ValidationError as exc:  # a GRIDMAP_ variable or .env line that does not parse
        print(f"gridmap: the settings are invalid (see .env.example):\n{exc}", file=sys.stderr)
        return 2
    try:
        return args.handler(args, settings)
    except GridMapError as exc:
        print(f"gridmap: {said(exc)}", file=sys.stderr)
        return 1


def said(exc: BaseException) -> str:
    """An error's message in the terminal's language (:func:`api.i18n.terminal_language`): its
    Chinese words (``zh``) for a Chinese locale where it has them, else its own (the operator at
    a terminal gets the specific message, never the web's masked one)."""
    zh = getattr(exc, "zh", None)
    return zh if zh and terminal_language() == "zh" else str(exc)


def _nothing(what_en: str, what_zh: str) -> str:
    return f"；{what_zh}" if terminal_language() == "zh" else f"; {what_en}"


# -- gridmap db ------------------------------------------------------------------------------
def _cluster(settings: Settings):
    from gis.db.cluster import LocalCluster

    return LocalCluster(settings.database.pg_dir, settings.database.pg_bin)


def db_start(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database.url:
        print("DATABASE_URL is set: using that server, no private cluster started.")
        if args.replica:
            print("A standby of that server is its administrator's to set up (pg_basebackup -R); "
                  "point GRIDMAP_READ_DATABASE_URL at it.", file=sys.stderr)
            return 2
        return db_upgrade(args, settings)
    cluster = _cluster(settings)
    info = cluster.start()
    print(f"PostGIS running on 127.0.0.1:{info.port} (data in {info.directory})")
    status = db_upgrade(args, settings)
    standby = cluster.replica()
    if status == 0 and (args.replica or standby.exists()):
        _start_standby(standby, rebuild=args.rebuild)
    return status


def _start_standby(standby, rebuild: bool) -> None:
    """Make (or make again) and start the private cluster's hot standby, and say how to use it."""
    from gis.db.cluster import SLOT

    info = standby.rebuild() if rebuild else standby.start()
    print(f"hot standby running on 127.0.0.1:{info.port} (data in {info.directory}), streaming "
          f"from the primary over the replication slot {SLOT}")
    print("heavy reads (statistics, map pages, dashboard, tiles, exports) go to it with")
    print(f"GRIDMAP_READ_DATABASE_URL={info.app_url}")


def db_stop(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database.url:
        print("DATABASE_URL is set: GridMap does not manage that server.")
        return 0
    cluster = _cluster(settings)
    if cluster.replica().stop():  # the standby first: it would only retry a stopped primary
        print("hot standby stopped.")
    stopped = cluster.stop()
    print("PostGIS stopped." if stopped else "PostGIS was not running.")
    return 0


def db_status(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import current_revision, make_engine

    standby_url = settings.database.read_url
    if not settings.database.url:
        cluster = _cluster(settings)
        info = cluster.info()
        if info is None:
            print(f"No private cluster in {settings.database.pg_dir}; run `gridmap db start`.")
            return 1
        print(f"private cluster: {info.directory}, port {info.port}, "
              f"{'running' if info.running else 'stopped'}")
        standby = cluster.replica().info()
        if standby is not None:
            print(f"hot standby: {standby.directory}, port {standby.port}, "
                  f"{'running' if standby.running else 'stopped'}")
            standby_url = standby_url or (standby.url if standby.running else None)
        if not info.running:
            return 1
    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    print(f"schema revision: {current_revision(engine) or 'none'}")
    if standby_url:
        _report_standby(engine, standby_url)
    engine.dispose()
    report_application_role(settings)
    return 0


def _report_standby(primary, standby_url: str) -> None:
    """Where the standby is: replayed up to which WAL position, how far behind the primary."""
    from gis.db.engine import make_engine
    from gis.db.replica import describe, standby_lag, wal_senders
    from gis.errors import DatabaseUnavailable

    standby = make_engine(standby_url, pool_size=1)
    try:
        lag = standby_lag(primary, standby)
    except DatabaseUnavailable:
        print(f"read database {describe(standby_url)}: cannot be reached (reads go to the primary)")
        return
    finally:
        standby.dispose()
    if not lag.in_recovery:
        print(f"read database {describe(standby_url)}: not a standby (it is a primary)")
        return
    paused = ", replay paused" if lag.replay_paused else ""
    print(f"read database {describe(standby_url)}: "
          f"{'streaming' if lag.streaming else 'not streaming'}, replayed up to {lag.replay_lsn}, "
          f"{lag.lag_bytes} bytes of WAL behind the primary{paused}")
    for sender in wal_senders(primary):
        seconds = "none measured" if sender.replay_lag_s is None else f"{sender.replay_lag_s:.3f} s"
        print(f"  primary's sender to {sender.name}: {sender.state}, replay lag {seconds}")


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope, upgrade
    from gis.exchange.demo_loading import seed_categories

    url = settings.resolved_database_url()
    upgrade(url, application_role=settings.application_role())
    engine = make_engine(url, pool_size=1)
    with session_scope(engine) as session:
        added = seed_categories(session)
    engine.dispose()
    print(f"schema up to date; {added} categories seeded")
    return 0


# -- gridmap demo ----------------------------------------------------------------------------
def demo(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import text

    from data.generator import generate_demo
    from gis.db.engine import make_engine, session_scope
    from gis.exchange.demo_loading import load_demo
    from gis.people.passwords import hash_password

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    if args.if_empty:
        with engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM grids")).scalar_one():
                print("demo: database already holds grids; nothing loaded (--if-empty)")
                return 0
    started = time.perf_counter()
    try:
        data = generate_demo(seed=args.seed, grids=args.grids, issues=args.issues,
                             today=args.today)
    except ValueError as exc:
        print(f"gridmap demo: {said(exc)}{_nothing('nothing loaded', '未载入任何数据')}",
              file=sys.stderr)
        return 2
    with session_scope(engine, settings.session_info()) as session:
        counts = load_demo(session, data, hash_password(settings.demo_password))
    _assign_all(engine, settings)
    engine.dispose()
    print(f"demo loaded in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"demo issues: the year up to {data.seen_at:%Y-%m-%d %H:%M} (Beijing time)")
    if args.grids == 14:
        staff = " ".join(data.users.loc[data.users["role"].eq("department"), "username"])
        print("demo accounts: worker01..worker14 (网格员), leader (领导, 太东社区), dispatcher "
              f"(派遣员, 武乡县), {staff} (部门人员), admin (管理员); password: "
              f"{settings.demo_password!r} (set GRIDMAP_DEMO_PASSWORD to change)")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _assign_all(engine, settings: Settings) -> None:
    from gis.geotag.assign import assign_stored_rows

    assign_stored_rows(engine, tolerance_m=settings.assign_tolerance_m, include_closed=True,
                       record_events=False)


# -- gridmap import / export / check-grids / assign --------------------------------------------
def import_file(args: argparse.Namespace, settings: Settings) -> int:
    if args.kind == "users":
        return import_users(args, settings)
    from sqlalchemy import text

    from gis.db.engine import make_engine, session_scope
    from gis.errors import ImportFailed
    from gis.exchange.files import read_layer
    from gis.exchange.transfer import import_features

    try:
        gdf = read_layer(args.file, args.kind, fix=args.fix, crs=args.crs, layer=args.layer)
        engine = make_engine(settings.resolved_database_url(), pool_size=1)
        with engine.connect() as conn:  # grid versions the import starts or ends come after it
            before = conn.execute(text("SELECT now()")).scalar_one()
        with session_scope(engine, settings.session_info()) as session:
            count = import_features(session, args.kind, gdf)
    except ImportFailed as exc:
        print(f"gridmap import: {said(exc)}{_nothing('nothing was imported', '未导入任何数据')}",
              file=sys.stderr)
        for row, reason in exc.rows:
            print(f"  row {row}: {reason}", file=sys.stderr)
        return 1
    print(f"imported {count} {args.kind} from {args.file}")
    if args.kind == "grids":
        _assign_changed_since(engine, settings, before)
    else:
        _assign_all(engine, settings)
    return 0


def _assign_changed_since(engine, settings: Settings, since) -> None:
    """Re-tag what grids imported (new, or redrawn) can move, as a full re-tag would
    (:func:`gis.geotag.assign.assign_changed`): at city scale a file of a few grids touches
    thousands of rows, not millions."""
    from gis.geotag.assign import assign_changed

    report = assign_changed(engine, since=since, tolerance_m=settings.assign_tolerance_m,
                            include_closed=True, record_events=False)
    print("re-tagged near the imported grids: " + ", ".join(
        f"{table} {t.changed} of {t.scanned}" for table, t in report.tables.items()))


def export_file(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.exchange.files import write_layer
    from gis.exchange.transfer import export_features

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    with session_scope(engine) as session:
        gdf = export_features(session, args.kind)
    write_layer(gdf, args.file, layer=args.layer)
    print(f"exported {len(gdf)} {args.kind} to {args.file}")
    return 0


def check_grids_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.exchange.transfer import export_communities, export_features
    from gis.geo.topology import check_grids

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    with session_scope(engine) as session:
        grids = export_features(session, "grids")
        communities = export_communities(session)
    if args.community:
        grids = grids[grids["community"] == args.community]
        communities = communities[communities["name"] == args.community]
    report = check_grids(grids.rename(columns={"community": "community_code"}),
                         communities.assign(code=communities["name"]))
    print(report.to_table())
    if args.geojson:
        with open(args.geojson, "w", encoding="utf-8") as fh:
            fh.write(report.to_geojson())
        print(f"problem areas written to {args.geojson}")
    return 0 if report.ok else 1


def assign_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from gis.db.engine import make_engine
    from gis.geotag.assign import assign_stored_rows

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    since = datetime.fromisoformat(args.since) if args.since else None
    if args.grids or args.changed_since:
        return _assign_changed(engine, args, settings)
    options = dict(tolerance_m=settings.assign_tolerance_m, include_closed=args.all,
                   community=args.community, since=since, progress=sys.stderr.isatty())
    if args.dask or args.scheduler:
        from gis.geotag.bulk import assign_stored_rows_dask

        report = assign_stored_rows_dask(engine, scheduler=args.scheduler, **options)
    else:
        report = assign_stored_rows(engine, **options)
    _print_assign_report(report)
    return 0


def _assign_changed(engine, args: argparse.Namespace, settings: Settings) -> int:
    """Only the rows that the grids changed (--grids, --changed-since) can move."""
    from datetime import datetime

    from gis.geotag.assign import assign_changed
    from gis.rules import BEIJING

    if args.community or args.since or args.dask or args.scheduler:
        print("gridmap assign: --grids and --changed-since take no --community, --since or --dask",
              file=sys.stderr)
        return 2
    codes = [c.strip() for c in args.grids.split(",") if c.strip()] if args.grids else None
    changed_since = datetime.fromisoformat(args.changed_since) if args.changed_since else None
    if changed_since is not None and changed_since.tzinfo is None:
        changed_since = changed_since.replace(tzinfo=BEIJING)
    started = time.perf_counter()
    report = assign_changed(engine, codes, since=changed_since, include_closed=args.all,
                            tolerance_m=settings.assign_tolerance_m, progress=sys.stderr.isatty())
    _print_assign_report(report)
    print(f"re-tagged the rows the changed grids can move in {time.perf_counter() - started:.1f} s")
    return 0


def _print_assign_report(report) -> None:
    print(f"grid version {report.grid_version}")
    for table, r in report.tables.items():
        methods = ", ".join(f"{m} {n}" for m, n in sorted(r.methods.items()))
        print(f"{table}: scanned {r.scanned}, changed grid {r.changed}" + (f" ({methods})" if methods else ""))


# -- gridmap export-grid / api-key (Open311 keys) -------------------------------------------
def export_grid_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.exchange.grid_package import export_grid_package
    from gis.queries.reads import PUBLIC

    if not args.file.lower().endswith(".gpkg"):
        print(f"gridmap export-grid: the package is a GeoPackage; name a .gpkg file, not {args.file}",
              file=sys.stderr)
        return 2
    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    with session_scope(engine) as session:
        counts = export_grid_package(session, args.code, args.file, reader=PUBLIC)
    print(f"grid {args.code} packaged to {args.file}: "
          + ", ".join(f"{layer} {n}" for layer, n in counts.items()))
    return 0


def api_key_cmd(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from gis.db.engine import make_engine, session_scope
    from gis.people import api_keys

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    with session_scope(engine) as session:
        if args.action == "create":
            key_id, key = api_keys.create_api_key(session, args.label,
                                                  args.by or f"cli:{getpass.getuser()}")
            print(f"api key {key_id} for {args.label!r} (shown once, store it now):\n{key}")
        elif args.action == "revoke":
            api_keys.revoke_api_key(session, args.id)
            print(f"api key {args.id} revoked")
        else:
            for k in api_keys.list_api_keys(session):
                state = f"revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "active"
                print(f"{k['id']:>4}  {state:<18} {k['created_at']:%Y-%m-%d}  {k['created_by'] or '-':<16} "
                      f"{k['label']}")
    return 0


# -- gridmap user / department / import users (people) ----------------------------------------
# Passwords come only from standard input (never an argument: arguments are seen by other users
# of the machine and kept in shell histories) or are generated and printed once.
def _by() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@contextmanager
def _people_session(settings: Settings) -> Iterator:
    from gis.db.engine import make_engine, session_scope

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _password_from_stdin() -> str:
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _codes(values: list[str] | None) -> tuple[str, ...] | None:
    """Codes given as ``--grid A --grid B``, ``--grid A B`` or ``--grid A,B``."""
    if values is None:
        return None
    import re

    return tuple(c for v in values for c in re.split(r"[、;,；，\s]+", v) if c)


def _new_password(args: argparse.Namespace, settings: Settings) -> tuple[str, bool]:
    """(password, generated): one line of standard input, or a generated one."""
    if args.password_stdin:
        password = _password_from_stdin()
        if not password:
            raise InvalidParameter("--password-stdin: standard input gave an empty line",
                                   zh="--password-stdin：标准输入为空行")
        return password, False
    return settings.password_policy().generate(), True


def _print_generated(pairs: list[tuple[str, str]]) -> None:
    print("initial password(s), shown once: hand each to its owner, who must change it at the "
          "first log-in")
    print(_table(["username", "password"], [list(p) for p in pairs]))


def user_add(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts
    from gis.rules import ROLE_NAMES

    password, generated = _new_password(args, settings)
    person = accounts.Person(args.username, args.name, args.role, phone=args.phone,
                             grids=_codes(args.grid), region=args.region,
                             department=args.department, password=password)
    with _people_session(settings) as session:
        accounts.save_person(session, person, by=_by(), policy=settings.password_policy(), create=True)
        user = accounts.get_user(session, args.username.strip())
    print(f"user {user['username']} added: {user['display_name']}, "
          f"{ROLE_NAMES[user['role']][0]} ({user['role']})")
    if generated:
        _print_generated([(user["username"], password)])
    return 0


def user_list(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts
    from gis.rules import ROLE_NAMES

    with _people_session(settings) as session:
        users = accounts.list_users(session)
    rows = [[u["username"], u["display_name"], f"{ROLE_NAMES[u['role']][0]} {u['role']}",
             ",".join(u["grids"]) or "-",
             f"{u['region_name']} {u['region_code']}" if u["region_code"] else "-",
             u["department"] or "-", "yes" if u["active"] else "no",
             "yes" if u["must_change_password"] else "no"] for u in users]
    print(_table(["username", "name 姓名", "role 角色", "grids 网格", "region 区域", "department 部门",
                  "active", "must change"], rows))
    return 0


def user_set_active(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts

    with _people_session(settings) as session:
        accounts.set_active(session, args.username, args.active, by=_by())
    print(f"user {args.username} {'enabled' if args.active else 'disabled (sessions ended)'}")
    return 0


def user_set_password(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts

    password, generated = _new_password(args, settings)
    with _people_session(settings) as session:
        accounts.set_password(session, args.username, password, by=_by(),
                              policy=settings.password_policy())
    print(f"password of {args.username} set; it is an initial one (to be changed at the next "
          "log-in), and their sessions ended")
    if generated:
        _print_generated([(args.username, password)])
    return 0


def user_assign(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts

    grids = _codes(args.grid)
    with _people_session(settings) as session:
        accounts.save_person(session, accounts.Person(args.username, grids=grids), by=_by(),
                             create=False)
        held = accounts.get_user(session, args.username)["grids"]
    print(f"{args.username} now holds {', '.join(held) or 'no grid'} (earlier holdings kept in "
          "the history)")
    return 0


def user_history(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts
    from gis.rules import BEIJING

    with _people_session(settings) as session:
        history = accounts.grid_history(session, args.grid_code)
    if not history:
        print(f"nobody has held grid {args.grid_code}")
        return 0

    def when(t) -> str:
        return f"{t.astimezone(BEIJING):%Y-%m-%d %H:%M}" if t is not None else "now"
    print(_table(["username", "name 姓名", "from 起", "to 止"],
                 [[h["username"], h["display_name"], when(h["valid_from"]), when(h["valid_to"])]
                  for h in history]))
    print("(Beijing time)")
    return 0


def department_add(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts

    with _people_session(settings) as session:
        _, created = accounts.save_department(session, args.code, args.name, _codes(args.category),
                                              args.region, by=_by())
    print(f"department {args.code.strip()} {'added' if created else 'updated'}")
    return 0


def department_list(args: argparse.Namespace, settings: Settings) -> int:
    from gis.people import accounts

    with _people_session(settings) as session:
        departments = accounts.list_departments(session)
    print(_table(["code", "name 名称", "categories 事件类别", "region 区域", "staff 人员", "active"],
                 [[d["code"], d["name"], ",".join(d["categories"]) or "-",
                   f"{d['region_name']} {d['region_code']}" if d["region_code"] else "-",
                   str(d["staff"]), "yes" if d["active"] else "no"] for d in departments]))
    return 0


def import_users(args: argparse.Namespace, settings: Settings) -> int:
    from gis.errors import ImportFailed
    from gis.people.roster import import_roster, read_roster

    if args.fix or args.crs:
        print("gridmap import users: --fix and --crs are for map layers, not a roster", file=sys.stderr)
        return 2
    try:
        roster = read_roster(args.file, sheet=args.layer)
        with _people_session(settings) as session:
            result = import_roster(session, roster, by=_by(), policy=settings.password_policy())
    except ImportFailed as exc:
        print(f"gridmap import: {said(exc)}", file=sys.stderr)
        for row, reason in exc.rows:
            print(f"  row {row} (第 {row} 行): {reason}", file=sys.stderr)
        return 1
    print(f"imported {args.file}: {len(result.created)} added, {len(result.updated)} updated")
    if roster.ignored_columns:
        print(f"columns ignored: {', '.join(roster.ignored_columns)}")
    if result.kept_passwords:
        print("existing accounts keep their own passwords (the password column is for new ones): "
              + ", ".join(result.kept_passwords))
    if result.generated:
        _print_generated(sorted(result.generated))
    return 0


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns aligned for a terminal, Chinese characters counted as two columns wide."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    widths = [max(width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ("  ".join(str(v) + " " * (w - width(str(v))) for v, w in zip(r, widths, strict=True))
             for r in [headers, *rows])
    return "\n".join(line.rstrip() for line in lines)


# -- gridmap serve ---------------------------------------------------------------------------
def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.access_log import log_config
    from api.http_protocol import UVICORN_HTTP
    from api.main import create_app

    server = settings.server
    tls = {}
    if server.ssl_certfile and server.ssl_keyfile:
        tls = {"ssl_certfile": str(server.ssl_certfile), "ssl_keyfile": str(server.ssl_keyfile)}
    # One process serves the app built from these settings; several worker processes each
    # import the factory, which builds its Settings from the same environment.
    app = create_app(settings) if args.workers == 1 else "api.main:create_app"
    uvicorn.run(app, factory=args.workers > 1, host=args.host or server.host,
                port=args.port or server.port, workers=args.workers, log_level="info",
                http=UVICORN_HTTP, log_config=log_config(), **tls)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridmap", description=__doc__)
    sub = parser.add_subparsers(title="commands")

    db = sub.add_parser("db", help="the PostGIS database").add_subparsers(title="db commands")
    for name, handler, text in [
        ("start", db_start, "start the private PostGIS (unless DATABASE_URL) and upgrade the schema"),
        ("stop", db_stop, "stop the private PostGIS and its hot standby"),
        ("status", db_status, "say whether the database (and its standby) runs, the schema "
                              "revision and how far the standby is behind"),
        ("upgrade", db_upgrade, "apply the Alembic migrations and seed categories"),
    ]:
        db.add_parser(name, help=text).set_defaults(handler=handler)
    start = db.choices["start"]
    start.add_argument("--replica", action="store_true",
                       help="also make and start a hot standby of the private PostGIS beside it "
                            "(data/pg-replica), for GRIDMAP_READ_DATABASE_URL")
    start.add_argument("--rebuild", action="store_true",
                       help="with --replica: make the standby again from a fresh copy")

    p = sub.add_parser("demo", help="(re)load the deterministic demo community")
    p.add_argument("--grids", type=int, default=14, help="number of grids (14 = 太东社区)")
    p.add_argument("--issues", type=int, default=None, help="number of issues (default: a year's)")
    p.add_argument("--seed", type=int, default=20221)
    p.add_argument("--today", type=_day, default=None, metavar="YYYY-MM-DD",
                   help="the last day of the demo's year of issues, for repeatable data "
                        "(default: now, Beijing time)")
    p.add_argument("--if-empty", action="store_true", help="load only when no grids are stored")
    p.set_defaults(handler=demo)

    kinds = ["grids", "buildings", "facilities", "issues"]
    p = sub.add_parser("import", help="import a GeoJSON, GeoPackage, Shapefile or CSV file, or a "
                                      "roster of people (users: XLSX or CSV)")
    p.add_argument("kind", choices=[*kinds, "users"])
    p.add_argument("file")
    p.add_argument("--fix", action="store_true", help="repair invalid polygons with make_valid")
    p.add_argument("--crs", help="CRS of a file that does not say (a shapefile without .prj, CSV)")
    p.add_argument("--layer", help="layer name in a GeoPackage; worksheet of a roster workbook")
    p.set_defaults(handler=import_file)

    p = sub.add_parser("export", help="export to GeoJSON, GeoPackage, Shapefile or CSV (by extension)")
    p.add_argument("kind", choices=kinds)
    p.add_argument("file")
    p.add_argument("--layer", help="layer name in a GeoPackage")
    p.set_defaults(handler=export_file)

    p = sub.add_parser("check-grids", help="report invalid grids, overlaps, gaps, slivers")
    p.add_argument("--community", help="community name")
    p.add_argument("--geojson", help="write the problem areas to this GeoJSON file")
    p.set_defaults(handler=check_grids_cmd)

    p = sub.add_parser("assign", help="re-tag stored issues and facilities with the current grids")
    p.add_argument("--community", help="only rows in this community (name or code)")
    p.add_argument("--since", help="only issues reported since this ISO date")
    p.add_argument("--all", action="store_true", help="also closed issues (default: keep their grid)")
    p.add_argument("--grids", metavar="CODE,CODE",
                   help="only the rows these redrawn, added or retired grids can move")
    p.add_argument("--changed-since", metavar="TIME",
                   help="only the rows that grids redrawn, added or retired since TIME (ISO; "
                        "Beijing time without an offset) can move")
    p.add_argument("--dask", action="store_true",
                   help="tag on a dask cluster (a local one of 2 worker processes unless --scheduler)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="dask scheduler to use (implies --dask); workers need gridmap installed")
    p.set_defaults(handler=assign_cmd)

    p = sub.add_parser("export-grid", help="write a grid's offline package (GeoPackage) for a tablet")
    p.add_argument("code", help="15-digit grid code")
    p.add_argument("file", help="the .gpkg file to write (replaced if it exists)")
    p.set_defaults(handler=export_grid_cmd)

    keys = sub.add_parser("api-key", help="API keys of systems that post Open311 requests")
    key_sub = keys.add_subparsers(title="api-key commands")
    p = key_sub.add_parser("create", help="create a key; it is printed once")
    p.add_argument("--label", required=True, help="who uses it, e.g. '12345 hotline'")
    p.add_argument("--by", help="who creates it (default: cli:<login>)")
    p.set_defaults(handler=api_key_cmd, action="create")
    key_sub.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        handler=api_key_cmd, action="list")
    p = key_sub.add_parser("revoke", help="revoke a key by id")
    p.add_argument("id", type=int)
    p.set_defaults(handler=api_key_cmd, action="revoke")

    add_audit_commands(sub)
    add_calendar_commands(sub)
    add_command_centre_commands(sub)
    add_evaluation_commands(sub)
    _people_parsers(sub)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=serve)
    return parser


def _people_parsers(sub) -> None:
    roles = "worker/网格员, leader/领导, dispatcher/派遣员, department/部门人员, admin/管理员"
    stdin_help = ("read the password from one line of standard input; without it a password is "
                  "generated and printed once. Either way it is initial: changed at first log-in")
    users = sub.add_parser("user", help="people: add, list, disable, enable, passwords, grids")
    user_sub = users.add_subparsers(title="user commands")
    # allow_abbrev=False: no option but --password-stdin may carry a password, not even --password
    p = user_sub.add_parser("add", help="add a person", allow_abbrev=False)
    p.add_argument("username")
    p.add_argument("--name", required=True, help="姓名, as shown to others")
    p.add_argument("--role", required=True, help=roles)
    p.add_argument("--phone", help="mobile number")
    p.add_argument("--grid", action="extend", nargs="+", metavar="CODE", help="grids a worker holds")
    p.add_argument("--region", metavar="CODE|NAME", help="region of a leader or dispatcher")
    p.add_argument("--department", metavar="CODE", help="department of department staff")
    p.add_argument("--password-stdin", action="store_true", help=stdin_help)
    p.set_defaults(handler=user_add)
    user_sub.add_parser("list", help="everyone, with role, grids, region, department").set_defaults(
        handler=user_list)
    for name, active in (("disable", False), ("enable", True)):
        p = user_sub.add_parser(name, help=f"{name} an account" if active else
                                "disable an account (ends its sessions, hands back its grids)")
        p.add_argument("username")
        p.set_defaults(handler=user_set_active, active=active)
    p = user_sub.add_parser("set-password", help="set an initial password (ends the sessions)",
                            allow_abbrev=False)
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help=stdin_help)
    p.set_defaults(handler=user_set_password)
    p = user_sub.add_parser("assign", help="the grids a worker holds from now (history kept)")
    p.add_argument("username")
    p.add_argument("--grid", action="extend", nargs="+", metavar="CODE", required=True)
    p.set_defaults(handler=user_assign)
    p = user_sub.add_parser("history", help="who held a grid, from when to when")
    p.add_argument("grid_code")
    p.set_defaults(handler=user_history)

    departments = sub.add_parser("department", help="departments cases are dispatched to (专业部门)")
    dept_sub = departments.add_subparsers(title="department commands")
    p = dept_sub.add_parser("add", help="add a department, or update the one with this code (options "
                                        "left out keep their values)")
    p.add_argument("code")
    p.add_argument("--name", required=True)
    p.add_argument("--category", action="extend", nargs="+", metavar="C",
                   help="issue categories it handles (codes, see GET /api/v1/categories)")
    p.add_argument("--region", metavar="CODE|NAME", help="the region it serves")
    p.set_defaults(handler=department_add)
    dept_sub.add_parser("list", help="departments with their categories and staff").set_defaults(
        handler=department_list)


if __name__ == "__main__":
    sys.exit(main())
