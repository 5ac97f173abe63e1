"""Bulk grid tagging past one machine: GridIndex on a dask.distributed cluster.

The grid-assignment rules at scale: millions of historical issues are re-tagged vectorised in-process
(:mod:`gis.geotag.assign`); past one machine the same work runs on a dask.distributed cluster, a
``LocalCluster`` by default or any scheduler by address. The answers are those of
:meth:`GridIndex.locate_many`, row for row, because every worker runs exactly that code on an
index built from exactly the same grids.

How the work is cut:

* **Grids** travel as a :class:`GridSpec` (WKB, keys, version, tolerance: 3.2 MB pickled at
  10,000 grids), broadcast once to every worker; each worker process builds one GridIndex from
  it and caches it under the spec's token (version + digest), so a partition costs no rebuild.
  A built GridIndex is not shipped: it does not pickle (its cell table is exposed through a
  memoryview), and its cell table alone is 57 MB at 10,000 grids, 18 times the spec.
* **Points** are a dask DataFrame of lon/lat, sent to the cluster batch by batch. With
  ``spatial=True`` they are partitioned as dask-geopandas' ``spatial_shuffle(by="hilbert")``
  partitions a GeoDataFrame of those points: the same Hilbert distances (dask-geopandas' encoder,
  fed the coordinates rather than shapely points, which cost more to make than to tag), then
  ``set_index``; so each partition covers one compact area and walks the index's cell table in
  order. Every row carries its id (its input position, or its database id) so that results find
  their row again.
* **Results** are gathered partition by partition as they finish, so the client holds one
  partition at a time; :func:`assign_stored_rows_dask` writes each back through the batch
  writer of the in-process path (``gis.geotag.assign._write_batch``: COPY, UPDATE, issue events).

Workers need GridMap installed (they import this module); nothing else: they read no database.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gis.geo.grid_index import METHODS, UNASSIGNED, BulkAssignment, GridIndex, _as_coordinate_arrays
from gis.geotag.assign import (
    AssignReport,
    CurrentGrids,
    TableReport,
    _assign_buildings,
    _progress,
    _read_batches,
    _Scope,
    _transaction,
    _write_batch,
    load_current_grids,
)
from gis.rules import DEFAULT_TOLERANCE_M

DEFAULT_WORKERS = 2  # LocalCluster processes when no scheduler is given (one per core here)
ROWS_PER_PARTITION = 500_000  # target partition size: ~16 MB of input, ~0.2 s of locate_many
HILBERT_LEVEL = 16
_INDEX_CACHE_SIZE = 2  # indexes kept per worker process (the current grids, and one older)
_UNASSIGNED_CODE = METHODS.index(UNASSIGNED)
_RESULT_COLUMNS = {"position": np.int64, "method": np.uint8, "distance_m": np.float64}


# ---- the grids, as workers receive them -------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GridSpec:
    """Everything a worker needs to build the very GridIndex the caller has, and no more."""

    wkb: tuple[bytes, ...]
    keys: tuple[str, ...]
    version: int
    tolerance_m: float
    token: str

    @classmethod
    def from_grids(cls, geometries, keys, *, version: int = 0,
                   tolerance_m: float = DEFAULT_TOLERANCE_M) -> GridSpec:
        wkb = tuple(shapely.to_wkb(np.asarray(geometries, dtype=object)).tolist())
        keys = tuple(str(k) for k in keys)
        digest = hashlib.sha256(repr((int(version), float(tolerance_m), keys)).encode())
        for blob in wkb:
            digest.update(blob)
        token = f"v{int(version)}-{digest.hexdigest()[:20]}"
        return cls(wkb, keys, int(version), float(tolerance_m), token)

    @classmethod
    def from_index(cls, index: GridIndex) -> GridSpec:
        return cls.from_grids(index.geometries, index.keys, version=index.version,
                              tolerance_m=index.tolerance_m)

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.wkb)) + sum(len(k) for k in self.keys)

    def build(self) -> GridIndex:
        """A fresh GridIndex over these grids (validated again, as any GridIndex is)."""
        return GridIndex(shapely.from_wkb(list(self.wkb)), self.keys, version=self.version,
                         tolerance_m=self.tolerance_m)

    def index(self) -> GridIndex:
        """This process's GridIndex for the spec: built on first use, then taken from a cache."""
        with _CACHE_LOCK:  # held while building, so threads of one worker build it once
            index = _INDEX_CACHE.get(self.token)
            if index is None:
                index = _INDEX_CACHE[self.token] = self.build()
                while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
                    _INDEX_CACHE.popitem(last=False)
            else:
                _INDEX_CACHE.move_to_end(self.token)
            return index


_INDEX_CACHE: OrderedDict[str, GridIndex] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _spec_of(grids, keys, version: int, tolerance_m: float) -> GridSpec:
    if isinstance(grids, GridSpec):
        return grids
    if isinstance(grids, GridIndex):
        return GridSpec.from_index(grids)
    if isinstance(grids, CurrentGrids):
        return GridSpec.from_index(grids.index)
    if keys is None:
        raise ValueError("grid geometries need their keys (keys=...)")
    return GridSpec.from_grids(grids, keys, version=version, tolerance_m=tolerance_m)


# ---- the cluster ------------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int = DEFAULT_WORKERS,
                threads_per_worker: int = 1, processes: bool = True) -> Iterator:
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (``tcp://host:port``), else of
    a fresh ``LocalCluster`` of ``n_workers`` worker processes that is closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=processes, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _using(client, scheduler: str | None) -> Iterator:
    """The caller's client (left open), or one made for the call (closed after it)."""
    if client is not None:
        yield client
    else:
        with dask_client(scheduler) as made:
            yield made


def _workers(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


# ---- tagging ----------------------------------------------------------------------------------


def assign_points_dask(lon, lat, grids, *, keys=None, version: int = 0,
                       tolerance_m: float = DEFAULT_TOLERANCE_M, client=None,
                       scheduler: str | None = None, npartitions: int | None = None,
                       spatial: bool = True) -> BulkAssignment:
    """Tag points like ``GridIndex.locate_many``, on a dask cluster; results in input order.

    ``grids`` is a GridIndex (or a GridSpec, or CurrentGrids), or grid geometries with ``keys``
    (then ``version`` and ``tolerance_m`` apply). ``client`` is a ``distributed.Client`` to use;
    without one, a client of ``scheduler`` or of a LocalCluster is made for the call.
    ``npartitions`` defaults to about one per 500,000 points, at least two per worker.
    """
    lon, lat = _as_coordinate_arrays(lon, lat)
    spec = _spec_of(grids, keys, version, tolerance_m)
    n = len(lon)
    out = BulkAssignment(position=np.full(n, -1, np.int64),
                         method=np.full(n, _UNASSIGNED_CODE, np.uint8),
                         distance_m=np.full(n, np.nan))
    if n == 0:
        return out
    with _using(client, scheduler) as cl:
        parts = npartitions or _default_partitions(cl, n)
        cuts = np.linspace(0, n, min(parts, n) + 1).astype(np.int64)
        frames = (pd.DataFrame({"_row": np.arange(a, b), "lon": lon[a:b], "lat": lat[a:b]})
                  for a, b in zip(cuts[:-1], cuts[1:], strict=True))
        for part in tag_frames(cl, frames, spec, npartitions=parts, spatial=spatial):
            rows = part["_row"].to_numpy()
            out.position[rows] = part["position"].to_numpy()
            out.method[rows] = part["method"].to_numpy()
            out.distance_m[rows] = part["distance_m"].to_numpy()
    return out


def _default_partitions(client, n_rows: int) -> int:
    return max(2 * _workers(client), math.ceil(n_rows / ROWS_PER_PARTITION))


def tag_frames(client, frames: Iterable[pd.DataFrame], grids: GridSpec, *,
               npartitions: int | None = None, spatial: bool = True,
               keep_coordinates: bool = False) -> Iterator[pd.DataFrame]:
    """Tag the points of ``frames`` on the cluster; yield result frames as partitions finish.

    Each frame has float columns ``lon`` and ``lat`` (WGS84) and any other columns, which come
    back alongside ``position`` (into the index, -1 for none), ``method`` (codes into
    ``METHODS``) and ``distance_m``; ``lon`` and ``lat`` too with ``keep_coordinates``. Frames
    are sent to the cluster one at a time as they are read, so the client never holds more than
    one. Results come in the order partitions finish, not in the input's.
    """
    import dask.dataframe as dd
    from distributed import as_completed

    futures, lo, hi, rows, meta = [], np.full(2, np.inf), np.full(2, -np.inf), 0, None
    for frame in frames:
        if len(frame) == 0:
            continue
        xy = frame[["lon", "lat"]].to_numpy(np.float64)
        lo, hi = np.minimum(lo, xy.min(axis=0)), np.maximum(hi, xy.max(axis=0))
        rows += len(frame)
        meta = frame.iloc[:0] if meta is None else meta
        futures.append(client.scatter(frame))
    if not futures:
        return
    with client.as_current():  # every compute below, set_index's included, on this client
        points = dd.from_delayed(futures, meta=meta, verify_meta=False)
        if spatial:
            nparts = npartitions or _default_partitions(client, rows)
            points = _hilbert_partitions(points, (*lo, *hi), nparts)
        spec = client.scatter(grids, broadcast=True)
        keep = [c for c in meta.columns if keep_coordinates or c not in ("lon", "lat")]
        result_meta = meta[keep].assign(**{c: np.empty(0, t) for c, t in _RESULT_COLUMNS.items()})
        tagged = points.map_partitions(_locate_partition, spec, keep, meta=result_meta,
                                       enforce_metadata=False, align_dataframes=False)
        pending = as_completed(client.compute(tagged.to_delayed()))
    del futures, points
    for future in pending:
        part = future.result()
        future.release()
        yield part


def _hilbert_partitions(points, bounds: tuple[float, ...], npartitions: int):
    """Points re-partitioned along a Hilbert curve over ``bounds``, each partition sorted along
    it: what ``spatial_shuffle(by="hilbert")`` of dask-geopandas does, with the same distances
    (see :func:`hilbert_distance`), the total bounds known beforehand and no point geometry."""
    x0, y0, x1, y1 = bounds
    pad = 1e-9 + 1e-12 * max(abs(x0), abs(x1), abs(y0), abs(y1))  # a cloud of one point
    bounds = (x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    meta = points._meta.assign(_hilbert=np.empty(0, np.uint32))
    keyed = points.map_partitions(_with_hilbert, bounds, meta=meta)
    return keyed.set_index("_hilbert", npartitions=npartitions)


def _with_hilbert(part: pd.DataFrame, bounds: tuple[float, ...]) -> pd.DataFrame:
    distance = hilbert_distance(part["lon"].to_numpy(np.float64), part["lat"].to_numpy(np.float64),
                                bounds)
    return part.assign(_hilbert=distance.astype(np.uint32))


def hilbert_distance(lon: np.ndarray, lat: np.ndarray, total_bounds,
                     level: int = HILBERT_LEVEL) -> np.ndarray:
    """Distance of points along a Hilbert curve over ``total_bounds``: the numbers that
    ``dask_geopandas.GeoDataFrame.hilbert_distance`` (so ``spatial_shuffle``) gives for the
    same points, computed from their coordinates by dask-geopandas' own encoder. Making point
    geometries only to read their coordinates back cost more than tagging the points did (about
    2 s against 0.4 s per million points on the loaded 2-core machine of SCALING.md).
    """
    try:
        from dask_geopandas.hilbert_distance import _continuous_to_discrete_coords, _encode
    except ImportError:  # the encoder moved: take the public road, geometry and all
        import geopandas

        points = geopandas.GeoSeries(geopandas.points_from_xy(lon, lat))
        return points.hilbert_distance(total_bounds=total_bounds, level=level).to_numpy()
    x, y = _continuous_to_discrete_coords(np.column_stack([lon, lat, lon, lat]), level,
                                          total_bounds)
    return _encode(level, x, y)


def _locate_partition(part: pd.DataFrame, spec: GridSpec, keep: list[str]) -> pd.DataFrame:
    """Runs on a worker: one partition through ``locate_many`` of the worker's cached index, on
    the worker's thread (the cluster already spreads partitions over the cores)."""
    found = spec.index().locate_many(part["lon"].to_numpy(np.float64),
                                     part["lat"].to_numpy(np.float64), workers=1)
    out = pd.DataFrame({c: part[c].to_numpy() for c in keep})
    out["position"] = found.position
    out["method"] = found.method
    out["distance_m"] = found.distance_m
    return out


# ---- stored rows ------------------------------------------------------------------------------


def assign_stored_rows_dask(bind: Engine | Connection, *, tolerance_m: float = DEFAULT_TOLERANCE_M,
                            include_closed: bool = False, record_events: bool = True,
                            community: str | None = None, since: datetime | None = None,
                            batch_size: int = 200_000, progress: bool = False, client=None,
                            scheduler: str | None = None, npartitions: int | None = None,
                            spatial: bool = False) -> AssignReport:
    """``gis.geotag.assign.assign_stored_rows`` with the tagging on a dask cluster; the same report.

    Rows are read by the same keyset batches, sent to the cluster batch by batch, tagged there,
    and written back through the same batch writer (COPY + UPDATE, ``issue_events``) as the
    in-process path, in one transaction: the engine's (committed), or the caller's when ``bind``
    is a Connection. Buildings are re-tagged in PostGIS, as there.

    Partitions are the batches as read (id ranges) unless ``spatial``: the write-back then
    updates rows in the order they lie in the table. Hilbert partitions scatter each batch's
    UPDATE over the whole table; on 1M issues that made the job 37% slower (SCALING.md), and
    tagging is under 1% of its time, so there is nothing for locality to win back.
    """
    with _transaction(bind) as conn:
        grids = load_current_grids(conn, tolerance_m)
        report = AssignReport(grid_version=grids.index.version)
        scope = _Scope(community, since, include_closed)
        spec = GridSpec.from_index(grids.index)
        with _using(client, scheduler) as cl:
            for table, events in (("issues", record_events), ("facilities", False)):
                report.tables[table] = _assign_table(
                    conn, table, grids, spec, scope, cl, batch_size=batch_size,
                    progress=progress, record_events=events, npartitions=npartitions,
                    spatial=spatial)
        report.tables["buildings"] = _assign_buildings(conn, community)
    return report


def _assign_table(conn: Connection, table: str, grids: CurrentGrids, spec: GridSpec,
                  scope: _Scope, client, *, batch_size: int, progress: bool,
                  record_events: bool, npartitions: int | None, spatial: bool) -> TableReport:
    where, params = scope.where(table)
    total = conn.execute(text(f"SELECT count(*) FROM {table} t WHERE {where}"), params).scalar_one()
    report = TableReport()
    bar = _progress(total, table, progress)

    def frames() -> Iterator[pd.DataFrame]:
        for rows in _read_batches(conn, table, scope, batch_size):
            old = [g if g is not None else -1 for g in rows[:, 3]]
            yield pd.DataFrame({"id": rows[:, 0].astype(np.int64), "old": np.array(old, np.int64),
                                "lon": rows[:, 1].astype(float), "lat": rows[:, 2].astype(float)})

    for part in tag_frames(client, frames(), spec, npartitions=npartitions, spatial=spatial,
                           keep_coordinates=True):
        part = part.sort_values("id", kind="stable")
        for start in range(0, len(part), batch_size):
            chunk = part.iloc[start:start + batch_size]
            rows = np.empty((len(chunk), 4), dtype=object)
            rows[:, 0] = chunk["id"].to_numpy(np.int64)
            rows[:, 1] = chunk["lon"].to_numpy(np.float64)
            rows[:, 2] = chunk["lat"].to_numpy(np.float64)
            old = chunk["old"].to_numpy(np.int64)
            rows[:, 3] = np.where(old >= 0, old.astype(object), None)
            _write_batch(conn, table, _replaying(grids, chunk), rows, report, record_events)
            bar.update(len(chunk))
    bar.close()
    return report


def _replaying(grids: CurrentGrids, tagged: pd.DataFrame) -> CurrentGrids:
    """``grids`` whose index answers ``locate_many`` with the cluster's tags of ``tagged``.

    The in-process batch writer (``gis.geotag.assign._write_batch``) locates and then writes; handing it
    this stand-in makes it write what the cluster found, through exactly its own code.
    """
    return CurrentGrids(_Replay(tagged), grids.ids, grids.versions)


class _Replay:
    def __init__(self, tagged: pd.DataFrame):
        self._lon = tagged["lon"].to_numpy(np.float64)
        self._lat = tagged["lat"].to_numpy(np.float64)
        self._found = BulkAssignment(position=tagged["position"].to_numpy(np.int64),
                                     method=tagged["method"].to_numpy(np.uint8),
                                     distance_m=tagged["distance_m"].to_numpy(np.float64))

    def locate_many(self, lon, lat) -> BulkAssignment:
        if not (np.array_equal(lon, self._lon) and np.array_equal(lat, self._lat)):
            raise RuntimeError("replayed tags asked for other points than they were made for")
        return self._found
