"""Deterministic synthetic data for the warehouse: raw Parquet for dbt, ground truth for evals.

    python -m warehouse.generate --seed 42 --customers 5000 --as-of 2026-11-27 [--out DIR] [--truth-out DIR]

Same arguments give byte-identical files. Raw tables go to `warehouse.paths.raw_dir()` (read by
dbt sources), the latent response parameters to `warehouse.paths.truth_dir()` (read only by evals).
`_meta.json` and `generator_meta.parquet` record seed, customers and as_of, so dbt and Python
agree on the as_of date.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import paths, raw_contract, truth
from warehouse.raw_files import RawFileUnreadable
from warehouse.synth_activity import make_nps, make_orders, make_web_events
from warehouse.synth_marketing import make_campaigns, make_spend, make_suppressions, make_touches
from warehouse.synth_people import DAY_US, People, make_customers, make_products

DEFAULT_SEED = 42
DEFAULT_CUSTOMERS = 5000
DEFAULT_AS_OF = "2026-11-27"
MAX_CUSTOMERS = 5_000_000
META_FILE = "_meta.json"
RAW_TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "web_events",
    "nps_responses",
    "campaigns",
    "marketing_spend",
    "suppression_list",
    "campaign_touches",
    "generator_meta",
)
NPS_RECENT_DAYS = 30
NEW_USER_DAYS = 14


@dataclass(frozen=True)
class GenerateConfig:
    seed: int = DEFAULT_SEED
    customers: int = DEFAULT_CUSTOMERS
    as_of: date = date.fromisoformat(DEFAULT_AS_OF)

    @property
    def meta(self) -> dict[str, object]:
        return {"seed": self.seed, "customers": self.customers, "as_of": self.as_of.isoformat()}


def _latent_params(
    rng: np.random.Generator, people, as_of_day: int, lapsed, aov, rate, latest_nps_day, latest_nps_score
) -> pa.Table:
    n = len(people.signup_day)
    detractor_recent = (
        (latest_nps_day >= as_of_day - NPS_RECENT_DAYS) & (latest_nps_score >= 0) & (latest_nps_score <= 6)
    )
    is_new = (as_of_day - people.signup_day) <= NEW_USER_DAYS
    situation = np.where(
        detractor_recent,
        truth.SITUATIONS[2],
        np.where(lapsed, truth.SITUATIONS[0], np.where(is_new, truth.SITUATIONS[1], "none")),
    )
    base_logit = -2.4 + 0.4 * rng.normal(0, 1, n) + 0.25 * np.log(people.engagement) - 0.3 * lapsed
    sensitivity = rng.lognormal(np.log(0.35), 0.5, n) * np.where(is_new, 1.5, 1.0)
    return pa.table(
        {
            "customer_id": people.customer_id,
            "situation": pa.array(situation.astype(str), pa.string()),
            "base_logit": pa.array(base_logit),
            "discount_sensitivity": pa.array(sensitivity),
            "expected_order_value": pa.array(np.round(aov * 1.3, 4)),
            "affinity_email": pa.array(people.affinity[:, 0]),
            "affinity_sms": pa.array(people.affinity[:, 1]),
            "affinity_push": pa.array(people.affinity[:, 2]),
            "purchase_rate_per_year": pa.array(rate),
            "lapsed": pa.array(lapsed),
            "satisfaction": pa.array(people.satisfaction),
        }
    )


@dataclass(frozen=True, eq=False)
class World:
    """Everything the campaign history is drawn from: customers, their latent response parameters
    and the lifecycle audiences, plus the seed of each table family's random stream."""

    as_of_day: int
    seeds: list[np.random.SeedSequence]
    people: People
    products: pa.Table
    orders: pa.Table
    items: pa.Table
    web: pa.Table
    nps: pa.Table
    params: pa.Table
    lifecycle: np.ndarray

    def stream(self, family: int) -> np.random.Generator:
        """A fresh generator for one table family (the same numbers on every call)."""
        return np.random.Generator(np.random.PCG64(self.seeds[family]))

    def touches(self, rng: np.random.Generator | None = None) -> pa.Table:
        """The campaign history as generated; with another `rng`, another history of the same customers."""
        rng = self.stream(6) if rng is None else rng
        return make_touches(rng, self.people, self.params, self.as_of_day, self.lifecycle)


def build_world(config: GenerateConfig) -> World:
    as_of_day = (config.as_of - date(1970, 1, 1)).days
    seeds = np.random.SeedSequence(config.seed).spawn(9)
    streams = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
    people = make_customers(streams[0], config.customers, as_of_day)
    products, product_cat, product_price = make_products(streams[1])
    orders, items, lapsed, _lapse_day, aov, rate = make_orders(
        streams[2], people, as_of_day, product_cat, product_price
    )
    has_orders = np.zeros(config.customers, dtype=bool)
    has_orders[np.unique(_customer_index(orders.column("customer_id")))] = True
    web = make_web_events(streams[3], people, as_of_day, lapsed, has_orders)
    nps, latest_day, latest_score = make_nps(streams[4], people, as_of_day, lapsed)
    params = _latent_params(streams[5], people, as_of_day, lapsed, aov, rate, latest_day, latest_score)
    lifecycle = _lifecycle_audience(orders, params, as_of_day)
    return World(as_of_day, seeds, people, products, orders, items, web, nps, params, lifecycle)


def generate(
    config: GenerateConfig, out: Path | None = None, truth_out: Path | None = None, verbose: bool = False
) -> dict[str, int]:
    """Write every raw table and the ground truth; return row counts per table."""
    from warehouse.ownership import claim_data_dir

    # each folder is replaced whole: refused, before any work, when it holds what we did not write
    claim_data_dir(out or paths.raw_dir(), "--out" if out else "NBA_RAW_DIR", generated)
    claim_data_dir(truth_out or paths.truth_dir(), "--truth-out" if truth_out else "NBA_TRUTH_DIR", generated)
    out = out or paths.raw_dir()
    truth_out = truth_out or paths.truth_dir()
    t0 = time.perf_counter()
    world = build_world(config)
    as_of_day, people, params = world.as_of_day, world.people, world.params
    products, orders, items, web, nps = world.products, world.orders, world.items, world.web, world.nps
    touches = world.touches()
    campaigns = make_campaigns(as_of_day)
    spend = make_spend(world.stream(7), as_of_day, config.customers, campaigns, touches)
    suppressions = make_suppressions(world.stream(8), people, as_of_day)
    meta = pa.table(
        {
            "seed": pa.array([config.seed], pa.int64()),
            "customers": pa.array([config.customers], pa.int64()),
            "as_of_date": pa.array([config.as_of], pa.date32()),
        }
    )
    tables = {
        "customers": people.table,
        "products": products,
        "orders": orders,
        "order_items": items,
        "web_events": web,
        "nps_responses": nps,
        "campaigns": campaigns,
        "marketing_spend": spend,
        "suppression_list": suppressions,
        "campaign_touches": touches,
        "generator_meta": meta,
    }
    if verbose:
        print(f"generated in {time.perf_counter() - t0:.1f}s; writing", file=sys.stderr)

    _write_dir(
        out,
        {f"{name}.parquet": t for name, t in raw_contract.conform(tables).items()},
        {META_FILE: json.dumps(config.meta, sort_keys=True) + "\n"},
    )
    truth_files = {truth.PARAMS_FILE: params}
    if config.customers <= truth.EXPECTED_REWARDS_MAX_CUSTOMERS:
        truth_files[truth.EXPECTED_FILE] = truth.expected_rewards_table(params)
    _write_dir(truth_out, truth_files, {META_FILE: json.dumps(config.meta, sort_keys=True) + "\n"})
    return {name: t.num_rows for name, t in tables.items()}


def _lifecycle_audience(orders: pa.Table, params: pa.Table, as_of_day: int) -> np.ndarray:
    """Customers in one of the incumbent CRM's lifecycle audiences, which used the same definitions
    as today's dbt segments (see warehouse/README.md): high-value buyers (top 20% by lifetime revenue
    or >= 1500) lapsing (>= 45 days and >= 2x their usual gap since the last order, >= 2 orders),
    plus first-week users and recent detractors (their latent situation)."""
    import pyarrow.compute as pc

    n = params.num_rows
    cust = _customer_index(orders.column("customer_id"))
    day = pc.divide(orders.column("ordered_at").cast(pa.int64()), DAY_US).to_numpy()
    amount = orders.column("amount").to_numpy()
    count = np.bincount(cust, minlength=n)
    revenue = np.bincount(cust, weights=amount, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, cust, day)
    np.maximum.at(last, cust, day)
    buyers = count > 0
    top = np.quantile(revenue[buyers], 0.8) if buyers.any() else np.inf
    high_value = buyers & ((revenue >= top) | (revenue >= 1500))
    gap = np.divide(last - first, np.maximum(count - 1, 1))
    since = as_of_day - last
    lapsing = (count >= 2) & (since >= 45) & (since >= 2.0 * gap)
    situation = params.column("situation").to_numpy(zero_copy_only=False)
    lifecycle: np.ndarray = (high_value & lapsing) | np.isin(situation, truth.SITUATIONS[1:])
    return lifecycle


def _customer_index(customer_ids: pa.ChunkedArray) -> np.ndarray:
    """'C0000042' -> 41 (ids are dense and 1-based)."""
    import pyarrow.compute as pc

    return pc.cast(pc.utf8_slice_codeunits(customer_ids, 1), pa.int64()).to_numpy() - 1


def _write_dir(directory: Path, tables: dict[str, pa.Table], texts: dict[str, str]) -> None:
    """Write into a sibling temp dir, then swap it in: readers never see a half-written dataset."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, table in tables.items():
        # dictionary columns (the touches' template, channel, campaign) are written without the Arrow
        # schema, whose dictionary ids would make same-seed files differ byte for byte
        dictionary = any(pa.types.is_dictionary(f.type) for f in table.schema)
        pq.write_table(
            table, tmp / name, compression="zstd", row_group_size=1_000_000, store_schema=not dictionary
        )
    for name, text in texts.items():
        (tmp / name).write_text(text, encoding="utf-8")
    old = directory.with_name(directory.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    if old.exists():
        shutil.rmtree(old)


def generated(directory: Path) -> bool:
    """True when `directory` holds the generator's output (its _meta.json, readable or not: a damaged
    one is regenerated)."""
    return (directory / META_FILE).is_file()


META_KEYS = tuple(GenerateConfig().meta)  # what every _meta.json the generator writes holds


def read_meta(directory: Path | None = None) -> dict[str, object] | None:
    """The generator's _meta.json (seed, customers, as_of), or None if no data was generated.
    Raises RawFileUnreadable (one line, exit 2) when it is not JSON, not an object, or lacks a key:
    the one check of it, for `build` and `check-sources` alike."""
    path = (directory or paths.raw_dir()) / META_FILE
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not JSON: {str(exc).splitlines()[0]}"
        raise RawFileUnreadable(
            f"raw file {path} cannot be read ({reason}): restore it, or generate the raw data again (make seed)"
        ) from None
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else []
    if not isinstance(meta, dict) or missing:
        what = f"no {', '.join(missing)}" if missing else "a JSON object"
        raise RawFileUnreadable(
            f"raw file {path} is not the generator's metadata ({what}): restore it, or generate the "
            "raw data again (make seed)"
        )
    return meta


# --- command line ----------------------------------------------------------------------------------


def _customers_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer; pass e.g. --customers 5000") from None
    if not 1 <= n <= MAX_CUSTOMERS:
        raise argparse.ArgumentTypeError(f"{n} is out of range; pass a count between 1 and {MAX_CUSTOMERS:,}")
    return n


def _seed_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer; pass e.g. --seed 42") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative; pass a seed >= 0")
    return n


def _date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date; pass YYYY-MM-DD, e.g. 2026-11-27"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_seed_arg, default=DEFAULT_SEED, help="random seed (>= 0)")
    parser.add_argument(
        "--customers",
        type=_customers_arg,
        default=DEFAULT_CUSTOMERS,
        help=f"number of customers (1..{MAX_CUSTOMERS:,})",
    )
    parser.add_argument(
        "--as-of",
        type=_date_arg,
        default=date.fromisoformat(DEFAULT_AS_OF),
        help="as-of date YYYY-MM-DD: all activity happens before it",
    )
    parser.add_argument("--out", type=Path, default=None, help="raw Parquet directory (default NBA_RAW_DIR)")
    parser.add_argument(
        "--truth-out", type=Path, default=None, help="ground-truth directory (default NBA_TRUTH_DIR)"
    )


def run_from_args(args: argparse.Namespace) -> dict[str, int]:
    config = GenerateConfig(seed=args.seed, customers=args.customers, as_of=args.as_of)
    t0 = time.perf_counter()
    counts = generate(config, out=args.out, truth_out=args.truth_out)
    summary = ", ".join(f"{k}={v:,}" for k, v in counts.items() if k != "generator_meta")
    print(f"generated seed={config.seed} as_of={config.as_of} in {time.perf_counter() - t0:.1f}s: {summary}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.generate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
