"""Frame ranges and frame rates as users type them (``--frames 10:20``, ``--fps 2x``)."""

from __future__ import annotations

import math
from fractions import Fraction

from nvcodec.errors import ConfigError

__all__ = [
    "FrameRange",
    "first_output_index",
    "output_count",
    "output_positions",
    "parse_fps",
    "parse_frame_range",
    "resolve_range",
]

MAX_OUTPUT_FPS = 1000
MIN_OUTPUT_FPS = Fraction(1, 100)

FrameRange = tuple[int, int | None]
"""Half-open ``(start, stop)`` in frame indices; ``stop=None`` means to the end."""


def parse_frame_range(text: str) -> FrameRange:
    """``"A:B"``, ``"A:"``, ``":B"`` or ``"A"`` (one frame) → ``(start, stop)``."""
    s = text.strip()
    try:
        if ":" not in s:
            start = int(s)
            return (start, start + 1) if start >= 0 else _bad(text)
        a, b = s.split(":", 1)
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else None
    except ValueError:
        return _bad(text)
    if start < 0 or (stop is not None and stop <= start):
        return _bad(text)
    return (start, stop)


def _bad(text: str) -> FrameRange:
    raise ConfigError(f"frame range {text!r}: expected A:B with 0 <= A < B (B may be omitted)")


def resolve_range(frames: FrameRange | None, count: int, what: str) -> tuple[int, int]:
    """Clamp nothing: a range reaching past ``count`` frames is an error, not a silent cut."""
    start, stop = frames if frames is not None else (0, None)
    stop = count if stop is None else stop
    if not 0 <= start < stop <= count:
        raise ConfigError(f"{what} has {count} frames; range {start}:{stop} is outside it")
    return start, stop


def parse_fps(text: str, source: Fraction) -> Fraction:
    """``"2x"`` / ``"1.5x"`` (a multiple of the source rate), ``"48"``, ``"30000/1001"``."""
    s = text.strip().lower()
    try:
        rate = source * Fraction(s[:-1]) if s.endswith("x") else Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"fps {text!r}: expected a rate like 48 or 30000/1001, or 2x") from None
    if not MIN_OUTPUT_FPS <= rate <= MAX_OUTPUT_FPS:
        raise ConfigError(
            f"fps {text!r}: the output rate must be in [{float(MIN_OUTPUT_FPS):g}, "
            f"{MAX_OUTPUT_FPS}] frames per second"
        )
    return rate.limit_denominator(1_000_000)


def first_output_index(start: int, source: Fraction, output: Fraction) -> int:
    """Index, in the whole clip's output, of the first output frame at or after source frame
    ``start`` (output frame ``k`` sits at source position ``k·source/output``)."""
    return math.ceil(Fraction(start) * output / source)


def output_count(start: int, stop: int, source: Fraction, output: Fraction) -> int:
    """How many frames :func:`output_positions` returns, without building them."""
    step = Fraction(source) / Fraction(output)
    return max(0, math.ceil(Fraction(stop) / step) - first_output_index(start, source, output))


def output_positions(
    start: int, stop: int, source: Fraction, output: Fraction, frame_count: int | None = None
) -> list[float]:
    """Source-frame positions of the output frames that fall in source frames ``[start, stop)``.

    One time grid for the whole clip: output frame ``k`` shows position ``k·source/output``, and
    a range takes the frames of that grid inside it, so decodes of consecutive ranges join into
    the decode of their union (no repeated or missing frame at the seams). The duration is kept
    (``2x`` over ``T`` frames gives ``2T`` frames); positions past the clip's last frame
    (``frame_count − 1``, or ``stop − 1`` without it) are clamped to it.
    """
    step = Fraction(source) / Fraction(output)
    last = (frame_count if frame_count is not None else stop) - 1
    first = first_output_index(start, source, output)
    end = math.ceil(Fraction(stop) / step)
    return [float(min(k * step, last)) for k in range(first, end)]
