"""Charts as PNG bytes (matplotlib, Agg backend, Noto Sans CJK SC), drawn from metric results.

Inputs are the JSON form of results (``Result.as_dict()``), so the same functions draw the live
dashboard and a frozen snapshot.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

import orjson

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_lock = threading.Lock()  # matplotlib's font cache and text layout are not thread-safe
_P = ParamSpec("_P")
# Drawn charts kept by a digest of their inputs: a chart is a pure function of its data, and every
# visit to the dashboard asks for the same five (tens of milliseconds of matplotlib each, under a lock
# that serialises the worker's threads). Bounded: a year's figures change and old drawings fall out.
_DRAWN: OrderedDict[str, bytes] = OrderedDict()
_DRAWN_MAX = 64


def _memo(draw: Callable[_P, bytes]) -> Callable[_P, bytes]:
    @functools.wraps(draw)
    def cached(*args: _P.args, **kwargs: _P.kwargs) -> bytes:
        # repr for what JSON cannot hold (dates, Decimals): the same data, the same key.
        data = orjson.dumps([draw.__name__, args, kwargs], option=orjson.OPT_SORT_KEYS, default=repr)
        key = hashlib.sha256(data).hexdigest()
        with _lock:
            png = _DRAWN.get(key)
            if png is not None:
                _DRAWN.move_to_end(key)
                return png
        png = draw(*args, **kwargs)
        with _lock:
            _DRAWN[key] = png
            while len(_DRAWN) > _DRAWN_MAX:
                _DRAWN.popitem(last=False)
        return png

    return cached


@functools.cache
def _figure_class() -> type[Figure]:
    """matplotlib, imported and set up on the first chart drawn rather than when this module is imported.

    Importing it costs seconds, and every process that loads the app (gunicorn, the Celery worker,
    ``flask`` commands) imports this module while most never draw a chart. Called under ``_lock``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "DejaVu Sans"]
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["svg.hashsalt"] = "gaogang"
    return Figure
COLOURS = ["#1f5fa8", "#3aa0a4", "#e0a526", "#c4553b", "#7a6fb3"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No timestamps or software tags in the file, so the same figures give the same bytes.
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


@_memo
def _empty(title: str, message: str) -> bytes:
    with _lock:
        fig = _figure_class()(figsize=(6.4, 2.2))
        ax = fig.subplots()
        ax.axis("off")
        ax.set_title(title)
        ax.text(0.5, 0.4, message, ha="center", va="center", fontsize=12, color="#666")
        return _png(fig)


@_memo
def bar_table(
    result: dict[str, Any],
    columns: list[int] | None = None,
    top: int = 20,
    horizontal: bool = True,
    title: str | None = None,
) -> bytes:
    """Grouped bars of a table result's rows (the first ``top`` rows, by the first column)."""
    title = title or result["label"]
    if result.get("missing"):
        return _empty(title, f"缺少数据：{result['missing']}")
    cols = columns if columns is not None else list(range(len(result["columns"])))
    rows = [r for r in result["rows"] if any(r["values"][c] for c in cols)]
    if horizontal:
        rows = sorted(rows, key=lambda r: -(r["values"][cols[0]] or 0))[:top]
    if not rows:
        return _empty(title, "本期没有数据")
    with _lock:
        height = max(2.6, 0.22 * len(rows) + 1.6)
        fig = _figure_class()(figsize=(7.2, height if horizontal else 3.4))
        ax = fig.subplots()
        n = len(cols)
        width = 0.8 / n
        labels = [r["label"] for r in rows]
        for i, c in enumerate(cols):
            values = [r["values"][c] or 0 for r in rows]
            positions = [p + (i - (n - 1) / 2) * width for p in range(len(rows))]
            if horizontal:
                ax.barh(positions, values, height=width, label=result["columns"][c], color=COLOURS[i % 5])
            else:
                ax.bar(positions, values, width=width, label=result["columns"][c], color=COLOURS[i % 5])
        if horizontal:
            ax.set_yticks(range(len(rows)), labels, fontsize=8)
            ax.invert_yaxis()
        else:
            ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_title(title)
        if n > 1:
            ax.legend(fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


@_memo
def rates_chart(rates: list[dict[str, Any]], title: str) -> bytes:
    """Horizontal bars of rates in percent, with numerator/denominator printed beside each."""
    shown = [r for r in rates if not r.get("missing") and r["denominator"]]
    if not shown:
        return _empty(title, "缺少数据：没有可计算的比率")
    with _lock:
        fig = _figure_class()(figsize=(7.2, 0.45 * len(shown) + 1.4))
        ax = fig.subplots()
        values = [100 * r["numerator"] / r["denominator"] for r in shown]
        ax.barh(range(len(shown)), values, color=COLOURS[0])
        ax.set_yticks(range(len(shown)), [r["label"] for r in shown], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, 115)
        for i, (v, r) in enumerate(zip(values, shown, strict=True)):
            ax.text(v + 1, i, f"{v:.1f}%（{r['numerator']}/{r['denominator']}）", va="center", fontsize=8)
        ax.set_title(title)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


@_memo
def monthly_chart(result: dict[str, Any]) -> bytes:
    title = result["label"]
    if result.get("missing"):
        return _empty(title, f"缺少数据：{result['missing']}")
    with _lock:
        fig = _figure_class()(figsize=(7.2, 3.2))
        ax = fig.subplots()
        months = [r["label"] for r in result["rows"]]
        for i, c in enumerate((0, 1)):
            ax.plot(
                months,
                [r["values"][c] if r["values"][c] is not None else float("nan") for r in result["rows"]],
                marker="o",
                label=result["columns"][c],
                color=COLOURS[i],
            )
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


@_memo
def stacked_chart(result: dict[str, Any]) -> bytes:
    """Stacked monthly bars of a table result (e.g. sync status over time)."""
    title = result["label"]
    if result.get("missing"):
        return _empty(title, f"缺少数据：{result['missing']}")
    with _lock:
        fig = _figure_class()(figsize=(7.2, 3.2))
        ax = fig.subplots()
        labels = [r["label"] for r in result["rows"]]
        bottom = [0] * len(labels)
        for i, name in enumerate(result["columns"]):
            values = [r["values"][i] or 0 for r in result["rows"]]
            ax.bar(labels, values, bottom=bottom, label=name, color=COLOURS[i])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)
