"""Turning point records into the protocol's outputs: Markdown tables, BD-rates and RD plots.

::

    records (one per point) ─► curves per codec label ─► BD-rate of every nvcodec curve vs every
      anchor (per clip; averaged over clips in the summary) ─► results.md + rd.png per clip

BD-rates use PSNR-YUV 6:1:1 (the headline) and also PSNR-Y and PSNR-RGB; a curve whose PSNR does
not rise with rate, or whose values are infinite (lossless planes, e.g. a grey clip's chroma), gets
"n/a" with the reason instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bdrate import BdResult, NonMonotonicCurveError, bd_psnr, bd_rate
from benchmarks.results import metric_value

RD_SUFFIX = "-rd"  # benchmarks.nvc's RD-trained codec labels (kept here: no torch import)
BF16_TAG = "-bf16"  # benchmarks.nvc's labels of curves trained under bf16 autocast
DEFAULT_MODEL = "ds-nerv"  # nvc encode's default --model (a test keeps the two equal)
# The tails after the model id in an nvcodec label, longest first: nvc-<model><tail>.
LABEL_TAILS = (BF16_TAG + RD_SUFFIX, RD_SUFFIX, BF16_TAG, "")

__all__ = ["BdEntry", "bd_table", "clip_markdown", "plot_clip", "summary_markdown"]

BD_METRICS = ("psnr_yuv", "psnr_y", "psnr_rgb")
METRIC_NAMES = {"psnr_yuv": "PSNR-YUV", "psnr_y": "PSNR-Y", "psnr_rgb": "PSNR-RGB"}
STRONG_ANCHORS = ("x264-veryslow", "x265-veryslow")


@dataclass(frozen=True)
class BdEntry:
    test: str
    anchor: str
    metric: str
    rate: BdResult | None  # None when it could not be computed at all (see ``error``)
    psnr: BdResult | None
    error: str | None = None


def curves(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by codec label, each sorted by bpp, in first-seen label order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["codec"], []).append(r)
    return {k: sorted(v, key=lambda r: r["bpp"]) for k, v in out.items()}


def is_nvc(label: str) -> bool:
    return label.startswith("nvc-")


def _curve(points: list[dict[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    rates = [float(p["bpp"]) for p in points]
    values = [metric_value(p.get(metric)) for p in points]
    if any(v is None or not math.isfinite(v) for v in values):
        raise ValueError(f"{METRIC_NAMES.get(metric, metric)} is not finite at every point")
    return rates, [float(v) for v in values if v is not None]


def bd_entry(
    test: str, anchor: str, by_label: dict[str, list[dict[str, Any]]], metric: str
) -> BdEntry:
    try:
        ra, qa = _curve(by_label[anchor], metric)
        rt, qt = _curve(by_label[test], metric)
        return BdEntry(test, anchor, metric, bd_rate(ra, qa, rt, qt), bd_psnr(ra, qa, rt, qt))
    except NonMonotonicCurveError as exc:
        return BdEntry(test, anchor, metric, None, None, f"not monotonic: {exc}")
    except ValueError as exc:
        return BdEntry(test, anchor, metric, None, None, str(exc))


def default_model_label(label: str) -> str:
    """The default model's label with the same pipeline and arithmetic as ``label``:
    ``nvc-hinerv-flat-rd`` → ``nvc-ds-nerv-rd``, ``nvc-hnerv-bf16`` → ``nvc-ds-nerv-bf16``."""
    tail = next(t for t in LABEL_TAILS if label.endswith(t))
    return f"nvc-{DEFAULT_MODEL}{tail}"


def bd_table(records: Sequence[dict[str, Any]], metric: str = "psnr_yuv") -> list[BdEntry]:
    """BD of every nvcodec curve against every external curve, for one clip's records; of every
    RD-trained curve (``nvc-<model>-rd``) against the same model's QAT pipeline; and of every
    other model against the default model run the same way, so that the model comparisons the
    READMEs quote come out of the same report as the anchors'."""
    by_label = curves(records)
    tests = [k for k in by_label if is_nvc(k)]
    anchors = [k for k in by_label if not is_nvc(k)]
    entries = [bd_entry(t, a, by_label, metric) for t in tests for a in anchors]
    for test in tests:
        base = test.removesuffix(RD_SUFFIX)
        if base != test and base in by_label:
            entries.append(bd_entry(test, base, by_label, metric))
    for test in tests:
        default = default_model_label(test)
        if default != test and default in by_label:
            entries.append(bd_entry(test, default, by_label, metric))
    return entries


def anchor_sanity(records: Sequence[dict[str, Any]]) -> list[BdEntry]:
    """Every other anchor against x265-veryslow (the strongest protocol anchor), PSNR-YUV."""
    by_label = curves(records)
    if "x265-veryslow" not in by_label:
        return []
    others = [k for k in by_label if not is_nvc(k) and k != "x265-veryslow"]
    return [bd_entry(k, "x265-veryslow", by_label, "psnr_yuv") for k in others]


def _fmt(value: Any, digits: int = 2) -> str:
    v = metric_value(value)
    if v is None:
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def _bd_cells(entry: BdEntry) -> tuple[str, str, str]:
    if entry.rate is None or entry.psnr is None:
        return "n/a", "n/a", entry.error or ""
    rate = entry.rate
    if rate.value is None:
        cell = "n/a"
        note = rate.reason or ""
    else:
        cell = f"{rate.value:+.1f} %"
        note = f"over {rate.low:.2f}–{rate.high:.2f} dB"
    dpsnr = entry.psnr.value
    return cell, "n/a" if dpsnr is None else f"{dpsnr:+.2f} dB", note


def _point_text(r: dict[str, Any]) -> str:
    """The point's knob; for nvcodec also the whole file's bits per stored parameter."""
    ((name, value),) = r["point"].items()
    if name == "size":
        params = r.get("notes", {}).get("parameters")
        per_param = f", {8 * r['bytes'] / params:.2f} bits/param" if params else ""
        return f"{value / 1e6:g}M params{per_param}"
    return f"{name} {value:g}"


def clip_markdown(
    records: Sequence[dict[str, Any]], descriptions: dict[str, str], plot: str
) -> str:
    """The per-clip report: setup, every point, BD-rates, and the plot."""
    first = records[0]
    lines = [
        f"# {first['clip']} — frames {first['frames'][0]}:{first['frames'][1]}",
        "",
        f"{first['width']}×{first['height']}, {first['frame_count']} frames at {first['fps']} fps, "
        f"colour {first['colour']['matrix']} {first['colour']['range']}. Distortion: nvcodec's "
        "`compute_metrics` on the decoded frames of every codec (PSNR of the mean MSE over the "
        "sequence; PSNR-YUV = (6·Y+U+V)/8). Rate: bpp = 8 × file bytes / (W·H·T) of the "
        "`.nvc` file or the raw elementary stream.",
        "",
        "## Curves",
        "",
    ]
    for label, points in curves(records).items():
        build = points[0].get("versions", {}).get("encoder_build")
        extra = f" — `{build}`" if build else ""
        lines.append(f"- **{label}**: {descriptions.get(label, '')}{extra}")
    versions = first.get("versions", {})
    lines += [
        "",
        f"PyAV {versions.get('pyav', '?')}, FFmpeg {versions.get('ffmpeg', '?')} "
        f"(libavcodec {versions.get('libavcodec', '?')}); exact settings and versions of every "
        "point are in `points/*.json`.",
    ]
    lines += [
        "",
        "## Points",
        "",
        "| codec | point | bytes | bpp | PSNR-YUV | PSNR-Y | PSNR-U | PSNR-V | PSNR-RGB | MS-SSIM "
        "| enc s | dec s | device |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, points in curves(records).items():
        for r in points:
            lines.append(
                f"| {label} | {_point_text(r)} | {r['bytes']} | {r['bpp']:.4f} "
                f"| {_fmt(r['psnr_yuv'])} | {_fmt(r['psnr_y'])} | {_fmt(r['psnr_u'])} "
                f"| {_fmt(r['psnr_v'])} | {_fmt(r['psnr_rgb'])} | {_fmt(r['ms_ssim'], 4)} "
                f"| {r['encode_s']:.1f} | {r['decode_s']:.2f} | {r['device']} |"
            )
    lines += ["", "## BD-rate of nvcodec vs each anchor (negative = fewer bits)", ""]
    lines += _bd_markdown([e for m in BD_METRICS for e in bd_table(records, m)])
    sanity = anchor_sanity(records)
    if sanity:
        lines += ["", "## Anchors vs x265-veryslow (sanity check, PSNR-YUV)", ""]
        lines += _bd_markdown(sanity)
    lines += ["", f"![RD curves]({plot})", ""]
    return "\n".join(lines)


def _bd_markdown(entries: Sequence[BdEntry]) -> list[str]:
    if not entries:
        return ["(needs at least one nvcodec curve and one anchor)"]
    rows = [
        "| test | anchor | metric | BD-rate | BD-PSNR | note |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for e in entries:
        rate, psnr, note = _bd_cells(e)
        anchor = e.anchor + (" (strong)" if e.anchor in STRONG_ANCHORS else "")
        rows.append(
            f"| {e.test} | {anchor} | {METRIC_NAMES[e.metric]} | {rate} | {psnr} "
            f"| {note.replace('|', '/')} |"
        )
    return rows


def summary_markdown(per_clip: dict[str, Sequence[dict[str, Any]]]) -> str:
    """BD-rates computed per clip, then averaged over the clips where they are defined."""
    lines = [
        "# Summary: BD-rate per clip, then the mean over clips",
        "",
        "Negative = fewer bits than the anchor for the same quality. `n` = clips where the "
        "BD-rate is defined (overlapping PSNR range, monotonic curves, finite PSNRs). "
        "PSNR-YUV 6:1:1 is the headline; a grey clip's chroma is lossless for the anchors "
        "(infinite PSNR-U/V), so PSNR-Y and PSNR-RGB are given too.",
        "",
    ]
    clips = list(per_clip)
    for metric in BD_METRICS:
        table: dict[tuple[str, str], dict[str, float | None]] = {}
        for clip, records in per_clip.items():
            for e in bd_table(records, metric):
                value = e.rate.value if e.rate is not None else None
                table.setdefault((e.test, e.anchor), {})[clip] = value
        lines += [f"## {METRIC_NAMES[metric]}", ""]
        if not table:
            lines += ["(needs at least one nvcodec curve and one anchor)", ""]
            continue
        lines.append("| test | anchor | " + " | ".join(clips) + " | mean | n |")
        lines.append("| --- | --- | " + " | ".join("---:" for _ in clips) + " | ---: | ---: |")
        for (test, anchor), values in table.items():
            cells = [values.get(c) for c in clips]
            defined = [v for v in cells if v is not None]
            mean = f"{sum(defined) / len(defined):+.1f} %" if defined else "n/a"
            shown = " | ".join("n/a" if v is None else f"{v:+.1f} %" for v in cells)
            label = anchor + (" (strong)" if anchor in STRONG_ANCHORS else "")
            lines.append(f"| {test} | {label} | {shown} | {mean} | {len(defined)}/{len(clips)} |")
        lines.append("")
    return "\n".join(lines)


def plot_clip(records: Sequence[dict[str, Any]], path: Path) -> None:
    """PSNR-YUV vs bpp (log axis) for every curve, plus PSNR-Y when PSNR-YUV is infinite somewhere
    and MS-SSIM when measured; a PNG via the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    by_label = curves(records)
    has_ssim = any(metric_value(r.get("ms_ssim")) is not None for r in records)
    panels = [("psnr_yuv", "PSNR-YUV 6:1:1 (dB)")]
    if any(not math.isfinite(metric_value(r.get("psnr_yuv")) or math.inf) for r in records):
        # lossless planes (a grey clip's chroma) leave some curves off the PSNR-YUV panel
        panels.append(("psnr_y", "PSNR-Y (dB) — PSNR-YUV is infinite for some points"))
    if has_ssim:
        panels.append(("ms_ssim", "MS-SSIM (RGB)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, (metric, ylabel) in zip(axes[0], panels, strict=True):
        for label, points in by_label.items():
            xs, ys = [], []
            for p in points:
                v = metric_value(p.get(metric))
                if v is not None and math.isfinite(v):
                    xs.append(p["bpp"])
                    ys.append(v)
            if xs:
                style = "o-" if is_nvc(label) else ("s--" if "noB" in label else "^-")
                ax.plot(xs, ys, style, label=label, markersize=4)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (file size)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    first = records[0]
    fig.suptitle(
        f"{first['clip']} frames {first['frames'][0]}:{first['frames'][1]} "
        f"({first['width']}×{first['height']})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
