"""Quota benchmark: what the usage ledger costs.

- one message reservation (the conditional UPDATE, its reservation and event rows, in
  one transaction), and reservation + commit (what every answer pays), p50 and p95, on
  SQLite (WAL, the service's default) and on PostgreSQL (a throwaway cluster on
  127.0.0.1, when the server binaries are on the machine);
- reservations per second with 50 threads reserving from one account at once (the worst
  case: every write wants the same counter row), and how many were granted against the
  limit (exactly the limit, or the run is wrong);
- the overhead of the quota check on an answer through the service: ``POST
  collections/{id}/ask`` in-process (FastAPI's TestClient; the hub login is stood in by
  a fixed caller, the rest is the real app) on a captioned lecture with the extractive
  answerer, with the real quota point and with it turned off, alternating request by
  request in the same process. The reference is that quota-off ask; the ratio is the
  quota's share. CPU time (this process's) is given beside wall time: on a machine
  shared with other work, wall time is mostly waiting for a core.

    python -m benchmarks quotas
    python -m benchmarks.quotas --repeat 500 --no-postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import save, table  # noqa: E402


def _ms(samples: list[float], q: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(q * len(samples)))] * 1000


def _service(root: Path, url: str = "", messages: int | None = None):
    from vidrag_hub.app import Service
    from vidrag_hub.settings import ServiceSettings

    from tests.support.settings import make_settings

    plans = {"plans": {"free": {"videos": 2, "minutes": 60, "messages": messages, "storage_gb": 1}}}
    service = Service(
        ServiceSettings(shared_root=root, database_url=url, kernel=make_settings(root), plans=plans)
    )
    service.quotas.catalog  # noqa: B018 - opened and migrated before any timing
    return service


def one_reservation(service, repeat: int) -> dict:
    from vidrag_hub.auth import HubUser

    quotas, user = service.quotas, HubUser("bench-single")
    for _ in range(20):  # warm the pool, the statement cache and the plan row
        quotas.settle_message(quotas.reserve_message(user), True)
    reserve, pair, cpu = [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        rid = quotas.reserve_message(user)
        t1, c1 = time.perf_counter(), time.process_time()
        quotas.settle_message(rid, True)
        t2 = time.perf_counter()
        reserve.append(t1 - t0)
        cpu.append(c1 - c0)
        pair.append(t2 - t0)
    return {
        "reserve_p50_ms": _ms(reserve, 0.5),
        "reserve_p95_ms": _ms(reserve, 0.95),
        # this process's CPU per reservation: what a busy machine does not inflate
        "reserve_cpu_p50_ms": _ms(cpu, 0.5),
        "reserve_cpu_p95_ms": _ms(cpu, 0.95),
        "reserve_commit_p50_ms": _ms(pair, 0.5),
        "reserve_commit_p95_ms": _ms(pair, 0.95),
    }


def contention(service, total: int, threads: int = 50) -> dict:
    """``total`` reservations (each committed) from ``threads`` threads on one account,
    whose limit is half of them: the rate, and how many were granted."""
    from vidrag_hub.auth import HubUser

    from vidrag_kernel.errors import QuotaExceeded

    quotas, user = service.quotas, HubUser("bench-contended")
    limit = quotas.book.get("free").messages
    granted = refused = 0
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        nonlocal granted, refused
        start.wait()
        for _ in range(n):
            try:
                rid = quotas.reserve_message(user)
            except QuotaExceeded:
                with lock:
                    refused += 1
                continue
            quotas.settle_message(rid, True)
            with lock:
                granted += 1

    share = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, share))
    elapsed = time.perf_counter() - t0
    return {
        "contended_threads": threads,
        "contended_ops_per_s": total / elapsed,
        "granted": granted,
        "limit": limit,
        "exact": granted == limit,
        "refused": refused,
    }


def ask_overhead(root: Path, repeat: int) -> dict:
    """An answer through the in-process service with and without the quota point."""
    from fastapi.testclient import TestClient
    from vidrag_hub import deps
    from vidrag_hub.app import make_app
    from vidrag_hub.auth import HubUser
    from vidrag_hub.settings import ServiceSettings

    from tests.support.media_server import MediaServer
    from tests.support.settings import make_settings
    from tests.support.speech import LECTURE, encode, speak

    media = root / "media-served"
    media.mkdir()
    lecture = speak(LECTURE, media / "lecture.wav")
    encode(lecture.wav, media / "lecture.mp4", video=True)
    (media / "lecture.vtt").write_text(lecture.vtt())
    (media / "lecture.html").write_text(
        "<!doctype html><html><head><title>Three topics lecture</title></head><body>"
        '<video controls src="lecture.mp4"><track kind="captions" srclang="en" src="lecture.vtt" default>'
        "</video></body></html>"
    )
    server = MediaServer(media)
    shared = root / "ask-shared"
    settings = ServiceSettings(
        shared_root=shared,
        kernel=make_settings(shared),
        plans={"plans": {"free": {"videos": 2, "minutes": 60, "messages": None, "storage_gb": 1}}},
    )
    app = make_app(settings)
    service = app.state.service
    owner = HubUser("bench-owner")
    lib = service.library(owner)
    cid = lib.collections.create("Bench course").id
    result = lib.ingest(server.url("lecture.html"), cid, captions="only")[0]
    assert result.status == "done", result.error
    # the hub's token check is the one part stood in: a fixed caller, the rest is the app
    app.dependency_overrides[deps.caller] = lambda: owner
    question = {"question": "How many comparisons does binary search need?"}
    real_message = service.quotas.message

    noop = lambda user, ref=None: nullcontext()  # noqa: E731 - the quota point turned off
    samples = {"on": [], "off": []}
    cpu = {"on": [], "off": []}
    try:
        with TestClient(app) as client:
            for i in range(2 * repeat + 10):
                # alternate request by request, so that a machine busy with other work
                # slows both alike; the first rounds warm up and are not kept
                variant = "on" if i % 2 == 0 else "off"
                service.quotas.message = real_message if variant == "on" else noop
                t0, c0 = time.perf_counter(), time.process_time()
                reply = client.post(f"/services/vidrag/api/collections/{cid}/ask", json=question)
                wall, spent = time.perf_counter() - t0, time.process_time() - c0
                assert reply.status_code == 200, (variant, reply.text)
                if i >= 10:
                    samples[variant].append(wall)
                    cpu[variant].append(spent)
    finally:
        service.quotas.message = real_message
        server.stop()
    on, off = samples["on"], samples["off"]
    cpu_on, cpu_off = statistics.median(cpu["on"]) * 1000, statistics.median(cpu["off"]) * 1000
    p50_on, p50_off = statistics.median(on) * 1000, statistics.median(off) * 1000
    return {
        "ask_p50_ms_quota_on": p50_on,
        "ask_p50_ms_quota_off": p50_off,
        "ask_p95_ms_quota_on": _ms(on, 0.95),
        "ask_p95_ms_quota_off": _ms(off, 0.95),
        "quota_overhead_ms": p50_on - p50_off,
        "ratio_on_to_off": p50_on / p50_off,
        "ask_cpu_p50_ms_quota_on": cpu_on,
        "ask_cpu_p50_ms_quota_off": cpu_off,
        "quota_cpu_overhead_ms": cpu_on - cpu_off,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quotas", description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=300, help="reservations timed one by one per database")
    p.add_argument("--contended", type=int, default=2000, help="reservations made by the 50 threads")
    p.add_argument("--asks", type=int, default=60, help="asks timed per variant (alternating)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--no-ask", action="store_true", help="skip the ask through the service")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv or [])
    rows, result = [], {}
    with tempfile.TemporaryDirectory(prefix="vidrag-bench-quotas-") as tmp:
        tmp = Path(tmp)
        databases = [("sqlite", "")]
        pg = None
        if not args.no_postgres:
            try:
                from tests.support.postgres import Postgres

                pg = Postgres().start()
                databases.append(("postgresql", pg.create_database("bench_quotas")))
            except Exception as exc:  # noqa: BLE001 - no server binaries: SQLite only, said so
                print(f"PostgreSQL skipped: {exc}")
        try:
            for name, url in databases:
                single = _service(tmp / f"{name}-single", url)
                row = {"database": name, **one_reservation(single, args.repeat)}
                single.catalog.close()
                # its own account, so the single run's counters stay apart
                contended = _service(tmp / f"{name}-contended", url, messages=args.contended // 2)
                row.update(contention(contended, args.contended))
                contended.catalog.close()
                rows.append(row)
        finally:
            if pg is not None:
                pg.stop()
        result["ledger"] = rows
        table("Quota reservations (one message each; 50-way contention on one account)", rows)
        if not args.no_ask:
            ask = ask_overhead(tmp, args.asks)
            result["ask"] = ask
            table("Ask through the service: with and without the quota point (reference: quota off)", [ask])
    target = next(r for r in rows if r["database"] == "sqlite")["reserve_p95_ms"]
    print(f"target: one reservation under 5 ms p95 on SQLite -> {target:.2f} ms")
    save("quotas", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
