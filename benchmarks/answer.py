"""Answer benchmark: the cost of answering outside the LLM, and retrieval quality.

On a real collection (the test lecture, generated with espeak-ng, served on 127.0.0.1
and ingested with real speech recognition, MiniLM and FAISS) it measures:

- the answer overhead outside the LLM: retrieval + prompt + citation checks + storing
  the turn, with the LLM engine talking to an OpenAI-compatible server on 127.0.0.1
  (the LLM call itself is measured and subtracted);
- the whole extractive (no-LLM) answer, which runs entirely in-process;
- a reference run in the same process: embedding the question alone, which every
  answer pays (the ratio shows how much the rest costs on top of it);
- Recall@1/5/10 and MRR of ``tests/data/lecture_qa.jsonl`` on that collection;
- answer quality on the development set (``tests/support/devset.py``: ten generated
  lectures, 180 questions, a tuning and a held-back split), for the captions path (the
  exact text, from a page's captions track) and the speech path (tiny.en by default,
  given the collection's glossary of the course's names, ``--glossary none`` without), with the
  extractive answerer and with an LLM stand-in (an OpenAI-compatible server on
  127.0.0.1 that reads the prompt and quotes the source sentence sharing most words with
  the question, or says the videos do not cover it): Recall@1/5, MRR, keyword accuracy,
  citation hit (first, any), seek accuracy, refusal accuracy, false-refusal rate and how
  far the first citation starts from the supporting sentence; keyword accuracy counts a
  number however it is written ("50" for "fifty"), ``keyword_accuracy_exact`` letter for
  letter; ``answer_p95_ms`` is each path's answer latency with every question asked once.

    python -m benchmarks answer
    python -m benchmarks.answer --repeat 100
    python -m benchmarks.answer --quality-only --paths captions --split tuning

Ingested development collections are cached under ``.pytest_cache/d/vidrag-devset``
(keyed by path, chunk settings and code-independent inputs); ``--fresh`` rebuilds them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
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
from tests.support import devset  # noqa: E402
from tests.support.fake_llm import SOURCE_RE, FakeLLM  # noqa: E402
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


def overhead(args) -> dict:
    """Answer overhead outside the LLM, and retrieval quality on the test lecture."""
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
    return result


CACHE = ROOT / ".pytest_cache" / "d" / "vidrag-devset"
PATHS = ("captions", "speech")
_TIME = re.compile(r"\(at \d+:\d{2}(?::\d{2})?\)\s*")
_CONTENT = re.compile(r"[a-z0-9]+")
_QUESTION_WORDS = {
    "what",
    "which",
    "who",
    "whom",
    "when",
    "where",
    "why",
    "how",
    "many",
    "much",
    "does",
    "did",
}


def _stems(text: str) -> set[str]:
    from vidrag_kernel.overlap import STOPWORDS

    return {w[:5] for w in _CONTENT.findall(text.lower()) if w not in STOPWORDS and w not in _QUESTION_WORDS}


class ReaderLLM(FakeLLM):
    """An LLM stand-in that reads: it quotes the source sentences that share most words
    with the question (citing their source numbers), or says the videos do not cover it
    when no sentence shares half of the question's content words."""

    def compose(self, body: dict) -> str:
        messages = body.get("messages", [])
        prompt = str(messages[-1].get("content", "")) if messages else ""
        question = prompt.rsplit("Question:", 1)[-1]
        asked = _stems(question)
        scored = []
        for m in SOURCE_RE.finditer(prompt.split("\n\nQuestion:")[0]):
            n, text = int(m.group(1)), _TIME.sub("", m.group(2))
            for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
                shared = len(asked & _stems(sentence))
                scored.append((shared, -n, sentence.strip(), n))
        scored.sort(reverse=True)
        if not scored or not asked or scored[0][0] < max(1, len(asked) / 2):
            return "These videos do not cover that."
        best = [s for s in scored if s[0] >= scored[0][0] - 1][:2]
        return " ".join(f"{sentence.rstrip('.')} [{n}]." for _, _, sentence, n in best)


def course_glossary() -> list[str]:
    """The development course's glossary, as its instructor would type it: the names of
    all ten lectures (``benchmarks.transcribe.lecture_glossary``), numbers not included."""
    from benchmarks.transcribe import lecture_glossary

    return list(dict.fromkeys(t for lec in devset.lectures() for t in lecture_glossary(lec)))


def _home_key(path: str, settings_kw: dict, glossary: list[str] | None = None) -> str:
    texts = [[s.text for s in lec.sentences] for lec in devset.lectures()]
    raw = json.dumps([path, sorted(settings_kw.items()), texts], default=str)
    if glossary:
        # keeps the key of collections ingested before glossaries were measured
        raw += json.dumps(glossary)
    return f"{path}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def dev_workbench(
    path: str, root: Path, settings_kw: dict, fresh: bool = False, glossary: list[str] | None = None
):
    """A Workbench whose collection "Course" holds the development lectures, ingested
    through ``path`` (captions or speech; ``glossary``: the collection's, which speech
    recognition is given); returns it, the timed lectures and the video ids."""
    from vidrag_kernel import Workbench
    from vidrag_kernel.settings import Settings

    media = root / f"media-{path}"
    timed = devset.build_media(CACHE / "audio", media)
    home = CACHE / "homes" / _home_key(path, settings_kw, glossary)
    marker = home / "devset.json"
    if fresh and home.exists():
        shutil.rmtree(home)
    settings = Settings.from_env(
        home=home, fetch_allow_hosts=("127.0.0.1",), user="bench", llm_model=None, **settings_kw
    )
    if marker.exists():
        return Workbench(settings), timed, json.loads(marker.read_text())
    if home.exists():
        shutil.rmtree(home)
    server = MediaServer(media)
    try:
        wb = Workbench(settings)
        wb.collections.create("Course", glossary=glossary)
        ids = {}
        t0 = time.perf_counter()
        for lec in timed:
            url = server.url(lec.page if path == "captions" else lec.file)
            mode = "only" if path == "captions" else "never"
            [result] = wb.ingest(url, collection="Course", captions=mode)
            assert result.status == "done", result.error
            ids[lec.file] = result.video_id
        ids["_ingest_seconds"] = round(time.perf_counter() - t0, 1)
    finally:
        server.stop()
    marker.write_text(json.dumps(ids))
    return wb, timed, ids


def run_questions(wb, timed, ids: dict, questions) -> list[dict]:
    """Each question's retrieval rank and answer measures."""
    from vidrag_kernel.evaluate import answer_measures, first_hit, parse_item

    by_id = {lec.id: lec for lec in timed}
    scope = wb.retriever.scope("Course")
    lookup = {k: v for k, v in ids.items() if not k.startswith("_")}
    rows = []
    for q in questions:
        raw = {"question": q.question, "keywords": q.keywords, "answerable": q.answerable}
        if q.answerable:
            raw["expected"] = devset.spans(q, by_id)
        item = parse_item(raw)
        row = {"id": q.id, "split": q.split, "kind": q.kind}
        if item.spans:
            hits = wb.retriever.retrieve(item.question, scope, 10, merge=False).hits
            row["rank"] = first_hit(hits, item.spans, lookup)
        answer = wb.ask(item.question, "Course", save=False)
        row.update(answer_measures(item, answer, lookup))
        first = answer.citations[0] if answer.citations and not answer.no_answer else None
        row["first_citation"] = None if first is None else [first.video_id[:8], first.start, first.end]
        row["answer"] = answer.text
        row["assessment"] = answer.trace.get("assessment")
        row["related"] = [[c.video_id, c.start, c.end, c.quote] for c in answer.related]
        row["citations"] = [[c.video_id, c.start, c.end, c.quote] for c in answer.citations]
        row["latency_ms"] = answer.latency_ms
        rows.append(row)
    return rows


def quality_figures(rows: list[dict]) -> dict:
    from vidrag_kernel.evaluate import retrieval_metrics, summarize_answers

    r = retrieval_metrics([row["rank"] for row in rows if "rank" in row])
    a = summarize_answers(rows)
    cross = [row for row in rows if row.get("videos_wanted", 0) > 1]
    return {
        "questions": len(rows),
        "recall@1": round(r["recall@1"], 4),
        "recall@5": round(r["recall@5"], 4),
        "mrr": round(r["mrr"], 4),
        **{k: v for k, v in a.items() if k not in ("answerable", "unanswerable")},
        "cross_both_videos": round(
            sum(row["videos_cited"] == row["videos_wanted"] for row in cross) / len(cross), 4
        )
        if cross
        else None,
        # each question asked once, so sentence vectors are mostly new: the cold cost
        "answer_p95_ms": round(_pct([row["latency_ms"] for row in rows], 0.95), 1),
    }


def quality(args) -> dict:
    """The development-set figures for every path, answerer and split asked for."""
    settings_kw = {}
    if args.whisper_model:
        settings_kw["whisper_model"] = args.whisper_model
    if args.chunk_tokens:
        settings_kw.update(chunk_tokens=args.chunk_tokens, chunk_min_tokens=min(16, args.chunk_tokens // 4))
        settings_kw.update(chunk_overlap_tokens=args.chunk_overlap)
    splits = devset.SPLITS if args.split == "both" else (args.split,)
    questions = [q for q in devset.questions() if q.split in splits]
    table_rows, per_question = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.paths.split(","):
            # the glossary only changes what speech recognition hears; captions are exact
            glossary = course_glossary() if path == "speech" and args.glossary == "course" else None
            wb, timed, ids = dev_workbench(path, Path(tmp), settings_kw, args.fresh, glossary)
            answerers = [("extractive", wb)]
            llm = None
            if not args.no_llm:
                llm = ReaderLLM()
                llm_wb = type(wb)(
                    wb.settings.with_(
                        llm_model="openai/reader", llm_api_base=llm.api_base, llm_api_key="x", llm_retries=0
                    )
                )
                answerers.append(("llm stand-in", llm_wb))
            try:
                for name, w in answerers:
                    rows = run_questions(w, timed, ids, questions)
                    per_question[f"{path}/{name}"] = rows
                    for split in splits:
                        figures = quality_figures([r for r in rows if r["split"] == split])
                        label = f"{path}+glossary" if glossary else path
                        table_rows.append({"path": label, "answerer": name, "split": split, **figures})
            finally:
                if llm is not None:
                    llm_wb.close()
                    llm.stop()
                wb.close()
    table("answer quality on the development set", table_rows)
    return {"figures": table_rows, "settings": settings_kw, "per_question": per_question}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks.answer")
    parser.add_argument("--repeat", type=int, default=40, help="answers per measure")
    parser.add_argument("--quality-only", action="store_true", help="only the development-set figures")
    parser.add_argument("--no-quality", action="store_true", help="only the overhead figures")
    parser.add_argument("--paths", default="captions,speech", help="captions, speech or both (comma)")
    parser.add_argument("--split", default="both", choices=["tuning", "heldback", "both"])
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM stand-in")
    parser.add_argument("--fresh", action="store_true", help="ingest the development lectures again")
    parser.add_argument(
        "--glossary",
        default="course",
        choices=["course", "none"],
        help="speech path: the collection's glossary (the course's names) or none",
    )
    parser.add_argument("--whisper-model", default="", help="speech model (default: the setting's)")
    parser.add_argument("--chunk-tokens", type=int, default=0, help="chunk size (default: the setting's)")
    parser.add_argument("--chunk-overlap", type=int, default=0, help="with --chunk-tokens: overlap")
    parser.add_argument("--save-as", default="answer", help="name of the JSON under benchmarks/results/")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv or [])
    result: dict = {}
    if not args.quality_only:
        result.update(overhead(args))
    if not args.no_quality:
        result["dev_quality"] = quality(args)
    save(args.save_as, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
