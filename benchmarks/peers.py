"""vidrag's collection index beside the vector stores its users would otherwise pick.

The same vectors go into vidrag (HNSW, and HNSW over 8-bit vectors), Chroma (Open
WebUI's default store), LanceDB with IVF_PQ and refinement (AnythingLLM's store) and
qdrant-client in local mode (no server: its exact search in numpy). Every system runs
in processes of its own: one builds the store on disk (build time, its peak RSS), one
reopens it and answers the queries (p50/p95 per query, recall@10 against exact search
over the same vectors, computed in a third process with FAISS's flat index, the
reference run). The peers come from a separate virtual environment
(``benchmarks/.peers-venv``, made by ``make bench-peers``), never the project's.

Data sets, at each size:
  clustered  the generator of ``benchmarks/retrieval.py`` (topic clusters in a low
             intrinsic dimension, as sentence embeddings have); two query sets:
             ``near`` (close to stored rows, as a question is to the passage that
             answers it) and ``fresh`` (new points drawn from the same clusters)
  uniform    uniformly random unit vectors and queries: no near neighbours, so
             approximate indexes show their recall differences

Queries are timed twice: cold, just after the store is opened (five queries first), and
warm, after ``WARMUP`` other queries of the same kinds, as a service that keeps its
readers open answers. A memory-mapped index pages its file in as queries touch it, so its
first queries after opening pay for page faults; stores read whole into memory do not.

vidrag also times a one-video commit (100 chunks added to the built index).

    make bench-peers
    python -m benchmarks.peers --sizes 100000 --datasets clustered uniform
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import peak_rss_mib, save, table  # noqa: E402
from benchmarks.retrieval import DIM, vectors  # noqa: E402

PEERS_PYTHON = ROOT / "benchmarks" / ".peers-venv" / "bin" / "python"
QUERIES = 200
WARMUP = 2000  # untimed queries between the cold and the warm timing
BLOCK = 50_000
K = 10
#: qdrant-client without a server stores points in SQLite and searches them with numpy:
#: uploading 20k points took 2 minutes here, so 1M would take hours
QDRANT_LOCAL_MAX = 100_000
SYSTEMS = ["vidrag", "vidrag-sq8", "chroma", "lancedb", "qdrant"]
LABELS = {
    "vidrag": "vidrag (HNSW)",
    "vidrag-sq8": "vidrag (HNSW over SQ8)",
    "chroma": "Chroma (HNSW)",
    "lancedb": "LanceDB IVF_PQ, refine 10",
    "qdrant": "qdrant-client local (exact)",
}


def blocks(dataset: str, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, vectors)`` blocks of a data set; deterministic, so every process sees the same rows."""
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        if dataset == "clustered":
            yield start, vectors(start, m)
        else:
            x = np.random.default_rng(5000 + start).standard_normal((m, DIM)).astype(np.float32)
            yield start, x / np.linalg.norm(x, axis=1, keepdims=True)


def queries(dataset: str, n: int) -> dict[str, np.ndarray]:
    """The query sets of a data set (row-independent of the system)."""
    rng = np.random.default_rng(17)
    if dataset == "uniform":
        q = rng.standard_normal((QUERIES, DIM)).astype(np.float32)
        return {"fresh": q / np.linalg.norm(q, axis=1, keepdims=True)}
    rows = np.sort(rng.integers(0, n, QUERIES))
    picked = []
    for start, b in blocks(dataset, n):
        inside = rows[(rows >= start) & (rows < start + len(b))]
        picked.append(b[inside - start])
    near = np.concatenate(picked) + 0.05 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    # fresh points from the same clusters: rows the generator would make after the corpus
    fresh = vectors(10**9 + 7, QUERIES)
    return {"near": near / np.linalg.norm(near, axis=1, keepdims=True), "fresh": fresh}


def warmup_queries(dataset: str, n: int) -> np.ndarray:
    """``WARMUP`` untimed queries of the same kinds as the timed ones (other seeds), that
    every system answers before its second, warm timing: a service that has answered a
    few thousand questions has the pages of a memory-mapped index mapped."""
    rng = np.random.default_rng(23)
    if dataset == "uniform":
        q = rng.standard_normal((WARMUP, DIM)).astype(np.float32)
        return q / np.linalg.norm(q, axis=1, keepdims=True)
    half = WARMUP // 2
    rows = np.sort(rng.integers(0, n, half))
    picked = []
    for start, b in blocks(dataset, n):
        picked.append(b[rows[(rows >= start) & (rows < start + len(b))] - start])
    near = np.concatenate(picked) + 0.05 * rng.standard_normal((half, DIM)).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return np.concatenate([near, vectors(2 * 10**9 + 11, WARMUP - half)])


def _pct(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return round(float(np.percentile(a, 50)), 3), round(float(np.percentile(a, 95)), 3)


def disk_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


# ---- the reference: exact top-10 over the same vectors ----------------------------------


def truth_child(work: Path, dataset: str, n: int) -> dict:
    import faiss

    sets = queries(dataset, n)
    flat = faiss.IndexFlatIP(DIM)
    for _, b in blocks(dataset, n):
        flat.add(b)
    np.save(work / "warmup.npy", warmup_queries(dataset, n))
    out = {}
    for name, q in sets.items():
        np.save(work / f"queries-{name}.npy", q)
        _, truth = flat.search(q, K)
        np.save(work / f"truth-{name}.npy", truth)
        out[name] = QUERIES
    return out


# ---- the systems: build in one process, query in another --------------------------------


def _vidrag_index(path: Path, system: str, query_threads: int = 1):
    from vidrag_kernel.index import CollectionIndex

    compression = "sq8" if system == "vidrag-sq8" else "none"
    return CollectionIndex(path, compression=compression, query_threads=query_threads)


def build_vidrag(path: Path, system: str, dataset: str, n: int) -> dict:
    ef = os.environ.get("VIDRAG_BENCH_EF_CONSTRUCTION")
    if ef:  # a memory-only run: the graph's size depends on M, not on the build beam
        from vidrag_kernel.index import dense

        dense.HNSW_EF_CONSTRUCTION = int(ef)
    index = _vidrag_index(path, system)
    gen = 0.0
    t0 = time.perf_counter()
    with index.writer() as w:
        for start, b in _timed(blocks(dataset, n)):
            gen += _timed.last
            w.add(np.arange(start, start + len(b), dtype=np.int64), b, [""] * len(b))
        # the writer has its own copy on disk: the harness's last block is not the system's
        del b
    build = time.perf_counter() - t0 - gen
    return {
        "build_s": build,
        "peak_build_rss_mib": peak_rss_mib(),
        "disk_mib": disk_mib(path),
        "kind": index.manifest()["kind"],
    }


def commit_vidrag(path: Path, system: str, dataset: str, n: int) -> dict:
    """One video: 100 new chunks committed to the built index (after it was queried)."""
    t = time.perf_counter()
    # what a service process has loaded before its first commit: timed apart
    import bm25s  # noqa: F401
    import faiss  # noqa: F401
    import filelock  # noqa: F401

    imports = time.perf_counter() - t
    index = _vidrag_index(path, system)
    new = vectors(2 * 10**9, 100)
    t = time.perf_counter()
    with index.writer() as w:
        w.add(np.arange(n, n + 100, dtype=np.int64), new, ["a new lecture"] * 100)
    return {
        "commit_100_s": round(time.perf_counter() - t, 2),
        "commit_imports_s": round(imports, 2),
        "commit_segments": len(index.manifest()["segments"]),
        "commit_peak_rss_mib": round(peak_rss_mib(), 1),
    }


def query_vidrag(path: Path, system: str, sets: dict[str, np.ndarray], threads: int = 1):
    reader = _vidrag_index(path, system, threads).reader()
    return lambda q: [i for i, _ in reader.dense(q, K)]


def build_chroma(path: Path, system: str, dataset: str, n: int) -> dict:
    import chromadb

    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
    step = min(client.get_max_batch_size(), 5000)
    gen = 0.0
    t0 = time.perf_counter()
    for start, b in _timed(blocks(dataset, n)):
        gen += _timed.last
        for s in range(0, len(b), step):
            part = b[s : s + step]
            col.add(ids=[str(start + s + i) for i in range(len(part))], embeddings=part)
    build = time.perf_counter() - t0 - gen
    del col, client
    return {"build_s": build, "peak_build_rss_mib": peak_rss_mib()}


def query_chroma(path: Path, system: str, sets):
    import chromadb

    col = chromadb.PersistentClient(path=str(path)).get_collection("bench")

    def search(q):
        res = col.query(query_embeddings=[q.tolist()], n_results=K, include=[])
        return [int(i) for i in res["ids"][0]]

    return search


def build_lancedb(path: Path, system: str, dataset: str, n: int) -> dict:
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(path))
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), DIM))])
    gen = 0.0
    t0 = time.perf_counter()
    table = None
    for start, b in _timed(blocks(dataset, n)):
        gen += _timed.last
        batch = pa.table(
            {
                "id": pa.array(np.arange(start, start + len(b), dtype=np.int64)),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(b.ravel()), DIM),
            },
            schema=schema,
        )
        if table is None:
            table = db.create_table("bench", batch)
        else:
            table.add(batch)
    table.create_index(
        metric="dot",
        vector_column_name="vector",
        index_type="IVF_PQ",
        num_partitions=max(1, int(math.sqrt(n))),
        num_sub_vectors=DIM // 8,
    )
    build = time.perf_counter() - t0 - gen
    return {"build_s": build, "peak_build_rss_mib": peak_rss_mib()}


def query_lancedb(path: Path, system: str, sets):
    import lancedb

    table = lancedb.connect(str(path)).open_table("bench")
    nprobes = max(20, int(math.sqrt(table.count_rows())) // 20)

    def search(q):
        rows = (
            table.search(q, vector_column_name="vector")
            .metric("dot")
            .nprobes(nprobes)
            .refine_factor(10)
            .limit(K)
            .select(["id"])
            .to_list()
        )
        return [int(r["id"]) for r in rows]

    return search


def build_qdrant(path: Path, system: str, dataset: str, n: int) -> dict:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    client.create_collection(
        "bench", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
    )
    gen = 0.0
    t0 = time.perf_counter()
    for start, b in _timed(blocks(dataset, n)):
        gen += _timed.last
        client.upload_collection("bench", vectors=b, ids=list(range(start, start + len(b))), batch_size=2048)
    client.close()
    build = time.perf_counter() - t0 - gen
    return {"build_s": build, "peak_build_rss_mib": peak_rss_mib()}


def query_qdrant(path: Path, system: str, sets):
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(path))

    def search(q):
        return [int(p.id) for p in client.query_points("bench", query=q, limit=K).points]

    return search


def _timed(it):
    """Iterate ``it``, leaving the seconds each item took to make in ``_timed.last``."""
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        _timed.last = time.perf_counter() - t
        yield item


_timed.last = 0.0
BUILD = {"vidrag": build_vidrag, "vidrag-sq8": build_vidrag, "chroma": build_chroma}
BUILD |= {"lancedb": build_lancedb, "qdrant": build_qdrant}
QUERY = {"vidrag": query_vidrag, "vidrag-sq8": query_vidrag, "chroma": query_chroma}
QUERY |= {"lancedb": query_lancedb, "qdrant": query_qdrant}


def query_child(path: Path, work: Path, system: str, threads: int = 1, concurrency: int = 1) -> dict:
    """Open the store and time every query; vidrag's with ``threads`` OpenMP threads per
    search, and with ``concurrency`` callers at once (users of one service)."""
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(p.stem.removeprefix("queries-") for p in work.glob("queries-*.npy"))
    sets = {name: np.load(work / f"queries-{name}.npy") for name in names}
    t0 = time.perf_counter()
    extra = {"threads": threads} if system.startswith("vidrag") else {}
    search = QUERY[system](path, system, sets, **extra)
    res: dict = {"open_s": round(time.perf_counter() - t0, 2)}

    def timed(q: np.ndarray) -> tuple[float, list[int]]:
        t = time.perf_counter()
        got = search(q)
        return time.perf_counter() - t, got

    def run(q: np.ndarray) -> list[tuple[float, list[int]]]:
        if concurrency > 1:
            with ThreadPoolExecutor(concurrency) as pool:
                return list(pool.map(timed, q))
        return [timed(x) for x in q]

    # cold: just after opening (five queries first page in the stores' files); warm: after
    # WARMUP other queries, as a service that keeps its readers open answers
    for phase in ("", "_warm"):
        if phase:
            for x in np.load(work / "warmup.npy"):
                search(x)
        for name, q in sets.items():
            truth = np.load(work / f"truth-{name}.npy")
            for i in range(5):
                search(q[i])
            done = run(q)
            times = [d[0] for d in done]
            recall = [
                len(set(got[:K]) & set(t.tolist())) / K for (_, got), t in zip(done, truth, strict=True)
            ]
            res[f"{name}{phase}_p50_ms"], res[f"{name}{phase}_p95_ms"] = _pct(times)
            res[f"{name}{phase}_recall"] = round(float(np.mean(recall)), 4)
    res["query_peak_rss_mib"] = round(peak_rss_mib(), 1)
    return res


# ---- the parent ----------------------------------------------------------------------------


def _run(python: Path | str, args: list[str]) -> dict:
    out = subprocess.run(
        [str(python), "-m", "benchmarks.peers", *args], cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _python_for(system: str) -> Path | str:
    return sys.executable if system.startswith("vidrag") else PEERS_PYTHON


def _versions() -> dict:
    code = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({p: m.version(p) for p in ['chromadb', 'lancedb', 'qdrant-client']}))"
    )
    out = subprocess.run([str(PEERS_PYTHON), "-c", code], capture_output=True, text=True)
    import faiss

    versions = json.loads(out.stdout) if out.returncode == 0 else {}
    return {"faiss": faiss.__version__, **versions}


def main(argv: list[str] | None = None) -> dict:
    """Run the peer comparison, print its tables and save ``results/peers.json``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--datasets", nargs="+", default=["clustered", "uniform"])
    parser.add_argument("--systems", nargs="+", default=SYSTEMS)
    parser.add_argument("--child-truth", help=argparse.SUPPRESS)
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    parser.add_argument("--child-query", help=argparse.SUPPRESS)
    parser.add_argument("--child-commit", help=argparse.SUPPRESS)
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build, disk, peak RSS and vidrag's one-video commit; no queries (no recall, no latency)",
    )
    parser.add_argument(
        "--ef-construction",
        type=int,
        help="vidrag's HNSW build beam for a memory-only run (with --build-only): the index's "
        "size and the writer's memory do not depend on it, its build time and recall do",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="NAME",
        help="print the tables of saved runs (results/<NAME>.json, e.g. parts run side by side) "
        "and save them together as --save-as",
    )
    parser.add_argument("--save-as", default="peers", help="results/<name>.json (saved after every run)")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.ef_construction:  # read by vidrag's build children
        os.environ["VIDRAG_BENCH_EF_CONSTRUCTION"] = str(args.ef_construction)
    if args.child_truth:
        print(json.dumps(truth_child(Path(args.child_truth), args.dataset, args.n)))
        return {}
    if args.child_build:
        print(json.dumps(BUILD[args.system](Path(args.child_build), args.system, args.dataset, args.n)))
        return {}
    if args.child_query:
        res = query_child(Path(args.child_query), args.work, args.system, args.threads, args.concurrency)
        print(json.dumps(res))
        return {}
    if args.child_commit:
        print(json.dumps(commit_vidrag(Path(args.child_commit), args.system, args.dataset, args.n)))
        return {}

    if args.merge:
        return _merge(args.merge, args.save_as)
    peers = [s for s in args.systems if not s.startswith("vidrag")]
    if peers and not PEERS_PYTHON.exists():
        raise SystemExit(f"{PEERS_PYTHON} is missing: run `make bench-peers` (it installs the peers there)")
    runs = []
    versions = _versions()
    for n in args.sizes:
        for dataset in args.datasets:
            with tempfile.TemporaryDirectory(dir=os.environ.get("VIDRAG_BENCH_TMP")) as tmp:
                work = Path(tmp)
                if not args.build_only:
                    _run(sys.executable, ["--child-truth", str(work), "--dataset", dataset, "--n", str(n)])
                for system in args.systems:
                    if system == "qdrant" and n > QDRANT_LOCAL_MAX:
                        print(f"qdrant-client local mode skipped at {n:,} (above {QDRANT_LOCAL_MAX:,})")
                        continue
                    store = work / system
                    common = ["--system", system, "--dataset", dataset, "--n", str(n)]
                    t0 = time.perf_counter()
                    built = _run(_python_for(system), ["--child-build", str(store), *common])
                    built.setdefault("disk_mib", disk_mib(store))
                    queried = {}
                    if not args.build_only:
                        args_q = ["--child-query", str(store), "--work", str(work), *common]
                        queried = _run(_python_for(system), args_q)
                    run = {"system": system, "dataset": dataset, "n": n, **built, **queried}
                    if args.ef_construction:
                        run["ef_construction"] = args.ef_construction
                    if system.startswith("vidrag"):
                        if not args.build_only:
                            run["threads"] = _thread_runs(store, work, common)
                        run.update(_run(sys.executable, ["--child-commit", str(store), *common]))
                    run["wall_s"] = round(time.perf_counter() - t0, 1)
                    run["build_s"] = round(run["build_s"], 1)
                    run["peak_build_rss_mib"] = round(run["peak_build_rss_mib"], 1)
                    runs.append(run)
                    print(json.dumps(run), flush=True)
                    # saved after every run: a run cut short still keeps what it measured
                    save(args.save_as, {"versions": versions, "queries": QUERIES, "k": K, "runs": runs})
                    shutil.rmtree(store, ignore_errors=True)
    for n in args.sizes:
        for dataset in args.datasets:
            _print(n, dataset, [r for r in runs if r["n"] == n and r["dataset"] == dataset], versions)
    result = {"versions": versions, "queries": QUERIES, "k": K, "runs": runs}
    save(args.save_as, result)
    return result


def _merge(names: list[str], save_as: str) -> dict:
    """Print the tables of several saved runs together and save them as one record."""
    from benchmarks.common import RESULTS

    parts = [json.loads((RESULTS / f"{name}.json").read_text()) for name in names]
    runs = [r for p in parts for r in p["runs"]]
    versions = parts[0]["versions"]
    for n in sorted({r["n"] for r in runs}):
        for dataset in dict.fromkeys(r["dataset"] for r in runs):
            _print(n, dataset, [r for r in runs if r["n"] == n and r["dataset"] == dataset], versions)
    result = {"versions": versions, "queries": QUERIES, "k": K, "parts": names, "runs": runs}
    save(save_as, result)
    return result


#: OpenMP threads per search and concurrent callers, beside the main run's 1 and 1
THREAD_RUNS = [(0, 1), (1, 4), (0, 4)]


def _thread_runs(store: Path, work: Path, common: list[str]) -> dict:
    """p50/p95 of vidrag's queries with FAISS's own thread count (0: every core) against one
    thread per search, one caller and four callers at once."""
    out = {}
    for threads, concurrency in THREAD_RUNS:
        args = ["--child-query", str(store), "--work", str(work), *common]
        args += ["--threads", str(threads), "--concurrency", str(concurrency)]
        res = _run(sys.executable, args)
        out[f"omp{threads}_c{concurrency}"] = {k: v for k, v in res.items() if k.endswith("_ms")}
    return out


def _print(n: int, dataset: str, runs: list[dict], versions: dict) -> None:
    if not runs:
        return
    sets = [k.removesuffix("_p95_ms") for k in runs[0] if k.endswith("_p95_ms")]
    rows = []
    for r in runs:
        row = {
            "system": LABELS[r["system"]],
            "build_s": r["build_s"],
            "disk_MB": r["disk_mib"],
            "build_RSS_MB": r["peak_build_rss_mib"],
        }
        for s in sets:
            row[f"{s}_p50"] = r.get(f"{s}_p50_ms")
            row[f"{s}_p95"] = r.get(f"{s}_p95_ms")
            row[f"{s}_recall@10"] = r.get(f"{s}_recall")
        row["query_RSS_MB"] = r.get("query_peak_rss_mib")
        rows.append(row)
    title = f"peers: {n:,} vectors, {dataset} ({', '.join(f'{k} {v}' for k, v in versions.items())})"
    table(title, rows)
    ours = [r for r in runs if r["system"].startswith("vidrag")]
    others = [r for r in runs if not r["system"].startswith("vidrag")]
    ratio_rows = []
    for v in ours:
        for p in others:
            row = {"vidrag / peer": f"{LABELS[v['system']]} / {LABELS[p['system']]}"}
            row["build"] = _ratio(v["build_s"], p["build_s"])
            row["disk"] = _ratio(v["disk_mib"], p["disk_mib"])
            row["build_RSS"] = _ratio(v["peak_build_rss_mib"], p["peak_build_rss_mib"])
            for s in sets:
                row[f"{s}_p95"] = _ratio(v.get(f"{s}_p95_ms"), p.get(f"{s}_p95_ms"))
            ratio_rows.append(row)
    if ratio_rows:
        table(f"ratios vidrag / peer at {n:,} {dataset} (below 1: vidrag uses less)", ratio_rows)
    for v in ours:
        print(f"{LABELS[v['system']]}: one-video commit (100 chunks) {v.get('commit_100_s')} s")
    thread_rows = []
    for v in ours if sets else []:
        variants = {"omp1_c1": {k: v[k] for k in v if k.endswith("_ms")}, **v.get("threads", {})}
        for name, figures in variants.items():
            row = {"system": LABELS[v["system"]], "threads/search": name[3], "callers": name.split("_c")[1]}
            row |= {f"{s}_{q}": figures.get(f"{s}_{q}_ms") for s in sets for q in ("p50", "p95")}
            thread_rows.append(row)
    if thread_rows:
        table(
            f"vidrag query threads at {n:,} {dataset} (threads/search 0: FAISS's default, every core)",
            thread_rows,
        )
    print("MB = MiB; recall@10 against exact inner-product search over the same vectors (FAISS flat)")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


if __name__ == "__main__":
    main(sys.argv[1:])
