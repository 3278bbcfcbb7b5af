"""Server-rendered SVG charts: no JavaScript library, no CDN, works offline.

Every label goes through ``html.escape``; the result is safe to embed in the page.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Any

from airflow_dataops.plugins import thresholds

COLORS = {"passed": "#2e7d32", "warned": "#ef8c00", "failed": "#c62828", "error": "#6a1b9a"}
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 760, 200, 52, 12, 14, 28


def numeric(value: Any) -> float | None:
    """A finite number to plot from a stored value (a per-column dict plots its worst); NaN and
    infinities are not numbers to plot."""
    if isinstance(value, dict):
        found = [n for n in (numeric(v) for v in value.values()) if n is not None]
        return max(found) if found else None
    return thresholds.number(value)


def _short_time(value: dt.datetime | None) -> str:
    return value.strftime("%m-%d %H:%M") if value else ""


def _y(value: float, lo: float, hi: float) -> float:
    span = (hi - lo) or 1.0
    return PAD_T + (HEIGHT - PAD_T - PAD_B) * (1 - (value - lo) / span)


def nice_range(lo: float, hi: float, ticks: int = 4) -> tuple[float, float, float]:
    """Widen [lo, hi] to round tick steps (1, 2, 2.5 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _frame(title: str, body: list[str], lo: float, hi: float, unit: str = "", step: float | None = None) -> str:
    ticks = []
    step = step or (hi - lo) / 4
    count = round((hi - lo) / step)
    for i in range(count + 1):
        value = lo + step * i
        y = _y(value, lo, hi)
        ticks.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        ticks.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(value)}{unit}</text>')
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(ticks)}{"".join(body)}</svg>'
    )


def _fmt(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def run_bars(runs: list[dict[str, Any]], run_href, selected: str | None = None) -> str:
    """Stacked pass/warn/fail/error bars, one per run, oldest on the left; each bar links to its run
    and the selected run is outlined."""
    if not runs:
        return ""
    _, top, step = nice_range(0, max(sum(r["counts"].values()) for r in runs) or 1)
    step = max(step, 1)
    top = max(top, step)
    slot = (WIDTH - PAD_L - PAD_R) / len(runs)
    bar = max(2.0, min(28.0, slot * 0.7))
    body = []
    for i, run in enumerate(runs):
        x = PAD_L + i * slot + (slot - bar) / 2
        base = 0
        parts = []
        for status in ("passed", "warned", "failed", "error"):
            n = run["counts"][status]
            if not n:
                continue
            y1, y0 = _y(base + n, 0, top), _y(base, 0, top)
            parts.append(
                f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bar:.1f}" height="{max(y0 - y1, 1):.1f}" '
                f'fill="{COLORS[status]}" class="bar-{status}"/>'
            )
            base += n
        if run["run_id"] == selected:
            parts.append(
                f'<rect x="{x - 3:.1f}" y="{_y(base, 0, top) - 3:.1f}" width="{bar + 6:.1f}" '
                f'height="{_y(0, 0, top) - _y(base, 0, top) + 6:.1f}" class="selected-run"/>'
            )
        tip = ", ".join(f"{run['counts'][s]} {s}" for s in COLORS if run["counts"][s])
        body.append(
            f'<a href="{escape(run_href(run["run_id"]))}" class="run-bar"><title>{escape(run["run_id"])}: '
            f'{escape(tip)} ({_short_time(run["checked_at"])})</title>{"".join(parts)}</a>'
        )
    body.append(_time_axis([r["checked_at"] for r in runs], slot))
    return _frame("Check results per run", body, 0, top, step=step)


def _time_axis(times: list[dt.datetime | None], slot: float) -> str:
    if not times:
        return ""
    picks = {0, len(times) - 1, len(times) // 2}
    labels = []
    for i in sorted(picks):
        x = PAD_L + i * slot + slot / 2
        labels.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="middle">{_short_time(times[i])}</text>')
    return "".join(labels)


def latest_limits(history: list[dict[str, Any]]) -> dict[str, float]:
    """The limit lines of the newest plottable result (for the caption)."""
    for result in reversed(history):
        value, limits = thresholds.plot_point(result)
        if value is not None:
            return limits
    return {}


def value_line(history: list[dict[str, Any]]) -> str:
    """The plotted value of one check per run (``thresholds.SPECS`` says what that is for each
    check type) against its limits, drawn per run as steps; points coloured by status."""
    points = [(h, *thresholds.plot_point(h)) for h in history]
    points = [(h, v, limits) for h, v, limits in points if v is not None]
    if not points:
        return ""
    unit = thresholds.spec(points[-1][0].get("check_type")).unit(points[-1][0].get("expected"))
    values = [v for _, v, _ in points] + [lim for _, _, limits in points for lim in limits.values()]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi, step = nice_range(lo - pad if lo < 0 or lo - pad >= 0 else 0.0, hi + pad)
    slot = (WIDTH - PAD_L - PAD_R) / len(points)
    xs = [PAD_L + i * slot + slot / 2 for i in range(len(points))]
    body = []
    names = list(dict.fromkeys(name for _, _, limits in points for name in limits))
    for name in names:
        steps = []
        for x, (_, _, limits) in zip(xs, points, strict=True):
            if name in limits:
                y = _y(limits[name], lo, hi)
                left = PAD_L if x == xs[0] else x - slot / 2
                right = WIDTH - PAD_R if x == xs[-1] else x + slot / 2
                steps.append(f"M{left:.1f},{y:.1f}H{right:.1f}")
        body.append(f'<path d="{" ".join(steps)}" class="threshold"/>')
        last = next(limits[name] for _, _, limits in reversed(points) if name in limits)
        body.append(
            f'<text x="{WIDTH - PAD_R - 4}" y="{_y(last, lo, hi) - 4:.1f}" class="threshold-label" '
            f'text-anchor="end">{escape(name)} {_fmt(last)}{escape(unit)}</text>'
        )
    path = " ".join(f"{x:.1f},{_y(v, lo, hi):.1f}" for x, (_, v, _) in zip(xs, points, strict=True))
    body.append(f'<polyline points="{path}" class="series"/>')
    for x, (h, v, _) in zip(xs, points, strict=True):
        body.append(
            f'<circle cx="{x:.1f}" cy="{_y(v, lo, hi):.1f}" r="4" fill="{COLORS.get(h["status"], "#555")}" class="point">'
            f'<title>{escape(h["run_id"])}: {_fmt(v)}{escape(unit)} ({escape(h["status"])})</title></circle>'
        )
    body.append(_time_axis([h["checked_at"] for h, _, _ in points], slot))
    return _frame("Observed value against threshold", body, lo, hi, unit, step=step)


MAX_SERIES = 8  # series colours s0..s7 live in dataops.css


def _dataset(row: dict[str, Any]) -> str:
    table, column = row.get("table_name"), row.get("column_name")
    return f"{table or '?'}.{column}" if column else (table or "?")


def freshness_line(rows: list[dict[str, Any]]) -> str:
    """Data age (hours) at each observation against its SLA, oldest on the left: one series (and
    one SLA line) per table and column, on a shared time axis."""
    points = [r for r in rows if thresholds.number(r["lag_seconds"]) is not None and r["observed_at"] is not None]
    if not points:
        return ""
    series: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(points, key=lambda r: r["observed_at"]):
        series.setdefault(_dataset(row), []).append(row)
    names = sorted(series, key=lambda n: -len(series[n]))[:MAX_SERIES]
    shown = [r for n in names for r in series[n]]
    slas = {n: next((r["max_age_seconds"] / 3600 for r in reversed(series[n])
                     if thresholds.number(r["max_age_seconds"])), None) for n in names}
    hours = [r["lag_seconds"] / 3600 for r in shown]
    top = max(hours + [v for v in slas.values() if v])
    lo, hi, step = nice_range(min(0.0, min(hours)), max(top * 1.1, 0.0) or 1.0)  # below 0: newest row in the future
    t0 = min(r["observed_at"] for r in shown)
    span = (max(r["observed_at"] for r in shown) - t0).total_seconds()
    inner = WIDTH - PAD_L - PAD_R - 16

    def x_of(at: dt.datetime) -> float:
        return PAD_L + 8 + (inner * (at - t0).total_seconds() / span if span else inner / 2)

    body = []
    for i, name in enumerate(names):
        tone = f"s{i}"  # colours by class (dataops.css): the page's CSP allows no inline styles
        rows_ = series[name]
        if slas[name]:
            y = _y(slas[name], lo, hi)
            body.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="threshold {tone}"/>')
            body.append(f'<text x="{WIDTH - PAD_R - 4}" y="{y - 4:.1f}" class="threshold-label {tone}" text-anchor="end">'
                        f'SLA {_fmt(slas[name])}h{"" if len(names) == 1 else " " + escape(name[:28])}</text>')
        line = " ".join(f"{x_of(r['observed_at']):.1f},{_y(r['lag_seconds'] / 3600, lo, hi):.1f}" for r in rows_)
        body.append(f'<polyline points="{line}" class="series {tone}"/>')
        for r in rows_:
            fill = COLORS["passed"] if r["fresh"] else COLORS["failed"] if r["fresh"] is False else "#555"
            body.append(
                f'<circle cx="{x_of(r["observed_at"]):.1f}" cy="{_y(r["lag_seconds"] / 3600, lo, hi):.1f}" r="3.5" '
                f'fill="{fill}" class="dot-{tone}"><title>{escape(name)}: '
                f'{r["lag_seconds"] / 3600:.2f} h old at {_short_time(r["observed_at"])}</title></circle>'
            )
        body.append(f'<text x="{PAD_L + 6 + 170 * i}" y="{PAD_T - 3}" class="legend {tone}">{escape(name[:28])}</text>')
    t1 = t0 + dt.timedelta(seconds=span)
    ticks = [(t0, "start"), (t0 + (t1 - t0) / 2, "middle"), (t1, "end")] if span else [(t0, "middle")]
    for at, anchor in ticks:  # the ends anchored inwards: never clipped at the frame
        body.append(f'<text x="{x_of(at):.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="{anchor}">{_short_time(at)}</text>')
    return _frame("Data age in hours against the freshness SLA, per table", body, lo, hi, "h", step=step)
