"""The vidrag chat with its player alone, for ``panel serve``.

panel serve dashboards/apps/chat.py --plugins vidrag_dashboards.media
"""

import panel as pn
from vidrag_dashboards.app import CSS, EXTENSIONS, page, served
from vidrag_dashboards.chat_panel import ChatPanel
from vidrag_dashboards.state import AppState

pn.extension(*EXTENSIONS, raw_css=[CSS])

state = AppState()
state.start()
served(page("vidrag chat", ChatPanel(state)), title="vidrag chat").servable()
