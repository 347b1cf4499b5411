"""vidrag's JupyterHub deployment: configuration, the demo login and the `make run` launcher.

- ``jupyterhub_config.py``: the hub configuration, driven by ``VIDRAG_*`` variables;
- ``options``: those variables as documented traitlets options;
- ``spawning``: what each user's server gets (data folder, dashboards, environment);
- ``demo_auth``: the loopback-only demo login;
- ``launch``: ``make run`` (seed the sample course, start the hub, stop everything on Ctrl-C);
- ``seed``: ingest the sample lecture into each demo user's "Sample course".
"""

from pathlib import Path

#: The configuration file to pass to ``jupyterhub -f``.
CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
#: Jupyter Server settings of users' servers (the websocket limit uploads need); the
#: single-user image installs it, ``jupyterhub_config.py`` passes it to local servers.
SERVER_CONFIG_FILE = Path(__file__).parent / "docker" / "jupyter_server_config.json"
