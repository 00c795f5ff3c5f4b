"""Charts as inline SVG strings, generated here: a report needs no script and no CDN."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FONT = 'font-family="sans-serif" font-size="11"'


def _text(x: float, y: float, label: str, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>'
            f"{escape(label)}</text>")


def _svg(width: int, height: int, label: str) -> str:
    """The opening tag of a chart: its viewBox lets it shrink with the page, not be cut."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}" class="chart">')


def latency_chart(rows: Sequence[tuple[str, float, float, float]], width: int = 880) -> str:
    """Horizontal bars of p50/p95/p99 (ms, log scale) per operation."""
    if not rows:
        return "<p>No operations.</p>"
    left, right, bar, gap, top = 170, 60, 7, 10, 24
    height = top + len(rows) * (3 * bar + gap) + 30
    low = 0.1
    high = max(max(r[3] for r in rows), 1.0)
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    span = (math.ceil(math.log10(high)) - math.floor(math.log10(low))) or 1

    def x(ms: float) -> float:
        return left + (math.log10(max(ms, low)) - math.log10(low)) / span * (width - left - right)

    parts = [_svg(width, height, "latency percentiles per operation")]
    for d in decades:
        ms = 10.0 ** d
        parts.append(f'<line x1="{x(ms):.1f}" y1="{top - 6}" x2="{x(ms):.1f}" '
                     f'y2="{height - 22}" stroke="#ddd"/>')
        parts.append(_text(x(ms), height - 8, f"{ms:g} ms", "middle"))
    for i, label in enumerate(("p50", "p95", "p99")):
        parts.append(f'<rect x="{left + i * 60}" y="4" width="10" height="10" '
                     f'fill="{PALETTE[i]}"/>')
        parts.append(_text(left + i * 60 + 14, 13, label))
    y = top
    for name, p50, p95, p99 in rows:
        parts.append(_text(left - 6, y + 1.5 * bar + 4, name, "end"))
        for i, value in enumerate((p50, p95, p99)):
            parts.append(f'<rect x="{left}" y="{y + i * bar}" width="{x(value) - left:.1f}" '
                         f'height="{bar - 1}" fill="{PALETTE[i]}"><title>{escape(name)} '
                         f'{("p50", "p95", "p99")[i]}: {value:.1f} ms</title></rect>')
        parts.append(_text(x(p99) + 4, y + 2.5 * bar + 3, f"{p99:.1f}"))
        y += 3 * bar + gap
    parts.append("</svg>")
    return "".join(parts)


def throughput_chart(series: Mapping[str, Sequence[float]], counts: Mapping[str, int],
                     width: int = 880, height: int = 300) -> str:
    """Operations per second over the run: the total and one line per series (a group of
    operations), every line in the legend with its operations (`counts`)."""
    if not series or not any(series.values()):
        return "<p>No operations.</p>"
    seconds = max(len(values) for values in series.values())
    total = [sum(values[i] for values in series.values() if i < len(values))
             for i in range(seconds)]
    ordered = sorted(series.items(), key=lambda kv: -counts.get(kv[0], 0))
    lines = {"total": total, **dict(ordered)}
    legend_counts = {"total": sum(counts.values()), **counts}
    left, right, top, bottom = 50, 190, 10, 30
    height = max(height, top + 16 * len(lines) + bottom)
    peak = max(max(total), 1)
    step = 10 ** math.floor(math.log10(peak)) if peak >= 10 else 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def point(i: int, v: float) -> str:
        px = left + (i + 0.5) / max(seconds, 1) * plot_w
        return f"{px:.1f},{top + plot_h - v / peak * plot_h:.1f}"

    parts = [_svg(width, height, "operations per second over time")]
    for tick in range(0, int(peak) + 1, max(1, int(step))):
        y = top + plot_h - tick / peak * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                     f'stroke="#eee"/>')
        parts.append(_text(left - 4, y + 4, str(tick), "end"))
    for sec in range(0, seconds, max(1, seconds // 10)):
        parts.append(_text(left + (sec + 0.5) / seconds * plot_w, height - 10, f"{sec}s",
                           "middle"))
    for n, (name, values) in enumerate(lines.items()):
        colour = "#000" if name == "total" else PALETTE[(n - 1) % len(PALETTE)]
        points = " ".join(point(i, v) for i, v in enumerate(values))
        width_attr = 2.5 if name == "total" else 1.2
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{width_attr}" '
                     f'points="{points}"><title>{escape(name)}</title></polyline>')
        parts.append(f'<rect x="{left + plot_w + 10}" y="{top + n * 16}" width="10" '
                     f'height="10" fill="{colour}"/>')
        parts.append(_text(left + plot_w + 24, top + n * 16 + 9,
                           f"{name} ({legend_counts.get(name, 0):,})"))
    parts.append(_text(left, top + 10, "ops/s", "start", 'fill="#666"'))
    parts.append("</svg>")
    return "".join(parts)
