"""Service benchmark: many students at once on one shared course, through the hub.

A real JupyterHub (``tests.support.service.ServiceHub`` with ``start_service=True``:
the hub starts ``python -m vidrag_hub`` itself and its proxy forwards
``/services/vidrag/`` to it) serves a shared collection of the development set's
captioned lectures (``tests.support.devset``: six lectures, each ingested twice under its
own page, title and media URL, so twelve videos; captions only, no speech recognition).
The instructor (on the Pro plan, like everyone here: a student asks more than the Free
plan's 50 messages a month) owns it, and a JupyterHub group of students holds a viewer
grant. Then:

- ``--users`` concurrent students (closed loop), each with its own hub token, send
  ``POST collections/{id}/search`` for ``--seconds``, then ``POST collections/{id}/ask``
  (the extractive answerer: no LLM is configured) for ``--seconds``, with the questions
  of ``tests/data/devset/questions.jsonl`` in a fixed order (each student starts at its
  own place in them, and at its own moment of the first pause), in one session: a
  warm-up that is not counted, then the timed window: requests per second, p50 and p95,
  errors by status, and the CPU seconds the hub, the proxy, the service and this
  client spent during each phase (on a machine shared with other work, latency is
  mostly waiting for a core; the CPU figures say who used them);
- the token check, ``HubIdentity.user(token)`` (``vidrag_hub.auth``) against the same
  hub, one call at a time: cold (the first sight of a token: the hub checks the token,
  then the user's groups are read) and cached (the token's identity reused; groups are
  still read fresh, on purpose, so a student removed from a course loses it at once).

Every process started here (hub, proxy, service, media server) is stopped at the end,
on failure too.

    python -m benchmarks service
    python -m benchmarks.service --users 5 --seconds 10
    python -m benchmarks.service --think 0   # the worst case only: no pause at all

Each ``--think`` value is a run of both endpoints. A student pauses 0.5x to 1.5x of it
between requests: 5 s (the default's first run) is someone who reads an answer before
asking again, which is what "50 students at once" means in a class; 0 (its second run)
is 50 requests always in flight, a stress test (on two cores the wait for a core is then
most of each request's time, whatever the service does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import RESULTS, save, table  # noqa: E402

CACHE = ROOT / ".pytest_cache" / "d" / "vidrag-devset"
INSTRUCTOR = "ada"
GROUP = "bench-class"


def _ms(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(q * len(samples)))] * 1000


def _second_copies(media: Path, lectures) -> list[str]:
    """Each lecture again under its own page, media URL and title (a second section of
    the course), so the collection holds twice as many videos; the pages' names."""
    pages = []
    for lec in lectures:
        twin = f"{lec.id}-part2"
        shutil.copyfile(media / lec.file, media / f"{twin}.m4a")
        shutil.copyfile(media / f"{lec.id}.vtt", media / f"{twin}.vtt")
        title = f"{lec.title} (second section)"
        (media / f"{twin}.html").write_text(
            f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f'<video controls src="{twin}.m4a"><track kind="captions" srclang="en" label="English" '
            f'src="{twin}.vtt" default></video></body></html>'
        )
        pages.append(f"{twin}.html")
    return pages


def build_course(tmp: Path, shared_root: Path, copies: int) -> tuple[str, int, float]:
    """The shared course in ``shared_root``, built by the service's own library before the
    hub starts (the hub's service then opens the same catalog): its id, its video count
    and the ingest time."""
    from vidrag_hub.app import Service
    from vidrag_hub.auth import HubUser
    from vidrag_hub.settings import ServiceSettings

    from tests.support import devset
    from tests.support.media_server import MediaServer
    from vidrag_kernel.settings import Settings

    media = tmp / "media"
    lectures = devset.build_media(CACHE / "audio", media)
    pages = [lec.page for lec in lectures]
    if copies > 1:
        pages += _second_copies(media, lectures)
    # the kernel's defaults, as the hub's service gets them (its environment carries no
    # VIDRAG_* kernel variable here), so the index is built with the model it queries with
    kernel = Settings(home=shared_root, fetch_allow_hosts=("127.0.0.1",))
    service = Service(ServiceSettings(shared_root=shared_root, kernel=kernel, plans={"default_plan": "pro"}))
    server = MediaServer(media)
    t0 = time.perf_counter()
    try:
        lib = service.library(HubUser(INSTRUCTOR, groups=frozenset({"instructors"})))
        cid = lib.collections.create("Benchmark course", instructor="Ada").id
        for page in pages:
            [result] = lib.ingest(server.url(page), cid, captions="only")
            if result.status != "done":
                raise RuntimeError(f"ingest of {page} failed: {result.error}")
        count = len(lib.videos.list(cid))
    finally:
        server.stop()
        asyncio.run(service.close())
    return cid, count, time.perf_counter() - t0


def start_hub(tmp: Path, shared_root: Path):
    """The real hub, which starts the real service on the shared root; not yet started."""
    from tests.support.service import ServiceHub

    hub = ServiceHub(tmp / "hub", admins=(INSTRUCTOR,), start_service=True)
    # with start_service the helper drops its extra config; the test-admin service must
    # still manage group membership (the course roster)
    hub.hub.extra_config = (
        "c.JupyterHub.load_roles.append({'name': 'bench-groups', "
        "'services': ['test-admin'], 'scopes': ['admin:groups']})"
    )
    hub.hub.env.update(
        VIDRAG_SHARED_ROOT=str(shared_root),
        VIDRAG_DEFAULT_PLAN="pro",
        # no ingest here: a Dask cluster would only take memory and a core's share
        VIDRAG_INGEST_WORKERS="0",
    )
    return hub


def wait_for_service(base: str, token: str, cid: str, timeout: float = 180) -> float:
    """Wait until the service answers through the proxy, then search and ask once (the
    service loads its models on first use); the seconds that took."""
    import httpx

    headers = {"Authorization": f"token {token}"}
    t0 = time.monotonic()
    while True:
        try:
            if httpx.get(f"{base}/api/me", headers=headers, timeout=10).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > t0 + timeout:
            raise TimeoutError(f"the service did not answer through the proxy in {timeout} s")
        time.sleep(0.5)
    for path, body in (
        ("search", {"query": "battery"}),
        ("ask", {"question": "Who built the first battery?"}),
    ):
        reply = httpx.post(
            f"{base}/api/collections/{cid}/{path}", json=body, headers=headers, timeout=timeout
        )
        if reply.status_code != 200:
            raise RuntimeError(f"first {path}: HTTP {reply.status_code} {reply.text[:300]}")
    return time.monotonic() - t0


def students(hub, n: int) -> dict[str, str]:
    """``n`` students in one hub group, each with a token of their own."""
    names = [f"student{i:02d}" for i in range(n)]
    hub.ok("POST", "/users", json={"usernames": names})
    hub.group(GROUP, names)
    return {name: hub.token(name) for name in names}


def token_check(hub, tokens: list[str]) -> dict:
    """``HubIdentity.user`` one call at a time: each token cold, then each again cached."""
    from vidrag_hub.auth import HubIdentity
    from vidrag_hub.settings import ServiceSettings

    # the test-admin service's token reads users and groups, as the service's own does
    settings = ServiceSettings(
        service_name="vidrag", hub_api_url=hub.api_url, hub_api_token=hub.hub.admin_token
    )

    async def run() -> tuple[list[float], list[float]]:
        identity = HubIdentity(settings)
        cold, cached = [], []
        try:
            for samples in (cold, cached, cached):
                for token in tokens:
                    t0 = time.perf_counter()
                    user = await identity.user(token)
                    samples.append(time.perf_counter() - t0)
                    assert GROUP in user.groups, user
        finally:
            await identity.close()
        return cold, cached

    cold, cached = asyncio.run(run())
    return {
        "tokens": len(tokens),
        "cold_p50_ms": _ms(cold, 0.5),
        "cold_p95_ms": _ms(cold, 0.95),
        "cached_p50_ms": _ms(cached, 0.5),
        "cached_p95_ms": _ms(cached, 0.95),
    }


def _cpu(procs) -> dict[str, float]:
    """CPU seconds so far of the hub, the proxy and the service (by role)."""
    out: Counter = Counter()
    for p in procs:
        try:
            line = " ".join(p.cmdline())
            times = p.cpu_times()
        except Exception:  # noqa: BLE001, S112 - a process gone meanwhile counts nothing
            continue
        role = "proxy" if "configurable-http-proxy" in line else "service" if "vidrag_hub" in line else "hub"
        out[role] += times.user + times.system
    return dict(out)


async def _drive(
    url: str, tokens: list[str], bodies: list[dict], warmup: float, seconds: float, think: float = 0.0
) -> tuple[list[tuple], list[tuple], int]:
    """Each token a closed-loop client (pausing about ``think`` seconds between requests)
    for ``warmup + seconds``: the (latency, status, text) of the requests it started in
    the timed window, of every student's very first request, and how many were sent.

    One continuous session, as a class is: each student starts at a random moment of the
    first ``think`` seconds (a class does not press Enter in the same millisecond) and
    the timed window follows the warm-up without a new start, so it measures the steady
    state. The first requests are returned apart: with ``think`` 0 they are 50 requests
    sent at once, the burst a load test's ramp-up avoids, reported on its own."""
    import random

    import httpx

    timed: list[tuple] = []
    first: list[tuple] = []
    sent = 0
    begin = time.monotonic()
    window, deadline = begin + warmup, begin + warmup + seconds
    limits = httpx.Limits(max_connections=len(tokens) + 5, max_keepalive_connections=len(tokens) + 5)

    async def student(i: int, token: str, client: httpx.AsyncClient) -> None:
        nonlocal sent
        headers = {"Authorization": f"token {token}"}
        pauses = random.Random(i)  # the same pauses on every run
        n = i * 7  # each student walks the questions from its own place
        await asyncio.sleep(think * pauses.random())
        while (start := time.monotonic()) < deadline:
            body = bodies[n % len(bodies)]
            n += 1
            t0 = time.perf_counter()
            try:
                reply = await client.post(url, json=body, headers=headers)
                status, said = reply.status_code, "" if reply.status_code == 200 else reply.text[:300]
            except httpx.HTTPError as exc:
                status, said = type(exc).__name__, str(exc)[:300]
            sample = (time.perf_counter() - t0, status, said)
            sent += 1
            if n == i * 7 + 1:
                first.append(sample)
            if start >= window:
                timed.append(sample)
            if think > 0:
                await asyncio.sleep(think * pauses.uniform(0.5, 1.5))

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(student(i, t, client) for i, t in enumerate(tokens)))
    return timed, first, sent


def load(
    hub, base: str, cid: str, endpoint: str, tokens: list[str], seconds: float, warmup: float, think: float
) -> dict:
    """One endpoint under ``len(tokens)`` concurrent students: rate, latency, errors, CPU."""
    from tests.support import devset

    questions = [q.question for q in devset.questions()]
    bodies = [{"query": q, "k": 5} if endpoint == "search" else {"question": q} for q in questions]
    url = f"{base}/api/collections/{cid}/{endpoint}"
    procs = hub.hub.processes()
    before, c0, t0 = _cpu(procs), time.process_time(), time.perf_counter()
    done, first, sent = asyncio.run(_drive(url, tokens, bodies, warmup, seconds, think))
    elapsed = time.perf_counter() - t0
    after, client_cpu = _cpu(procs), time.process_time() - c0
    ok = [lat for lat, status, _ in done if status == 200]
    errors = Counter(str(status) for _, status, _ in done + first if status != 200)
    # what the first few refusals said (the service's messages never hold a token)
    said = list(dict.fromkeys(f"{status}: {text}" for _, status, text in done + first if status != 200))[:5]
    first_ok = [lat for lat, status, _ in first if status == 200]
    row = {
        "endpoint": endpoint,
        "users": len(tokens),
        "think_s": think,
        "seconds": seconds,
        "requests": len(done),
        "rps": len(ok) / seconds,
        "p50_ms": _ms(ok, 0.5),
        "p95_ms": _ms(ok, 0.95),
        "max_ms": max(ok) * 1000 if ok else float("nan"),
        "errors": sum(errors.values()),
        "errors_by_status": dict(errors) or "-",
        "error_samples": said or "-",
        # every student's first request (the ramp-up; with think 0, all sent at once)
        "first_p95_ms": _ms(first_ok, 0.95),
    }
    # CPU over the whole session (warm-up included), per request of it
    requests = max(1, sent)
    for role in ("service", "hub", "proxy"):
        row[f"cpu_{role}_s"] = after.get(role, 0.0) - before.get(role, 0.0)
    row["cpu_client_s"] = client_cpu
    row["wall_s"] = round(elapsed, 1)
    # CPU per request, service and hub: what a busy machine inflates least (the wall
    # figures above are mostly waiting for a core when other work shares the machine)
    for role in ("service", "hub"):
        row[f"{role}_cpu_ms_per_request"] = row[f"cpu_{role}_s"] / requests * 1000
    return row


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.service", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=50, help="concurrent students, each with its own token")
    p.add_argument("--seconds", type=float, default=60, help="timed seconds per endpoint")
    p.add_argument("--warmup", type=float, default=15, help="untimed seconds per endpoint before timing")
    p.add_argument(
        "--think",
        type=float,
        nargs="+",
        default=[5.0, 0.0],
        help="seconds a student pauses between requests (0.5x to 1.5x of it; 0: none, the worst case); "
        "one run per value",
    )
    p.add_argument("--copies", type=int, default=2, choices=(1, 2), help="ingest each lecture this often")
    p.add_argument("--endpoints", default="search,ask", help="comma-separated: search, ask")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv or [])
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = set(endpoints) - {"search", "ask"}
    if unknown:
        raise SystemExit(f"unknown endpoints: {sorted(unknown)}")
    # `make` and CI stop a job with SIGTERM: unwind through the finally below, so the hub
    # (its own process group: no terminal signal reaches it) is stopped all the same
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result: dict = {
        "users": args.users,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "think": args.think,
        "uptime_before": _uptime(),
    }
    hub = None
    try:
        with tempfile.TemporaryDirectory(prefix="vidrag-bench-service-") as tmp:
            tmp = Path(tmp)
            shared_root = tmp / "shared"
            cid, videos, ingest_s = build_course(tmp, shared_root, args.copies)
            if videos < 10 and args.copies > 1:
                raise RuntimeError(f"the course holds {videos} videos, not at least 10")
            hub = start_hub(tmp, shared_root).start()
            base = f"{hub.hub.url}/services/vidrag"
            hub.user(INSTRUCTOR)
            owner = hub.token(INSTRUCTOR)
            first_s = wait_for_service(base, owner, cid)
            tokens = students(hub, args.users)
            import httpx

            grant = httpx.post(
                f"{base}/api/collections/{cid}/members",
                json={"group": GROUP, "role": "viewer"},
                headers={"Authorization": f"token {owner}"},
                timeout=30,
            )
            if grant.status_code != 201:
                raise RuntimeError(f"group grant: HTTP {grant.status_code} {grant.text[:300]}")
            result["course"] = {
                "videos": videos,
                "ingest_s": round(ingest_s, 1),
                "service_ready_s": round(first_s, 1),
            }
            table("Course (captions only, ingested before the hub starts)", [result["course"]])

            check = token_check(hub, list(tokens.values()))
            result["token_check"] = check
            table("Token check: HubIdentity.user(token), one at a time (cold: first sight)", [check])

            rows = []
            for think in args.think:
                for endpoint in endpoints:
                    rows.append(
                        load(
                            hub, base, cid, endpoint, list(tokens.values()), args.seconds, args.warmup, think
                        )
                    )
                    rows[-1]["uptime"] = _uptime()
            result["load"] = rows
            shown = [{k: v for k, v in r.items() if k != "error_samples"} for r in rows]
            table(
                f"{args.users} concurrent students through the hub's proxy (think_s: pause between requests)",
                shown,
            )
            for row in rows:
                for sample in row["error_samples"] if row["errors"] else []:
                    print(f"{row['endpoint']} error {sample}")
            for row in rows:
                target = 150 if row["endpoint"] == "search" else 1000
                print(
                    f"target: {row['endpoint']} p95 under {target} ms, no errors (think {row['think_s']:g} s) -> "
                    f"{row['p95_ms']:.0f} ms, {row['errors']} errors"
                )
            # the hub's log (its request lines carry their durations; the service's log
            # is in it too) beside the results, to look for what a slow request waited on
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "service-hub.log").write_text(hub.hub.log())
            survivors, hub = hub.stop(), None
            if survivors:
                raise RuntimeError(f"processes outlived the hub: {survivors}")
    finally:
        if hub is not None:
            hub.stop()
        signal.signal(signal.SIGTERM, previous)
    save("service", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
