"""Backends chosen by name: one small registry per kind of engine.

Three registries, modelled on papermill's engines and llm's plugins:

- ``TRANSCRIBERS`` (setting ``VIDRAG_TRANSCRIBER``, entry point group ``vidrag.transcribers``):
  ``factory(settings)`` returns an object with ``transcribe(audio, report=None) -> Transcript``.
- ``EMBEDDERS`` (``VIDRAG_EMBEDDER``, group ``vidrag.embedders``): ``factory(settings)``
  returns an object with ``dim``, ``embed(texts, report=None)`` (float32, L2-normalised,
  one row per text) and ``embed_query(text)``; a ``model_name`` string, if it has one,
  is recorded in each index manifest to tell its vectors from other models'.
- ``ANSWERERS`` (``VIDRAG_ANSWERER``, group ``vidrag.answerers``): ``factory(settings,
  embed=embed)`` returns an object with ``mode``, ``model``, ``complete`` and ``stream``
  (see ``vidrag_kernel.answer.Answerer``); ``embed`` is the configured embedder's
  ``embed``, for engines that rank text.

Built-ins are registered here as ``"module:attr"`` strings, so that registering imports
nothing; whether a backend can run is answered with ``importlib.util.find_spec`` on the
modules it needs, which does not import them either. Another package adds a backend
with an entry point, for example in its ``pyproject.toml``::

    [project.entry-points."vidrag.embedders"]
    my-model = "my_package.embedder:MyEmbedder"

Entry points are read (not imported) on the first lookup, and again whenever
``sys.path`` has changed; a plugin module is imported only when its backend is used or
listed by ``vidrag backends``. A plugin that fails to import, or that takes a name
already in use, is reported as broken and leaves every other backend working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInput, MissingDependency, ModelError

BUILT_IN = "built-in"
ENTRY_POINT = "entry point"


@dataclass
class Backend:
    """One named backend: where it comes from and how to build it."""

    kind: str
    name: str
    #: ``"module:attr"``, a factory, or an ``importlib.metadata.EntryPoint``
    target: Any
    source: str = BUILT_IN
    #: the distribution that declared an entry point (None for built-ins)
    package: str | None = None
    version: str | None = None
    #: top-level modules the backend needs (checked with find_spec, never imported)
    requires: tuple[str, ...] = ()
    #: the vidrag extra that installs ``requires``
    extra: str | None = None
    description: str = ""
    #: why a plugin cannot be used (it failed to import, or its name is taken)
    error: str | None = None
    _factory: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def install_hint(self) -> str | None:
        """The pip command that makes this backend available, when there is one."""
        if self.extra:
            return f"pip install 'vidrag[{self.extra}]'"
        if self.package and self.error:
            return f"pip install --force-reinstall {self.package}"
        return None

    def missing(self) -> list[str]:
        """The required modules that cannot be found."""
        out = []
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(module)
        return out

    def load(self) -> Callable[..., Any]:
        """The factory (imports the backend's module; raises a ``VidragError``)."""
        if self._factory is not None:
            return self._factory
        if self.error:
            raise ModelError(self._broken_message())
        missing = self.missing()
        if missing:
            what = f"the {self.name} {self.kind}"
            if self.extra:
                raise MissingDependency.for_extra(what, self.extra, missing[0])
            raise MissingDependency(
                f"{what} needs the package '{missing[0]}', which is not installed "
                "(it is a dependency of vidrag: reinstall vidrag)"
            )
        target = self.target
        # an entry point by its shape: once a package imports the ``importlib_metadata``
        # backport (litellm does), distributions() hands out the backport's EntryPoint class
        if self.source == ENTRY_POINT and hasattr(target, "load"):
            try:
                factory = target.load()
            except Exception as exc:  # any failure of third-party code marks only this plugin
                self.error = f"{type(exc).__name__}: {exc}"
                raise ModelError(self._broken_message()) from exc
        elif isinstance(target, str):
            module, _, attr = target.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        else:
            factory = target
        if not callable(factory):
            self.error = f"{self.target} is not callable"
            raise ModelError(self._broken_message())
        self._factory = factory
        return factory

    def _broken_message(self) -> str:
        where = f" from the package {self.package}" if self.package else ""
        return f"the {self.kind} {self.name!r}{where} cannot be used: {self.error}"

    def status(self, *, load_plugins: bool = True) -> tuple[str, str | None]:
        """``("available" | "missing" | "broken", reason)``.

        Built-ins are judged by their modules alone; a plugin is imported (unless
        ``load_plugins`` is false), since that is the only way to know it works.
        """
        if self.error:
            return "broken", self.error
        missing = self.missing()
        if missing:
            return "missing", f"needs {', '.join(missing)}"
        if load_plugins and self.source == ENTRY_POINT:
            try:
                self.load()
            except ModelError:
                return "broken", self.error
        return "available", None

    def to_dict(self, *, load_plugins: bool = True) -> dict:
        """The JSON record ``vidrag backends --json`` prints."""
        status, reason = self.status(load_plugins=load_plugins)
        return {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "package": self.package,
            "version": self.version,
            "status": status,
            "available": status == "available",
            "reason": reason,
            "install": None if status == "available" else self.install_hint,
            "description": self.description,
        }


class Registry:
    """The backends of one kind: built-ins registered in code, plugins by entry point."""

    def __init__(self, kind: str, group: str, setting: str) -> None:
        self.kind = kind
        self.group = group
        #: the environment variable that chooses one
        self.setting = setting
        self._builtins: dict[str, Backend] = {}
        self._plugins: dict[str, Backend] = {}
        self._broken: list[Backend] = []
        self._scanned: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Registry {self.kind}s: {', '.join(self.names())}>"

    def register(
        self,
        name: str,
        target: str | Callable[..., Any],
        *,
        requires: tuple[str, ...] = (),
        extra: str | None = None,
        description: str = "",
    ) -> None:
        """Add a built-in: ``target`` is ``"module:attr"`` (imported on first use) or a factory."""
        self._builtins[name] = Backend(
            self.kind, name, target, requires=tuple(requires), extra=extra, description=description
        )
        self._scanned = None

    def _scan(self) -> None:
        """Read the entry points of the group (without importing them) if sys.path changed."""
        path = tuple(sys.path)
        with self._lock:
            if self._scanned == path:
                return
            plugins: dict[str, Backend] = {}
            broken: list[Backend] = []
            seen: set[str] = set()
            for dist in importlib.metadata.distributions():
                try:
                    dist_name = dist.metadata["Name"] or "?"
                    key = dist_name.lower().replace("_", "-")
                    if key in seen:  # the same distribution on sys.path twice: the first wins
                        continue
                    seen.add(key)
                    points = list(dist.entry_points.select(group=self.group))
                    version = dist.version
                except Exception as exc:  # one malformed installation must not hide the others
                    broken.append(
                        Backend(self.kind, "?", None, ENTRY_POINT, error=f"unreadable metadata: {exc}")
                    )
                    continue
                for ep in points:
                    backend = Backend(self.kind, ep.name, ep, ENTRY_POINT, dist_name, version)
                    if ep.name in self._builtins:
                        backend.error = f"the name {ep.name!r} is taken by the built-in {self.kind}"
                        broken.append(backend)
                    elif ep.name in plugins:
                        backend.error = (
                            f"the name {ep.name!r} is taken by the package {plugins[ep.name].package}"
                        )
                        broken.append(backend)
                    else:
                        plugins[ep.name] = backend
            self._plugins, self._broken, self._scanned = plugins, broken, path

    def refresh(self) -> None:
        """Read the entry points again on the next lookup (after installing a plugin)."""
        self._scanned = None

    def names(self) -> list[str]:
        """Every usable name, built-ins first."""
        self._scan()
        return [*self._builtins, *sorted(self._plugins)]

    def backends(self) -> list[Backend]:
        """Every backend, broken plugins included (for ``vidrag backends``)."""
        self._scan()
        return [*self._builtins.values(), *(self._plugins[n] for n in sorted(self._plugins)), *self._broken]

    def get(self, name: str) -> Backend:
        """The backend called ``name``; an unknown name is ``InvalidInput`` listing the known ones."""
        self._scan()
        backend = self._builtins.get(name) or self._plugins.get(name)
        if backend is None:
            raise InvalidInput(
                f"unknown {self.kind} {name!r} (set by {self.setting}): choose one of {', '.join(self.names())}"
            )
        return backend

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the backend called ``name`` with the arguments of its kind's factory."""
        return self.get(name).load()(*args, **kwargs)


TRANSCRIBERS = Registry("transcriber", "vidrag.transcribers", "VIDRAG_TRANSCRIBER")
EMBEDDERS = Registry("embedder", "vidrag.embedders", "VIDRAG_EMBEDDER")
ANSWERERS = Registry("answerer", "vidrag.answerers", "VIDRAG_ANSWERER")
REGISTRIES = {"transcriber": TRANSCRIBERS, "embedder": EMBEDDERS, "answerer": ANSWERERS}

TRANSCRIBERS.register(
    "faster-whisper",
    "vidrag_kernel.transcribe.faster:FasterWhisperTranscriber",
    requires=("faster_whisper",),
    description="CTranslate2 Whisper; the base model (multilingual) unless VIDRAG_WHISPER_MODEL names another",
)
TRANSCRIBERS.register(
    "whisperx",
    "vidrag_kernel.transcribe.whisperx_engine:WhisperXTranscriber",
    requires=("whisperx",),
    extra="whisperx",
    description="WhisperX: forced word alignment on faster-whisper (its own environment and models)",
)
EMBEDDERS.register(
    "sentence-transformers",
    "vidrag_kernel.embed:SentenceTransformerEmbedder",
    requires=("sentence_transformers", "torch"),
    description="the bundled all-MiniLM-L6-v2 (384-d) unless VIDRAG_EMBEDDING_MODEL names another",
)
EMBEDDERS.register(
    "hashing",
    "vidrag_kernel.embed:HashingEmbedder",
    description="feature-hashed words and bigrams, no model (benchmarks and experiments only)",
)
ANSWERERS.register(
    "extractive",
    "vidrag_kernel.answer:extractive_answerer",
    description="no LLM: quotes the transcript sentences that best answer (the default)",
)
ANSWERERS.register(
    "llm",
    "vidrag_kernel.answer:llm_answerer",
    requires=("litellm",),
    description="any litellm model named by VIDRAG_LLM_MODEL (the default when it is set)",
)


def selected(settings: Any) -> dict[str, str]:
    """The backend name the settings choose for each kind."""
    from .answer import answerer_name

    return {
        "transcriber": settings.transcriber,
        "embedder": settings.embedder,
        "answerer": answerer_name(settings),
    }


def describe(*, load_plugins: bool = True) -> list[dict]:
    """Every backend of every kind, as ``vidrag backends --json`` prints them."""
    return [b.to_dict(load_plugins=load_plugins) for r in REGISTRIES.values() for b in r.backends()]
