"""The vidrag collection manager alone, for ``panel serve``.

panel serve dashboards/apps/manager.py --plugins vidrag_dashboards.media
"""

import panel as pn
from vidrag_dashboards.app import CSS, EXTENSIONS, VIEWPORT
from vidrag_dashboards.collection_manager import CollectionManager
from vidrag_dashboards.state import AppState

pn.extension(*EXTENSIONS, raw_css=[CSS])

state = AppState()
state.start()
pn.template.FastListTemplate(
    title="vidrag",
    main=[CollectionManager(state)],
    main_layout=None,
    raw_css=[CSS],
    meta_viewport=VIEWPORT,
).servable()
