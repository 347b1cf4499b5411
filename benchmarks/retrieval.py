"""Retrieval benchmark: the collection index at 10k, 100k and 1M chunks.

Synthetic but shaped like the real thing: 384-d unit vectors with a low intrinsic
dimension and topic clusters (as sentence embeddings have; uniformly random 384-d
vectors have no near neighbours and would make any approximate index look broken),
and chunk texts of about 60 words drawn from a Zipf vocabulary whose commonest words
are the 179 English stopwords (about 60% of the words, as in speech).

Each size runs in two child processes, so each peak RSS is its own: one builds the
index through ``CollectionIndex.writer()`` (build time, build peak RSS), one opens a
reader and times ~200 dense, lexical and fused (both side by side with
``IndexReader.hybrid``, as retrieval runs them) queries, unfiltered and with an allowed-id filter of 1% of the ids, and measures
recall@10 of the index against exact search (the reference run, in the same process).

    python -m benchmarks retrieval
    python -m benchmarks.retrieval --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import peak_rss_mib, save, table  # noqa: E402

DIM = 384
LATENT = 48
TOPICS = 4096
VOCAB = 40_000
WORDS_PER_CHUNK = 60
QUERIES = 200
#: the hnsw_threshold recommended for Settings (see the report in the module docstring)
THRESHOLD = 50_000
BATCH = 50_000


def _basis() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, LATENT)))
    topics = rng.standard_normal((TOPICS, LATENT))
    return basis.T.astype(np.float32), topics.astype(np.float32)


def vectors(start: int, n: int) -> np.ndarray:
    """Rows ``start..start+n`` of the synthetic corpus (deterministic per row block)."""
    basis, topics = _basis()
    rng = np.random.default_rng(1000 + start)
    latent = topics[rng.integers(0, TOPICS, n)] + 0.6 * rng.standard_normal((n, LATENT)).astype(np.float32)
    x = latent @ basis + 0.03 * rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _words() -> np.ndarray:
    """The vocabulary by frequency rank: English stopwords first, then made-up words."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    rng = np.random.default_rng(11)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made_up = [
        "".join(rng.choice(letters, rng.integers(4, 10))) for _ in range(VOCAB - len(STOPWORDS_EN_PLUS))
    ]
    return np.array([*STOPWORDS_EN_PLUS, *made_up])


def _zipf(rng: np.random.Generator, size: int) -> np.ndarray:
    # Zipf over the vocabulary, exponent 1.07: the 179 stopwords make about 40% of the
    # words, and the commonest remaining words still occur in a large share of chunks
    ranks = np.arange(1, VOCAB + 1)
    p = ranks**-1.07
    return rng.choice(VOCAB, size=size, p=p / p.sum())


def texts(start: int, n: int, words: np.ndarray) -> list[str]:
    rng = np.random.default_rng(2000 + start)
    picks = words[_zipf(rng, n * WORDS_PER_CHUNK)].reshape(n, WORDS_PER_CHUNK)
    return [" ".join(row) for row in picks]


def chunk_ids(start: int, n: int) -> np.ndarray:
    # ids are hashes in production, not positions: spread them over the int64 range
    return (np.arange(start, start + n, dtype=np.int64) * 2654435761 + 12345) % (2**62)


def build_child(root: Path, n: int, threshold: int) -> dict:
    from vidrag_kernel.index import CollectionIndex

    words = _words()
    t_data = 0.0
    index = CollectionIndex(root, hnsw_threshold=threshold)
    t0 = time.perf_counter()
    with index.writer() as writer:
        for start in range(0, n, BATCH):
            m = min(BATCH, n - start)
            t = time.perf_counter()
            v, tx, ids = vectors(start, m), texts(start, m, words), chunk_ids(start, m)
            t_data += time.perf_counter() - t
            writer.add(ids, v, tx)
        t_commit = time.perf_counter()
        writer.commit()
        commit = time.perf_counter() - t_commit
    build = time.perf_counter() - t0 - t_data
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return {
        "build_s": round(build, 1),
        "commit_s": round(commit, 1),
        "data_gen_s": round(t_data, 1),
        "disk_mib": round(size / 2**20, 1),
        "kind": index.manifest()["kind"],
        "build_peak_rss_mib": round(peak_rss_mib(), 1),
    }


def _pct(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return round(float(np.percentile(a, 50)), 2), round(float(np.percentile(a, 95)), 2)


def query_child(root: Path, n: int) -> dict:
    import faiss

    from vidrag_kernel.index import CollectionIndex

    index = CollectionIndex(root)
    t0 = time.perf_counter()
    reader = index.reader()
    load = time.perf_counter() - t0
    rss_loaded = peak_rss_mib()
    rng = np.random.default_rng(5)
    rows = rng.integers(0, n, QUERIES)
    words = _words()
    ids, stored = reader.vectors(reader.ids())
    # queries near real chunks, as a question is near the passage that answers it
    q = stored[np.sort(rows)] + 0.05 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    qtexts = [" ".join(rng.choice(words[_zipf(rng, 40)], 4, replace=False)) for _ in range(QUERIES)]
    # fused queries are fresh ones: re-running a dense or lexical query would find its pages
    # of the memory-mapped index already in memory and look faster than a new question
    rows2 = rng.integers(0, n, QUERIES)
    q2 = stored[np.sort(rows2)] + 0.05 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    q2 = (q2 / np.linalg.norm(q2, axis=1, keepdims=True)).astype(np.float32)
    qtexts2 = [" ".join(rng.choice(words[_zipf(rng, 40)], 4, replace=False)) for _ in range(QUERIES)]
    allowed = np.asarray(rng.choice(np.asarray(ids), max(1, n // 100), replace=False), dtype=np.int64)

    # reference run: exact inner product over the same vectors, in this process
    flat = faiss.IndexFlatIP(DIM)
    for s in range(0, n, BATCH):
        flat.add(np.ascontiguousarray(stored[s : s + BATCH]))
    exact_t = []
    for i in range(QUERIES):
        t = time.perf_counter()
        flat.search(q[i : i + 1], 10)
        exact_t.append(time.perf_counter() - t)
    _, truth = flat.search(q, 10)
    truth_ids = np.asarray(ids)[truth]
    del flat

    res: dict = {"load_s": round(load, 2), "reader_rss_mib": round(rss_loaded, 1)}
    res["exact_p50_ms"], res["exact_p95_ms"] = _pct(exact_t)
    for label, allow in (("", None), ("_1pct", allowed)):
        # warm-up: the first queries page in the memory-mapped files
        for i in range(5):
            reader.dense(q[i], 10, allow)
            reader.lexical(qtexts[i], 10, allow)
        dense_t, lex_t, fused_t, recall = [], [], [], []
        for i in range(QUERIES):
            t = time.perf_counter()
            hits = reader.dense(q[i], 40, allow)
            t1 = time.perf_counter()
            reader.lexical(qtexts[i], 40, allow)
            t2 = time.perf_counter()
            dense_t.append(t1 - t)
            lex_t.append(t2 - t1)
            if allow is None:
                got = {h for h, _ in hits[:10]}
                recall.append(len(got & set(truth_ids[i].tolist())) / 10)
        for i in range(QUERIES):
            t = time.perf_counter()
            reader.hybrid(q2[i], qtexts2[i], 40, allow)  # both halves side by side, as retrieval runs them
            fused_t.append(time.perf_counter() - t)
        res[f"dense{label}_p50_ms"], res[f"dense{label}_p95_ms"] = _pct(dense_t)
        res[f"lexical{label}_p50_ms"], res[f"lexical{label}_p95_ms"] = _pct(lex_t)
        res[f"fused{label}_p50_ms"], res[f"fused{label}_p95_ms"] = _pct(fused_t)
        if recall:
            res["recall_at_10"] = round(float(np.mean(recall)), 4)
    res["query_peak_rss_mib"] = round(peak_rss_mib(), 1)
    return res


def _child(args: list[str]) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.retrieval", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result[args[0].removeprefix("--child-") + "_wall_s"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: list[str] | None = None) -> dict:
    """Run the retrieval benchmark, print its table and save ``results/retrieval.json``."""
    import faiss

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--threshold", type=int, default=THRESHOLD)
    parser.add_argument("--keep", type=Path, help="build the indexes here and keep them")
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    parser.add_argument("--child-query", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.child_build:
        print(json.dumps(build_child(Path(args.child_build), args.n, args.threshold)))
        return {}
    if args.child_query:
        print(json.dumps(query_child(Path(args.child_query), args.n)))
        return {}

    runs = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("VIDRAG_BENCH_TMP")) as tmp:
            root = (args.keep / str(n) if args.keep else Path(tmp)) / "index"
            built = _child(["--child-build", str(root), "--n", str(n), "--threshold", str(args.threshold)])
            queried = _child(["--child-query", str(root), "--n", str(n)])
        runs.append({"chunks": n, **built, **queried})
        print(f"{n} chunks: {json.dumps(runs[-1])}", flush=True)
    rows = [
        {
            "chunks": r["chunks"],
            "kind": r["kind"],
            "build_s": r["build_s"],
            "disk_MiB": r["disk_mib"],
            "dense_p50": r["dense_p50_ms"],
            "dense_p95": r["dense_p95_ms"],
            "lex_p50": r["lexical_p50_ms"],
            "lex_p95": r["lexical_p95_ms"],
            "fused_p95": r["fused_p95_ms"],
            "exact_p95": r["exact_p95_ms"],
            "dense1%_p95": r["dense_1pct_p95_ms"],
            "lex1%_p95": r["lexical_1pct_p95_ms"],
            "fused1%_p95": r["fused_1pct_p95_ms"],
            "recall@10": r.get("recall_at_10"),
            "build_rss_MiB": r["build_peak_rss_mib"],
            "reader_rss_MiB": r["query_peak_rss_mib"],
        }
        for r in runs
    ]
    table(f"retrieval (latency in ms; faiss {faiss.__version__}, hnsw_threshold {args.threshold})", rows)
    print(
        "exact = IndexFlatIP over the same vectors (reference run, same process); recall@10 of the "
        "index against it; 1% = allowed-id filter of 1% of the ids; fused = dense and lexical run side by side (IndexReader.hybrid, as retrieval does)"
    )
    from vidrag_kernel.index import dense

    result = {
        "faiss": faiss.__version__,
        "hnsw_threshold": args.threshold,
        "hnsw": dense.hnsw_params(),
        "queries": QUERIES,
        "runs": runs,
    }
    save("retrieval", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
