"""vidrag's JupyterHub deployment: configuration, the demo login and the `make run` launcher.

- ``jupyterhub_config.py``: the hub configuration, driven by ``VIDRAG_*`` variables;
- ``options``: those variables as documented traitlets options;
- ``spawning``: what each user's server gets (data folder, dashboards, environment);
- ``demo_auth``: the loopback-only demo login;
- ``launch``: ``make run`` (seed the sample course, start the hub, stop everything on Ctrl-C);
- ``seed``: ingest the sample lecture into each demo user's "Sample course".
"""

#: The configuration file to pass to ``jupyterhub -f``.
from pathlib import Path

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
