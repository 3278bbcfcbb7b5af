"""Seed a small, realistic demo warehouse: a SQLite file (``make demo``) or any SQLAlchemy URL
(PostgreSQL in docker-compose).

    python -m airflow_dataops.demo.seed PATH|URL [--stale] [--dirty] [--orders N] [--seed N]

Tables (timestamps are naive UTC):

- ``customers``  (customer_id, name, email, country, created_at)
- ``orders``     (order_id, customer_id [a few NULL: guest checkouts], email, status, amount,
  currency, created_at, updated_at)
- ``payments``   (payment_id, order_id, method, amount, paid_at)
- ``orders_daily``: a view of ``orders``. The example pipeline ``dags/orders_daily.yaml`` names no
  dataset, so it checks the documented default: a table named after the pipeline.

The data is deterministic for a given ``--seed`` and moment; times are relative to now, so the
freshness checks pass (the newest ``updated_at`` is a couple of minutes old). ``--stale`` moves every
timestamp three days back (freshness fails); ``--dirty`` adds the problems checks are for: more
missing customers, malformed e-mails, negative amounts, unknown statuses and orders of customers
that do not exist. The tables are replaced on every run (a SQLite file is recreated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
STATUS_WEIGHTS = (10, 15, 20, 45, 6, 4)
PAYMENT_METHODS = ("card", "paypal", "bank_transfer", "gift_card")
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "GB", "US", "PL")
FIRST_NAMES = ("Ada", "Bruno", "Chloe", "Dev", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jana", "Kofi", "Lena")
LAST_NAMES = ("Meyer", "Novak", "Okafor", "Petit", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Vidal")
STALE_BY = dt.timedelta(days=3)
HISTORY = dt.timedelta(days=30)

metadata = sa.MetaData()
customers_table = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(200), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
orders_table = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer),
    sa.Column("email", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("amount", sa.Numeric(10, 2, asdecimal=False), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
)
payments_table = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_id", sa.Integer, nullable=False, index=True),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("amount", sa.Numeric(10, 2, asdecimal=False), nullable=False),
    sa.Column("paid_at", sa.DateTime, nullable=False),
)
VIEW = "orders_daily"


@dataclass(frozen=True)
class SeedSummary:
    target: str
    customers: int
    orders: int
    payments: int
    newest_update: dt.datetime

    def __str__(self) -> str:
        return (
            f"demo warehouse {self.target}: {self.customers} customers, {self.orders} orders, "
            f"{self.payments} payments; newest orders.updated_at {self.newest_update:%Y-%m-%d %H:%M:%S} UTC"
        )


def _ts(moment: dt.datetime) -> dt.datetime:
    """Naive UTC, whole seconds: what a warehouse loader would typically write."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _engine_for(target: str | Path) -> tuple[sa.Engine, str]:
    text = str(target)
    if "://" in text:
        url = sa.make_url(text)
        return sa.create_engine(url), url.render_as_string(hide_password=True)
    path = Path(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return sa.create_engine(f"sqlite:///{path}"), str(path)


def seed(
    target: str | Path,
    *,
    orders: int = 2000,
    stale: bool = False,
    dirty: bool = False,
    now: dt.datetime | None = None,
    random_seed: int = 42,
) -> SeedSummary:
    """(Re)create the demo warehouse at ``target`` (a SQLite file path or a SQLAlchemy URL)."""
    if orders < 1:
        raise ValueError(f"orders must be at least 1, got {orders}")
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    rng = random.Random(random_seed)
    shift = STALE_BY if stale else dt.timedelta(0)
    n_customers = max(1, orders // 4)
    customers = []
    for cid in range(1, n_customers + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        email = f"{name.lower().replace(' ', '.')}{cid}@example.com"
        created = now - HISTORY - dt.timedelta(days=rng.randint(1, 700)) - shift
        customers.append(
            {"customer_id": cid, "name": name, "email": email, "country": rng.choice(COUNTRIES), "created_at": _ts(created)}
        )
    emails = {c["customer_id"]: c["email"] for c in customers}

    order_rows, payment_rows = [], []
    # Spread over 30 days, the newest order updated two minutes ago.
    step = (HISTORY - dt.timedelta(minutes=2)) / orders
    for oid in range(1, orders + 1):
        created = now - HISTORY + step * oid - shift
        created = created.replace(microsecond=0)
        customer_id: int | None = rng.randint(1, n_customers)
        if rng.random() < (0.05 if dirty else 0.005):
            customer_id = None  # guest checkout
        elif dirty and rng.random() < 0.01:
            customer_id = n_customers + rng.randint(1, 1000)  # a customer that does not exist
        email = emails.get(customer_id) if customer_id else f"guest{oid}@example.com"
        if email is None or (dirty and rng.random() < 0.02):
            email = f"not-an-email-{oid}"
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        if dirty and rng.random() < 0.01:
            status = "lost"
        amount = round(rng.lognormvariate(3.7, 0.6), 2)
        if dirty and rng.random() < 0.01:
            amount = -amount
        updated = created if status == "placed" else created + dt.timedelta(minutes=rng.randint(1, 90))
        updated = min(updated, now - dt.timedelta(minutes=2) - shift)
        if oid == orders:
            updated = now - dt.timedelta(minutes=2) - shift
        order_rows.append(
            {"order_id": oid, "customer_id": customer_id, "email": email, "status": status, "amount": amount,
             "currency": "EUR", "created_at": _ts(created), "updated_at": _ts(updated)}
        )
        if status not in ("placed", "cancelled"):
            payment_rows.append(
                {"payment_id": len(payment_rows) + 1, "order_id": oid, "method": rng.choice(PAYMENT_METHODS),
                 "amount": amount, "paid_at": _ts(created + dt.timedelta(minutes=1))}
            )

    engine, shown = _engine_for(target)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {VIEW}"))
            metadata.drop_all(conn)
            metadata.create_all(conn)
            conn.execute(sa.text(f"CREATE VIEW {VIEW} AS SELECT * FROM orders"))
            conn.execute(customers_table.insert(), customers)
            conn.execute(orders_table.insert(), order_rows)
            conn.execute(payments_table.insert(), payment_rows)
    finally:
        engine.dispose()
    newest = now - dt.timedelta(minutes=2) - shift
    return SeedSummary(shown, len(customers), len(order_rows), len(payment_rows), newest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_dataops.demo.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="SQLite file to (re)create (.demo/warehouse.db) or a SQLAlchemy URL")
    parser.add_argument("--orders", type=int, default=2000, help="number of orders (default 2000)")
    parser.add_argument("--stale", action="store_true", help="move every timestamp 3 days back: freshness checks fail")
    parser.add_argument("--dirty", action="store_true", help="add nulls, bad e-mails, negative amounts, orphans")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    try:
        summary = seed(args.target, orders=args.orders, stale=args.stale, dirty=args.dirty, random_seed=args.seed)
    except (ValueError, OSError, sa.exc.SQLAlchemyError) as exc:
        shown = sa.make_url(args.target).render_as_string(hide_password=True) if "://" in args.target else args.target
        print(f"error: cannot seed {shown}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
