"""Settings the tests share: a data directory of their own, fetching from 127.0.0.1 allowed,
and small passages so that the one-minute test lecture gives several to choose between."""

from __future__ import annotations

from pathlib import Path


def make_settings(home: Path, **overrides):
    from vidrag_kernel.settings import Settings

    fields = dict(
        home=Path(home),
        fetch_allow_hosts=("127.0.0.1",),
        user="tester",
        chunk_tokens=40,
        chunk_min_tokens=8,
        chunk_overlap_tokens=0,
    )
    return Settings(**(fields | overrides))
