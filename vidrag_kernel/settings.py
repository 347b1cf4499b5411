"""The kernel's one settings object.

Every option reads from a ``VIDRAG_*`` environment variable with a documented default.
Build one with ``Settings.from_env()`` or pass values directly (tests do); nothing here
opens files or connections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import InvalidInput


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hosts(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(",") if h.strip())


@dataclass(frozen=True)
class Settings:
    """vidrag kernel settings. Field docs name their environment variable."""

    #: VIDRAG_HOME: the data directory (catalog, indexes, media).
    home: Path = field(default_factory=lambda: Path.home() / ".vidrag")
    #: VIDRAG_DATABASE_URL: SQLAlchemy URL; default SQLite in ``home``.
    database_url: str | None = None
    #: VIDRAG_USER: the owner recorded on collections and conversations in personal mode.
    user: str = field(
        default_factory=lambda: os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or "local"
    )

    # fetch
    #: VIDRAG_FETCH_ALLOW_HOSTS: comma-separated hosts allowed even on private addresses.
    fetch_allow_hosts: tuple[str, ...] = ()
    #: VIDRAG_COOKIES_FILE: a Netscape cookies file for sites that block anonymous downloads.
    cookies_file: Path | None = None
    #: VIDRAG_MAX_DURATION: longest video accepted, in seconds (default 4 hours).
    max_duration: float = 4 * 3600
    #: VIDRAG_MAX_FILESIZE_MB: largest download accepted, in MB.
    max_filesize_mb: float = 2048
    #: VIDRAG_PLAYLIST_LIMIT: most videos taken from one playlist or channel.
    playlist_limit: int = 50
    #: VIDRAG_CAPTIONS: default captions mode: auto, prefer, only or never.
    captions: str = "auto"
    #: VIDRAG_CAPTIONS_LANGUAGE: preferred caption language.
    captions_language: str = "en"
    #: VIDRAG_FETCH_TIMEOUT: socket timeout for downloads, seconds.
    fetch_timeout: float = 30.0

    # transcribe
    #: VIDRAG_TRANSCRIBER: speech recognition engine: faster-whisper or whisperx.
    transcriber: str = "faster-whisper"
    #: VIDRAG_WHISPER_MODEL: base (multilingual; unset means base, see
    #: ``transcribe.models.default_model``), tiny.en (English only, about twice as fast),
    #: a faster-whisper model name, or a model directory. Both named ones ship in wheels.
    whisper_model: str | None = None
    #: VIDRAG_WHISPER_COMPUTE_TYPE: CTranslate2 compute type.
    whisper_compute_type: str = "int8"
    #: VIDRAG_WHISPER_BEAM_SIZE: beam size (1 = greedy, fastest). 5 is measured
    #: (``benchmarks/transcribe.py --beam``, the development set's tuning lectures, with the
    #: glossary): WER 0.135 -> 0.106 (tiny.en), 0.105 -> 0.082 (base), at 3-20 % more CPU
    #: (the batched pipeline's encoder dominates, not the beam).
    whisper_beam_size: int = 5
    #: VIDRAG_WHISPER_LANGUAGE: spoken language code, or auto: a multilingual model
    #: detects it (an English-only model decodes English).
    whisper_language: str = "auto"
    #: VIDRAG_WHISPER_THREADS: CPU threads (0 = all cores).
    whisper_threads: int = 0
    #: VIDRAG_WHISPER_BATCH_SIZE: batched inference size (0 = sequential decoding).
    whisper_batch_size: int = 8
    #: VIDRAG_WHISPER_VAD: skip silence with the bundled silero VAD.
    whisper_vad: bool = True
    #: VIDRAG_WORD_TIMESTAMPS: keep per-word timestamps.
    word_timestamps: bool = False

    # chunk
    #: VIDRAG_CHUNK_TOKENS: target chunk size in tokens.
    chunk_tokens: int = 256
    #: VIDRAG_CHUNK_MIN_TOKENS: smallest chunk kept on its own.
    chunk_min_tokens: int = 16
    #: VIDRAG_CHUNK_OVERLAP_TOKENS: tokens repeated between neighbouring chunks.
    chunk_overlap_tokens: int = 32

    # embed and index
    #: VIDRAG_EMBEDDER: embedding engine name.
    embedder: str = "sentence-transformers"
    #: VIDRAG_EMBEDDING_MODEL: model name or path; default the bundled all-MiniLM-L6-v2.
    embedding_model: str | None = None
    #: VIDRAG_EMBED_BATCH_SIZE: texts per embedding batch.
    embed_batch_size: int = 64
    #: VIDRAG_EMBED_THREADS: CPU threads one embedding may use (torch, process-wide); 0 = torch's
    #: default (every core). The service uses 1 unless set: its requests run side by side, and
    #: two threads per query on two busy cores cost more than they give.
    embed_threads: int = 0
    #: VIDRAG_EMBED_RUNTIME: ``auto`` (ONNX Runtime where it gives PyTorch's vectors, else
    #: PyTorch), ``onnx`` (ONNX Runtime or an error) or ``torch``; see vidrag_kernel.onnx_embed.
    embed_runtime: str = "auto"
    #: VIDRAG_HNSW_THRESHOLD: vectors above which an index uses HNSW instead of exact search.
    hnsw_threshold: int = 50_000
    #: VIDRAG_INDEX_COMPRESSION: vectors of HNSW indexes: ``none`` (float32) or ``sq8`` (8-bit, a quarter of the size).
    index_compression: str = "none"
    #: VIDRAG_INDEX_QUERY_THREADS: OpenMP threads one index search may use; 0 = every core.
    index_query_threads: int = 1

    # answer
    #: VIDRAG_ANSWERER: answer engine by name (``vidrag backends`` lists them); empty = ``llm`` when
    #: VIDRAG_LLM_MODEL is set, else ``extractive``.
    answerer: str | None = None
    #: VIDRAG_LLM_MODEL: a litellm model name (e.g. openai/gpt-4o-mini); empty = extractive answers.
    llm_model: str | None = None
    #: VIDRAG_LLM_API_BASE: base URL of an OpenAI-compatible server (else the provider's own variable).
    llm_api_base: str | None = None
    #: VIDRAG_LLM_TIMEOUT: seconds before an LLM call is abandoned (then extractive fallback).
    llm_timeout: float = 60.0
    #: VIDRAG_HISTORY_TURNS: previous messages of a conversation given to the LLM.
    history_turns: int = 5
    #: VIDRAG_TOP_K: passages retrieved for an answer.
    top_k: int = 6
    #: VIDRAG_LLM_API_KEY: API key for the LLM (else the provider's own variable, e.g. OPENAI_API_KEY).
    llm_api_key: str | None = field(default=None, repr=False)
    #: VIDRAG_LLM_RETRIES: retries of a failed LLM call before the extractive fallback.
    llm_retries: int = 1
    #: VIDRAG_LLM_TEMPERATURE: sampling temperature (empty = the provider's default).
    llm_temperature: float | None = None
    #: VIDRAG_MIN_RELEVANCE: dense cosine score below which a passage counts as unrelated to the
    #: question; when no passage reaches it the answer says nothing relevant was found.
    #: Calibrated with all-MiniLM-L6-v2 on the test lecture (paraphrases vs unrelated questions).
    min_relevance: float = 0.30
    #: VIDRAG_SUPPORT_THRESHOLD: cosine similarity an answer sentence needs with one of its cited
    #: passages (or a sentence of one) to count as supported; sentences below it are flagged.
    #: Calibrated with all-MiniLM-L6-v2 on the test lecture: supported paraphrases scored 0.66-0.89,
    #: off-topic claims below 0.36, on-topic unsupported claims 0.25-0.61 (so some pass: this is a
    #: topical check, it cannot catch a contradiction). The margin favours few false flags.
    support_threshold: float = 0.55

    @property
    def resolved_database_url(self) -> str:
        """The catalog URL: the setting, or SQLite inside ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'catalog.sqlite'}"

    def with_(self, **changes) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Read every ``VIDRAG_*`` variable; ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            key = "VIDRAG_" + f.name.upper()
            if f.name == "max_filesize_mb":
                key = "VIDRAG_MAX_FILESIZE_MB"
            if key not in env or env[key] == "":
                continue
            raw = env[key]
            try:
                values[f.name] = _convert(f.name, f.type, raw)
            except ValueError as exc:
                raise InvalidInput(f"Setting {key}={raw!r} is not valid: {exc}") from exc
        values.update(overrides)
        settings = cls(**values)
        if settings.captions not in {"auto", "prefer", "only", "never"}:
            raise InvalidInput("VIDRAG_CAPTIONS must be one of auto, prefer, only, never")
        if settings.embed_runtime not in {"auto", "onnx", "torch"}:
            raise InvalidInput("VIDRAG_EMBED_RUNTIME must be one of auto, onnx, torch")
        return settings


def _convert(name: str, type_: str, raw: str):
    type_ = str(type_)
    if name == "fetch_allow_hosts":
        return _hosts(raw)
    if "Path" in type_:
        return Path(raw).expanduser()
    if type_.startswith("bool"):
        return _bool(raw)
    if type_.startswith("int"):
        return int(raw)
    if type_.startswith("float"):
        return float(raw)
    return raw
