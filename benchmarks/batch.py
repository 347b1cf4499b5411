"""Batch benchmark: 8 generated 5-minute lectures, serial against a LocalCluster of 1 and 2.

For each mode, a fresh data directory and the same folder of lectures (local files, so
no server is in the way) through ``vidrag_kernel.batch.run_batch``:

- audio hours per wall hour (the reference is the serial run in the same process:
  the ratio column is the speed-up over it);
- each worker's CPU use (CPU seconds of its process over the wall time; 1.0 = one
  core busy all along), and the writer's (this process);
- the share of the wall time spent in the single writer (commits into catalog and index).

Models are loaded before the clock starts in every mode (in this process for the serial
run, on every worker for the clusters), so the figures are ingest work, not start-up.
Whisper threads: the serial run and a 1-worker cluster use every core, 2 workers one each
(``fanout.worker_settings``: the cores shared out).

    python -m benchmarks batch                      # 8 x 5 minutes
    python -m benchmarks.batch --lectures 2 --minutes 1
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import save, table  # noqa: E402
from tests.support.speech import LECTURE, encode, speak  # noqa: E402

MODES = ("serial", "local:1", "local:2")


def make_lectures(folder: Path, n: int, minutes: float) -> float:
    """``n`` different lectures of about ``minutes`` each (m4a); their total seconds."""
    from scripts.make_sample import SAMPLE

    pool = LECTURE[1:-1] + SAMPLE[1:-1]
    total = 0.0
    per = int(minutes * 60 / 6.05) + 1  # about 6 s per sentence with its pause (measured)
    for i in range(n):
        # a different start in the pool and a different voice speed: different audio, so
        # each lecture is its own video (files are known by their hash)
        start = (i * 7) % len(pool)
        sentences = [f"Lecture {i + 1}.", *itertools.islice(itertools.cycle(pool), start, start + per)]
        spoken = speak(sentences, folder / f"lecture{i + 1}.wav", speed=150 + 2 * i)
        encode(spoken.wav, folder / f"lecture{i + 1}.m4a")
        spoken.wav.unlink()
        total += spoken.duration
    return total


def _settings(home: Path):
    from vidrag_kernel.settings import Settings

    return Settings.from_env(home=home, user="bench", whisper_threads=0)


def _warm(settings) -> None:
    from vidrag_kernel.embed import get_embedder
    from vidrag_kernel.transcribe import get_transcriber

    get_transcriber(settings)
    get_embedder(settings).embed(["warm up"])


def run_mode(mode: str, folder: Path, home: Path, audio_s: float) -> dict:
    import psutil

    from vidrag_kernel import Workbench
    from vidrag_kernel.batch import run_batch

    settings = _settings(home)
    me = psutil.Process()
    cluster = client = None
    workers: dict[str, psutil.Process] = {}
    address = ""
    if mode == "serial":
        _warm(settings)
    else:
        import dask
        from distributed import Client, LocalCluster

        from vidrag_kernel import fanout

        n = int(mode.split(":")[1])
        # the same cluster run_batch would start for "local:N", started here so that its
        # worker processes can be watched and their models loaded before the clock
        with dask.config.set({"distributed.scheduler.allowed-failures": fanout.ALLOWED_FAILURES}):
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
            )
        client = Client(cluster)
        client.run(_warm, fanout.worker_settings(settings, n))
        workers = {addr: psutil.Process(pid) for addr, pid in client.run(os.getpid).items()}
        address = cluster.scheduler_address
    try:
        before = {a: p.cpu_times() for a, p in workers.items()}
        mine = me.cpu_times()
        with Workbench(settings, libraries=()) as wb:
            t0 = time.perf_counter()
            summary = run_batch(wb, "Bench", [str(folder)], captions="never", dask_address=address)
            wall = time.perf_counter() - t0
        after = {a: p.cpu_times() for a, p in workers.items()}
        mine_after = me.cpu_times()
    finally:
        if client is not None:
            client.close()
            cluster.close()
    assert not summary.failed and len(summary.added) > 0, summary.to_dict()

    def cpu(t0, t1) -> float:
        return (t1.user - t0.user) + (t1.system - t0.system)

    stages = summary.stage_totals()
    return {
        "mode": mode,
        "videos": len(summary.added),
        "audio_h": round(audio_s / 3600, 3),
        "wall_s": round(wall, 1),
        "audio_h_per_wall_h": round(audio_s / wall, 1),
        "writer_share": round(summary.stats.get("writer_s", 0.0) / wall, 4),
        "writer_cpu": round(cpu(mine, mine_after) / wall, 2),
        "worker_cpu": [round(cpu(before[a], after[a]) / wall, 2) for a in sorted(workers)],
        "tasks_per_worker": [summary.stats.get("tasks_per_worker", {}).get(a, 0) for a in sorted(workers)],
        "stage_s": stages,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lectures", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "lectures"
        folder.mkdir()
        t0 = time.perf_counter()
        audio_s = make_lectures(folder, args.lectures, args.minutes)
        print(
            f"generated {args.lectures} lectures, {audio_s / 60:.1f} minutes, in {time.perf_counter() - t0:.0f} s"
        )
        rows = []
        for mode in MODES:
            rows.append(run_mode(mode, folder, root / mode.replace(":", "-"), audio_s))
            # each mode as it ends: a long run on a busy machine still leaves figures
            print(rows[-1], flush=True)
    reference = rows[0]["audio_h_per_wall_h"]
    for r in rows:
        r["speedup_vs_serial"] = round(r["audio_h_per_wall_h"] / reference, 2)
    table(
        f"Batch ingest: {args.lectures} lectures x {args.minutes:g} min (ASR), serial vs LocalCluster",
        [{k: v for k, v in r.items() if k != "stage_s"} for r in rows],
    )
    for r in rows:
        print(f"{r['mode']}: seconds per stage (summed over videos) {r['stage_s']}")
    save(
        "batch",
        {"lectures": args.lectures, "minutes": args.minutes, "audio_s": round(audio_s, 1), "runs": rows},
    )


if __name__ == "__main__":
    main(sys.argv[1:])
