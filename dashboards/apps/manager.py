"""The vidrag collection manager alone, for ``panel serve``.

panel serve dashboards/apps/manager.py --plugins vidrag_dashboards.media
"""

import panel as pn
from vidrag_dashboards.app import CSS, EXTENSIONS, page, served
from vidrag_dashboards.collection_manager import CollectionManager
from vidrag_dashboards.state import AppState

pn.extension(*EXTENSIONS, raw_css=[CSS])

state = AppState()
state.start()
served(page("vidrag collections", CollectionManager(state))).servable()
