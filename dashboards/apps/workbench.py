"""The vidrag workbench (Chat and Collections tabs) for ``panel serve``.

    panel serve dashboards/apps/workbench.py --plugins vidrag_dashboards.media

The Workbench comes from the ``VIDRAG_*`` environment (``VIDRAG_HOME`` ...). Under
JupyterHub (a server's environment has ``JUPYTERHUB_SERVICE_PREFIX``) the header links
back to JupyterLab.
"""

import os

import panel as pn
from vidrag_dashboards.app import CSS, EXTENSIONS, WorkbenchApp, jupyterlab_url

pn.extension(*EXTENSIONS, raw_css=[CSS])

links = {"Open JupyterLab": jupyterlab_url()} if "JUPYTERHUB_SERVICE_PREFIX" in os.environ else {}
WorkbenchApp(links=links).template().servable()
