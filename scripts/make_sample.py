"""Regenerate samples/lecture.webm, the short lecture the demo and quick start ingest.

Speech comes from espeak-ng (Debian package), so the sample is ours to ship. Run:
    .venv/bin/python scripts/make_sample.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.speech import encode, speak  # noqa: E402

SAMPLE = [
    "Hello everyone, and welcome to this short lecture on how the internet moves data.",
    "We will cover three ideas: packets, routing, and reliable delivery.",
    "Let us start with packets.",
    "When you send a message across the internet, it is not sent as one long stream.",
    "Instead, the data is cut into small pieces called packets.",
    "Each packet carries a header with the address of the sender and the address of the receiver.",
    "Packets from the same message may travel along different paths and arrive out of order.",
    "The second idea is routing.",
    "Routers are computers that forward packets from one network to the next.",
    "Each router keeps a routing table that says which neighbour is closest to each destination.",
    "Routers share what they know with protocols such as the border gateway protocol.",
    "If a link fails, routers learn a new path, and packets flow around the damage.",
    "The third idea is reliable delivery.",
    "The internet protocol itself makes no promise that a packet will arrive.",
    "The transmission control protocol, or T C P, adds that promise on top.",
    "T C P numbers every byte, and the receiver sends acknowledgements for what it has received.",
    "When an acknowledgement does not come back in time, the sender sends the data again.",
    "T C P also slows down when the network is congested, which is called congestion control.",
    "Some applications, such as live video calls, prefer speed over reliability.",
    "They use the user datagram protocol instead, which sends packets without acknowledgements.",
    "To summarise: data travels in packets, routers choose the paths, and T C P makes delivery reliable.",
    "Next week we will look at how names like example dot com are turned into addresses.",
    "Thank you for listening.",
]


def main() -> None:
    out = ROOT / "samples" / "lecture.webm"
    with tempfile.TemporaryDirectory() as tmp:
        lecture = speak(SAMPLE, Path(tmp) / "lecture.wav", speed=145)
        encode(lecture.wav, out)
        (ROOT / "samples" / "lecture.vtt").write_text(lecture.vtt())
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {lecture.duration:.0f} s)")


if __name__ == "__main__":
    main()
