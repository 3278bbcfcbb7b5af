"""CI runs the check benchmark small (5,000 rows) so it cannot rot; the full run is by hand.

The assertions are about what the benchmark measures, not its timings (5,000 rows say nothing about
speed): the engine sends one statement that scans the table once (counted as sent; on PostgreSQL
preceded by its SET LOCAL statement_timeout, and the benchmark says so), the peers scan more, and all
four ways report the same checks failing: the two seeded anomalies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_available

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_checks.py"
WAYS = ("floor (hand-written)", "airflow-dataops engine", "common-sql Column+Table", "Great Expectations 1.x")


def _run(backends: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--backends", backends],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _table(out: str, backend: str) -> dict[str, dict]:
    rows = {}
    for line in out.splitlines():
        for way in WAYS:
            if line.startswith(backend) and way in line:
                median, ratio, statements, scans, *failing = line.split(way)[1].split()
                rows[way] = {"statements": int(statements), "scans": int(scans),
                             "failing": " ".join(failing), "ratio": float(ratio.rstrip("x"))}
    assert set(rows) == set(WAYS), out
    return rows


def _assert_measured(out: str, backend: str) -> None:
    assert "8 checks on 5,000 rows" in out
    rows = _table(out, backend)
    assert (rows["floor (hand-written)"]["statements"], rows["floor (hand-written)"]["scans"]) == (1, 1)
    engine = rows["airflow-dataops engine"]
    peers = [rows["common-sql Column+Table"], rows["Great Expectations 1.x"]]
    if backend == "postgresql":
        # The timeout in the scan's own transaction: correct behind PgBouncer and after DISCARD ALL, one statement more.
        assert (engine["statements"], engine["scans"]) == (2, 1), "SET LOCAL statement_timeout + one scan"
        assert "airflow-dataops engine: 2 statements = 1 SET LOCAL statement_timeout + 1 reading (1 scan)" in out
        assert "fewer statements than both peers: NO" in out  # common-sql sends 2 too (with 9 scans, no timeout)
    else:
        assert (engine["statements"], engine["scans"]) == (1, 1), "the engine sends one statement, one scan"
        assert "fewer statements than both peers: yes" in out
    assert rows["common-sql Column+Table"]["scans"] == 9
    assert all(engine["statements"] <= p["statements"] and engine["scans"] < p["scans"] for p in peers)
    assert "fewer scans than both peers: yes" in out
    # Same data, same verdicts: every way fails exactly the two seeded anomalies.
    assert {way: r["failing"] for way, r in rows.items()} == dict.fromkeys(WAYS, "amount_range, id_unique")
    assert "the four ways agree on every check: yes; failing checks are the seeded anomalies (amount_range, id_unique): yes" in out
    assert f"target: engine {engine['ratio']:.2f}x the floor (at most 1.1x: " in out


def test_quick_benchmark_sqlite():
    _assert_measured(_run("sqlite"), "sqlite")


@pytest.mark.integration
def test_quick_benchmark_postgresql():
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    _assert_measured(_run("postgresql"), "postgresql")


def test_a_disagreement_fails_the_benchmark():
    """The agreement check can fail: a way reporting another verdict makes the run exit 1."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench_checks
    finally:
        sys.path.remove(str(BENCH.parent))
    rows = [{"way": way, "failing": {"amount_range", "id_unique"}} for way in WAYS]
    assert bench_checks.verdicts(rows)["agree"]
    rows[2]["failing"] = {"amount_range"}
    assert not bench_checks.verdicts(rows)["agree"]
