"""The ``vidrag`` command as users run it: a real process, real data directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VIDRAG = shutil.which("vidrag", path=str(Path(sys.executable).parent)) or "vidrag"


def run(home: Path, *args: str, allow: str = "127.0.0.1") -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDRAG_HOME": str(home), "VIDRAG_FETCH_ALLOW_HOSTS": allow, "VIDRAG_USER": "cli"}
    env.update(
        {"VIDRAG_CHUNK_TOKENS": "40", "VIDRAG_CHUNK_MIN_TOKENS": "8", "VIDRAG_CHUNK_OVERLAP_TOKENS": "0"}
    )
    return subprocess.run([VIDRAG, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_cli_ingest_search_transcript_and_collections(tmp_path, media_server, lecture):
    home = tmp_path / "home"
    r = run(home, "collections", "create", "Physics", "--instructor", "Ada", "--tags", "a,b")
    assert r.returncode == 0, r.stderr

    r = run(home, "ingest", media_server.url("lecture.html"), "--dry-run")
    assert r.returncode == 0 and "Three topics lecture" in r.stdout and "captions" in r.stdout

    r = run(
        home,
        "ingest",
        media_server.url("lecture.m4a"),
        "--collection",
        "Physics",
        "--captions",
        "never",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    [out] = [json.loads(line) for line in r.stdout.splitlines()]
    assert out["status"] == "done" and out["source"] == "asr" and out["chunks"] >= 3
    assert {"id", "title", "url", "duration", "timings"} <= set(out)
    assert {"fetch", "transcribe", "chunk", "embed", "index"} <= set(out["timings"])
    video_id = out["id"]

    r = run(home, "search", "when was the king executed", "--collection", "Physics", "-k", "2", "--json")
    hits = json.loads(r.stdout)
    assert len(hits) == 2 and "guillotine" in hits[0]["text"].lower() and "#t=" in hits[0]["link"]

    for fmt, marker in [("srt", "-->"), ("vtt", "WEBVTT"), ("json", '"segments"'), ("txt", "[0:0")]:
        r = run(home, "transcript", video_id, "--format", fmt)
        assert r.returncode == 0 and marker in r.stdout

    r = run(home, "collections", "show", "Physics", "--json")
    shown = json.loads(r.stdout)
    assert shown["instructor"] == "Ada" and shown["videos"][0]["id"] == video_id

    r = run(home, "videos", "delete", video_id)
    assert r.returncode == 0
    r = run(home, "collections", "list", "--json")
    assert [c["video_count"] for c in json.loads(r.stdout) if c["name"] == "Physics"] == [0]
    assert run(home, "collections", "delete", "Physics").returncode == 0


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ingest", "ftp://127.0.0.1/x.m4a"], 2, "http"),
        (["ingest", "http://10.0.0.7/x.m4a"], 3, "private"),
        (["ingest", "/no/such/file.mp3"], 2, "file.mp3"),
        (["transcript", "not-a-video"], 4, "No video"),
        (["collections", "show", "Nope"], 4, "No collection named 'Nope'"),
        (["search", "   "], 2, "empty"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, args, code, message):
    r = run(tmp_path / "home", *args, allow="")
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidrag: error:") and message.lower() in lines[0].lower()
    assert "Traceback" not in r.stderr
