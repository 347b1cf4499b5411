"""Ingest benchmark: a generated lecture served on 127.0.0.1, ingested for real.

Reports per-stage seconds and the whole ingest as audio seconds per wall second (model
load excluded: models are loaded before the clock starts), next to a reference run of
the speech model alone on the same audio in the same process. Also: the captions path
for one hour of captions, and the peak memory of a one-hour ASR ingest (in a child
process, so its peak is its own).

    python -m benchmarks ingest            # 10-minute lecture, captions hour, 1-hour memory run
    python -m benchmarks.ingest --minutes 3 --no-hour
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import peak_rss_mib, save, table  # noqa: E402
from tests.support.media_server import MediaServer  # noqa: E402
from tests.support.speech import LECTURE, _ts, encode, speak  # noqa: E402


def _sentences(seconds: float) -> list[str]:
    """Enough lecture sentences (about 6 s each with their pause, measured) to fill ``seconds``."""
    from scripts.make_sample import SAMPLE

    pool = LECTURE[1:-1] + SAMPLE[1:-1]
    n = int(seconds / 6.05) + 1
    return [f"{s}" if i < len(pool) else f"Once more: {s}" for i, s in zip(range(n), itertools.cycle(pool))]


def make_lecture(root: Path, seconds: float, name: str = "lecture") -> tuple[Path, float]:
    lecture = speak(_sentences(seconds), root / f"{name}.wav", speed=160)
    m4a = encode(lecture.wav, root / f"{name}.m4a")
    lecture.wav.unlink()
    return m4a, lecture.duration


def _settings(home: Path):
    from vidrag_kernel.settings import Settings

    return Settings.from_env(home=home, fetch_allow_hosts=("127.0.0.1",), user="bench")


def asr_run(minutes: float, reference: bool = True) -> dict:
    from vidrag_kernel import Workbench
    from vidrag_kernel.embed import get_embedder
    from vidrag_kernel.transcribe import get_transcriber

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media, duration = make_lecture(root, minutes * 60)
        server = MediaServer(root)
        settings = _settings(root / "home")
        try:
            t0 = time.perf_counter()
            transcriber = get_transcriber(settings)
            embedder = get_embedder(settings)
            embedder.embed(["warm up"])
            load = time.perf_counter() - t0

            # reference: the speech model alone on the same audio, same process (skipped in
            # the memory run, whose peak must be the ingest's own)
            model_alone = None
            if reference:
                t0 = time.perf_counter()
                transcriber.transcribe(media)
                model_alone = time.perf_counter() - t0

            wb = Workbench(settings)
            t0 = time.perf_counter()
            [result] = wb.ingest(server.url(media.name), captions="never")
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    assert result.status == "done", result.error
    return {
        "audio_s": round(duration, 1),
        "model_load_s": round(load, 2),
        "stages_s": result.timings,
        "wall_s": round(wall, 2),
        "x_realtime": round(duration / wall, 1),
        "model_alone_x_realtime": round(duration / model_alone, 1) if model_alone else None,
        "ratio_to_model_alone": round(model_alone / wall, 2) if model_alone else None,
        "chunks": result.chunk_count,
    }


def captions_run(hours: float = 1.0) -> dict:
    """Ingest a page whose captions cover ``hours`` of lecture: no speech recognition."""
    from vidrag_kernel import Workbench
    from vidrag_kernel.embed import get_embedder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media, _ = make_lecture(root, 20, name="clip")
        pool = itertools.cycle(LECTURE + _sentences(200))
        lines, t = ["WEBVTT", ""], 0.0
        while t < hours * 3600:
            lines += [f"{_ts(t)} --> {_ts(t + 3.9)}", next(pool), ""]
            t += 4.0
        (root / "captions.vtt").write_text("\n".join(lines))
        (root / "page.html").write_text(
            "<html><head><title>Captioned hour</title></head><body>"
            f'<video src="{media.name}"><track kind="captions" srclang="en" src="captions.vtt"></video>'
            "</body></html>"
        )
        server = MediaServer(root)
        settings = _settings(root / "home")
        try:
            get_embedder(settings).embed(["warm up"])
            wb = Workbench(settings)
            t0 = time.perf_counter()
            [result] = wb.ingest(server.url("page.html"), captions="auto")
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    assert result.status == "done" and result.source == "captions", result.error
    return {
        "caption_hours": hours,
        "cues": int(hours * 900),
        "wall_s": round(wall, 2),
        "stages_s": result.timings,
    }


def hour_memory_run(minutes: float) -> dict:
    """Run an ASR ingest of ``minutes`` in a child process and report its peak RSS."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", "--child-asr", str(minutes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--hour-minutes", type=float, default=60)
    parser.add_argument("--no-hour", action="store_true")
    parser.add_argument("--child-asr", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.child_asr:
        result = asr_run(args.child_asr, reference=False)
        result["peak_rss_mib"] = round(peak_rss_mib(), 1)
        print(json.dumps(result))
        return result

    asr = asr_run(args.minutes)
    rows = [
        {
            "run": f"ASR {args.minutes:g} min",
            "audio_s": asr["audio_s"],
            "wall_s": asr["wall_s"],
            "x_realtime": asr["x_realtime"],
            "model_alone_x": asr["model_alone_x_realtime"],
            "ratio": asr["ratio_to_model_alone"],
            **{k: v for k, v in asr["stages_s"].items() if k != "total"},
        }
    ]
    caps = captions_run(1.0)
    rows.append({"run": "captions 1 h", "wall_s": caps["wall_s"], **caps["stages_s"]})
    hour = None
    if not args.no_hour:
        hour = hour_memory_run(args.hour_minutes)
        rows.append(
            {
                "run": f"ASR {args.hour_minutes:g} min (child)",
                "audio_s": hour["audio_s"],
                "wall_s": hour["wall_s"],
                "x_realtime": hour["x_realtime"],
                "peak_rss_mib": hour["peak_rss_mib"],
            }
        )
    table("ingest", rows)
    result = {"asr": asr, "captions": caps, "hour": hour}
    save("ingest", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
