"""A private PostgreSQL + PostGIS cluster that GridMap starts for a user who has no server.

The cluster lives in one directory (by default the repository's ``data/pg/``), listens on a free
loopback port only, and records in ``gridmap.json`` there its port and two passwords: the owner's
(the superuser ``gridmap``, for migrations and the ``gridmap`` commands) and the application
role's (``gridmap_app``, which the server connects as: :mod:`gis.db.roles`). PostgreSQL refuses
to run as root, so when GridMap runs as root the server runs as an unprivileged system user; that
user must be able to traverse to the data directory, which a checkout under ``/root`` does not
allow, so the data then lives under ``/var/lib/gridmap`` and ``data/pg`` is a symlink to it.

A hot standby of that cluster (:class:`StandbyCluster`, `gridmap db start --replica`) lives beside
it (``data/pg-replica``): a copy made by ``pg_basebackup -R`` over a physical replication slot,
streaming the primary's WAL on a port of its own and answering read-only queries. The primary
is always started ready for it (:data:`PRIMARY_SETTINGS`, a ``replication`` line for loopback in
``pg_hba.conf`` and a role that may only replicate, ``gridmap_replication``).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gis.db.roles import APP_ROLE, ensure_application_role
from gis.errors import SetupError

DEBIAN_PACKAGES = "postgresql postgresql-15-postgis-3 (or the postgis package of your PostgreSQL version)"
RECORD = "gridmap.json"
DB_NAME = "gridmap"
DB_USER = "gridmap"
SERVICE_USER = "postgres"  # Debian's postgresql package creates it
SHARED_ROOT = Path("/var/lib/gridmap")
REPLICATION_ROLE = "gridmap_replication"
REPLICA_SUFFIX = "-replica"  # data/pg -> data/pg-replica
SLOT = "gridmap_replica"
# What streaming replication needs of the primary (PostgreSQL 15's defaults, set explicitly so a
# changed default or a stray postgresql.conf edit cannot take them away), and a bound on the WAL
# a slot may hold back while its standby is down: past it the standby must be made again rather
# than the primary's disk filling up.
PRIMARY_SETTINGS = {"wal_level": "replica", "max_wal_senders": "10",
                    "max_replication_slots": "10", "max_slot_wal_keep_size": "4GB"}
# A standby answers queries while it replays; it tells the primary which rows its queries still
# read, so vacuum there does not cancel them.
STANDBY_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "on"}
HBA_REPLICATION = f"host replication {REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256"


@dataclass
class ClusterInfo:
    directory: Path
    port: int
    url: str  # the owner's
    running: bool
    app_url: str | None = None  # the application role's; None until `gridmap db start` adds it
    standby: bool = False  # a hot standby (StandbyCluster), not a primary


def find_pg_bin(chosen: Path | None = None) -> Path:
    """The directory holding initdb/pg_ctl/postgres: ``chosen`` when given (the pg_bin setting),
    else the newest PostgreSQL version installed."""
    if chosen is not None:
        if not _has_server_binaries(chosen):
            raise SetupError(f"{chosen} holds no initdb and pg_ctl: point the pg_bin setting "
                             "(GRIDMAP_PG_BIN) at the bin directory of a PostgreSQL server, "
                             "e.g. /usr/lib/postgresql/15/bin")
        return Path(chosen)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for c in candidates:
        if _has_server_binaries(Path(c)):
            return Path(c)
    raise SetupError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install the Debian packages "
        f"{DEBIAN_PACKAGES}, e.g. `sudo apt-get install postgresql postgresql-15-postgis-3`, "
        "or set DATABASE_URL to a PostGIS server of your own."
    )


def _has_server_binaries(directory: Path) -> bool:
    return (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists()


def _version_key(path: str) -> float:
    with contextlib.suppress(ValueError):
        return float(Path(path).parent.name)
    return 0.0


def check_postgis(pg_bin: Path) -> None:
    """Fail early, naming the package, when the PostGIS extension is not installed for this server."""
    version = pg_bin.parent.name
    controls = glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control")
    sharedir = _pg_config(pg_bin, "--sharedir")
    if sharedir:
        controls += glob.glob(f"{sharedir}/extension/postgis.control")
    if not controls:
        raise SetupError(
            f"PostGIS is not installed for PostgreSQL {version}. Install the Debian package "
            f"postgresql-{version}-postgis-3 (e.g. `sudo apt-get install postgresql-{version}-postgis-3`)."
        )


def _pg_config(pg_bin: Path, flag: str) -> str | None:
    exe = pg_bin / "pg_config"
    if not exe.exists():
        return None
    out = subprocess.run([str(exe), flag], capture_output=True, text=True)
    return out.stdout.strip() or None


class LocalCluster:
    """Create, start, stop and describe the private cluster rooted at ``link`` (e.g. data/pg),
    run with the PostgreSQL binaries in ``pg_bin`` (default: the newest version installed)."""

    def __init__(self, link: Path, pg_bin: Path | None = None):
        self.link = Path(link).absolute()
        self.pg_bin = pg_bin
        self.as_root = os.geteuid() == 0

    # -- where things are ---------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return self.link.resolve() if self.link.exists() else self.link

    @property
    def pgdata(self) -> Path:
        return self.directory / "data"

    @property
    def record_path(self) -> Path:
        return self.directory / RECORD

    def exists(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def record(self) -> dict | None:
        try:
            return json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> ClusterInfo:
        pg_bin = find_pg_bin(self.pg_bin)
        check_postgis(pg_bin)
        if not (self.pgdata / "PG_VERSION").exists():
            self._init(pg_bin)
        self._ensure_hba_line(HBA_REPLICATION)
        rec = self._start_server(pg_bin, PRIMARY_SETTINGS)
        self._ensure_database(rec)
        self._ensure_application_role(rec)
        self._ensure_replication_role(rec)
        return self.info()

    def replica(self) -> StandbyCluster:
        """The hot standby of this cluster, beside it (``data/pg`` -> ``data/pg-replica``)."""
        return StandbyCluster(self.link.with_name(self.link.name + REPLICA_SUFFIX), self)

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server if it runs; True when it was running. ``fast`` ends the sessions and
        writes a checkpoint; ``immediate`` just ends the server (for one about to be deleted)."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        pg_bin = find_pg_bin(self.pg_bin)
        if not self._is_running(pg_bin):
            return False
        self._pg_ctl(pg_bin, "stop", "-w", "-m", mode)
        return True

    def info(self) -> ClusterInfo | None:
        rec = self.record()
        if rec is None:
            return None
        running = ((self.pgdata / "postmaster.pid").exists()
                   and self._is_running(find_pg_bin(self.pg_bin)))
        return ClusterInfo(self.directory, rec["port"], self.url(rec), running, self.app_url(rec),
                           standby=(self.pgdata / "standby.signal").exists())

    def destroy(self) -> None:
        """Stop and delete the cluster (tests use throwaway clusters)."""
        with contextlib.suppress(SetupError):
            self.stop("immediate")
        target = self.directory
        shutil.rmtree(target, ignore_errors=True)
        if self.link.is_symlink():
            self.link.unlink()

    @staticmethod
    def url(rec: dict) -> str:
        """The owner's URL."""
        return (f"postgresql+psycopg://{DB_USER}:{rec['password']}@127.0.0.1:{rec['port']}/{DB_NAME}")

    @staticmethod
    def app_url(rec: dict) -> str | None:
        """The application role's URL; None for a cluster made before it had one."""
        if not rec.get("app_password"):
            return None
        return (f"postgresql+psycopg://{APP_ROLE}:{rec['app_password']}@127.0.0.1:{rec['port']}"
                f"/{DB_NAME}")

    # -- internals ----------------------------------------------------------------------------
    def _init(self, pg_bin: Path) -> None:
        self._prepare_directory()
        password = secrets.token_urlsafe(18)
        pwfile = self.directory / "pwfile"
        pwfile.write_text(password + "\n")
        self._chown(pwfile)
        self._run([str(pg_bin / "initdb"), "-D", str(self.pgdata), "-U", DB_USER, "-E", "UTF8",
                   "--locale=C.UTF-8", "--auth=scram-sha-256", f"--pwfile={pwfile}"])
        pwfile.unlink()
        self._write_record({"port": _free_port(), "password": password})

    def _prepare_directory(self) -> None:
        if self.as_root and not _reachable_by(self.link.parent, SERVICE_USER):
            # A checkout under /root: keep the data where the service user can reach it.
            digest = hashlib.sha1(str(self.link).encode()).hexdigest()[:12]
            target = SHARED_ROOT / digest
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(SHARED_ROOT, 0o755)
            self.link.parent.mkdir(parents=True, exist_ok=True)
            if not self.link.exists():
                self.link.symlink_to(target, target_is_directory=True)
        else:
            self.link.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._chown(self.directory)

    def _start_server(self, pg_bin: Path, settings: dict[str, str]) -> dict:
        """Start the server unless it runs, on the recorded port while that is free; the record."""
        rec = self.record()
        if not self._is_running(pg_bin):
            port = rec["port"] if rec and _port_free(rec["port"]) else _free_port()
            rec = {**rec, "port": port}
            self._write_record(rec)
            options = " ".join(f"-c {k}={v}" for k, v in settings.items())
            self._pg_ctl(pg_bin, "start", "-w", "-t", "60", "-l", str(self.directory / "server.log"),
                         "-o", f"-p {port} -c listen_addresses=127.0.0.1 "
                               f"-c unix_socket_directories='' {options}")
        return rec

    def _ensure_hba_line(self, line: str) -> None:
        """Add ``line`` to pg_hba.conf unless it is there (read at start; a running server is
        told to reload)."""
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if any(" ".join(existing.split()) == line for existing in lines):
            return
        hba.write_text("\n".join([*lines, "# a standby of GridMap's (gis.db.cluster)", line]) + "\n")
        pg_bin = find_pg_bin(self.pg_bin)
        if self._is_running(pg_bin):
            self._pg_ctl(pg_bin, "reload")

    def _ensure_replication_role(self, rec: dict) -> None:
        """A LOGIN role that may only replicate, with a password of its own in the record."""
        import psycopg

        if not rec.get("replication_password"):
            rec["replication_password"] = secrets.token_urlsafe(18)
            self._write_record(rec)
        with psycopg.connect(self._admin_dsn(rec) + " dbname=postgres", autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(rec["replication_password"].encode(),
                                                    REPLICATION_ROLE.encode(), b"scram-sha-256")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (REPLICATION_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(f"{verb} ROLE {REPLICATION_ROLE} LOGIN REPLICATION NOSUPERUSER "
                         f"NOCREATEDB NOCREATEROLE PASSWORD '{verifier.decode()}'")

    @staticmethod
    def _admin_dsn(rec: dict) -> str:
        return f"host=127.0.0.1 port={rec['port']} user={DB_USER} password={rec['password']}"

    def _write_record(self, rec: dict) -> None:
        self.record_path.write_text(json.dumps(rec))
        os.chmod(self.record_path, 0o600)

    def _ensure_database(self, rec: dict) -> None:
        import psycopg  # imported late: only needed once the server runs

        admin = self._admin_dsn(rec)
        with psycopg.connect(admin + " dbname=postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        with psycopg.connect(admin + f" dbname={DB_NAME}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def _ensure_application_role(self, rec: dict) -> None:
        """The role the server connects as, with a password of its own kept in the record; a
        cluster made before there was one gets it now. Its grants follow the migrations."""
        if not rec.get("app_password"):
            rec["app_password"] = secrets.token_urlsafe(18)
            self._write_record(rec)
        ensure_application_role(self.url(rec), APP_ROLE, rec["app_password"])

    def _is_running(self, pg_bin: Path) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        res = self._run([str(pg_bin / "pg_ctl"), "-D", str(self.pgdata), "status"], check=False)
        return res.returncode == 0

    def _pg_ctl(self, pg_bin: Path, *args: str) -> None:
        self._run([str(pg_bin / "pg_ctl"), "-D", str(self.pgdata), *args])

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.as_root:
            user = pwd.getpwnam(SERVICE_USER)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        res = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=_cluster_env(),
                             **kwargs)
        if check and res.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise SetupError(f"{Path(cmd[0]).name} failed ({res.returncode}): "
                             f"{res.stderr.strip() or res.stdout.strip()}\n{tail}")
        return res

    def _chown(self, path: Path) -> None:
        if self.as_root:
            user = _service_user()
            os.chown(path, user.pw_uid, user.pw_gid)


class StandbyCluster(LocalCluster):
    """The hot standby of ``primary``, rooted at ``link`` (e.g. data/pg-replica).

    Made once by ``pg_basebackup -R`` over the physical replication slot :data:`SLOT` (which keeps
    the WAL the standby has not received yet, up to ``max_slot_wal_keep_size``), then started on a
    loopback port of its own with :data:`STANDBY_SETTINGS`. It connects to the primary as
    :data:`REPLICATION_ROLE`, whose password is in a passfile beside its data, not in its
    configuration. Its record holds its port and the primary's passwords (the roles are the
    primary's: a physical copy), so its URLs are those of the primary's roles on its port.
    """

    def __init__(self, link: Path, primary: LocalCluster):
        super().__init__(link, primary.pg_bin)
        self.primary = primary

    @property
    def passfile(self) -> Path:
        return self.directory / "pgpass"

    def start(self) -> ClusterInfo:
        """Make the standby unless it exists, and start it unless it runs; the primary must run."""
        pg_bin = find_pg_bin(self.pg_bin)
        primary = self.primary.record()
        if primary is None or not self.primary.info().running:
            raise SetupError("the standby copies a running primary: start it first "
                             "(`gridmap db start`)")
        self._ensure_slot(primary)
        if not (self.pgdata / "PG_VERSION").exists():
            self._prepare_directory()
            self._write_record({"port": _free_port()})
            self._write_passfile(primary)
            self._base_backup(pg_bin, primary)
        own = self.record() or {"port": _free_port()}
        self._write_record({**own, "password": primary["password"],
                            "app_password": primary.get("app_password")})
        self._write_passfile(primary)
        self._point_at_primary(primary)
        self._start_server(pg_bin, STANDBY_SETTINGS)
        return self.info()

    def _ensure_slot(self, primary: dict) -> None:
        """The primary's slot for this standby, reserving WAL from now when it is new; one whose
        WAL the primary had to remove (the standby was down too long) cannot serve it again."""
        import psycopg

        with psycopg.connect(self._admin_dsn(primary) + " dbname=postgres", autocommit=True) as conn:
            row = conn.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
                               (SLOT,)).fetchone()
            if row is None:
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (SLOT,))
            elif row[0] == "lost":
                raise SetupError(f"the standby in {self.directory} fell further behind than the "
                                 f"primary keeps WAL for ({PRIMARY_SETTINGS['max_slot_wal_keep_size']}); "
                                 "make it again: `gridmap db start --replica --rebuild`")

    def drop_slot(self) -> None:
        """Give up the primary's slot (the standby is being removed), so it holds no more WAL."""
        import psycopg

        primary = self.primary.record()
        if primary is None or not self.primary.info().running:
            return
        with psycopg.connect(self._admin_dsn(primary) + " dbname=postgres", autocommit=True) as conn:
            # the sender of a standby just stopped may not have noticed yet: end it (waiting 5 s)
            conn.execute("SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots "
                         "WHERE slot_name = %s AND active_pid IS NOT NULL", (SLOT,))
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s", (SLOT,))

    def destroy(self) -> None:
        """Stop and delete the standby, and drop its slot on the primary."""
        super().destroy()
        self.drop_slot()

    def rebuild(self) -> ClusterInfo:
        """Make the standby again from a fresh copy of the primary."""
        self.destroy()
        return self.start()

    def _write_passfile(self, primary: dict) -> None:
        self.passfile.write_text(f"*:*:*:{REPLICATION_ROLE}:{primary['replication_password']}\n")
        os.chmod(self.passfile, 0o600)
        self._chown(self.passfile)

    def _conninfo(self, primary: dict) -> str:
        return (f"host=127.0.0.1 port={primary['port']} user={REPLICATION_ROLE} "
                f"passfile={self.passfile} application_name={SLOT}")

    def _base_backup(self, pg_bin: Path, primary: dict) -> None:
        self._run([str(pg_bin / "pg_basebackup"), "-D", str(self.pgdata), "-d",
                   self._conninfo(primary), "-R", "-S", SLOT, "-X", "stream", "-c", "fast"])

    def _point_at_primary(self, primary: dict) -> None:
        """Where the standby streams from, written again at every start: the primary may have
        restarted on another port. ``pg_basebackup -R`` wrote these settings into
        postgresql.auto.conf, which is read last; they are replaced there."""
        auto = self.pgdata / "postgresql.auto.conf"
        before = auto.read_text()
        keep = [line for line in before.splitlines()
                if not line.startswith(("primary_conninfo", "primary_slot_name"))]
        conninfo = self._conninfo(primary).replace("'", "''")
        after = "\n".join([*keep, f"primary_conninfo = '{conninfo}'",
                           f"primary_slot_name = '{SLOT}'"]) + "\n"
        if after == before:
            return
        auto.write_text(after)
        self._chown(auto)
        pg_bin = find_pg_bin(self.pg_bin)
        if self._is_running(pg_bin):
            self._pg_ctl(pg_bin, "reload")  # both settings take effect on reload


def _cluster_env() -> dict[str, str]:
    """The environment of the cluster's programs (initdb, pg_ctl and the server it starts,
    pg_basebackup): the caller's without libpq's connection variables. Everything they connect
    to is named in their arguments and the standby's password is in its passfile, which libpq
    reads only when no PGPASSWORD is set: an administrator's shell with PGPASSWORD (or PGUSER,
    PGSERVICE) for another server made the standby's copy fail to log in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise SetupError(
            f"Running as root needs the unprivileged system user '{SERVICE_USER}' for PostgreSQL; "
            f"install the Debian package postgresql (it creates the user)."
        ) from exc


def _reachable_by(path: Path, username: str) -> bool:
    """Whether ``username`` can traverse every directory down to ``path`` (execute permission)."""
    user = _service_user() if username == SERVICE_USER else pwd.getpwnam(username)
    groups = {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    p = Path(path).absolute()
    for part in [p, *p.parents]:
        if not part.exists():
            continue
        st = part.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port``. SO_REUSEADDR as PostgreSQL sets it, so a port our own
    server just left (in TIME_WAIT) counts as free: a restart keeps its port and its URL."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
