"""Batch-ingest helpers shared by tests/test_batch.py and tests/test_gateway.py: generated
lectures, and what a collection holds, compared between two runs (serial and fanned out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from tests.support.speech import encode, speak

# three short lectures far apart in topic, each long enough that a worker can be killed
# while it transcribes one
TOPICS = [
    [
        "Today we study volcanoes.",
        "Magma rises from the mantle through cracks in the crust.",
        "When the pressure is too high the volcano erupts and lava flows down its sides.",
        "Ash clouds can travel thousands of kilometres and ground aeroplanes.",
        "Volcanic soil is very fertile, which is why farmers live near volcanoes.",
    ],
    [
        "Today we study the violin.",
        "A violin has four strings tuned in fifths.",
        "The player draws a bow of horse hair across the strings to make them vibrate.",
        "The hollow wooden body makes the sound louder and gives it warmth.",
        "Famous violins were made by Stradivari in the seventeenth century.",
    ],
    [
        "Today we study compound interest.",
        "Interest is paid on the money you saved and on the interest it already earned.",
        "Over many years the balance grows faster and faster, like a snowball.",
        "The rule of seventy two says how many years it takes for money to double.",
        "Banks publish the annual percentage rate so that offers can be compared.",
    ],
]


def make_lectures(folder: Path, work: Path, topics: list[list[str]] = TOPICS) -> Path:
    """One m4a lecture per topic in ``folder`` (espeak-ng speech, about 25 seconds each)."""
    for i, sentences in enumerate(topics):
        spoken = speak(sentences, work / f"lecture{i}.wav")
        encode(spoken.wav, folder / f"lecture{i}.m4a")
    return folder


def contents(wb, collection: str) -> dict:
    """What a collection holds, with nothing that differs between two homes (ids of
    videos are random, but chunk ids are derived from them: compare by source key)."""
    from vidrag_kernel.catalog import Chunk, Segment, Video
    from vidrag_kernel.indexing import open_index

    cid = wb.collections.get(collection).id
    out = {}
    reader = open_index(wb.ctx, cid).reader()
    with wb.ctx.catalog.session() as s:
        for v in wb.videos.list(cid):
            row = s.get(Video, v.id)
            chunks = s.scalars(select(Chunk).where(Chunk.video_id == v.id).order_by(Chunk.index)).all()
            segments = s.scalars(
                select(Segment).where(Segment.video_id == v.id).order_by(Segment.start)
            ).all()
            ids, vectors = reader.vectors(np.array([c.vector_id for c in chunks], dtype=np.int64))
            assert sorted(ids.tolist()) == sorted(c.vector_id for c in chunks)
            by_id = dict(zip(ids.tolist(), vectors, strict=True))
            out[row.source_key] = {
                "title": row.title,
                "status": row.status,
                "duration": round(row.duration or 0, 2),
                "transcript_source": row.transcript_source,
                "segments": [(round(g.start, 2), round(g.end, 2), g.text) for g in segments],
                "chunks": [(c.index, round(c.start, 2), round(c.end, 2), c.text) for c in chunks],
                "vectors": np.array([by_id[c.vector_id] for c in chunks]),
            }
        out["_index_size"] = len(reader)
    return out


def same(a: dict, b: dict) -> None:
    import jiwer

    assert a.keys() == b.keys()
    for key in a:
        if key == "_index_size":
            assert a[key] == b[key]
            continue
        va, vb = dict(a[key]), dict(b[key])
        vectors_a, vectors_b = va.pop("vectors"), vb.pop("vectors")
        # the same words in the same passages. Speech recognition is not bitwise
        # reproducible: CTranslate2 on Intel MKL may round differently from run to run, in
        # one process as in two (OpenNMT/CTranslate2#693), and even on this AMD machine
        # (oneDNN) a clean-clone CI run at load gave the same words with one sentence end
        # 0.12 s apart (11.23 against 11.35). A CI run elsewhere saw more than 3 words of
        # these 60-word lectures differ. So the same words must have times within half a
        # second, other words must agree to within 15 % WER, and every passage with the
        # same words must have the same vector (what the workers hand over is intact)
        for part in ("segments", "chunks"):
            pa, pb = va.pop(part), vb.pop(part)
            texts_a, texts_b = [p[-1] for p in pa], [p[-1] for p in pb]
            if texts_a == texts_b:
                times_a = np.array([p[-3:-1] for p in pa], dtype=float)
                times_b = np.array([p[-3:-1] for p in pb], dtype=float)
                np.testing.assert_allclose(times_a, times_b, atol=0.5)
            else:
                wer = jiwer.wer(" ".join(texts_a), " ".join(texts_b))
                assert wer <= 0.15, (key, part, wer, texts_a, texts_b)
            if part == "chunks":
                same = [i for i, (x, y) in enumerate(zip(texts_a, texts_b, strict=False)) if x == y]
                assert same, (key, "no passage came out the same")
                np.testing.assert_allclose(vectors_a[same], vectors_b[same], atol=1e-5)
        assert va == vb, key
