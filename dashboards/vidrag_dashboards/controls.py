"""Buttons whose colours meet WCAG 2.1 AA contrast (4.5:1 for their text).

Bokeh's solid buttons put white text on #d9534f (danger, 3.96:1), #5cb85c (success,
2.5:1) and #f0ad4e (warning, 2.1:1). Every button of the dashboards is made here, with
darker fills (and dark text on the yellow one).
"""

from __future__ import annotations

import panel as pn

BUTTON_CSS = """
:host .bk-btn.bk-btn-danger { background-color: #b02a37; border-color: #b02a37; color: #fff; }
:host .bk-btn.bk-btn-success { background-color: #146c43; border-color: #146c43; color: #fff; }
:host .bk-btn.bk-btn-warning { background-color: #ffc107; border-color: #b38600; color: #212529; }
:host .bk-btn.bk-btn-primary { background-color: #0a58ca; border-color: #0a58ca; color: #fff; }
:host .bk-btn.bk-btn-light { background-color: #f6f8fa; border-color: #8c959f; color: #1f2328; }
:host .bk-btn:not([disabled]):hover { filter: brightness(0.88); }
:host .bk-btn:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
"""


def button(label: str, color: str = "default", **params) -> pn.widgets.Button:
    """A Button (``color``: default, primary, success, warning, danger, light) in AA colours."""
    params["stylesheets"] = [*params.get("stylesheets", []), BUTTON_CSS]
    return pn.widgets.Button(label=label, color=color, **params)


def download(label: str, callback, filename: str, **params) -> pn.widgets.FileDownload:
    """A FileDownload button in AA colours (light, like a secondary action)."""
    params["stylesheets"] = [*params.get("stylesheets", []), BUTTON_CSS]
    params.setdefault("color", "light")
    return pn.widgets.FileDownload(callback=callback, filename=filename, label=label, **params)


#: Tabulator marks a selected row white on #2486c0 (4.0:1); a darker blue reads at 6:1.
TABLE_CSS = """
.tabulator-row.tabulator-selected, .tabulator-row.tabulator-selected .tabulator-cell { background-color: #0a58ca; color: #fff; }
.tabulator-row.tabulator-selected:hover, .tabulator-row.tabulator-selected:hover .tabulator-cell { background-color: #084298; color: #fff; }
"""


def table(value, **params) -> pn.widgets.Tabulator:
    """A read-only Tabulator (no index, full width) whose selected rows meet AA contrast."""
    params["stylesheets"] = [*params.get("stylesheets", []), TABLE_CSS]
    params.setdefault("show_index", False)
    params.setdefault("disabled", True)
    params.setdefault("sizing_mode", "stretch_width")
    return pn.widgets.Tabulator(value, **params)


#: Panel's alert text on its tinted fills is 4.3:1 (info) and 3.9:1 (warning); Bootstrap's
#: "emphasis" shades read at 7:1 on the same fills.
ALERT_CSS = """
:host(.alert.alert-info) { color: #055160; }
:host(.alert.alert-warning) { color: #664d03; }
:host(.alert.alert-danger) { color: #842029; }
:host(.alert.alert-success) { color: #0f5132; }
:host(.alert.alert-primary) { color: #084298; }
:host(.alert) a { color: inherit; text-decoration: underline; }
"""


def alert(text: str = "", **params) -> pn.pane.Alert:
    """An Alert pane (``alert_type`` info, warning, danger, success) whose text meets AA contrast."""
    params["stylesheets"] = [*params.get("stylesheets", []), ALERT_CSS]
    return pn.pane.Alert(text, **params)
