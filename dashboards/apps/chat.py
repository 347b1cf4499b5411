"""The vidrag chat with its player alone, for ``panel serve``.

panel serve dashboards/apps/chat.py --plugins vidrag_dashboards.media
"""

import panel as pn
from vidrag_dashboards.app import CSS, EXTENSIONS, VIEWPORT
from vidrag_dashboards.chat_panel import ChatPanel
from vidrag_dashboards.state import AppState

pn.extension(*EXTENSIONS, raw_css=[CSS])

state = AppState()
state.start()
pn.template.FastListTemplate(
    title="vidrag chat", main=[ChatPanel(state)], main_layout=None, raw_css=[CSS], meta_viewport=VIEWPORT
).servable()
