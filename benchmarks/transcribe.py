"""Speech models side by side: word error rate and speed of tiny.en against base.

On the development set's generated lectures (``tests/support/devset.py``: espeak-ng, one
sentence at a time, so the reference text is exact), each model transcribes every lecture
through vidrag's own transcriber (batched, VAD on, the same threads), after a warm-up
that loads the model. Reported per model: WER over all lectures and per split, the share
of the lectures' names and numbers heard right, and speed as audio seconds per wall
second and per CPU second of all decoding threads (model load excluded; the CPU figure is
the one to compare when other work shares the cores, and ``load`` says how much did).
``--split tuning`` runs the tuning lectures only (tune there, report ``heldback``);
``--beam``, ``--batch-size`` (1: the sequential decoder), ``--no-vad`` and ``--option
KEY=JSON`` (any faster-whisper option, e.g. ``temperature=0``) vary the decoding.

``--glossary``: each model runs once per way of giving it a course glossary (none,
``hotwords``, ``prompt``, ``both``; see ``vidrag_kernel.transcribe.faster.glossary_options``),
each lecture with a glossary made from its own names (``lecture_glossary``), as an
instructor would list them. Names are then reported apart from numbers (numbers are in
no glossary, so they show what the hint costs elsewhere).

    python -m benchmarks transcribe
    python -m benchmarks.transcribe --models tiny.en base --threads 2
    python -m benchmarks.transcribe --models tiny.en --glossary
    python -m benchmarks.transcribe --models base --modes none prompt --beam 5 --split tuning
"""

from __future__ import annotations

import argparse
import json
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
    """Lower-case words; "1,800" reads as "1800" (whisper writes thousands commas, the
    scripts do not: the same number, no word error)."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    return " ".join(_WORD.findall(text.replace("-", " ")))


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


def run(
    models: list[str],
    threads: int,
    modes: list[str | None] = (None,),
    split: str = "both",
    settings_kw: dict | None = None,
    decode: dict | None = None,
) -> list[dict]:
    """One row per model and glossary mode: WER, names and numbers heard, speed.

    ``split`` restricts the lectures (tune on ``tuning``, report ``heldback``);
    ``settings_kw`` are transcriber settings (``whisper_beam_size``, ``whisper_batch_size``,
    ``whisper_vad``...); ``decode`` extra faster-whisper options (``temperature``,
    ``condition_on_previous_text``...) given to every call."""
    import jiwer

    from tests.support.settings import make_settings
    from vidrag_kernel.transcribe import get_transcriber

    media = Path(tempfile.mkdtemp(prefix="vidrag-bench-asr-"))
    wanted = [lec for lec in devset.lectures() if split == "both" or lec.split == split]
    lectures = devset.build_media(CACHE / "audio", media, wanted)
    splits = [s for s in devset.SPLITS if any(lec.split == s for lec in lectures)]
    rows = []
    for name in models:
        settings = make_settings(
            media / "home",
            whisper_model=name,
            whisper_threads=threads,
            whisper_language="auto",
            **(settings_kw or {}),
        )
        transcriber = get_transcriber(settings)  # loads the model, before the clock
        if decode:
            transcriber.decode_options = dict(decode)
        transcriber.transcribe(media / lectures[0].file)  # warm-up
        for mode in modes:
            if mode is not None:
                transcriber.glossary_as = mode
            audio = wall = cpu = 0.0
            refs: dict[str, list[str]] = {s: [] for s in splits}
            hyps: dict[str, list[str]] = {s: [] for s in splits}
            terms = heard = names = names_heard = numbers = numbers_heard = 0
            load = os.getloadavg()[0]
            for lec in lectures:
                glossary = lecture_glossary(lec) if mode is not None else None
                start, cpu_start = time.perf_counter(), time.process_time()
                if glossary:
                    transcript = transcriber.transcribe(media / lec.file, glossary=glossary)
                else:
                    transcript = transcriber.transcribe(media / lec.file)
                wall += time.perf_counter() - start
                cpu += time.process_time() - cpu_start
                audio += transcript.duration
                reference = " ".join(s.text for s in lec.sentences)
                hypothesis = normalise(" ".join(s.text for s in transcript.segments))
                refs[lec.split].append(normalise(reference))
                hyps[lec.split].append(hypothesis)
                wanted_terms = key_terms(reference)
                digits = {t for t in wanted_terms if t.isdigit()}
                terms += len(wanted_terms)
                heard += _heard(wanted_terms, hypothesis)
                names, names_heard = (
                    names + len(wanted_terms - digits),
                    names_heard + _heard(wanted_terms - digits, hypothesis),
                )
                numbers, numbers_heard = numbers + len(digits), numbers_heard + _heard(digits, hypothesis)
            every_ref = [r for s in splits for r in refs[s]]
            every_hyp = [h for s in splits for h in hyps[s]]
            row = {
                "model": name,
                **({"glossary": mode or "none"} if modes != (None,) else {}),
                "wer": round(jiwer.wer(every_ref, every_hyp), 3),
                **(
                    {f"wer {s}": round(jiwer.wer(refs[s], hyps[s]), 3) for s in splits}
                    if len(splits) > 1
                    else {}
                ),
                "names+numbers heard": round(heard / terms, 3) if terms else None,
                "names heard": round(names_heard / names, 3) if names else None,
                "numbers heard": round(numbers_heard / numbers, 3) if numbers else None,
                "audio s": round(audio, 1),
                "audio s / wall s": round(audio / wall, 2) if wall else None,
                # CPU time of all decoding threads: far less swayed by other agents' load
                "audio s / cpu s": round(audio / cpu, 2) if cpu else None,
                # other agents share the cores: speed is only comparable at a similar load
                "load": round((load + os.getloadavg()[0]) / 2, 1),
            }
            print(row, flush=True)  # a long run shows each row as it ends
            rows.append(row)
    return rows


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--glossary",
        action="store_true",
        help="each model without and with each lecture's glossary (hotwords, prompt, both)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=["none", "hotwords", "prompt", "both"], help="these glossary modes only"
    )
    parser.add_argument("--split", default="both", choices=["tuning", "heldback", "both"])
    parser.add_argument("--beam", type=int, default=0, help="beam size (default: the setting's)")
    parser.add_argument("--batch-size", type=int, default=-1, help="0 or 1: sequential decoder")
    parser.add_argument("--no-vad", action="store_true", help="decode silence too")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=JSON", help="an extra faster-whisper option"
    )
    parser.add_argument("--save-as", default="", help="name of the JSON under benchmarks/results/")
    args = parser.parse_args(argv if argv is not None else [])
    if args.modes:
        modes = [None if m == "none" else m for m in args.modes]
    else:
        modes = [None, "hotwords", "prompt", "both"] if args.glossary else (None,)
    settings_kw: dict = {}
    if args.beam:
        settings_kw["whisper_beam_size"] = args.beam
    if args.batch_size >= 0:
        settings_kw["whisper_batch_size"] = args.batch_size
    if args.no_vad:
        settings_kw["whisper_vad"] = False
    decode = dict((k, _value(v)) for k, v in (o.split("=", 1) for o in args.option))
    rows = run(args.models, args.threads, modes, args.split, settings_kw, decode)
    title = "with and without a course glossary" if modes != (None,) else ""
    table(f"Speech models on the development set {title} ({args.threads} threads, {args.split})", rows)
    name = args.save_as or ("transcribe-glossary" if modes != (None,) else "transcribe")
    save(
        name,
        {
            "threads": args.threads,
            "split": args.split,
            "settings": settings_kw,
            "decode": decode,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
