"""The fetch stage with real yt-dlp and PyAV against media served on 127.0.0.1.

No traffic leaves 127.0.0.1: private and reserved addresses are refused before any
connection, which a tripwire on ``socket.connect`` proves.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.media_server import MediaServer
from tests.support.speech import ffmpeg
from vidrag_kernel.errors import FetchFailed, Forbidden, InvalidInput, MissingDependency, TooLarge
from vidrag_kernel.fetch import (
    check_url,
    download_audio,
    fetch_captions,
    parse_captions,
    plan_source,
    probe_duration,
)
from vidrag_kernel.fetch.captions import choose_track
from vidrag_kernel.fetch.guard import Guard, guarded_downloader, refuse_unguarded
from vidrag_kernel.records import MediaInfo

# -- URL checks ----------------------------------------------------------------------------


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if anything opens a TCP connection."""
    attempts: list = []

    def refuse(self, address):
        attempts.append(address)
        raise AssertionError(f"unexpected connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/lecture.m4a",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "lecture.m4a",
        "http://",
        "http://127.0.0.1:notaport/x",
        "http://127.0.0.1/a b",
    ],
)
def test_check_url_rejects_malformed_and_non_http(url, no_connections):
    with pytest.raises(InvalidInput):
        check_url(url, ["127.0.0.1"])
    assert not no_connections


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/lecture.m4a", "loopback"),
        ("http://localhost:8000/", "loopback"),
        ("http://10.0.0.1/x", "private"),
        ("https://192.168.1.20/x", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.100.100.200/", "non-public"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal 127.0.0.1
        ("http://0177.0.0.1/", "loopback"),  # octal
        ("http://0x7f.0.0.1/", "loopback"),  # hex
        ("http://0x7f000001/", "loopback"),
    ],
)
def test_check_url_refuses_internal_addresses_without_connecting(url, kind, no_connections):
    with pytest.raises(Forbidden) as err:
        check_url(url, [])
    assert kind in err.value.message
    assert "VIDRAG_FETCH_ALLOW_HOSTS" in err.value.message
    if "//127.0.0.1/" not in url:
        # the allow list names hosts as spelled: other spellings of an allowed address are vetted
        with pytest.raises(Forbidden):
            check_url(url, ["127.0.0.1"])
    assert not no_connections


def test_check_url_allow_list_and_public_hosts(no_connections):
    check_url("http://127.0.0.1:8080/x", ["127.0.0.1"])
    check_url("HTTP://LocalHost:1/x", ["localhost:9999"])  # ports do not matter
    check_url("https://93.184.216.34/video", [])  # a public address
    with pytest.raises(Forbidden):
        check_url("http://localhost/x", ["127.0.0.1"])  # the name is what is allowed
    assert not no_connections


def test_plan_source_refuses_before_connecting(settings, media_server, no_connections):
    with pytest.raises(Forbidden):
        plan_source("http://169.254.169.254/latest/meta-data/", settings)
    with pytest.raises(Forbidden):
        plan_source(media_server.url("lecture.m4a"), settings.with_(fetch_allow_hosts=()))
    with pytest.raises(InvalidInput):
        plan_source("file://" + str(media_server.root / "lecture.m4a"), settings)
    with pytest.raises(InvalidInput):
        plan_source("ftp://127.0.0.1/lecture.m4a", settings)
    assert not no_connections


def test_redirects_to_refused_hosts_are_blocked(settings, media_server):
    from tests.support.redirect_server import RedirectServer

    # "localhost" is loopback and not in the allow list (only "127.0.0.1" is); if the guard
    # failed, the request would still only reach the local media server.
    redirect = RedirectServer(f"http://localhost:{media_server.port}/lecture.m4a")
    try:
        with pytest.raises(Forbidden) as err:
            plan_source(redirect.url("talk.m4a"), settings)
        assert "localhost" in err.value.message
        assert redirect.hits >= 1
        # and the same redirect is fine once the target host is allowed
        allowed = settings.with_(fetch_allow_hosts=("127.0.0.1", "localhost"))
        assert len(plan_source(redirect.url("talk.m4a"), allowed)) == 1
    finally:
        redirect.stop()


# Other spellings of the media server's own address: each must be refused by the guard
# (127.0.0.1 is allowed by name only), so the media server must never see the request.
PRIVATE_TARGETS = [
    ("localhost", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("2130706433", "loopback"),
    ("0177.0.0.1", "loopback"),
    ("0x7f.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
]


@pytest.mark.parametrize(("host", "kind"), PRIVATE_TARGETS)
def test_redirect_to_another_spelling_of_a_private_address_is_refused(host, kind, settings, media_server):
    from tests.support.redirect_server import RedirectServer

    marker = f"lecture.m4a?guard={uuid.uuid4().hex}"
    redirect = RedirectServer(f"http://{host}:{media_server.port}/{marker}")
    try:
        with pytest.raises(Forbidden) as err:
            plan_source(redirect.url("talk.m4a"), settings)
    finally:
        redirect.stop()
    assert redirect.hits >= 1
    assert f"resolves to a {kind} address" in err.value.message
    assert host.strip("[]") in err.value.message
    assert not [r for r in media_server.requests if marker in r]


@pytest.mark.parametrize("status", [301, 307])
def test_redirect_chain_ending_on_a_private_address_is_refused(status, settings, media_server):
    from tests.support.redirect_server import RedirectServer

    marker = f"lecture.m4a?guard={uuid.uuid4().hex}"
    last = RedirectServer(f"http://localhost:{media_server.port}/{marker}", status)
    middle = RedirectServer(last.url("hop2"), status)
    first = RedirectServer(middle.url("hop1"), status)
    try:
        with pytest.raises(Forbidden) as err:
            plan_source(first.url("talk.m4a"), settings)
        # every hop was followed (they are on the allowed 127.0.0.1) until the private one
        assert (first.hits, middle.hits, last.hits) >= (1, 1, 1)
        assert "localhost resolves to a loopback address" in err.value.message
        assert not [r for r in media_server.requests if marker in r]
        # the cloud metadata address at the end of a chain is refused without connecting
        last.target = "http://169.254.169.254/latest/meta-data/"
        with pytest.raises(Forbidden) as err:
            plan_source(first.url("talk.m4a"), settings)
        assert "link-local" in err.value.message
    finally:
        for server in (first, middle, last):
            server.stop()


def _resolver(names: dict[str, str], calls: list[str]):
    """A resolver seam for the guard: ``names`` map to IPv4 addresses, nothing else resolves."""

    def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
        calls.append(host)
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, (names[host], port))]

    return resolve


def _params(tmp_path) -> dict:
    return {"quiet": True, "no_warnings": True, "cachedir": str(tmp_path / "cache"), "logger": None}


def test_a_name_resolving_to_a_private_address_is_refused(media_server, tmp_path):
    calls: list[str] = []
    marker = f"lecture.m4a?guard={uuid.uuid4().hex}"
    resolve = _resolver({"lectures.example.org": "127.0.0.1"}, calls)
    with (
        guarded_downloader(_params(tmp_path), ["127.0.0.1"], resolve=resolve) as (ydl, guard),
        pytest.raises(Exception),  # noqa: B017 - yt-dlp's own error; the guard names the reason
    ):
        ydl.urlopen(f"http://lectures.example.org:{media_server.port}/{marker}")
    assert guard.refused == [
        f"Refusing to fetch lectures.example.org:{media_server.port} (reached by a redirect or a linked "
        "URL): lectures.example.org resolves to a loopback address (127.0.0.1). Add the host to "
        "VIDRAG_FETCH_ALLOW_HOSTS if it is meant to be reachable."
    ]
    assert calls == ["lectures.example.org"]
    assert not [r for r in media_server.requests if marker in r]


def test_the_guard_connects_to_the_address_it_vetted(media_server, tmp_path):
    # The system resolver knows no "lectures.example.org" (offline): the file can only arrive if
    # the proxy connects to the address its own resolution vetted, resolved once (no rebinding).
    calls: list[str] = []
    resolve = _resolver({"lectures.example.org": "127.0.0.1"}, calls)
    allow = ["lectures.example.org"]
    url = f"http://lectures.example.org:{media_server.port}/lecture.m4a"
    with (
        guarded_downloader(_params(tmp_path), allow, resolve=resolve) as (ydl, guard),
        ydl.urlopen(url) as response,
    ):
        data = response.read()
    assert data == (media_server.root / "lecture.m4a").read_bytes()
    assert calls == ["lectures.example.org"]
    assert guard.tunnels == 1 and not guard.refused


def test_the_guard_fails_closed(media_server, tmp_path):
    # a yt-dlp whose request handlers cannot use the guard's proxy (here: a scheme none of
    # them supports) must not fetch anything, and must say why
    marker = f"lecture.m4a?guard={uuid.uuid4().hex}"
    with (
        pytest.raises(MissingDependency) as err,
        guarded_downloader(_params(tmp_path), ["127.0.0.1"], proxy_scheme="socks9") as (ydl, _),
    ):
        ydl.urlopen(media_server.url(marker))
    assert "fetch guard could not be installed" in err.value.message
    assert "nothing was fetched" in err.value.message
    assert "did not reach the guard's proxy" in err.value.message
    assert not [r for r in media_server.requests if marker in r]


def _socks_greeting(port: int, methods: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
        return sock.recv(2)


def test_the_guard_proxy_serves_only_its_own_session():
    with Guard(["127.0.0.1"]) as guard:
        # no authentication offered: refused, so another local user cannot borrow the proxy
        assert _socks_greeting(guard.port, b"\x00") == b"\x05\xff"
        with socket.create_connection(("127.0.0.1", guard.port), timeout=5) as sock:
            sock.sendall(b"\x05\x01\x02")
            assert sock.recv(2) == b"\x05\x02"
            sock.sendall(b"\x01\x06vidrag\x05guess")
            assert sock.recv(2) == b"\x01\x01"  # wrong password
        assert guard.tunnels == 0


def test_direct_connections_are_impossible(settings, media_server, tmp_path, monkeypatch):
    """Every connection yt-dlp opens goes to the guard's proxy; only the proxy reaches the server."""
    connects: list[tuple[str, object]] = []
    real_connect = socket.socket.connect

    def record(self, address):
        connects.append((threading.current_thread().name, address))
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    [info] = plan_source(media_server.url("lecture.html"), settings)
    download_audio(info, tmp_path / "v", settings)
    fetch_captions(info, tmp_path / "v", settings, include_auto=False)
    server = ("127.0.0.1", media_server.port)
    by_proxy = [a for t, a in connects if t == "vidrag-fetch-tunnel"]
    direct = [a for t, a in connects if t != "vidrag-fetch-tunnel"]
    assert server in by_proxy
    assert server not in direct
    assert direct and all(a[0] == "127.0.0.1" for a in direct)  # the proxies, on loopback


def test_protocols_outside_the_guard_are_refused():
    url = "https://example.org/v"
    refuse_unguarded(
        [{"protocol": "https"}, {"protocol": "m3u8_native"}, {"protocol": "http_dash_segments"}], url
    )
    refuse_unguarded([{"protocol": "m3u8_native+https"}], url)
    for protocol in ("rtmp", "rtmp_ffmpeg", "websocket_frag", "rtsp", "m3u8_native+rtmpe"):
        with pytest.raises(InvalidInput) as err:
            refuse_unguarded([{"protocol": protocol}], url)
        assert "streamed over" in err.value.message


@pytest.fixture(scope="module")
def hls_server(tmp_path_factory, lecture):
    """The lecture as an HLS playlist of MPEG-TS segments, each answered after 0.3 s."""
    root = tmp_path_factory.mktemp("hls")
    subprocess.run(
        [ffmpeg(), "-y", "-loglevel", "error", "-i", str(lecture.wav), "-c:a", "aac", "-b:a", "48k"]
        + ["-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", str(root / "lecture.m3u8")],
        check=True,
        capture_output=True,
    )
    server = MediaServer(root, delay=0.3)
    yield server
    server.stop()


def test_hls_fragments_download_in_parallel_through_the_guard(settings, hls_server, lecture, tmp_path):
    segments = sorted(hls_server.root.glob("*.ts"), key=lambda p: int(p.stem.removeprefix("lecture")))
    assert len(segments) >= 8
    [info] = plan_source(hls_server.url("lecture.m3u8"), settings)
    path = download_audio(info, tmp_path / "v", settings)
    assert path.read_bytes() == b"".join(p.read_bytes() for p in segments)
    assert probe_duration(path) == pytest.approx(lecture.duration, abs=1.0)
    assert hls_server.peak_in_flight > 1  # fragments were fetched at the same time
    assert {f"/{p.name}" for p in segments} <= set(hls_server.requests)


def test_hls_fragments_on_private_hosts_are_refused(settings, hls_server, tmp_path):
    # a playlist on an allowed host whose fragments live on a refused one
    playlist = (hls_server.root / "lecture.m3u8").read_text()
    marker = uuid.uuid4().hex
    (hls_server.root / f"{marker}.m3u8").write_text(
        "\n".join(
            f"http://localhost:{hls_server.port}/{line}?guard={marker}" if line.endswith(".ts") else line
            for line in playlist.splitlines()
        )
    )
    [info] = plan_source(hls_server.url(f"{marker}.m3u8"), settings)
    with pytest.raises(Forbidden) as err:
        download_audio(info, tmp_path / "v", settings)
    assert "localhost resolves to a loopback address" in err.value.message
    assert not [r for r in hls_server.requests if marker in r and ".ts" in r]
    assert not list((tmp_path / "v").glob("audio.*"))


# -- remote media --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lecture.m4a", "lecture.webm"])
def test_direct_media_plan_and_download(name, settings, media_server, lecture, tmp_path):
    url = media_server.url(name)
    [info] = plan_source(url, settings)
    assert info.extractor == "generic"
    assert info.source_key.startswith("url:")
    assert info.webpage_url == url
    assert info.duration is None  # yt-dlp does not know it for direct media
    # the key is stable and does not depend on the URL's spelling
    [again] = plan_source(url.replace("http://", "HTTP://") + "#t=10", settings)
    assert again.source_key == info.source_key

    events: list[tuple[float, str]] = []
    path = download_audio(info, tmp_path / "v1", settings, lambda f, m: events.append((f, m)))
    assert path.parent == (tmp_path / "v1").resolve()
    assert path.name == f"audio{Path(name).suffix}"
    assert path.read_bytes() == (media_server.root / name).read_bytes()
    assert info.duration == pytest.approx(lecture.duration, abs=0.5)
    assert events[-1][0] == 1.0
    assert all(0.0 <= f <= 1.0 for f, _ in events)


def test_html5_page_title_captions_and_audio(settings, media_server, lecture, tmp_path):
    [info] = plan_source(media_server.url("lecture.html"), settings)
    assert info.title == "Three topics lecture"
    assert info.source_key.startswith("url:")
    assert info.has_manual_captions
    assert info.captions["en"][0]["url"] == media_server.url("lecture.vtt")
    assert info.media_url == media_server.url("lecture.mp4")  # what a browser player can play
    path = download_audio(info, tmp_path / "v", settings)
    assert path.suffix == ".mp4"
    assert probe_duration(path) == pytest.approx(lecture.duration, abs=0.5)


def test_captions_are_fetched_and_parsed_with_true_times(settings, media_server, lecture, tmp_path):
    [info] = plan_source(media_server.url("lecture.html"), settings)
    segments = fetch_captions(info, tmp_path / "v", settings, include_auto=False)
    assert segments is not None
    assert [s.text for s in segments] == [s.text for s in lecture.sentences]
    for seg, truth in zip(segments, lecture.sentences, strict=True):
        assert seg.start == pytest.approx(truth.start, abs=0.1)
        assert seg.end == pytest.approx(truth.end, abs=0.1)
    assert (tmp_path / "v" / "captions.manual.vtt").is_file()
    # a video without tracks has no captions
    [plain] = plan_source(media_server.url("lecture.m4a"), settings)
    assert fetch_captions(plain, tmp_path / "w", settings, include_auto=True) is None


def _feed(media_server, names: list[str], duration: str = "0:56") -> str:
    items = "".join(
        f"<item><title>Week {i + 1}</title><guid>week-{i + 1}</guid>"
        f'<enclosure url="{media_server.url(name)}" type="audio/mp4" length="1"/>'
        f"<itunes:duration>{duration}</itunes:duration></item>"
        for i, name in enumerate(names)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>Course feed</title><link>{media_server.url()}</link>"
        f"<description>Lectures</description>{items}</channel></rss>"
    )


@pytest.fixture(scope="module")
def feed_url(media_server):
    (media_server.root / "course.xml").write_text(
        _feed(media_server, ["lecture.m4a", "lecture.webm", "lecture.mp4"])
    )
    return media_server.url("course.xml")


def test_rss_playlist_is_expanded_and_capped(settings, feed_url):
    infos = plan_source(feed_url, settings.with_(playlist_limit=2))
    assert [i.title for i in infos] == ["Week 1", "Week 2"]
    assert len({i.source_key for i in infos}) == 2
    assert all(i.duration == 56 for i in infos)
    everything = plan_source(feed_url, settings)
    assert [i.title for i in everything] == ["Week 1", "Week 2", "Week 3"]
    assert [i.source_key for i in everything[:2]] == [i.source_key for i in infos]


def test_over_long_urls_are_too_large(settings, feed_url, media_server, tmp_path):
    short = settings.with_(max_duration=10)
    # the feed tells durations up front: refused while planning
    with pytest.raises(TooLarge) as err:
        plan_source(feed_url, short)
    assert "0:56" in err.value.message and "0:10" in err.value.message
    # direct media has no known duration: refused after download, and the file is removed
    [info] = plan_source(media_server.url("lecture.m4a"), short)
    with pytest.raises(TooLarge) as err:
        download_audio(info, tmp_path / "v", short)
    assert "limit" in err.value.message
    assert list((tmp_path / "v").iterdir()) == []


def test_download_size_limit(settings, media_server, tmp_path):
    tiny = settings.with_(max_filesize_mb=0.05)
    [info] = plan_source(media_server.url("lecture.m4a"), tiny)
    with pytest.raises(TooLarge) as err:
        download_audio(info, tmp_path / "v", tiny)
    assert "VIDRAG_MAX_FILESIZE_MB" in err.value.message
    assert not list((tmp_path / "v").glob("audio.*"))


def test_http_errors_and_pages_without_media(settings, media_server):
    with pytest.raises(FetchFailed) as err:
        plan_source(media_server.url("missing.m4a"), settings)
    assert err.value.message == f"Could not fetch {media_server.url('missing.m4a')}: HTTP Error 404"
    with pytest.raises(InvalidInput) as err:
        plan_source(media_server.url("notmedia.html"), settings)
    assert err.value.message == f"No video or audio found at {media_server.url('notmedia.html')}"


def test_connection_refused_is_fetch_failed(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchFailed) as err:
        plan_source(f"http://127.0.0.1:{port}/lecture.m4a", settings)
    assert err.value.message == (
        f"Could not fetch http://127.0.0.1:{port}/lecture.m4a: cannot connect to 127.0.0.1:{port} (Connection refused)"
    )


def test_bad_cookies_file_is_named(settings, media_server, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("not a cookies file\n")
    with pytest.raises(InvalidInput) as err:
        plan_source(media_server.url("lecture.m4a"), settings.with_(cookies_file=cookies))
    assert "VIDRAG_COOKIES_FILE" in err.value.message


def test_corrupt_remote_media_is_invalid(settings, media_server, tmp_path):
    [info] = plan_source(media_server.url("corrupt.m4a"), settings)
    with pytest.raises(InvalidInput) as err:
        download_audio(info, tmp_path / "v", settings)
    assert "could not decode audio" in err.value.message
    assert not list((tmp_path / "v").glob("audio.*"))


# -- local files ---------------------------------------------------------------------------


def test_local_file(settings, media_root, lecture, tmp_path):
    path = media_root / "lecture.m4a"
    [info] = plan_source(str(path), settings)
    assert info.source_key == "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.local_path == str(path.resolve())
    assert info.title == "lecture"
    assert info.duration == pytest.approx(lecture.duration, abs=0.2)
    # the key follows the content, not the name
    copy = tmp_path / "renamed.m4a"
    copy.write_bytes(path.read_bytes())
    assert plan_source(str(copy), settings)[0].source_key == info.source_key
    assert download_audio(info, tmp_path / "unused", settings) == path.resolve()
    assert not (tmp_path / "unused").exists()


def test_local_file_errors(settings, media_root, tmp_path):
    with pytest.raises(TooLarge) as err:
        plan_source(str(media_root / "lecture.webm"), settings.with_(max_duration=10))
    assert "0:10" in err.value.message
    with pytest.raises(InvalidInput) as err:
        plan_source(str(media_root / "corrupt.m4a"), settings)
    assert "could not decode audio from corrupt.m4a" in err.value.message
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InvalidInput) as err:
        plan_source(str(notes), settings)
    assert "mp3" in err.value.message and "webm" in err.value.message
    with pytest.raises(InvalidInput):
        plan_source(str(tmp_path / "nothing-here.m4a"), settings)


def test_probe_duration_of_a_real_file(tmp_path):
    sample = Path(__file__).resolve().parents[1] / "samples" / "lecture.webm"
    # the truth, independently of the container's header: the end of the last decoded frame
    import av

    with av.open(str(sample)) as container:
        end = max(float(f.time) + f.samples / f.sample_rate for f in container.decode(audio=0))
    assert probe_duration(sample) == pytest.approx(end, abs=0.1)
    assert probe_duration(str(sample)) == probe_duration(sample)
    # unknown rather than an error: not media, missing, or not a local file at all
    notes = tmp_path / "notes.webm"
    notes.write_text("not media")
    assert probe_duration(notes) is None
    assert probe_duration(tmp_path / "missing.webm") is None
    assert probe_duration("http://127.0.0.1:9/lecture.webm") is None


# -- caption parsing -----------------------------------------------------------------------

ROLLING_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.000 align:start position:0%
plants<00:00:00.500><c> capture</c><00:00:01.000><c> sunlight</c>

00:00:02.000 --> 00:00:02.010 align:start position:0%
plants capture sunlight

00:00:02.010 --> 00:00:04.000 align:start position:0%
plants capture sunlight
with<00:00:02.500><c> chlorophyll</c>

00:00:04.000 --> 00:00:04.010 align:start position:0%
with chlorophyll

00:00:04.010 --> 00:00:06.000 align:start position:0%
with chlorophyll
in<00:00:04.500><c> their</c><00:00:05.000><c> &amp;</c><00:00:05.500><c> leaves</c>
"""


def test_rolling_auto_captions_are_deduplicated(tmp_path):
    path = tmp_path / "auto.vtt"
    path.write_text(ROLLING_VTT)
    segments = parse_captions(path)
    assert [s.text for s in segments] == ["plants capture sunlight", "with chlorophyll", "in their & leaves"]
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.0), (2.01, 4.0), (4.01, 6.0)]


def test_srt_captions(tmp_path, lecture):
    srt = "\n".join(
        f"{i}\n{_srt_time(s.start)} --> {_srt_time(s.end)}\n<i>{s.text}</i>\n"
        for i, s in enumerate(lecture.sentences, 1)
    )
    path = tmp_path / "c.srt"
    path.write_text(srt)
    segments = parse_captions(path)
    assert [s.text for s in segments] == [s.text for s in lecture.sentences]
    assert segments[3].start == pytest.approx(lecture.sentences[3].start, abs=0.001)


def _srt_time(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def test_caption_track_choice():
    def track(kind, ext="vtt"):
        return {"kind": kind, "ext": ext, "url": f"https://example.org/{kind}.{ext}"}

    info = MediaInfo(
        "x:1",
        "https://example.org",
        "t",
        captions={
            "fr": [track("manual")],
            "en": [track("auto", "json3"), track("auto")],
            "en-GB": [track("manual", "srv3"), track("manual", "srt")],
        },
    )
    assert choose_track(info, "en", include_auto=True) == ("en-GB", track("manual", "srt"))
    del info.captions["en-GB"]
    assert choose_track(info, "en", include_auto=True) == ("en", track("auto"))
    assert choose_track(info, "en", include_auto=False) == ("fr", track("manual"))
    assert choose_track(info, "fr", include_auto=True) == ("fr", track("manual"))
    assert choose_track(MediaInfo("x:2", "u", "t"), "en", include_auto=True) is None


def test_importing_fetch_is_light():
    code = "import sys, json, vidrag_kernel.fetch; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = {m.split(".")[0] for m in json.loads(out)}
    assert not loaded & {"yt_dlp", "av", "webvtt", "urllib3"}
