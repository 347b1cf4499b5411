"""The LLM answer engine: any provider litellm speaks, streaming, with token usage.

The model is a litellm name (``openai/gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``,
``ollama/llama3.1``, ``openai/<name>`` with an ``api_base`` for vLLM and other
OpenAI-compatible servers). Keys and base URLs come from the settings or, if unset,
from the provider's own environment variables, as litellm reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence

from ..errors import ModelError
from ..settings import Settings
from .prompt import build_messages
from .types import Generation

_LITELLM = None


def _litellm():
    """Import litellm on first use: it is slow to import and most commands never need it."""
    global _LITELLM
    if _LITELLM is None:
        # without this, importing litellm spends seconds trying to download a price list
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        _LITELLM = litellm
    return _LITELLM


def failure_reason(exc: BaseException) -> str:
    """A short, user-facing reason for an LLM failure (shown as the fallback reason)."""
    name = type(exc).__name__
    text = str(exc)
    if "Timeout" in name or "timed out" in text.lower():
        return "timeout"
    if isinstance(exc, json.JSONDecodeError) or "Expecting" in text or "JSON" in text:
        return "malformed reply"
    status = getattr(exc, "status_code", None)
    if "Authentication" in name or status == 401:
        return "authentication failed"
    if "RateLimit" in name or status == 429:
        return "rate limited"
    if "NotFound" in name or status == 404:
        return "model not found"
    if isinstance(status, int) and status >= 400:
        return f"HTTP {status}"
    if "Connection" in name:
        return "connection failed"
    return name


def _usage(obj) -> dict | None:
    if obj is None:
        return None
    get = obj.get if isinstance(obj, dict) else lambda k: getattr(obj, k, None)
    p, c = get("prompt_tokens"), get("completion_tokens")
    if p is None and c is None:
        return None
    p, c = int(p or 0), int(c or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": int(get("total_tokens") or p + c)}


def _estimate(messages: list[dict], text: str) -> dict:
    # about 4/3 tokens per word: only used when a provider reports no usage at all
    p = int(sum(len(str(m["content"]).split()) for m in messages) * 4 / 3)
    c = int(len(text.split()) * 4 / 3)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c, "estimated": True}


class LLMAnswerer:
    """Answers with a language model through litellm."""

    mode = "llm"

    def __init__(self, settings: Settings) -> None:
        if not settings.llm_model:
            raise ModelError("No LLM is configured (set VIDRAG_LLM_MODEL)")
        self.model = settings.llm_model
        self._settings = settings

    def _kwargs(self, messages: list[dict]) -> dict:
        st = self._settings
        kwargs = {
            "model": self.model,
            "messages": messages,
            "timeout": st.llm_timeout,
            "num_retries": st.llm_retries,
        }
        if st.llm_temperature is not None:
            # only when asked: some models refuse any temperature but their default
            kwargs["temperature"] = st.llm_temperature
        if st.llm_api_base:
            kwargs["api_base"] = st.llm_api_base
        if st.llm_api_key:
            kwargs["api_key"] = st.llm_api_key
        return kwargs

    def complete(self, question: str, sources: Sequence, history: Sequence[dict] = ()) -> Generation:
        """One non-streaming call. Raises ``ModelError`` ("LLM unavailable: <reason>")."""
        litellm = _litellm()
        messages = build_messages(question, sources, history)
        try:
            response = litellm.completion(**self._kwargs(messages))
            text = response.choices[0].message.content
        except Exception as exc:  # any provider failure becomes one error the caller can fall back on
            raise ModelError(f"LLM unavailable: {failure_reason(exc)}") from exc
        text = (text or "").strip()
        if not text:
            raise ModelError("LLM unavailable: empty reply")
        usage = _usage(getattr(response, "usage", None)) or _estimate(messages, text)
        return Generation(text, self.mode, self.model, usage)

    def stream(
        self, question: str, sources: Sequence, history: Sequence[dict] = ()
    ) -> Iterator[str | Generation]:
        """Yield text pieces as the model writes them, then one ``Generation``.

        Raises ``ModelError`` if the call fails, even after some pieces were yielded.
        """
        litellm = _litellm()
        messages = build_messages(question, sources, history)
        parts: list[str] = []
        usage = None
        try:
            response = litellm.completion(
                **self._kwargs(messages), stream=True, stream_options={"include_usage": True}
            )
            for chunk in response:
                if chunk.choices:
                    piece = chunk.choices[0].delta.content
                    if piece:
                        parts.append(piece)
                        yield piece
                usage = _usage(getattr(chunk, "usage", None)) or usage
        except Exception as exc:
            raise ModelError(f"LLM unavailable: {failure_reason(exc)}") from exc
        text = "".join(parts).strip()
        if not text:
            raise ModelError("LLM unavailable: empty reply")
        yield Generation(text, self.mode, self.model, usage or _estimate(messages, text))
