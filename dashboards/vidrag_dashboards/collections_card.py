"""The Collections card: pick one, search, the table with metadata, and a form to create,
edit or delete (with confirmation). Picking sets ``state.collection`` for the other cards.

Both the picker and the table group "My collections" and "Shared with me" (a shared one
shows its owner and my role). On a collection shared with me as a viewer the form is
read-only and Save and Delete are hidden; Delete shows for owners only (the service
refuses anyway, and its refusal becomes a message on the notice line)."""

from __future__ import annotations

import pandas as pd
import panel as pn

from vidrag_kernel import format_time

from .card import Card, flex
from .controls import button, table
from .format import esc
from .scopes import group_of, grouped

COLUMNS = [
    "list",
    "name",
    "videos",
    "duration",
    "role",
    "owner",
    "instructor",
    "subject",
    "semester",
    "tags",
    "id",
]


class CollectionsCard(Card):
    """The collections of this user (own and shared), and the details form."""

    title = "Collections"

    def __init__(self, state, notices=None, **params) -> None:
        super().__init__(state, notices, **params)
        self.picker = pn.widgets.Select(label="Collection", groups={}, sizing_mode="stretch_width")
        self.search = pn.widgets.TextInput(
            label="Search collections",
            placeholder="name, instructor, subject, semester, tag…",
            sizing_mode="stretch_width",
        )
        self.table = table(
            pd.DataFrame(columns=COLUMNS),
            selectable=1,
            max_height=260,
            layout="fit_data_stretch",
            # a column, not Tabulator's groupby: its group rows break the grid's ARIA roles
            hidden_columns=["id"],
            css_classes=["vidrag-collections"],
        )
        self.f_name = pn.widgets.TextInput(label="Name", sizing_mode="stretch_width")
        self.f_description = pn.widgets.TextInput(label="Description", sizing_mode="stretch_width")
        self.f_instructor = pn.widgets.TextInput(label="Instructor", sizing_mode="stretch_width")
        self.f_subject = pn.widgets.TextInput(label="Subject", sizing_mode="stretch_width")
        self.f_semester = pn.widgets.TextInput(label="Semester", sizing_mode="stretch_width")
        self.f_tags = pn.widgets.TextInput(label="Tags (comma separated)", sizing_mode="stretch_width")
        # speech recognition is told to expect these when the collection's videos are transcribed
        self.f_glossary = pn.widgets.TextInput(
            label="Glossary: course terms and names (comma separated)",
            placeholder="Wegener, Pangaea, slab pull",
            sizing_mode="stretch_width",
        )
        self.new_button = button("New collection")
        self.create_button = button("Create collection", "primary")
        self.save_button = button("Save changes")
        self.delete_button = button("Delete collection", "danger")

        self.picker.param.watch(self._picked, "value")
        self.search.param.watch(lambda e: self.guard(self.refresh), "value_input")
        self.table.param.watch(self._table_selected, "selection")
        self.new_button.on_click(lambda e: self.clear_form())
        self.create_button.on_click(lambda e: self.guard(self.create))
        self.save_button.on_click(lambda e: self.guard(self.save))
        self.delete_button.on_click(lambda e: self.guard(self.ask_delete))
        state.param.watch(lambda e: self.guard(self.refresh), "revision")
        state.param.watch(lambda *e: self.show_controls(), ["role", "library"])
        self.refresh()

    def body(self) -> list:
        return [
            pn.FlexBox(self.picker, self.search, flex_wrap="wrap", sizing_mode="stretch_width"),
            self.table,
            pn.pane.Markdown(
                "**Details** of the selected collection, to edit; or press *New collection*, fill in and create:",
                margin=(10, 5, 0, 5),
            ),
            flex(self.f_name, self.f_description, basis="260px"),
            flex(self.f_instructor, self.f_subject, self.f_semester, self.f_tags, basis="180px"),
            self.f_glossary,
            pn.FlexBox(
                self.new_button, self.create_button, self.save_button, self.delete_button, flex_wrap="wrap"
            ),
        ]

    def refresh(self) -> None:
        """Reload the picker, the table (filtered by the search) and the form."""
        infos = self.wb.collections.list(search=self.search.value_input or None)
        everything = self.wb.collections.list()
        groups = grouped(everything, count=False)
        ids = {c.id for c in everything}
        current = self.state.collection
        if current not in ids:
            named = [c for c in everything if not c.is_default] or everything
            current = named[0].id if named else None
        self.picker.groups = groups
        self.picker.value = current
        if self.state.collection != current:
            self.state.collection = current
        self.table.value = pd.DataFrame(
            [
                {
                    "list": group_of(c),
                    "name": c.name,
                    "videos": c.video_count,
                    "duration": format_time(c.total_duration),
                    "role": c.role,
                    "owner": c.owner,
                    "instructor": c.instructor or "",
                    "subject": c.subject or "",
                    "semester": c.semester or "",
                    "tags": ", ".join(c.tags),
                    "id": c.id,
                }
                # mine first, then shared with me (the table groups rows in that order)
                for c in sorted(infos, key=lambda c: group_of(c) != "My collections")
            ],
            columns=COLUMNS,
        )
        self.fill_form()
        self.show_controls()

    def show_controls(self) -> None:
        """Hide the controls my role on the collection in focus does not allow."""
        editable = self.state.may_edit
        for field in self._fields():
            field.disabled = not editable
        self.save_button.visible = editable
        self.delete_button.visible = self.state.may_delete or self.state.collection is None

    def _fields(self) -> tuple:
        return (
            self.f_name,
            self.f_description,
            self.f_instructor,
            self.f_subject,
            self.f_semester,
            self.f_tags,
            self.f_glossary,
        )

    def fill_form(self) -> None:
        """Show the details of the collection in focus."""
        if not self.state.collection:
            return
        info = self.wb.collections.get(self.state.collection)
        self.f_name.value = info.name
        self.f_description.value = info.description
        self.f_instructor.value = info.instructor or ""
        self.f_subject.value = info.subject or ""
        self.f_semester.value = info.semester or ""
        self.f_tags.value = ", ".join(info.tags)
        self.f_glossary.value = ", ".join(info.glossary)

    def clear_form(self) -> None:
        """Empty the details, so a new collection does not start as a copy of the selected one."""
        for field in self._fields():
            field.value = ""
            field.disabled = False  # a new collection is mine

    def _picked(self, event) -> None:
        if event.new and event.new != self.state.collection:
            self.state.collection = event.new
            self.guard(self.fill_form)

    def _table_selected(self, event) -> None:
        if event.new:
            self.picker.value = self.table.value.iloc[event.new[0]]["id"]

    def _meta(self) -> dict:
        tags = [t.strip() for t in self.f_tags.value.split(",") if t.strip()]
        return {
            "instructor": self.f_instructor.value or None,
            "subject": self.f_subject.value or None,
            "semester": self.f_semester.value or None,
            "tags": tags,
            "glossary": [t.strip() for t in self.f_glossary.value.split(",") if t.strip()],
        }

    def create(self) -> None:
        """Create a collection from the form."""
        info = self.wb.collections.create(self.f_name.value, self.f_description.value, **self._meta())
        self.state.collection = info.id
        self.state.changed()
        self.say(f"Created collection “{info.name}”.", "success")

    def save(self) -> None:
        """Save the form into the collection in focus."""
        if not self.state.collection:
            return
        info = self.wb.collections.update(
            self.state.collection,
            name=self.f_name.value,
            description=self.f_description.value,
            **self._meta(),
        )
        self.state.changed()
        self.say(f"Saved “{info.name}”.", "success")

    def ask_delete(self) -> None:
        """Ask to confirm deleting the collection in focus."""
        if not self.state.collection:
            return
        info = self.wb.collections.get(self.state.collection)
        self.notices.confirm(
            f"Delete the collection <strong>{esc(info.name)}</strong> with its index? "
            f"Its {info.video_count} video(s) are deleted too unless they also belong to another collection.",
            lambda: self._delete(info.id, info.name),
        )

    def _delete(self, collection_id: str, name: str) -> None:
        deleted = self.wb.collections.delete(collection_id)
        self.state.collection = None
        self.state.changed()
        self.say(f"Deleted “{name}” ({len(deleted)} video(s) removed).", "success")
