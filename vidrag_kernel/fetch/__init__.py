"""The fetch stage: turn a URL or a file into MediaInfo, audio and captions.

yt-dlp and PyAV are imported inside the functions that use them, so importing this
package stays light.
"""

from __future__ import annotations

from .captions import fetch_captions, parse_captions
from .local import SUPPORTED_EXTENSIONS
from .media import download_audio, plan_source, probe_duration
from .urls import check_url, normalize_url

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "check_url",
    "download_audio",
    "fetch_captions",
    "normalize_url",
    "parse_captions",
    "plan_source",
    "probe_duration",
]
