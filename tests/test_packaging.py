"""The wheel is what a deployment installs: build it, install it into a fresh virtual
environment, and run what the single-user image and the hub image run from it.

Both images are ``pip install /opt/vidrag[...]`` (hub_config/docker/Dockerfile): users'
servers import ``vidrag_kernel`` and ``vidrag_dashboards`` from the wheel, and the hub runs
``jupyterhub_config.py``, which imports ``hub_config``. A repository checkout hides a
missing package (the editable install puts the checkout on ``sys.path``), so the checks run
in a new environment that sees the wheel and the project's installed dependencies, never
the checkout. Its dependencies are not installed afresh: that would pull torch and the hub
stack from the network; a ``.pth`` file lends it the project's site-packages instead (a
``.pth`` line adds a directory, not the ``.pth`` files inside it, so the editable
install's ``_vidrag.pth`` does not come along).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_WHEEL = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
#: Source folder of each package in the wheel, as [tool.hatch.build.targets.wheel] maps them.
PACKAGES = {Path(folder).name: REPO / folder for folder in _WHEEL["packages"]}
#: Patterns of files deliberately left out (the image recipes build from the repository).
NOT_SHIPPED = _WHEEL.get("exclude", [])


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built offline with the hatchling the dev extra installs."""
    out = tmp_path_factory.mktemp("dist")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(REPO),
        ]
    )
    (built,) = out.glob("vidrag-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """A fresh venv holding the wheel only; paths and the environment to run it in."""
    root = tmp_path_factory.mktemp("installed")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # pip of the test's interpreter installs into the new environment (it has no pip of its own)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ]
    )
    site = Path(
        _run(
            [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    lent = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "zz_project_dependencies.pth").write_text("".join(f"{p}\n" for p in lent))
    # nothing from the checkout: no PYTHONPATH, and a working directory outside the repository
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIDRAG_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VIDRAG_HOME=str(root / "home"))
    work = root / "work"
    work.mkdir()
    return {"root": root, "venv": env_dir, "python": python, "site": site, "env": env, "cwd": work}


def _in_venv(installed: dict, code: str, **env: str) -> dict:
    """Run ``code`` isolated (-I) in the fresh venv; it prints one JSON object."""
    result = _run(
        [str(installed["python"]), "-I", "-c", textwrap.dedent(code)],
        cwd=installed["cwd"],
        env={**installed["env"], **env},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_wheel_carries_every_file_of_its_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*"):
            source = path.relative_to(REPO).as_posix()
            if "__pycache__" in path.parts or not path.is_file() or path.suffix == ".pyc":
                continue
            if not any(fnmatch.fnmatch(source, pattern) for pattern in NOT_SHIPPED):
                expected.add(f"{package}/{path.relative_to(folder).as_posix()}")
    assert {"vidrag_kernel", "vidrag_dashboards", "vidrag_hub", "hub_config"} <= set(PACKAGES)
    assert expected - names == set()
    # what run time reads besides Python modules: the catalog's Alembic scripts and the
    # server settings jupyterhub_config.py passes to users' servers
    migrations = {n for n in names if n.startswith("vidrag_kernel/catalog/migrations/")}
    assert "vidrag_kernel/catalog/migrations/env.py" in migrations
    assert "vidrag_kernel/catalog/migrations/script.py.mako" in migrations
    versions = {p.name for p in (REPO / "vidrag_kernel/catalog/migrations/versions").glob("*.py")}
    assert versions and {f"vidrag_kernel/catalog/migrations/versions/{v}" for v in versions} <= migrations
    assert "hub_config/docker/jupyter_server_config.json" in names
    assert "hub_config/docker/Dockerfile" not in names and "hub_config/docker/compose.yaml" not in names
    assert not {n for n in names if n.startswith(("tests/", "benchmarks/", "notebooks/", ".venv/"))}


def test_packages_import_from_the_wheel_not_the_checkout(installed):
    found = _in_venv(
        installed,
        """
        import json, sys
        import vidrag_kernel, vidrag_dashboards, vidrag_hub, hub_config
        import hub_config.options, hub_config.spawning, hub_config.demo_auth, hub_config.google_auth
        import hub_config.launch, hub_config.seed
        import jupyterhub_idle_culler  # the config starts it as a service: python -m jupyterhub_idle_culler
        mods = ("vidrag_kernel", "vidrag_dashboards", "vidrag_hub", "hub_config")
        print(json.dumps({"files": {m: sys.modules[m].__file__ for m in mods}, "path": sys.path}))
        """,
    )
    for module, file in found["files"].items():
        assert Path(file).is_relative_to(installed["site"]), (module, file)
    assert not [
        p
        for p in found["path"]
        if p and Path(p).resolve() in {REPO, REPO / "dashboards", REPO / "extensions"}
    ]


def test_the_hub_configuration_loads_from_the_wheel(installed):
    """jupyterhub_config.py run as JupyterHub runs it, from the installed hub_config."""
    loaded = _in_venv(
        installed,
        """
        import json
        from traitlets.config import PyFileConfigLoader
        from traitlets.utils.importstring import import_item
        import hub_config

        loader = PyFileConfigLoader(hub_config.CONFIG_FILE.name, path=str(hub_config.CONFIG_FILE.parent))
        c = loader.load_config()
        authenticator = import_item(c.JupyterHub.authenticator_class)
        print(json.dumps({
            "config_file": str(hub_config.CONFIG_FILE),
            "authenticator": authenticator.__module__ + "." + authenticator.__name__,
            "authenticator_file": __import__(authenticator.__module__).__file__,
            "args": list(c.Spawner.args),
            "services": [s["name"] for s in c.JupyterHub.services],
        }))
        """,
        VIDRAG_AUTH="demo",
        VIDRAG_DEMO_PASSWORD="packaging-test",
    )
    assert Path(loaded["config_file"]).is_relative_to(installed["site"])
    assert loaded["authenticator"] == "hub_config.demo_auth.DemoAuthenticator"
    assert Path(loaded["authenticator_file"]).is_relative_to(installed["site"])
    # read from hub_config/docker/jupyter_server_config.json inside the wheel
    assert any("websocket_max_message_size" in arg for arg in loaded["args"])
    assert "idle-culler" in loaded["services"]


def test_the_installed_catalog_migrates(installed, tmp_path):
    """The wheel's Alembic scripts build the catalog up to the checkout's newest revision."""
    from alembic.script import ScriptDirectory

    from vidrag_kernel.catalog.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    home = tmp_path / "home"
    got = _in_venv(
        installed,
        f"""
        import json, sqlite3
        from pathlib import Path
        import vidrag_kernel
        from vidrag_kernel import Workbench

        with Workbench(home=Path({str(home)!r})) as wb:
            wb.collections.create("CS101")
            names = [c.name for c in wb.collections.list()]
        db = sqlite3.connect({str(home / "catalog.sqlite")!r})
        version = db.execute("select version_num from alembic_version").fetchall()
        tables = sorted(r[0] for r in db.execute("select name from sqlite_master where type='table'"))
        print(json.dumps({{"names": names, "version": version, "tables": tables, "file": vidrag_kernel.__file__}}))
        """,
    )
    assert Path(got["file"]).is_relative_to(installed["site"])
    assert "CS101" in got["names"]
    assert got["version"] == [[head]]
    assert {"collections", "videos", "chunks", "conversations"} <= set(got["tables"])


def test_the_console_script_runs(installed):
    vidrag = installed["venv"] / "bin" / "vidrag"
    assert vidrag.read_text().startswith(f"#!{installed['python']}")
    result = _run([str(vidrag), "--help"], cwd=installed["cwd"], env=installed["env"])
    assert "usage: vidrag" in result.stdout and "ingest" in result.stdout
    listed = _run([str(vidrag), "collections", "list", "--json"], cwd=installed["cwd"], env=installed["env"])
    assert (Path(installed["env"]["VIDRAG_HOME"]) / "catalog.sqlite").exists(), listed.stdout


def test_scheduled_runs_find_the_batch_notebook_in_the_wheel(installed):
    """The service's scheduled runs execute 01_batch_ingest.ipynb: an installed wheel has no
    notebooks/ folder, so the package carries it (pyproject's force-include)."""
    got = _in_venv(
        installed,
        """
        import json
        from vidrag_hub.batchrun import default_notebook

        path = default_notebook()
        print(json.dumps({"path": str(path), "cells": len(json.loads(path.read_text())["cells"])}))
        """,
    )
    assert Path(got["path"]).is_relative_to(installed["site"]) and got["cells"] > 0
