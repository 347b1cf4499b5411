"""``make run``: the whole workbench on this machine, started and stopped with one command.

``python -m hub_config.launch`` (the Makefile puts ``node_modules/.bin`` on PATH):

1. picks the data root (``VIDRAG_HOME``, default ``.vidrag/`` in the repository) and the demo
   password (``VIDRAG_DEMO_PASSWORD``, else one generated per data root and kept in
   ``<home>/demo-password``, mode 600);
2. on first start, ingests the sample lecture into a "Sample course" (``hub_config.seed``,
   in a child process): the instructor's, shared with the course group, when the vidrag
   service runs (the default); later starts skip it;
3. starts JupyterHub with ``hub_config/jupyterhub_config.py`` in its own process group,
   waits until it answers, and prints the URL and the logins;
4. on Ctrl-C (SIGINT) or SIGTERM, asks the hub to stop (it stops the proxy and every
   single-user server), then kills anything of its process tree still alive.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from hub_config import CONFIG_FILE
from hub_config.options import REPO_ROOT, VidragHubOptions
from hub_config.seed import SAMPLE, pending, shared_pending

STOP_TIMEOUT = 30.0


def demo_password(home: Path) -> str:
    """The data root's demo password, generated (and kept, mode 600) on first use."""
    path = home / "demo-password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(12) + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


def hub_environment(home: Path, password: str) -> dict[str, str]:
    """The hub's environment: ours, plus the demo defaults and the proxy on PATH."""
    env = dict(os.environ)
    env.setdefault("VIDRAG_AUTH", "demo")
    # the demo runs the vidrag service for shared course collections
    env.setdefault("VIDRAG_SERVICE_ENABLED", "true")
    env["VIDRAG_HOME"] = str(home)
    if env["VIDRAG_AUTH"].lower() == "demo":
        env["VIDRAG_DEMO_PASSWORD"] = password
    path = [str(REPO_ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        env.setdefault(key, value)
    return env


def _say(message: str) -> None:
    try:
        print(message, flush=True)
    except OSError:
        # the terminal or pipe went away; stopping the hub matters more than the message
        pass


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 120) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False


def stop(proc: subprocess.Popen, tree: list, timeout: float = STOP_TIMEOUT) -> list[int]:
    """Stop the hub and what it started; the pids that had to be killed."""
    import psutil

    tree = [*tree, *_descendants(proc.pid)]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # the hub cleans up its proxy and servers; this catches whatever a crash left behind
    _, alive = psutil.wait_procs(tree, timeout=5)
    killed = []
    for p in [*alive, *([psutil.Process(proc.pid)] if proc.poll() is None else [])]:
        try:
            p.kill()
            killed.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        proc.wait(5)
    return killed


def main(argv: list[str] | None = None) -> int:
    """Seed if needed, run the hub until Ctrl-C, stop everything."""
    parser = argparse.ArgumentParser(
        prog="python -m hub_config.launch", description="Run vidrag's JupyterHub locally."
    )
    parser.add_argument(
        "--no-seed", action="store_true", help="do not ingest the sample lecture on first start"
    )
    args = parser.parse_args(argv)
    # A launcher started in the background by a shell inherits SIGINT ignored, and so would
    # the hub's services and servers, which JupyterHub stops with SIGINT first.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    home = Path(os.environ.get("VIDRAG_HOME") or REPO_ROOT / ".vidrag").expanduser().resolve()
    (home / "hub").mkdir(parents=True, exist_ok=True)
    password = os.environ.get("VIDRAG_DEMO_PASSWORD") or demo_password(home)
    env = hub_environment(home, password)
    try:
        opts = VidragHubOptions(environ=env)
    except ValueError as exc:
        _say(f"vidrag: {exc}")
        return 2
    if not shutil.which("configurable-http-proxy", path=env["PATH"]):
        _say("vidrag: configurable-http-proxy is missing: run `make run` (it runs `npm install`).")
        return 2

    shared_root = Path(env.get("VIDRAG_SHARED_ROOT") or home / "shared")
    if opts.service_enabled:
        # the instructor's course is shared with the demo's course group (see hub_config.seed)
        owner, group = opts.demo_users[0], next(iter(opts.course_groups or {"cs101": []}))
        todo = shared_pending(shared_root)
        command = ["--shared-root", str(shared_root), "--group", group, owner]
        who = f"{owner}, shared with {group}"
    else:
        todo = bool(pending(home, opts.demo_users))
        command = ["--home", str(home), *opts.demo_users]
        who = ", ".join(opts.demo_users)
    if opts.auth == "demo" and not args.no_seed and todo:
        if SAMPLE.exists():
            _say(f"vidrag: first start: ingesting the sample lecture into 'Sample course' ({who})...")
            try:
                seeded = subprocess.run(
                    [sys.executable, "-m", "hub_config.seed", *command],
                    env=env,
                    cwd=REPO_ROOT,
                )
            except KeyboardInterrupt:
                _say("vidrag: interrupted while seeding; nothing is running.")
                return 130
            if seeded.returncode != 0:
                _say("vidrag: seeding the sample course failed (see above); starting the hub anyway.")
        else:
            _say(f"vidrag: no sample lecture at {SAMPLE}; skipping the sample course.")

    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)],
        cwd=home / "hub",
        env=env,
        # its own process group: Ctrl-C reaches this launcher, which stops the hub in order
        start_new_session=True,
    )
    stopping = {"signal": None}

    def on_signal(signum, _frame) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    url = opts.public_url
    tree: list = []
    killed: list[int] = []
    try:
        if _wait_until_up(proc, url):
            logins = (
                f"log in as {' or '.join(opts.demo_users)}, password: {password}"
                if opts.auth == "demo"
                else f"log in with {opts.auth.capitalize()}"
            )
            _say(f"\nvidrag is running at {url}/\n  {logins}\n  data: {home}    stop: Ctrl-C\n")
        while proc.poll() is None and stopping["signal"] is None:
            tree = [*{p.pid: p for p in [*tree, *_descendants(proc.pid)]}.values()]
            time.sleep(0.5)
        if stopping["signal"] is not None:
            _say("vidrag: stopping the hub, its proxy and the users' servers...")
    finally:
        # whatever happened above, nothing started here outlives the launcher
        killed = stop(proc, tree)
    if killed:
        _say(f"vidrag: killed processes that outlived the hub: {killed}")
    if stopping["signal"] is not None:
        _say("vidrag: stopped.")
        return 0
    _say(f"vidrag: the hub exited with status {proc.returncode}.")
    return proc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
