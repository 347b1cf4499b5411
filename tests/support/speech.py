"""Generate lecture speech with espeak-ng, with the time each sentence is spoken.

Each sentence is spoken into its own WAV and joined with a fixed pause, so the tests
know to the millisecond where every sentence lies in the final audio.
"""

from __future__ import annotations

import json
import subprocess
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

PAUSE = 0.6  # seconds of silence between sentences
RATE = 16000

# Three topics far apart, so retrieval has a right answer for every question.
LECTURE = [
    "Welcome to today's lecture on three unrelated topics.",
    "First, photosynthesis.",
    "Plants capture sunlight with chlorophyll in their leaves.",
    "They turn carbon dioxide and water into glucose and release oxygen.",
    "This process happens inside small structures called chloroplasts.",
    "Second, the French Revolution.",
    "The revolution began in seventeen eighty nine when the people of Paris stormed the Bastille.",
    "The king, Louis the sixteenth, was later executed by guillotine.",
    "Third, binary search.",
    "Binary search finds an item in a sorted list by halving the search range at every step.",
    "Because the range halves each time, it needs only a logarithmic number of comparisons.",
    "That is all for today, thank you for listening.",
]


@dataclass
class Spoken:
    text: str
    start: float
    end: float


@dataclass
class Lecture:
    wav: Path
    sentences: list[Spoken]
    duration: float

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def vtt(self) -> str:
        """WebVTT captions with the true sentence times."""
        lines = ["WEBVTT", ""]
        for s in self.sentences:
            lines += [f"{_ts(s.start)} --> {_ts(s.end)}", s.text, ""]
        return "\n".join(lines)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps([asdict(s) for s in self.sentences], indent=1))


def _ts(seconds: float) -> str:
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def speak(sentences: list[str], out: Path, *, voice: str = "en-us", speed: int = 150) -> Lecture:
    """Speak ``sentences`` into one 16 kHz mono WAV at ``out``; return the timings."""
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    spoken: list[Spoken] = []
    silence = b"\x00\x00" * int(PAUSE * RATE)
    t = 0.0
    for i, sentence in enumerate(sentences):
        part = out.with_name(f"{out.stem}.part{i}.wav")
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(part), sentence],
            check=True,
            capture_output=True,
        )
        resampled = part.with_suffix(".16k.wav")
        subprocess.run(
            ["sox", str(part), "-r", str(RATE), "-c", "1", "-b", "16", str(resampled)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(resampled), "rb") as w:
            data = w.readframes(w.getnframes())
        part.unlink()
        resampled.unlink()
        length = len(data) / 2 / RATE
        spoken.append(Spoken(sentence, round(t, 3), round(t + length, 3)))
        frames += data + silence
        t += length + PAUSE
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return Lecture(out, spoken, round(t, 3))


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(wav: Path, out: Path, *, video: bool = False) -> Path:
    """Encode to .m4a (AAC), .webm/.ogg (Opus) or, with ``video``, a small .mp4/.webm video."""
    args = [ffmpeg(), "-y", "-loglevel", "error"]
    if video:
        # a tiny black picture track, so the file is a real video with sound
        args += ["-f", "lavfi", "-i", "color=c=black:s=160x120:r=5", "-i", str(wav), "-shortest"]
    else:
        args += ["-i", str(wav)]
    suffix = out.suffix
    if suffix in {".m4a", ".mp4"}:
        args += (["-c:v", "libx264", "-pix_fmt", "yuv420p"] if video else []) + ["-c:a", "aac", "-b:a", "48k"]
    elif suffix in {".webm", ".ogg", ".opus"}:
        args += (["-c:v", "libvpx", "-b:v", "50k"] if video else []) + ["-c:a", "libopus", "-b:a", "24k"]
    args.append(str(out))
    subprocess.run(args, check=True, capture_output=True)
    return out
