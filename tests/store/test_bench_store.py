"""The results-store benchmark runs in its small form, so it cannot rot."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_store_benchmark_runs_quick_and_reports_every_measurement(pg_url, capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_store
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    code = bench_store.main(["--quick", "--budget-ms", "2000"])
    out = capsys.readouterr().out

    assert code == 0, out
    for label in ("postgresql  2 writer(s)", "sqlite file 2 writer(s)", "observed_history", "previous_check_status",
                  "latest_results", "results_for_run", "record_results(8 results)", "purge(36 days): deleted 5,600"):
        assert label in out, f"{label!r} missing from:\n{out}"
