"""Chat with the videos: ask, watch the answer stream in, click a citation to play that moment.

The scope is one collection or some selected videos (or everything). Each question goes
to ``Workbench.ask_stream`` on a worker thread; its text pieces are coalesced into the
answer as it is written, then the final ``Answer`` replaces it with the checked text and
its citations as chips. Conversations are kept by the kernel: pick one to continue it,
rename, delete (with confirmation) or download it as Markdown or a notebook.
"""

from __future__ import annotations

import io

import panel as pn

from vidrag_kernel import VidragError

from . import scopes
from .background import Throttle, run_in_background
from .controls import alert, button, download
from .feedback import guarded, user_message
from .format import esc, span
from .layout import Region, Section
from .player import Player
from .state import AppState

ALL = "__all__"
#: The first entry of the conversation list: a Select always has a value, and this one means "none yet".
NEW = ""


class Turn(pn.viewable.Viewer):
    """One question and its answer (streaming, then final with citation chips)."""

    def __init__(self, question: str, on_cite, *, pending: bool = True) -> None:
        super().__init__()
        self._on_cite = on_cite
        self.question = pn.pane.Markdown(
            f"**You:** {question}", sizing_mode="stretch_width", css_classes=["vidrag-question"]
        )
        self.answer = pn.pane.Markdown(
            "_Searching the videos…_" if pending else "",
            sizing_mode="stretch_width",
            css_classes=["vidrag-answer"],
        )
        self.notes = pn.Column(sizing_mode="stretch_width")
        self.chips = pn.FlexBox(sizing_mode="stretch_width", css_classes=["vidrag-citations"])
        self._layout = pn.Column(
            self.question,
            self.answer,
            self.notes,
            self.chips,
            sizing_mode="stretch_width",
            styles={"border-bottom": "1px solid #ddd", "padding-bottom": "6px"},
        )

    def __panel__(self):
        return self._layout

    def stream(self, text: str) -> None:
        self.answer.object = text + " ▌"

    def finish(self, text: str, citations, *, no_answer=False, fallback_reason=None, flagged=()) -> None:
        """Show the final, checked text with citation chips and any notes."""
        self.answer.object = text
        self.notes.clear()
        if no_answer:
            self.notes.append(
                alert(
                    "No relevant passage was found in these videos, so there is no answer (nothing was made up).",
                    alert_type="warning",
                    sizing_mode="stretch_width",
                    css_classes=["vidrag-no-answer"],
                )
            )
        if fallback_reason:
            self.notes.append(
                alert(
                    f"The language model was unavailable ({fallback_reason}); this answer quotes the passages instead.",
                    alert_type="info",
                    sizing_mode="stretch_width",
                    css_classes=["vidrag-fallback"],
                )
            )
        if flagged:
            self.notes.append(
                alert(
                    "Not supported by the cited passages: " + " · ".join(flagged),
                    alert_type="warning",
                    sizing_mode="stretch_width",
                )
            )
        chips = []
        for c in citations:
            chip = button(
                f"[{c.n}] {c.title} · {span(c.start, c.end)}",
                "light",
                css_classes=["vidrag-citation"],
                margin=(2, 4),
            )
            chip.on_click(lambda e, c=c: self._on_cite(c))
            chips.append(chip)
        # all at once: in a notebook (Voila, jupyter_bokeh), chips appended one by one
        # were shown but only the first answered clicks (tests/test_dashboards_hub.py)
        self.chips.objects = chips

    def fail(self, message: str) -> None:
        self.answer.object = ""
        self.notes.clear()
        self.notes.append(alert(message, alert_type="danger", sizing_mode="stretch_width"))


class ChatPanel(pn.viewable.Viewer):
    """Ask questions of a collection or selected videos, with a player beside the answers."""

    def __init__(self, state: AppState, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.wb = state.wb
        self.conversation_id: str | None = None
        self.busy = False
        self._focus: str | None = None  # the manager's collection when the scope last followed it

        self.banner = alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.status = alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.scope = pn.widgets.Select(label="Ask", groups={}, sizing_mode="stretch_width")
        self.videos = pn.widgets.MultiChoice(
            label="…or only these videos",
            options={},
            sizing_mode="stretch_width",
            placeholder="all videos of the scope",
        )
        self.turns = pn.Column(
            sizing_mode="stretch_width",
            scroll=True,
            min_height=200,
            max_height=560,
            css_classes=["vidrag-turns"],
        )
        self.question = pn.widgets.TextInput(
            placeholder="Ask a question and press Enter",
            sizing_mode="stretch_width",
            css_classes=["vidrag-question-input"],
        )
        self.ask_button = button("Ask", "primary", width=80)
        self.player = Player(self.wb, name="chat")

        self.conversations = pn.widgets.Select(
            label="Conversations", options={}, size=8, sizing_mode="stretch_width"
        )
        self.new_button = button("New conversation", "primary")
        self.rename_input = pn.widgets.TextInput(placeholder="New title", sizing_mode="stretch_width")
        self.rename_button = button("Rename")
        self.delete_button = button("Delete", "danger")
        self.confirm_delete = button("Really delete", "danger", visible=False)
        self.export_md = download("Markdown", lambda: self._export("markdown"), "conversation.md")
        self.export_nb = download("Notebook", lambda: self._export("ipynb"), "conversation.ipynb")
        self.conversation_title = pn.pane.Markdown("### New conversation", sizing_mode="stretch_width")

        self._wire()
        self.refresh()
        self._layout = self._build()

    def _build(self):
        history = Section(
            "History",
            self.new_button,
            self.conversations,
            pn.Row(self.rename_input, self.rename_button, sizing_mode="stretch_width"),
            pn.Row(self.delete_button, self.confirm_delete),
            pn.pane.Markdown("Download:", margin=(5, 5, 0, 5)),
            pn.Row(self.export_md, self.export_nb),
        )
        ask = Region(
            self.banner,
            self.status,
            pn.FlexBox(self.scope, self.videos, flex_wrap="wrap", sizing_mode="stretch_width"),
            self.conversation_title,
            self.turns,
            pn.Row(self.question, self.ask_button, sizing_mode="stretch_width"),
            tag="section",
            heading="Ask the videos",
        )
        side = pn.Column(Section("Player", self.player), history, sizing_mode="stretch_width")
        for obj, basis in ((ask, "520px"), (side, "340px")):
            obj.styles = {"flex": f"1 1 {basis}", "min-width": "0"}
        return pn.FlexBox(ask, side, flex_wrap="wrap", gap="12px", sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    # -- wiring -----------------------------------------------------------------------------
    def _wire(self) -> None:
        self.question.param.watch(lambda e: self._guard(self.ask), "enter_pressed")
        self.ask_button.on_click(lambda e: self._guard(self.ask))
        self.scope.param.watch(lambda e: self._guard(self._scope_changed, e), "value")
        self.videos.param.watch(lambda e: self._new_conversation(), "value")
        self.conversations.param.watch(self._conversation_picked, "value")
        self.new_button.on_click(lambda e: self._new_conversation())
        self.rename_button.on_click(lambda e: self._guard(self._rename))
        self.delete_button.on_click(lambda e: self._ask_delete())
        self.confirm_delete.on_click(lambda e: self._guard(self._delete))
        self.state.param.watch(lambda e: self._guard(self.refresh), ["revision", "ingesting", "collection"])

    def _guard(self, fn, *args) -> bool:
        """Run a UI action; an error becomes the status line (VidragError as is, others logged)."""
        return guarded(fn, self.say, *args)

    def say(self, message: str) -> None:
        self.status.param.update(object=message, visible=bool(message))

    # -- state --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload scopes, videos, conversations and the state banner."""
        collections = self.wb.collections.list()
        # grouped (an <optgroup> each): my own collections, then those shared with me
        groups = {"Everything": {"All collections": ALL}, **scopes.grouped(collections)}
        options = scopes.flat(groups)
        current = self.scope.value
        focus = self.state.collection
        if focus != self._focus and focus in options.values():
            # picking or creating a collection in the manager points the chat at it too
            current, self._focus = focus, focus
        elif current not in options.values():
            current = ALL
        self.scope.groups = groups
        self.scope.value = current
        self._refresh_videos()
        self._refresh_conversations()
        self._refresh_banner()

    def _refresh_videos(self) -> None:
        scope = None if self.scope.value in (None, ALL) else self.scope.value
        try:
            videos = self.wb.videos.list(scope)
        except VidragError:  # the scope's collection was just deleted: the next refresh moves on
            videos = []
        ready = {v.title + f" ({v.id[:8]})": v.id for v in videos if v.status == "ready"}
        keep = [v for v in self.videos.value if v in ready.values()]
        self.videos.options = ready
        if keep != self.videos.value:
            self.videos.value = keep

    def _refresh_conversations(self) -> None:
        convs = self.wb.conversations.list()
        options = {
            "(new conversation)": NEW,
            **{f"{c.title} · {c.message_count // 2} Q": c.id for c in convs},
        }
        self.conversations.options = options
        self.conversations.value = self.conversation_id if self.conversation_id in options.values() else NEW

    def _refresh_banner(self) -> None:
        videos = self.wb.videos.list()
        ready = [v for v in videos if v.status == "ready"]
        jobs = self.wb.jobs.list(limit=30)
        running = self.state.ingesting > 0 or any(j.active for j in jobs)
        failed = [j for j in jobs if j.state == "failed"]
        notes = []
        kind = "info"
        if not ready:
            notes.append("No videos yet: add some in the **Collections** tab, then ask here.")
            kind = "warning"
        if running:
            notes.append("An ingest is still running: answers use only the videos that are ready.")
        if failed:
            notes.append(f"{len(failed)} ingest(s) failed (see **Collections › Failed ingests**).")
        self.banner.param.update(object=" ".join(notes), alert_type=kind, visible=bool(notes))

    def _scope_changed(self, event) -> None:
        self._refresh_videos()
        self._new_conversation()

    # -- conversations ------------------------------------------------------------------------
    def _new_conversation(self) -> None:
        if self.busy:
            return
        self.conversation_id = None
        self.conversations.value = NEW
        self.turns.clear()
        self.conversation_title.object = "### New conversation"
        self.say("")

    def _conversation_picked(self, event) -> None:
        if event.new == NEW and self.conversation_id and not self.busy:
            self._new_conversation()
            return
        if not event.new or event.new == self.conversation_id or self.busy:
            return
        try:
            conv = self.wb.conversations.get(event.new)
        except Exception as exc:
            self.say(user_message(exc))
            return
        self.conversation_id = conv.id
        self.conversation_title.object = f"### {conv.title}\n<small>{esc(conv.scope)}</small>"
        self.rename_input.value = conv.title
        turns = []
        question = None
        for m in conv.messages:
            if m.role == "user":
                question = m.content
            else:
                turn = Turn(question or "", self.play_citation, pending=False)
                turn.finish(
                    m.content,
                    m.citations,
                    no_answer=m.no_answer,
                    fallback_reason=m.fallback_reason,
                    flagged=m.flagged,
                )
                turns.append(turn)
                question = None
        self.turns.objects = turns  # at once, as Turn.finish sets its chips

    def _rename(self) -> None:
        if not self.conversation_id:
            self.say("Pick a conversation to rename.")
            return
        info = self.wb.conversations.rename(self.conversation_id, self.rename_input.value)
        self.conversation_title.object = f"### {info.title}"
        self._refresh_conversations()

    def _ask_delete(self) -> None:
        self.confirm_delete.visible = bool(self.conversation_id)

    def _delete(self) -> None:
        self.confirm_delete.visible = False
        if self.conversation_id:
            self.wb.conversations.delete(self.conversation_id)
            self._new_conversation()
            self._refresh_conversations()

    def _export(self, fmt: str):
        if not self.conversation_id:
            return io.StringIO("")
        conv = self.wb.conversations.get(self.conversation_id)
        stem = (
            "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in conv.title).strip() or "conversation"
        )
        ext = "md" if fmt == "markdown" else "ipynb"
        (self.export_md if fmt == "markdown" else self.export_nb).filename = f"{stem}.{ext}"
        return io.StringIO(self.wb.conversations.export(self.conversation_id, fmt))

    # -- asking --------------------------------------------------------------------------------
    def play_citation(self, citation) -> None:
        """Play the cited video from the citation's first second."""
        try:
            self.player.play(citation.video_id, citation.start, title=citation.title)
        except Exception as exc:
            self.say(f"Cannot play this source: {user_message(exc)}")

    def ask(self, question: str | None = None) -> None:
        """Ask ``question`` (default: the text box) in the current scope or conversation."""
        question = (question or self.question.value_input or self.question.value or "").strip()
        if not question or self.busy:
            return
        self.busy = True
        self.ask_button.disabled = True
        self.question.value = ""
        self.say("")
        turn = Turn(question, self.play_citation)
        self.turns.append(turn)
        if self.conversation_id:
            kwargs = {"conversation": self.conversation_id}
        elif self.videos.value:
            kwargs = {"videos": list(self.videos.value)}
        else:
            kwargs = {"collection": None if self.scope.value in (None, ALL) else self.scope.value}
        throttle = Throttle(self.state.ui, turn.stream)

        def work():
            pieces = []
            final = None
            for item in self.wb.ask_stream(question, **kwargs):
                if isinstance(item, str):
                    pieces.append(item)
                    throttle.push("".join(pieces))
                else:
                    final = item
            return final

        def done(answer) -> None:
            self.busy = False
            self.ask_button.disabled = False
            if answer is None:
                turn.fail("No answer came back.")
                return
            turn.finish(
                answer.text,
                answer.citations,
                no_answer=answer.no_answer,
                fallback_reason=answer.fallback_reason,
                flagged=answer.flagged,
            )
            if answer.conversation_id and answer.conversation_id != self.conversation_id:
                self.conversation_id = answer.conversation_id
                self.conversation_title.object = f"### {question[:80]}"
            self._refresh_conversations()

        def failed(exc) -> None:
            self.busy = False
            self.ask_button.disabled = False
            turn.fail(f"Could not answer: {user_message(exc)}")

        run_in_background(self.state.ui, work, on_done=done, on_error=failed)
