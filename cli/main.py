"""``nvc`` commands. Only click is imported at module level so ``nvc --help`` is instant;
each command imports nvcodec (and torch) when it runs."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

import click

from cli.errors import friendly_errors

if TYPE_CHECKING:
    from cli.render import TrainingProgress
    from nvcodec import EncodeOptions
    from nvcodec.encoder import EncodePlan


def _parse_lambda(text: str | None) -> float | str | None:
    """``--lambda``: 'auto' or a number (its range is checked with the other options)."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'auto', got {text!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nvcodec", prog_name="nvc")
def main() -> None:
    """nvcodec: a neural (implicit-representation) video codec.

    \b
    nvc encode clip.mp4 -o clip.nvc       overfit a network to the clip, write a .nvc file
    nvc decode clip.nvc -o out.y4m        rebuild frames from the file alone
    nvc info clip.nvc                     what is inside, where the bits go
    """


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, help="Output .nvc file.")
@click.option("--model", default="ds-nerv", show_default=True, help="Model id (see `nvc models`).")
@click.option(
    "--size",
    default=None,
    help="Parameter budget, e.g. 0.3M, 350k [0.3M]. Mutually exclusive with --bpp.",
)
@click.option(
    "--bpp",
    "target_bpp",
    default=None,
    type=float,
    help="Target rate in bits per pixel: sizes the model, then picks the bit depth (and, if "
    "needed, extra pruning) so the file lands at or just below it.",
)
@click.option(
    "--preset",
    type=click.Choice(["fast", "medium", "slow"]),
    default="medium",
    show_default=True,
    help="Training epochs fast 100, medium 300, slow 1000; then RD training for 25 % of them "
    "(QAT pipeline: prune fine-tune 15 % and QAT 10 %).",
)
@click.option(
    "--epochs", default=None, type=int, help="Training epochs [the preset's: 300 for medium]."
)
@click.option(
    "--prune",
    "prune_ratio",
    default=None,
    type=float,
    help="Fraction of conv/linear weights pruned (size-normalised global magnitude); 0: off "
    "[0 with RD training, 0.2 with QAT].",
)
@click.option(
    "--prune-epochs",
    default=None,
    type=int,
    help="Fine-tune epochs after pruning [15 % of epochs].",
)
@click.option(
    "--qat-epochs",
    default=None,
    type=int,
    help="QAT pipeline: quantisation-aware fine-tune epochs [10 % of epochs]; 0: post-training "
    "quantisation.",
)
@click.option(
    "--pipeline",
    type=click.Choice(["rd", "qat"]),
    default=None,
    help="Compression after training: rd = rate-distortion training with learned step sizes "
    "(default); qat = pruning + fixed-depth quantisation-aware fine-tune (the default when "
    "--bits, --code-bits or --qat-epochs is given).",
)
@click.option(
    "--lambda",
    "lam",
    default=None,
    help="RD training's trade-off: loss = MSE + λ·bpp; larger λ, smaller file [auto: λ from the "
    "trained model's own distortion and rate].",
)
@click.option(
    "--rd-epochs",
    default=None,
    type=int,
    help="RD training epochs after training [the preset's QAT epochs, plus its prune "
    "fine-tune's when nothing is pruned].",
)
@click.option("--batch-size", default=1, show_default=True, type=int, help="Frames per step.")
@click.option(
    "--patch",
    default=None,
    type=int,
    help="Train on patches of about this many pixels a side (hinerv, hinerv-flat): memory per "
    "step is a patch's, and every epoch visits every patch of every frame [whole frames].",
)
@click.option("--lr", default=None, type=float, help="Peak learning rate [model's recipe].")
@click.option(
    "--optimizer",
    type=click.Choice(["adam", "adan"]),
    default=None,
    help="Optimiser [model's recipe: Adan for ds-nerv, Adam for nerv].",
)
@click.option(
    "--bits",
    default=None,
    type=int,
    help="QAT pipeline: weight bit depth [5; with --bpp the deepest depth tried, 8].",
)
@click.option(
    "--code-bits",
    default=None,
    type=int,
    help="QAT pipeline: bit depth of latent codes / embeddings [same as --bits].",
)
@click.option("--frames", "frame_range", default=None, help="Part of the clip, A:B (half-open).")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA when present, else CPU), cpu or cuda[:N].",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32"]),
    default="auto",
    show_default=True,
    help="Training arithmetic. auto: bf16 autocast on CUDA and on CPUs with AMX (1.5-2x faster "
    "training at 640x320), except models that are slower in bf16 on CPUs (nerv++, dnerv, "
    "hinerv); else fp32. fp32: never autocast. Decoding is fp32 either way.",
)
@click.option(
    "--decode-layout",
    type=click.Choice(["channels-last", "nchw"]),
    default="channels-last",
    show_default=True,
    help="How the file's network is evaluated when decoding. channels-last: 1.5-3.4x faster "
    "decoding at 640x320 on CPUs, needs an nvcodec reader of format 1.3. nchw: the layout of "
    "format 1.0-1.2 files, for older decoders.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (0 to 2⁶³−1).")
@click.option("-y", "--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option(
    "--checkpoint-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Save training progress here (about once a minute and after each phase; created if "
    "missing) so an interrupted encode can be continued with --resume. Removed on success.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the interrupted encode saved in --checkpoint-dir (same input and options).",
)
@click.option("--checkpoint-every", default=None, type=int, hidden=True)  # epochs; for tests
@click.option(
    "--segment",
    default=None,
    help="Long videos: encode independent segments of N frames, or 'auto' (cut at scene "
    "changes, segments of 8 to 300 frames); the file holds them all, and a range decode "
    "reads only the segments it needs. --size is split in proportion to segment length.",
)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=int,
    help="With --segment: segments encoded at once, each in its own worker process. With "
    "--lambda auto the first segment runs alone (its lambda is every segment's); a number "
    "starts them all at once.",
)
@click.option(
    "--threads",
    default=0,
    type=int,
    help="With --segment: CPU threads per segment encode [cores / --jobs]. A segment's bytes "
    "depend on it, so give it to make runs with different --jobs or --ray write the same file.",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="With --segment: run each segment as a Ray task (pip install 'nvcodec[ray]'); auto "
    "joins a running cluster or starts a local one.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (budget split per part, epochs per phase, a time estimate from a few "
    "timed steps on this device) and exit without training or writing.",
)
@friendly_errors
def encode(
    input_path: str,
    output: str,
    size: str | None,
    target_bpp: float | None,
    lam: str | None,
    frame_range: str | None,
    segment: str | None,
    jobs: int,
    threads: int,
    ray_address: str | None,
    quiet: bool,
    dry_run: bool,
    **settings: Any,
) -> None:
    """Encode INPUT (any video PyAV can read) into a .nvc file."""
    options = _encode_options(size, target_bpp, lam, frame_range, settings)
    if segment is not None or jobs != 1 or threads or ray_address:
        _run_segmented(
            input_path, output, options, segment, (jobs, threads, ray_address), quiet, dry_run
        )
        return
    if dry_run:
        from nvcodec.planning import describe, summarize

        click.echo(describe(summarize(input_path, options)))
        return
    _run_encode(input_path, output, options, quiet)


def _encode_options(
    size: str | None,
    target_bpp: float | None,
    lam: str | None,
    frame_range: str | None,
    settings: dict[str, Any],
) -> EncodeOptions:
    """The options of ``nvc encode``: the ones that need parsing, and ``settings``, the options
    whose names and values are :class:`nvcodec.EncodeOptions` fields as they are."""
    from nvcodec import EncodeOptions
    from nvcodec.models import parse_size
    from nvcodec.ranges import parse_frame_range

    if size is not None and target_bpp is not None:
        raise click.UsageError("--size and --bpp are mutually exclusive")
    return EncodeOptions(
        size=parse_size(size if size is not None else "0.3M"),
        target_bpp=target_bpp,
        lam=_parse_lambda(lam),
        frames=parse_frame_range(frame_range) if frame_range else None,
        **settings,
    )


def _run_segmented(
    input_path: str,
    output: str,
    options: EncodeOptions,
    segment: str | None,
    workers: tuple[int, int, str | None],
    quiet: bool,
    dry_run: bool,
) -> None:
    """A segmented encode: the segment plan, then a line per finished segment with the ETA
    across workers (and, in this process, each segment's training bars)."""
    from cli.render import TrainingProgress
    from cli.render_segments import SegmentProgress, segment_plan_text, video_summary
    from nvcodec.scenes import parse_segment
    from nvcodec.segment_encoder import Execution, encode_video, plan_video

    if segment is None:
        raise click.UsageError("--jobs, --threads and --ray apply to --segment encodes")
    rule = parse_segment(segment)
    execution = Execution(*workers)
    if dry_run:
        click.echo(segment_plan_text(plan_video(input_path, options, rule, execution)))
        return
    tracker = SegmentProgress(disable=quiet)
    try:
        with TrainingProgress(disable=quiet or execution.jobs > 1 or bool(execution.ray)) as bars:
            report = encode_video(
                input_path,
                output,
                options,
                rule,
                execution,
                on_plan=tracker.plan,
                on_segment=tracker.done,
                progress=bars.update,
                on_step=bars.step,
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (cli.errors.Terminated)
        if options.checkpoint_dir:
            folder = options.checkpoint_dir
            exc.args = (
                "no output was written; the finished segments are kept: resume with --resume "
                f"--checkpoint-dir {folder}",
            )
        raise
    click.echo(video_summary(report))


def _announce_plan(progress: TrainingProgress, plan: EncodePlan) -> None:
    """The plan line before training, and each phase's weight for the whole encode's ETA."""
    from nvcodec.planning import phase_costs, plan_line

    click.echo(plan_line(plan), err=True)
    progress.set_plan(phase_costs(plan))


def _run_encode(input_path: str, output: str, options: EncodeOptions, quiet: bool) -> None:
    """The encode with its plan line, progress bars and summary; an interrupt with a
    checkpoint folder says how to resume."""
    from cli.render import TrainingProgress, encode_summary
    from nvcodec import encode as run_encode

    try:
        with TrainingProgress(disable=quiet) as progress:
            report = run_encode(
                input_path,
                output,
                options,
                progress=progress.update,
                on_step=progress.step,
                on_plan=functools.partial(_announce_plan, progress),
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (cli.errors.Terminated)
        if options.checkpoint_dir:
            folder = options.checkpoint_dir
            exc.args = (f"no output was written; resume with --resume --checkpoint-dir {folder}",)
        raise
    click.echo(encode_summary(report))


@main.command()
@click.argument("input_path", metavar="IN.nvc", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    help="OUT.y4m, OUT.mp4/.mkv (x264, high quality), DIR/%05d.png, or - (Y4M on stdout).",
)
@click.option("--frames", "frame_range", default=None, help="Decode only A:B (half-open).")
@click.option(
    "--fps",
    default=None,
    help="Output frame rate: 2x, 1.5x, 48, 30000/1001. Frames between stored ones are "
    "rendered by the model (ds-nerv, hinerv, nerv, nerv++).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("-y", "--overwrite", is_flag=True, help="Replace existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@click.option(
    "--max-memory",
    default=None,
    help="Refuse files whose decoding needs more memory than this, e.g. 4G [80% of RAM].",
)
@friendly_errors
def decode(
    input_path: str,
    output: str,
    frame_range: str | None,
    fps: str | None,
    device: str,
    overwrite: bool,
    quiet: bool,
    max_memory: str | None,
) -> None:
    """Decode IN.nvc to frames; frame rate and geometry come from the file."""
    from nvcodec import decode as run_decode
    from nvcodec.limits import parse_bytes
    from nvcodec.ranges import parse_frame_range

    report = run_decode(
        input_path,
        output,
        frames=parse_frame_range(frame_range) if frame_range else None,
        fps=fps,
        device=device,
        overwrite=overwrite,
        max_memory=parse_bytes(max_memory) if max_memory else None,
    )
    if not quiet:
        speed = report.frames / report.seconds if report.seconds > 0 else float("inf")
        click.echo(
            f"decoded {report.frames} frames (stored {report.start}:{report.stop}, "
            f"{report.fps:g} fps) to {output} in {report.seconds:.2f} s "
            f"({speed:.1f} frames/s, {report.device})",
            err=True,
        )


@main.command()
@click.argument("input_path", metavar="IN.nvc", type=click.Path(dir_okay=False))
@click.option("--tensors/--no-tensors", default=True, help="Per-tensor table.")
@click.option(
    "--max-memory",
    default=None,
    help="Refuse files whose decoding needs more memory than this, e.g. 4G [80% of RAM].",
)
@click.option(
    "--segment",
    default=None,
    type=int,
    help="Of a segmented file: the details of this segment (0-based) instead of the table.",
)
@friendly_errors
def info(input_path: str, tensors: bool, max_memory: str | None, segment: int | None) -> None:
    """Format version, model and config, sizes per section, bpp breakdown; of a segmented file,
    its segments (frames, model, parameters, bytes, bpp, PSNR)."""
    from cli.render import info_text
    from cli.render_segments import segments_text
    from nvcodec.inspection import inspect, inspect_segments
    from nvcodec.limits import parse_bytes

    limit = parse_bytes(max_memory) if max_memory else None
    if segment is None and (table := inspect_segments(input_path)) is not None:
        click.echo(segments_text(table))
        return
    click.echo(info_text(inspect(input_path, max_memory=limit, segment=segment), tensors=tensors))


@main.command()
@friendly_errors
def models() -> None:
    """List the model ids this build knows."""
    from nvcodec.models import get_spec, model_ids

    for model_id in model_ids():
        click.echo(f"{model_id:10s} {get_spec(model_id).summary}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
