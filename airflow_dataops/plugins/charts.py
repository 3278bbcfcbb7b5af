"""Server-rendered SVG charts: no JavaScript library, no CDN, works offline.

Every label goes through ``html.escape``; the result is safe to embed in the page.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Any

COLORS = {"passed": "#2e7d32", "warned": "#ef8c00", "failed": "#c62828", "error": "#6a1b9a"}
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 760, 200, 52, 12, 14, 28


def numeric(value: Any) -> float | None:
    """A number to plot from a stored observed/expected value (a per-column dict plots its worst)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, dict):
        found = [n for n in (numeric(v) for v in value.values()) if n is not None]
        return max(found) if found else None
    return None


def bounds(expected: Any) -> dict[str, float]:
    """Threshold lines from an expected value: keys with "min"/"threshold" are floors, "max" ceilings."""
    if not isinstance(expected, dict):
        number = numeric(expected)
        return {"expected": number} if number is not None and not isinstance(expected, bool) else {}
    lines: dict[str, float] = {}
    for key, value in expected.items():
        number = numeric(value) if not isinstance(value, dict | list) else None
        if number is None:
            continue
        lowered = key.lower()
        if "min" in lowered or "threshold" in lowered:
            lines.setdefault("min", number)
        elif "max" in lowered:
            lines.setdefault("max", number)
    return lines


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


def value_line(history: list[dict[str, Any]]) -> str:
    """Observed value of one check per run against its thresholds; points coloured by status."""
    points = [(h, numeric(h["observed"])) for h in history]
    points = [(h, v) for h, v in points if v is not None]
    if not points:
        return ""
    lines = bounds(points[-1][0]["expected"])
    values = [v for _, v in points] + list(lines.values())
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi, step = nice_range(lo - pad if lo < 0 or lo - pad >= 0 else 0.0, hi + pad)
    slot = (WIDTH - PAD_L - PAD_R) / len(points)
    xs = [PAD_L + i * slot + slot / 2 for i in range(len(points))]
    body = []
    for name, value in lines.items():
        y = _y(value, lo, hi)
        body.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"/>')
        body.append(f'<text x="{WIDTH - PAD_R - 4}" y="{y - 4:.1f}" class="threshold-label" text-anchor="end">{name} {_fmt(value)}</text>')
    path = " ".join(f"{x:.1f},{_y(v, lo, hi):.1f}" for x, (_, v) in zip(xs, points, strict=True))
    body.append(f'<polyline points="{path}" class="series"/>')
    for x, (h, v) in zip(xs, points, strict=True):
        body.append(
            f'<circle cx="{x:.1f}" cy="{_y(v, lo, hi):.1f}" r="4" fill="{COLORS.get(h["status"], "#555")}" class="point">'
            f'<title>{escape(h["run_id"])}: observed {_fmt(v)} ({escape(h["status"])})</title></circle>'
        )
    body.append(_time_axis([h["checked_at"] for h, _ in points], slot))
    return _frame("Observed value against threshold", body, lo, hi, step=step)


def freshness_line(rows: list[dict[str, Any]]) -> str:
    """Data age (hours) at each observation against the SLA, oldest on the left."""
    points = [r for r in rows if r["lag_seconds"] is not None]
    if not points:
        return ""
    hours = [r["lag_seconds"] / 3600 for r in points]
    sla = next((r["max_age_seconds"] / 3600 for r in reversed(points) if r["max_age_seconds"]), None)
    _, hi, step = nice_range(0, max(hours + ([sla] if sla else [])) * 1.1 or 1.0)
    slot = (WIDTH - PAD_L - PAD_R) / len(points)
    xs = [PAD_L + i * slot + slot / 2 for i in range(len(points))]
    body = []
    if sla:
        y = _y(sla, 0, hi)
        body.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"/>')
        body.append(f'<text x="{WIDTH - PAD_R - 4}" y="{y - 4:.1f}" class="threshold-label" text-anchor="end">SLA {_fmt(sla)}h</text>')
    body.append(f'<polyline points="{" ".join(f"{x:.1f},{_y(h, 0, hi):.1f}" for x, h in zip(xs, hours, strict=True))}" class="series"/>')
    for x, h, r in zip(xs, hours, points, strict=True):
        color = COLORS["passed"] if r["fresh"] else COLORS["failed"] if r["fresh"] is False else "#555"
        body.append(
            f'<circle cx="{x:.1f}" cy="{_y(h, 0, hi):.1f}" r="3.5" fill="{color}"><title>{escape(r["table_name"] or "")}: '
            f'{h:.2f} h old at {_short_time(r["observed_at"])}</title></circle>'
        )
    body.append(_time_axis([r["observed_at"] for r in points], slot))
    return _frame("Data age in hours against the freshness SLA", body, 0, hi, "h", step=step)
