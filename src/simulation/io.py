"""World → data directory (observable tables at the top level, truth/ beside them, manifest.json).

Ids are integers that depend only on the day and the rank within the day, so an event changes
ids on the days it acts and nowhere before:
order_id = yyyymmdd · 10⁶ + rank of the order that day; customer_id = signup yyyymmdd · 10⁶ + rank
of the signup that day (customers of the initial base signed up before the period).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shocklab import __version__
from shocklab.atomic import atomic_dir
from shocklab.fastcsv import init_compute
from shocklab.hashing import canonical_json, sha256_file

from . import calendar as cal
from . import coltable as ct
from . import noise_model
from .coltable import ColTable
from .config import SimulationConfig, config_hash
from .engine import STATUS, Drawn, Run, Setup, World
from .order_value_null import order_value_null_table

ID_DAY = 1_000_000
FORMATS = ("csv", "parquet")
OBSERVED = ("products", "customers", "website_traffic", "orders", "order_items",
            "marketing_calendar")


def _yyyymmdd(start: np.datetime64, day: np.ndarray) -> np.ndarray:
    """yyyymmdd integers for day offsets from ``start`` (via a lookup over the offsets' range)."""
    lo, hi = int(day.min(initial=0)), int(day.max(initial=0))
    d = start + np.arange(lo, hi + 1)
    month = d.astype("datetime64[M]")
    year = month.astype("datetime64[Y]").astype(np.int64) + 1970
    table = (year * 10000 + (month.astype(np.int64) % 12 + 1) * 100
             + (d - month.astype("datetime64[D]")).astype(np.int64) + 1)
    return table[day - lo]


def _start(cfg: SimulationConfig) -> np.datetime64:
    return np.datetime64(cfg.period.start, "D")


def _ids_of(cfg: SimulationConfig, run: Run) -> np.ndarray:
    cust = run.customers
    return _yyyymmdd(_start(cfg), cust.signup_day) * ID_DAY + cust.seq


def _dates_us(start: np.datetime64, day: np.ndarray) -> np.ndarray:
    """``datetime64[us]`` of day offsets (the unit pandas gave ``Timestamp + to_timedelta``)."""
    return (start + day).astype("datetime64[us]")


def _order_ids(cfg: SimulationConfig, run: Run) -> np.ndarray:
    order_rank = np.arange(run.o_day.size) - np.searchsorted(run.o_day, run.o_day, side="left") + 1
    return _yyyymmdd(_start(cfg), run.o_day) * ID_DAY + order_rank


def order_items_table(cfg: SimulationConfig, run: Run) -> ColTable:
    """order_items: it needs the orders and lines only (not the customers)."""
    return ColTable({
        "order_id": ct.ints(_order_ids(cfg, run)[run.l_order]),
        "product_id": ct.ints(run.l_product.astype(np.int64) + 1),
        "quantity": ct.ints(run.l_qty),
        "unit_price": ct.floats(run.l_price),
        "discount_pct": ct.floats(run.l_disc),
    })


def orders_table(cfg: SimulationConfig, s: Setup, run: Run) -> ColTable:
    """orders: the actual run with its customers."""
    channels, countries = s.grid.channels, s.grid.countries
    customer_id = _ids_of(cfg, run)
    order_day = _dates_us(_start(cfg), run.o_day)
    order_id = _order_ids(cfg, run)
    return ColTable({
        "order_id": ct.ints(order_id),
        "order_ts": ct.times(order_day + run.o_sec.astype("timedelta64[s]")),
        "order_date": ct.times(order_day),
        "customer_id": ct.ints(customer_id[run.o_customer]),
        "channel": ct.cat(run.o_channel, channels),
        "country": ct.cat(run.o_country, countries),
        "status": ct.cat(run.o_status, list(STATUS)),
        "items": ct.ints(run.o_items),
        "units": ct.ints(run.o_units),
        "gross_revenue": ct.floats(run.o_gross),
        "discount": ct.floats(run.o_discount),
        "net_revenue": ct.floats(run.o_net),
    })


def observed_tables(cfg: SimulationConfig, s: Setup, run: Run,
                    skip: tuple[str, ...] = ()) -> dict[str, ColTable]:
    """The observable tables: they depend on the actual run only (not on the twins or truth).
    ``skip``: the tables written earlier (``DataDirWriter.orders`` writes order_items before
    the customers exist, ``DataDirWriter.observed`` orders first)."""
    cust = run.customers
    start = _start(cfg)
    channels, countries = s.grid.channels, s.grid.countries
    D, C, K = s.shape

    customer_id = _ids_of(cfg, run)
    corder = np.argsort(customer_id, kind="stable")
    customers = ColTable({
        "customer_id": ct.ints(customer_id[corder]),
        "signup_date": ct.times(_dates_us(start, cust.signup_day[corder])),
        "country": ct.cat(cust.country[corder], countries),
        "acquisition_channel": ct.cat(cust.channel[corder], channels),
    })
    traffic = ColTable({
        "date": ct.times(np.repeat(s.days.astype("datetime64[s]"), C * K)),
        "channel": ct.cat(np.tile(np.repeat(np.arange(C), K), D), channels),
        "country": ct.cat(np.tile(np.arange(K), D * C), countries),
        "sessions": ct.ints(run.sessions.ravel()),
    })
    products = ColTable({**s.catalogue.table.cols,
                         "product_id": ct.ints(np.arange(1, len(s.catalogue.table) + 1))})
    out = {
        "products": products,
        "customers": customers,
        "website_traffic": traffic,
        "orders": None,
        "order_items": None,
        "marketing_calendar": cal.marketing_calendar_table(cfg),
    }
    for name, build in (("orders", orders_table), ("order_items", order_items_table)):
        if name in skip:
            del out[name]
        else:
            out[name] = build(cfg, s, run) if name == "orders" else build(cfg, run)
    return out


def _rank_first_pct(values: np.ndarray) -> np.ndarray:
    """``Series.rank(pct=True, method="first")``: rank among the non-NaN values (ties in order of
    appearance) / their count; NaN stays NaN."""
    ok = ~np.isnan(values)
    sub = values[ok]
    rank = np.empty(sub.size, dtype=np.float64)
    rank[np.argsort(sub, kind="stable")] = np.arange(1, sub.size + 1, dtype=np.float64)
    out = np.full(values.size, np.nan)
    out[ok] = rank / sub.size
    return out


def truth_customers(d: Drawn | World) -> ColTable:
    """truth/customers: purchase rate, churn date and value tier per customer (actual run)."""
    cust = d.actual.customers
    start = _start(d.cfg)
    D = d.setup.shape[0]
    customer_id = _ids_of(d.cfg, d.actual)
    churned = cust.churn_day < D
    # text columns as categoricals (a label per distinct day / tier, not per customer): the CSV
    # writer decodes them, so the bytes are those of the plain strings
    days, day_code = np.unique(np.where(churned, cust.churn_day, D), return_inverse=True)
    iso = np.datetime_as_string(start + days, unit="D")
    labels = [d if k < D else "" for d, k in zip(iso, days, strict=True)]
    rate = np.round(d.purchase_rate, 4)
    pct = _rank_first_pct(rate)
    tier = np.where(rate == 0, 3, np.where(pct > 0.8, 2, np.where(pct > 0.5, 1, 0)))
    order = np.argsort(customer_id, kind="stable")
    return ColTable(
        {
            "customer_id": ct.ints(customer_id),
            "purchase_rate": ct.floats(rate),
            "churn_date": ct.cat(day_code.reshape(-1), labels),
            "value_tier": ct.cat(tier, ["low", "medium", "high", "none"]),
        }
    ).take(order)


def _write_table(
    df: ColTable, path_stem: Path, fmt: str, float_format: str | None = None
) -> Path:
    if fmt == "parquet":
        path = path_stem.with_suffix(".parquet")
        ct.write_parquet(df, path)   # the bytes of pandas' to_parquet(engine="pyarrow")
    else:
        path = path_stem.with_suffix(".csv")
        ct.write_csv(df, path, float_format)   # pyarrow, same bytes as pandas' to_csv
    return path


def _write_hashed(
    df: ColTable, path_stem: Path, fmt: str, float_format: str | None = None
) -> tuple[Path, str]:
    path = (_write_table(df, path_stem, fmt) if float_format is None
            else _write_table(df, path_stem, fmt, float_format))
    return path, sha256_file(path)


def _write_timed(df: ColTable | Callable[[], ColTable], path_stem: Path, fmt: str,
                 float_format: str | None, times: dict[str, float]) -> tuple[Path, str]:
    """``_write_hashed``, its wall seconds in ``times`` under the file's name (for the
    benchmark's breakdown; nothing of it is written). ``df`` may be a function that builds the
    table (on the writer thread)."""
    t0 = time.perf_counter()
    if callable(df):
        df = df()
    out = (_write_hashed(df, path_stem, fmt) if float_format is None
           else _write_hashed(df, path_stem, fmt, float_format))
    times[f"{path_stem.parent.name}/{out[0].name}" if path_stem.parent.name == "truth"
          else out[0].name] = time.perf_counter() - t0
    return out


# threads writing data-directory files (the machine this targets has two cores)
WRITERS = 2


def write_data_dir(world: World, out: str | Path, fmt: str = "csv") -> dict[str, Any]:
    """Write the data directory atomically; returns the manifest."""
    with data_dir_writer(out, fmt) as w:
        w.observed(world)
        return w.finish(world)


@contextmanager
def data_dir_writer(out: str | Path, fmt: str = "csv") -> Iterator[DataDirWriter]:
    """A data directory being written (atomically: it appears at ``out`` only when the block
    ends without an error). The writer is ``engine.simulate``'s sink: ``orders`` (the actual
    orders and lines), ``observed`` (the actual run with its customers) and ``baseline`` (then)
    start writing each table as soon as it exists, while the rest of the world — customers, the
    baseline, the counterfactual twins — is drawn; ``finish`` adds the counterfactual table,
    events, noise model and manifest."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    with atomic_dir(out, kind="data") as tmp:
        # pyarrow's writers and sha256 release the GIL: the tables are written (and hashed) on
        # two threads, the largest first, while this thread simulates the twins and builds the
        # truth tables; every file's bytes are the same as written one after another. On an
        # error or a signal here, queued writes are cancelled and running ones finish before
        # atomic_dir removes the directory. Each thread registers Arrow's compute kernels before
        # its first file (the other one waits for that import): registering them while the
        # other thread writes Parquet could fail its lookup of ``unique`` (``init_compute``).
        pool = ThreadPoolExecutor(max_workers=WRITERS, initializer=init_compute)
        try:
            yield DataDirWriter(tmp, fmt, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DataDirWriter:
    """Files of one data directory, written on a thread pool (see ``data_dir_writer``)."""

    def __init__(self, tmp: Path, fmt: str, pool: ThreadPoolExecutor) -> None:
        self.tmp, self.fmt, self.pool = tmp, fmt, pool
        self.jobs: list[Future] = []
        self.file_times: dict[str, float] = {}   # seconds per file, on the writer threads
        self.row_counts: dict[str, int] = {}
        self.baseline_written = False
        (tmp / "truth").mkdir(exist_ok=True)

    def _job(self, df: ColTable | Callable[[], ColTable], stem: Path, fmt: str,
             float_format: str | None = None) -> None:
        self.jobs.append(self.pool.submit(_write_timed, df, stem, fmt, float_format,
                                          self.file_times))

    def baseline(self, table: ColTable) -> None:
        """Start writing truth/baseline_daily (it depends on the setup and events only)."""
        # truth tables are always CSV: small, and read by people as often as by code
        self._job(table, self.tmp / "truth" / "baseline_daily", "csv", "%.10g")
        self.baseline_written = True

    def orders(self, cfg: SimulationConfig, run: Run) -> None:
        """Start writing order_items: the actual orders and lines exist, customers do not yet
        (``engine.Sink.orders``)."""
        # built on the writer thread: this one goes on to the customers, on the way to orders
        self.row_counts["order_items"] = int(run.l_order.size)
        self._job(lambda: order_items_table(cfg, run), self.tmp / "order_items", self.fmt)

    def observed(self, d: Drawn | World) -> None:
        """Start writing the observable tables (products, customers, traffic, orders, …) and
        the truth tables that depend on the actual run only (customers, baseline_daily)."""
        if "orders" not in self.row_counts:   # the largest table: its encoding starts first
            orders = orders_table(d.cfg, d.setup, d.actual)
            self.row_counts["orders"] = len(orders)
            self._job(orders, self.tmp / "orders", self.fmt)
        done = tuple(self.row_counts)
        obs = observed_tables(d.cfg, d.setup, d.actual, skip=done)
        for name in sorted(obs, key=lambda n: -obs[n].size):
            self._job(obs[name], self.tmp / name, self.fmt)
        counts = {**self.row_counts, **{name: int(len(df)) for name, df in obs.items()}}
        # the manifest's order (the observable tables' order)
        self.row_counts = {name: counts[name] for name in OBSERVED if name in counts}
        if isinstance(d, World) and not self.baseline_written:   # a whole world at once
            self.baseline(d.baseline_daily)
        self._job(truth_customers(d), self.tmp / "truth" / "customers", "csv")

    def finish(self, world: World) -> dict[str, Any]:
        """The counterfactual table, product null, events, noise model and manifest; waits for
        every file."""
        tmp, fmt = self.tmp, self.fmt
        truth_events = world.truth_events
        self._job(world.counterfactual_daily, tmp / "truth" / "counterfactual_daily", "csv")
        self._job(noise_model.product_null_table(world.cfg, world.setup.catalogue),
                  tmp / "truth" / "product_null", "csv", "%.10g")
        self._job(order_value_null_table(world.cfg, world.setup.catalogue),
                  tmp / "truth" / "order_value_null", "csv", "%.10g")
        digests = dict(j.result() for j in self.jobs)
        files = list(digests)
        noise_path = tmp / "truth" / "noise_model.json"
        noise_path.write_text(canonical_json(noise_model.noise_params(world.cfg)), encoding="utf-8")
        files.append(noise_path)
        ev_path = tmp / "truth" / "events.json"
        ev_path.write_text(canonical_json(truth_events), encoding="utf-8")
        files.append(ev_path)
        # The config that produced the data, for reproduction (validated, defaults filled in).
        # Keys in the config's own order, not sorted: the order of channels, countries and
        # categories is part of the world (sorted, a re-run drew another store). Hashed in the
        # manifest like every other file: the customer scores read it (mean lifetime).
        cfg_path = tmp / "truth" / "config.json"
        cfg_path.write_text(
            json.dumps(world.cfg.model_dump(mode="json"), indent=2, allow_nan=False,
                       ensure_ascii=False) + "\n", encoding="utf-8"
        )
        files.append(cfg_path)
        manifest = {
            "generator": "shocklab.simulation",
            "version": __version__,
            "scenario": world.cfg.scenario,
            "seed": world.cfg.seed,
            "config_sha256": config_hash(world.cfg),
            "format": fmt,
            "period": {
                "start": world.cfg.period.start.isoformat(),
                "end": world.cfg.period.end.isoformat(),
            },
            "channels": list(world.cfg.channels),
            "countries": list(world.cfg.countries),
            "categories": list(world.cfg.products.categories),
            "row_counts": self.row_counts,
            "events": {
                "unexpected": sum(not e["expected"] for e in truth_events),
                "expected": sum(bool(e["expected"]) for e in truth_events),
            },
            "files": {
                str(p.relative_to(tmp)): digests[p] if p in digests else sha256_file(p)
                for p in sorted(files)
            },
        }
        (tmp / "manifest.json").write_text(canonical_json(manifest), encoding="utf-8")
        return manifest
