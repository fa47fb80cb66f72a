"""Frame ranges and device names as users type them (``--frames 10:20``, ``--device auto``)."""

from __future__ import annotations

from nvcodec.errors import ConfigError

__all__ = ["FrameRange", "parse_frame_range", "resolve_range"]

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
