"""The video part of ``humanparse parse``: inputs with a video suffix go through ``humanparse.video``."""

from __future__ import annotations

import sys


def split_videos(args) -> list[str]:
    """Take the video files out of ``args.inputs`` (the rest stays there) and return them."""
    from ..video.io import is_video_path

    videos = [i for i in args.inputs if is_video_path(i)]
    args.inputs = [i for i in args.inputs if not is_video_path(i)]
    return videos


def run_videos(args, videos: list[str], long_side) -> int:
    from ..video.pipeline import parse_video, parse_video_multi

    if args.backend == "onnx":
        from ..errors import ConfigError

        raise ConfigError("video inputs run on the torch backend; drop --backend onnx")
    if args.task == "multi":
        from ..engine.loading import resolve_device
        from ..uniparser.predictor import MultiPersonParser

        parser = MultiPersonParser.from_checkpoint(args.checkpoint, device=resolve_device(args.device),
                                                   long_side=long_side,
                                                   batch_size=args.batch_size)
    else:
        from ..api import Parser

        parser = Parser.from_pretrained(args.checkpoint or args.model, device=args.device, long_side=long_side,
                                        batch_size=args.batch_size)
    for video in videos:
        if args.task == "multi":
            report = parse_video_multi(parser, video, args.out, labels=args.video_labels, scene_cut=args.scene_cut,
                                       progress=True)
        else:
            report = parse_video(parser, video, args.out, domain=args.domain, smooth=args.smooth,
                                 scene_cut=args.scene_cut, labels=args.video_labels, map_to=args.map_to,
                                 progress=True)
        flicker = "" if report.flicker is None else f", label flicker {report.flicker:.4f}"
        print(f"{video}: {report.frames} frames, {report.fps:.2f} frames/s, {len(report.scene_cuts)} scene cut(s)"
              f"{flicker} -> {', '.join(str(p) for p in report.written)}", file=sys.stderr)
    return 0
