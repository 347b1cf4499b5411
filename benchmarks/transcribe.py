"""Speech models side by side: word error rate and speed of tiny.en against base.

On the development set's generated lectures (``tests/support/devset.py``: espeak-ng, one
sentence at a time, so the reference text is exact), each model transcribes every lecture
through vidrag's own transcriber (batched, VAD on, the same threads), after a warm-up
that loads the model. Reported per model: WER over all lectures and per split, the share
of the lectures' names and numbers heard right, and speed as audio seconds per wall
second (model load excluded). ``base`` needs ``pip install 'vidrag[multilingual]'``.

``--glossary``: each model runs once per way of giving it a course glossary (none,
``hotwords``, ``prompt``, ``both``; see ``vidrag_kernel.transcribe.faster.glossary_options``),
each lecture with a glossary made from its own names (``lecture_glossary``), as an
instructor would list them. Names are then reported apart from numbers (numbers are in
no glossary, so they show what the hint costs elsewhere).

    python -m benchmarks transcribe
    python -m benchmarks.transcribe --models tiny.en base --threads 2
    python -m benchmarks.transcribe --models tiny.en --glossary
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


def lecture_glossary(lec) -> list[str]:
    """A lecture's glossary: its names (capitalised words not starting a sentence, and
    runs of them such as "Alessandro Volta"), spelled as in the script."""
    terms: list[str] = []
    for sentence in (s.text for s in lec.sentences):
        run: list[str] = []
        for i, word in enumerate(sentence.split() + [""]):
            bare = word.strip(".,;:?!\"'()")
            if i > 0 and bare[:1].isupper() and bare[1:].islower():
                run.append(bare)
                continue
            if run:
                terms.append(" ".join(run))
            run = []
    return list(dict.fromkeys(terms))


def _heard(wanted: set[str], hypothesis: str) -> int:
    return sum(1 for t in wanted if re.search(rf"\b{re.escape(t)}\b", hypothesis))


def run(models: list[str], threads: int, modes: list[str | None] = (None,)) -> list[dict]:
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
        for mode in modes:
            if mode is not None:
                transcriber.glossary_as = mode
            audio = wall = 0.0
            refs: dict[str, list[str]] = {split: [] for split in devset.SPLITS}
            hyps: dict[str, list[str]] = {split: [] for split in devset.SPLITS}
            terms = heard = names = names_heard = numbers = numbers_heard = 0
            for lec in lectures:
                glossary = lecture_glossary(lec) if mode is not None else None
                start = time.perf_counter()
                if glossary:
                    transcript = transcriber.transcribe(media / lec.file, glossary=glossary)
                else:
                    transcript = transcriber.transcribe(media / lec.file)
                wall += time.perf_counter() - start
                audio += transcript.duration
                reference = " ".join(s.text for s in lec.sentences)
                hypothesis = normalise(" ".join(s.text for s in transcript.segments))
                refs[lec.split].append(normalise(reference))
                hyps[lec.split].append(hypothesis)
                wanted = key_terms(reference)
                digits = {t for t in wanted if t.isdigit()}
                terms += len(wanted)
                heard += _heard(wanted, hypothesis)
                names, names_heard = (
                    names + len(wanted - digits),
                    names_heard + _heard(wanted - digits, hypothesis),
                )
                numbers, numbers_heard = numbers + len(digits), numbers_heard + _heard(digits, hypothesis)
            every_ref = [r for split in devset.SPLITS for r in refs[split]]
            every_hyp = [h for split in devset.SPLITS for h in hyps[split]]
            row = {
                "model": name,
                **({"glossary": mode or "none"} if modes != (None,) else {}),
                "wer": round(jiwer.wer(every_ref, every_hyp), 3),
                **{f"wer {s}": round(jiwer.wer(refs[s], hyps[s]), 3) for s in devset.SPLITS if refs[s]},
                "names+numbers heard": round(heard / terms, 3) if terms else None,
                "names heard": round(names_heard / names, 3) if names else None,
                "numbers heard": round(numbers_heard / numbers, 3) if numbers else None,
                "audio s": round(audio, 1),
                "audio s / wall s": round(audio / wall, 2) if wall else None,
            }
            print(row, flush=True)  # a long run shows each row as it ends
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--glossary",
        action="store_true",
        help="each model without and with each lecture's glossary (hotwords, prompt, both)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    modes = [None, "hotwords", "prompt", "both"] if args.glossary else (None,)
    rows = run(args.models, args.threads, modes)
    title = "with and without a course glossary" if args.glossary else ""
    table(f"Speech models on the development set {title} ({args.threads} threads)", rows)
    save("transcribe-glossary" if args.glossary else "transcribe", {"threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main(sys.argv[1:])
