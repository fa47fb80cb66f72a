"""The rate-distortion benchmark of nvcodec against x264/x265 (protocol: shared/BENCHMARK.md).

Modules, lowest first: ``bdrate`` (BD-rate/BD-PSNR with PCHIP; numpy only) → ``codecs`` (one
class per external encoder, through PyAV) → ``nvc`` (nvcodec through its public API) →
``results`` (per-point JSON cache) → ``report`` (Markdown, plots) → ``run`` (the command line).
Importing the package does nothing; run it with ``python -m benchmarks``.
"""
