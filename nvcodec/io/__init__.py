"""Video input/output for nvcodec: reading with PyAV, the one colour conversion, frame writers,
and quality metrics."""

from nvcodec.io.clip_frames import ClipFrames
from nvcodec.io.colour import ColourSpec, rgb_to_yuv420, yuv420_to_rgb
from nvcodec.io.frames import Yuv420Frames
from nvcodec.io.metrics import QualityMetrics, compute_metrics, ms_ssim_window, psnr_from_mse
from nvcodec.io.video import VideoInfo, read_video
from nvcodec.io.writers import (
    FrameWriter,
    check_output,
    is_stream_target,
    open_writer,
    y4m_bytes,
)

__all__ = [
    "ClipFrames",
    "ColourSpec",
    "FrameWriter",
    "QualityMetrics",
    "VideoInfo",
    "Yuv420Frames",
    "check_output",
    "compute_metrics",
    "is_stream_target",
    "ms_ssim_window",
    "open_writer",
    "psnr_from_mse",
    "read_video",
    "rgb_to_yuv420",
    "y4m_bytes",
    "yuv420_to_rgb",
]
