"""The answer-quality development set: ten generated lectures and their questions.

``tests/data/devset/lectures.json`` holds each lecture's sentences with the time espeak-ng
speaks them (one sentence at a time, joined with a fixed pause, see ``speech.speak``);
``tests/data/devset/questions.jsonl`` holds the questions, each with the sentence(s) that
answer it (``support``: lecture id and sentence number), or ``"answerable": false`` and
the lecture whose topic it is about.

Splits are fixed by lecture: circuits, antibiotics, oceans, printing, telescopes and
clocks are the tuning split; tectonics, bread, bees and railways are held back (never tuned
on). Telescopes and bees were added later, with four on-topic unanswerable questions each
(a name, number, date or place the lecture does not give, about something it does
discuss); clocks and railways later still, with five each, added to make the refusal
figures less thin before tuning them. A question belongs to the split of its lectures; no
question spans both splits. Every collection built from the set holds all ten lectures,
so each split's questions see the other lectures as distractors.

Audio is generated at test or benchmark time and cached (keyed by the text, voice and
espeak-ng version), never committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.speech import Lecture, Spoken, encode, speak

DATA = Path(__file__).resolve().parents[1] / "data" / "devset"
SPLITS = ("tuning", "heldback")
SEEK_TOLERANCE = 5.0  # seconds: a citation that starts this close to its sentence seeks right


@dataclass
class DevLecture:
    id: str
    title: str
    split: str
    sentences: list[Spoken]

    @property
    def file(self) -> str:
        return f"{self.id}.m4a"

    @property
    def page(self) -> str:
        return f"{self.id}.html"


@dataclass
class DevQuestion:
    id: str
    split: str
    kind: str
    question: str
    #: (lecture id, sentence number) of every supporting sentence
    support: list[tuple[str, int]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    answerable: bool = True
    topic: str | None = None

    @property
    def lectures(self) -> list[str]:
        return sorted({lec for lec, _ in self.support} or {self.topic})


def lectures() -> list[DevLecture]:
    raw = json.loads((DATA / "lectures.json").read_text())
    return [DevLecture(r["id"], r["title"], r["split"], [Spoken(**s) for s in r["sentences"]]) for r in raw]


def questions(split: str | None = None) -> list[DevQuestion]:
    out = []
    for line in (DATA / "questions.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        q = DevQuestion(
            r["id"],
            r["split"],
            r["kind"],
            r["question"],
            [tuple(s) for s in r.get("support", [])],
            r.get("keywords", []),
            r.get("answerable", True),
            r.get("topic"),
        )
        if split is None or q.split == split:
            out.append(q)
    return out


def spans(q: DevQuestion, by_id: dict[str, DevLecture]) -> list[dict]:
    """The supporting sentences as evaluation spans (video file, start, end)."""
    return [
        {
            "video": by_id[lec].file,
            "start": by_id[lec].sentences[i].start,
            "end": by_id[lec].sentences[i].end,
        }
        for lec, i in q.support
    ]


def _espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_media(cache: Path, out: Path, wanted: list[DevLecture] | None = None) -> list[DevLecture]:
    """Write each lecture as ``<id>.m4a``, ``<id>.vtt`` and a page ``<id>.html`` (a video
    with a captions track) into ``out``; speech is generated once into ``cache``.

    Returns the lectures with the times measured on the generated audio (equal to the
    stored ones with the espeak-ng the set was made with).
    """
    version = _espeak_version()
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    result = []
    for lec in wanted or lectures():
        texts = [s.text for s in lec.sentences]
        key = hashlib.sha256(json.dumps([version, texts]).encode()).hexdigest()[:16]
        audio, times = cache / f"{lec.id}-{key}.m4a", cache / f"{lec.id}-{key}.json"
        if not (audio.exists() and times.exists()):
            spoken = speak(texts, cache / f"{lec.id}-{key}.wav")
            encode(spoken.wav, audio)
            spoken.wav.unlink()
            spoken.dump(times)
        sentences = [Spoken(**s) for s in json.loads(times.read_text())]
        timed = DevLecture(lec.id, lec.title, lec.split, sentences)
        shutil.copyfile(audio, out / lec.file)
        (out / f"{lec.id}.vtt").write_text(Lecture(out / lec.file, sentences, 0.0).vtt())
        (out / lec.page).write_text(
            f"<!doctype html><html><head><title>{lec.title}</title></head><body><h1>{lec.title}</h1>"
            f'<video controls src="{lec.file}"><track kind="captions" srclang="en" label="English" '
            f'src="{lec.id}.vtt" default></video></body></html>'
        )
        result.append(timed)
    return result


def answer_rows(
    wb, questions: list[DevQuestion], timed: list[DevLecture], video_ids: dict[str, str]
) -> list[dict]:
    """Ask each question of the collection "Course" (not saved) and measure the answer
    (``evaluate.answer_measures``); ``video_ids`` maps lecture ids to video ids."""
    from vidrag_kernel.evaluate import answer_measures, parse_item

    by_id = {lec.id: lec for lec in timed}
    lookup = {by_id[lid].file: vid for lid, vid in video_ids.items()}
    rows = []
    for q in questions:
        raw = {"question": q.question, "keywords": q.keywords, "answerable": q.answerable}
        if q.answerable:
            raw["expected"] = spans(q, by_id)
        item = parse_item(raw)
        answer = wb.ask(item.question, "Course", save=False)
        rows.append({"id": q.id, "split": q.split, "kind": q.kind, **answer_measures(item, answer, lookup)})
    return rows
