"""The jupyter_bokeh widget the dashboards use in notebooks and Voila drops late echoes.

The browser half of jupyter_bokeh sends every change it applied from the kernel back, late
when the kernel was busy. These tests feed such messages to the real widget class (the
kernel side of the comm) the way the browser sends them; the whole story runs in a real
browser through Voila in tests/test_dashboards_hub.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import panel as pn
import pytest
from bokeh.document import Document
from vidrag_dashboards import notebook_comms

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _change(model, attr: str, new) -> dict:
    """A property change as jupyter_bokeh's browser half sends it."""
    return {"event": "jsevent", "kind": "ModelChanged", "model": {"id": model.id}, "attr": attr, "new": new}


def _widget(cls, viewable):
    root = viewable.get_root(doc=Document())
    return cls(root, combine_events=True), root


def test_a_late_echo_of_an_emptied_column_does_not_detach_what_came_after():
    filtering = notebook_comms.widget_class()
    plain = filtering.__bases__[0]  # jupyter_bokeh's BokehModel, even after install()
    for cls, survives in ((filtering, True), (plain, False)):
        answers = pn.Column(pn.pane.Markdown("first answer"))
        widget, root = _widget(cls, answers)
        answers.clear()  # "New conversation"
        answers.append(pn.pane.Markdown("_Searching the videos…_"))  # the next question
        new_turn = root.children[0]
        widget._sync_model(widget, _change(root, "children", []), [])  # the late echo of clear()
        assert (root.children == [new_turn]) is survives, cls
        assert (new_turn.document is not None) is survives, cls


def test_what_the_user_changes_still_arrives():
    cls = notebook_comms.widget_class()
    box = pn.widgets.TextInput(value="")
    widget, root = _widget(cls, pn.Column(box))
    field = root.children[0]
    box.value = "kernel text"
    box.value = ""  # e.g. the question box emptied after asking
    widget._sync_model(widget, _change(field, "value", "kernel text"), [])  # an echo: dropped
    assert field.value == ""
    widget._sync_model(widget, _change(field, "value", "typed by the user"), [])
    assert field.value == "typed by the user"
    widget._sync_model(widget, _change(field, "value", "kernel text"), [])  # no echo due any more
    assert field.value == "kernel text"


def test_a_user_change_that_replaced_a_queued_echo_clears_it():
    cls = notebook_comms.widget_class()
    scope = pn.widgets.Select(options=["All", "Algorithms"], value="All")
    widget, root = _widget(cls, pn.Column(scope))
    field = root.children[0]
    scope.value = "Algorithms"  # the kernel points the chat at a new collection...
    # ...and the user picks "All" while the kernel is busy: the browser folds the queued
    # echo of "Algorithms" into this change, so that echo never arrives
    widget._sync_model(widget, _change(field, "value", "All"), [])
    assert field.value == "All"
    widget._sync_model(widget, _change(field, "value", "Algorithms"), [])  # picked again later
    assert field.value == "Algorithms"


def test_fingerprints_of_kernel_and_browser_values_agree():
    md = pn.pane.Markdown("x").get_root(doc=Document())
    fp, fpj = notebook_comms.fingerprint, notebook_comms.fingerprint_json
    assert fp([md]) == fpj([{"id": md.id}])
    assert fp({"flex-item": [md]}) == fpj({"type": "map", "entries": [["flex-item", [{"id": md.id}]]]})
    assert fp("text") == fpj("text") and fp(1.5) == fpj(1.5) and fp(None) == fpj(None)
    assert fp(b"bytes") != fpj({"type": "bytes", "data": "Ynl0ZXM="})  # not compared: let through
    assert fpj({"type": "number", "value": "nan"}) != fpj({"type": "number", "value": "nan"})


def test_panels_stylesheets_go_out_inline_not_from_the_cdn(monkeypatch):
    import pandas as pd
    from bokeh.models import ImportedStyleSheet, UIElement

    monkeypatch.setattr(pn.config, "inline", True)

    def from_cdn(root) -> list[str]:
        return [
            sheet.url
            for model in root.references()
            if isinstance(model, UIElement)
            for sheet in model.stylesheets
            if isinstance(sheet, ImportedStyleSheet) and "cdn.holoviz.org" in sheet.url
        ]

    layout = pn.Column(pn.widgets.Button(label="Ask"))
    root = layout.get_root(doc=Document())
    assert from_cdn(root)  # what the stock widget would send
    widget = notebook_comms.widget_class()(root, combine_events=True)
    assert from_cdn(root) == [] and "cdn.holoviz.org" not in str(widget.render_bundle)
    sent = []
    monkeypatch.setattr(widget, "send", lambda msg, buffers=None: sent.append(str(msg)))
    layout.append(pn.widgets.Tabulator(pd.DataFrame({"video": ["lecture"]})))  # added later
    assert from_cdn(root) == []
    assert sent and not any("cdn.holoviz.org" in m for m in sent)
    assert any("tabulator" in m for m in sent)  # the new table went out, with its sheets


def test_the_fix_applies_only_to_the_jupyter_bokeh_versions_it_was_tested_with(monkeypatch):
    import jupyter_bokeh
    import jupyter_bokeh.widgets as widgets

    stock = notebook_comms.widget_class().__bases__[0]
    monkeypatch.setattr(widgets, "BokehModel", stock)  # restored after the test
    assert notebook_comms.tested(jupyter_bokeh.__version__)  # the installed one (pyproject's pin)
    assert notebook_comms.install() is True and widgets.BokehModel is notebook_comms.widget_class()
    assert notebook_comms.install() is True  # idempotent

    monkeypatch.setattr(widgets, "BokehModel", stock)
    for version in ("4.2.0", "5.0.0", "4.0.5", "3.0.7"):
        monkeypatch.setattr(jupyter_bokeh, "__version__", version)
        with pytest.warns(RuntimeWarning, match=f"jupyter_bokeh {version} is not a version"):
            assert notebook_comms.install() is False
        assert widgets.BokehModel is stock  # left alone
    assert notebook_comms.tested("4.1.3") and not notebook_comms.tested("4.2.0rc1")
    # what `pip install 'vidrag[dashboards]'` installs is the range the fix was tested with
    extra = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert f"jupyter_bokeh{notebook_comms.TESTED}" in extra["project"]["optional-dependencies"]["dashboards"]
