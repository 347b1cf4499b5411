"""Accessible page structure for the dashboards: landmarks, titled sections and tabs.

Panel's own layouts render as plain ``<div>`` s, so a screen reader finds no landmarks and
no headings in order, and Bokeh's tabs cannot be switched from the keyboard (they are
focusable but answer only clicks). These small components render real elements instead:

- :class:`Region`: children inside one ``<main>``, ``<nav>``, ``<header>`` or ``<section>``
  with a name, optionally opened by a heading of the right level;
- :class:`Section`: a card with an ``<h2>`` title (a named ``<section>``);
- :class:`Tabs`: a WAI-ARIA tab list (arrow keys, Home/End) with one tab panel per child.

Every region also repairs, under it, the ARIA faults of third-party widgets it cannot
configure (see ``_REPAIR``): Tabulator's grid holds a focusable ``<div>`` where only rows
may be, and choices.js (MultiChoice) puts ``role="textbox"`` on a search input.
"""

from __future__ import annotations

import param
from panel.custom import Children, JSComponent

#: Run in each region: watch every open shadow root under it and fix the known faults.
_REPAIR = """
function repair(root) {
  for (const grid of root.querySelectorAll(".tabulator[role=grid]")) {
    // rows live in the focusable table holder: make it their row group, not a stray div
    const holder = grid.querySelector(":scope > .tabulator-tableholder")
    if (holder && holder.getAttribute("role") !== "rowgroup") { holder.setAttribute("role", "rowgroup") }
    const table = holder && holder.querySelector(":scope > .tabulator-table")
    if (table && table.getAttribute("role") !== "none") { table.setAttribute("role", "none") }
  }
  for (const col of root.querySelectorAll(".tabulator-col.empty")) {
    // Tabulator's empty filler column, not a header (it sets aria-sort again on redraws)
    if (col.getAttribute("role") !== "none") { col.setAttribute("role", "none") }
    if (col.hasAttribute("aria-sort")) { col.removeAttribute("aria-sort") }
  }
  for (const input of root.querySelectorAll("input[type=search][role=textbox]")) {
    input.removeAttribute("role")  // a search input is already a (search) text box
  }
}

// one watcher per shadow root, however many regions hold it
const watched = (window.__vidragWatched = window.__vidragWatched || new WeakSet())

function watch(root) {
  if (watched.has(root)) { return }
  watched.add(root)
  let queued = false
  const scan = () => {
    queued = false
    repair(root)
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) { watch(el.shadowRoot) }
    }
  }
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(scan) }
  }).observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ["role", "aria-sort"] })
  scan()
}
"""

_REGION_CSS = """
:host { width: 100%; }
.vidrag-region { display: flex; flex-direction: column; width: 100%; min-width: 0; box-sizing: border-box; }
.vidrag-region.vidrag-card {
  border: 1px solid var(--panel-border-color, #d0d7de); border-radius: 6px;
  padding: 4px 8px 8px 8px; margin: 5px 0; background: var(--panel-background-color, #fff);
}
h1, h2, h3 { margin: 6px 5px 4px 5px; line-height: 1.25; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; } h3 { font-size: 1.05em; }
"""


class Region(JSComponent):
    """``objects`` inside one landmark element named by ``label`` or by its ``heading``."""

    objects = Children(doc="What the region holds.")
    tag = param.Selector(default="section", objects=["main", "nav", "header", "section", "aside", "div"])
    label = param.String(default="", doc="The accessible name (when there is no heading).")
    heading = param.String(default="", doc="A heading shown first; it names the region.")
    level = param.Integer(default=2, bounds=(1, 6), doc="The heading's level.")
    card = param.Boolean(default=False, doc="Drawn as a card (a border around it).")

    _stylesheets = [_REGION_CSS]

    _esm = (
        _REPAIR
        + """
    let counter = 0
    export function render({ model }) {
      const el = document.createElement(model.tag)
      el.className = model.card ? "vidrag-region vidrag-card" : "vidrag-region"
      if (model.heading) {
        const h = document.createElement("h" + model.level)
        h.textContent = model.heading
        h.id = `vidrag-heading-${++counter}`
        el.setAttribute("aria-labelledby", h.id)
        el.appendChild(h)
      } else if (model.label) {
        el.setAttribute("aria-label", model.label)
      }
      for (const child of model.get_child("objects")) { el.appendChild(child) }
      setTimeout(() => watch(el.getRootNode()), 0)
      return el
    }
    """
    )

    def __init__(self, *objects, **params) -> None:
        if objects:
            params["objects"] = list(objects)
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**params)


def Section(title: str, *objects, **params) -> Region:  # noqa: N802 (reads like the layouts it replaces)
    """A card titled with an ``<h2>``: a ``<section>`` named by its title."""
    return Region(*objects, tag="section", heading=title, level=2, card=True, **params)


_TABS_CSS = """
:host { width: 100%; }
.vidrag-tablist { display: flex; gap: 2px; border-bottom: 1px solid #8c959f; margin: 0 5px 6px 5px; }
.vidrag-tab {
  font: inherit; padding: 6px 14px; border: 1px solid transparent; border-bottom: 0;
  background: transparent; color: #24292f; cursor: pointer; border-radius: 6px 6px 0 0;
}
.vidrag-tab[aria-selected=true] {
  border-color: #8c959f; background: var(--panel-background-color, #fff); font-weight: 600;
  margin-bottom: -1px; border-bottom: 1px solid var(--panel-background-color, #fff);
}
.vidrag-tab:focus-visible { outline: 2px solid #0969da; outline-offset: 1px; }
.vidrag-tabpanel[hidden] { display: none; }
"""


class Tabs(JSComponent):
    """Tabs that work from the keyboard (Tab to the list, arrows to switch) and for screen readers."""

    objects = Children(doc="One panel per tab.")
    names = param.List(default=[], item_type=str, doc="The tabs' names, in order.")
    active = param.Integer(default=0, doc="The index of the tab shown.")
    label = param.String(default="Sections", doc="The accessible name of the tab list.")

    _stylesheets = [_TABS_CSS]

    _esm = """
    let counter = 0
    export function render({ model }) {
      const root = document.createElement("div")
      const list = document.createElement("div")
      list.className = "vidrag-tablist"
      list.setAttribute("role", "tablist")
      list.setAttribute("aria-label", model.label)
      root.appendChild(list)
      const id = `vidrag-tabs-${++counter}`
      const tabs = [], panels = []
      model.get_child("objects").forEach((child, i) => {
        const tab = document.createElement("button")
        tab.type = "button"
        tab.className = "vidrag-tab"
        tab.id = `${id}-tab-${i}`
        tab.setAttribute("role", "tab")
        tab.setAttribute("aria-controls", `${id}-panel-${i}`)
        tab.textContent = model.names[i] ?? `Tab ${i + 1}`
        tab.addEventListener("click", () => { model.active = i })
        tab.addEventListener("keydown", (event) => {
          const n = tabs.length
          const to = { ArrowRight: i + 1, ArrowLeft: i - 1 + n, Home: 0, End: n - 1 }[event.key]
          if (to === undefined) { return }
          event.preventDefault()
          model.active = to % n
          tabs[to % n].focus()
        })
        const panel = document.createElement("div")
        panel.className = "vidrag-tabpanel"
        panel.id = `${id}-panel-${i}`
        panel.setAttribute("role", "tabpanel")
        panel.setAttribute("aria-labelledby", tab.id)
        panel.appendChild(child)
        tabs.push(tab)
        panels.push(panel)
        list.appendChild(tab)
        root.appendChild(panel)
      })
      function show() {
        tabs.forEach((tab, i) => {
          const on = i === model.active
          tab.setAttribute("aria-selected", on ? "true" : "false")
          tab.tabIndex = on ? 0 : -1
          panels[i].hidden = !on
        })
        // Bokeh lays out a view when it becomes visible; tell the shown one it has room now
        window.dispatchEvent(new Event("resize"))
      }
      model.on("active", show)
      show()
      return root
    }
    """

    def __init__(self, *items: tuple[str, object], **params) -> None:
        if items:
            params["names"] = [name for name, _ in items]
            params["objects"] = [obj for _, obj in items]
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**params)

    def append(self, item: tuple[str, object]) -> None:
        """Add a ``(name, panel)`` tab at the end."""
        name, obj = item
        self.param.update(names=[*self.names, name], objects=[*self.objects, obj])

    def __len__(self) -> int:
        return len(self.objects)
