"""What each user's server gets: a data directory, a notebook root with the dashboards, and
the environment the kernel library reads (``VIDRAG_*`` and the vidrag service's address).
"""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from hub_config.options import VidragHubOptions

#: Variables the hub passes through to every server unchanged: offline model loading and
#: the kernel's deployment-wide settings (an LLM endpoint, model paths...). Per-user ones
#: (home, user, catalog URL) are set per server instead.
PASSTHROUGH_PREFIXES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")
_PER_USER_SETTINGS = {"home", "user", "database_url"}

#: The folder, inside each server's root, that holds the dashboard notebooks.
DASHBOARDS_FOLDER = "vidrag"


def kernel_setting_names() -> list[str]:
    """The kernel's deployment-wide ``VIDRAG_*`` variables (read from its Settings fields)."""
    from vidrag_kernel.settings import Settings

    names = ["VIDRAG_" + f.name.upper() for f in fields(Settings) if f.name not in _PER_USER_SETTINGS]
    return [*PASSTHROUGH_PREFIXES, *names]


def safe_dirname(username: str) -> str:
    """A directory name for a JupyterHub username: ``[a-z0-9._-]`` kept, anything else ``-xx`` hex.

    Usernames may be e-mail addresses (Google without a single hosted domain); escaping
    keeps every user's folder a plain child of the users directory.
    """
    out = []
    for ch in username:
        if re.fullmatch(r"[a-z0-9_.]", ch):
            out.append(ch)
        else:
            out.append("".join(f"-{b:02x}" for b in ch.encode()))
    name = "".join(out)
    return "_" + name if name.startswith(".") or not name else name


def landing_path(opts: VidragHubOptions) -> str:
    """The server-relative URL people land on after login: the Voila dashboard, or JupyterLab."""
    if not opts.land_on_dashboard:
        return "/lab"
    return f"/voila/render/{DASHBOARDS_FOLDER}/{opts.landing_notebook}"


def preheat_args(opts: VidragHubOptions) -> list[str]:
    """The server's arguments for pre-heated Voila kernels on the landing dashboard
    (``vidrag_dashboards.preheat``): ``VIDRAG_PREHEAT_KERNELS`` of them; none when that is 0
    or people land on JupyterLab."""
    if opts.preheat_kernels <= 0 or not opts.land_on_dashboard:
        return []
    return [
        "--ServerApp.kernel_manager_class=vidrag_dashboards.preheat.PreheatKernelManager",
        # a Python literal: traitlets reads a Dict of a known class with literal_eval
        f"--ServerApp.jpserver_extensions={ {'vidrag_dashboards.preheat': True}!r}",
        "--VoilaConfiguration.preheat_kernel=True",
        f"--VoilaConfiguration.default_pool_size={opts.preheat_kernels}",
        # one item (repeat the option for more): a List of a class the server does not know
        # yet is read as a plain string, so "['a']" would be one notebook named "['a']"
        f"--PreheatKernelManager.notebooks={DASHBOARDS_FOLDER}/{opts.landing_notebook}",
    ]


def refresh_dashboards(source: Path, root: Path) -> list[Path]:
    """Copy the dashboard notebooks into ``root/vidrag/``, read-only, replacing older copies.

    Copies rather than symlinks: the server's contents manager then serves them like any
    file under its root, and nobody edits the repository's notebooks by accident from Lab.
    """
    target = root / DASHBOARDS_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in sorted(source.glob("*.ipynb")) if source.is_dir() else []:
        dest = target / notebook.name
        if dest.exists():
            dest.chmod(stat.S_IRUSR | stat.S_IWUSR)
        shutil.copyfile(notebook, dest)
        dest.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        copied.append(dest)
    return copied


def local_pre_spawn_hook(opts: VidragHubOptions, service_env: dict[str, str]) -> Callable:
    """A ``Spawner.pre_spawn_hook`` for the local process spawner.

    Each user gets ``<home>/users/<name>/`` as ``VIDRAG_HOME`` and its ``notebooks/``
    folder as the server's root (and ``HOME``), with the dashboards in ``notebooks/vidrag/``.
    """

    def hook(spawner) -> None:
        username = spawner.user.name
        data = opts.users_dir / safe_dirname(username)
        notebooks = data / "notebooks"
        notebooks.mkdir(parents=True, exist_ok=True)
        refresh_dashboards(Path(opts.dashboards_dir), notebooks)
        spawner.home_dir = str(notebooks)
        spawner.notebook_dir = str(notebooks)
        spawner.environment = {
            **spawner.environment,
            **service_env,
            "VIDRAG_HOME": str(data),
            "VIDRAG_USER": username,
        }

    return hook
