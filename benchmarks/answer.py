"""Answer benchmark: the cost of answering outside the LLM, and retrieval quality.

On a real collection (the test lecture, generated with espeak-ng, served on 127.0.0.1
and ingested with real speech recognition, MiniLM and FAISS) it measures:

- the answer overhead outside the LLM: retrieval + prompt + citation checks + storing
  the turn, with the LLM engine talking to an OpenAI-compatible server on 127.0.0.1
  (the LLM call itself is measured and subtracted);
- the whole extractive (no-LLM) answer, which runs entirely in-process;
- a reference run in the same process: embedding the question alone, which every
  answer pays (the ratio shows how much the rest costs on top of it);
- Recall@1/5/10 and MRR of ``tests/data/lecture_qa.jsonl`` on that collection.

    python -m benchmarks answer
    python -m benchmarks.answer --repeat 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import peak_rss_mib, save, table  # noqa: E402
from tests.support.fake_llm import FakeLLM  # noqa: E402
from tests.support.media_server import MediaServer  # noqa: E402
from tests.support.speech import LECTURE, encode, speak  # noqa: E402

QA = ROOT / "tests" / "data" / "lecture_qa.jsonl"
QUESTIONS = [
    "How do plants make sugar from light?",
    "When did Parisians attack the old prison?",
    "How was the French monarch put to death?",
    "How many comparisons does binary search need?",
    "Where inside the plant cell does this process take place?",
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(name: str, values: list[float]) -> dict:
    return {
        "measure": name,
        "p50_ms": round(_pct(values, 0.5), 2),
        "p95_ms": round(_pct(values, 0.95), 2),
        "mean_ms": round(statistics.fmean(values), 2),
        "runs": len(values),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="benchmarks.answer")
    parser.add_argument("--repeat", type=int, default=40, help="answers per measure")
    args = parser.parse_args(argv or [])

    from vidrag_kernel import Workbench
    from vidrag_kernel.embed import get_embedder
    from vidrag_kernel.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media = root / "media"
        lecture = speak(LECTURE, media / "lecture.wav")
        encode(lecture.wav, media / "lecture.m4a")
        server = MediaServer(media)
        llm = FakeLLM()
        try:
            settings = Settings.from_env(
                home=root / "home",
                fetch_allow_hosts=("127.0.0.1",),
                user="bench",
                chunk_tokens=40,
                chunk_min_tokens=8,
                chunk_overlap_tokens=0,
                llm_model=None,
            )
            wb = Workbench(settings)
            wb.collections.create("Lectures")
            t0 = time.perf_counter()
            [result] = wb.ingest(server.url("lecture.m4a"), collection="Lectures", captions="never")
            ingest_s = time.perf_counter() - t0
            assert result.status == "done", result.error

            embedder = get_embedder(settings)
            for q in QUESTIONS:  # warm up models and caches before any clock starts
                wb.ask(q, "Lectures", save=False)
            reference = []
            for i in range(args.repeat):
                t = time.perf_counter()
                embedder.embed_query(QUESTIONS[i % len(QUESTIONS)] + f" {i}")
                reference.append((time.perf_counter() - t) * 1000)

            extractive, extractive_retrieve = [], []
            for i in range(args.repeat):
                a = wb.ask(QUESTIONS[i % len(QUESTIONS)], "Lectures", save=False)
                extractive.append(a.latency_ms)
                extractive_retrieve.append(a.trace["timings"]["retrieve_ms"])

            llm_wb = Workbench(
                settings.with_(
                    llm_model="openai/bench", llm_api_base=llm.api_base, llm_api_key="x", llm_retries=0
                )
            )
            llm_wb.ask(QUESTIONS[0], "Lectures", save=False)
            overhead, retrieve, checks, llm_call = [], [], [], []
            conv = None
            for i in range(args.repeat):
                t0 = time.perf_counter()
                a = llm_wb.ask(QUESTIONS[i % len(QUESTIONS)], "Lectures", conversation=conv)
                wall = (time.perf_counter() - t0) * 1000
                conv = a.conversation_id if (i + 1) % 5 else None  # five-turn conversations, with history
                t = a.trace["timings"]
                # everything the caller waits for (storing the turn included) except the LLM call
                overhead.append(wall - t["generate_ms"])
                retrieve.append(t["retrieve_ms"])
                checks.append(t["check_ms"])
                llm_call.append(t["generate_ms"])
            llm_wb.close()

            report = wb.evaluate(str(QA), "Lectures")
        finally:
            llm.stop()
            server.stop()

    rows = [
        _summary("reference: embed question", reference),
        _summary("overhead outside LLM (total)", overhead),
        _summary("  retrieve (embed+FAISS+BM25+merge)", retrieve),
        _summary("  citation checks", checks),
        _summary("LLM call (fake server, 127.0.0.1)", llm_call),
        _summary("extractive answer (whole)", extractive),
        _summary("  extractive: retrieve", extractive_retrieve),
    ]
    ref = rows[0]["p50_ms"] or 1.0
    for r in rows:
        r["x_ref_p50"] = round(r["p50_ms"] / ref, 2)
    table("answer overhead (ms)", rows)
    r, a = report.retrieval, report.answers
    quality = [
        {
            "qa_set": QA.name,
            "questions": report.questions,
            "recall@1": r["recall@1"],
            "recall@5": r["recall@5"],
            "recall@10": r["recall@10"],
            "mrr": round(r["mrr"], 4),
            "answer_accuracy": a["accuracy"],
        }
    ]
    table("retrieval quality on the test lecture", quality)
    result = {
        "timings": rows,
        "quality": quality[0],
        "target_overhead_p95_ms": 100,
        "overhead_p95_ms": rows[1]["p95_ms"],
        "ingest_seconds": round(ingest_s, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "per_question": report.items,
    }
    save("answer", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
