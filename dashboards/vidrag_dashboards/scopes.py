"""Collections grouped as people think of them: "My collections" and "Shared with me".

A collection is *mine* when it is in this server's own library or I own it on the service;
otherwise someone shared it with me, and its label names the owner and my role. The chat's
scope picker and the manager's collections list both group with :func:`grouped`.
"""

from __future__ import annotations

MINE = "My collections"
SHARED = "Shared with me"


def is_mine(info) -> bool:
    """True for a personal collection or a shared one this user owns."""
    return getattr(info, "library", "local") != "shared" or info.role == "owner"


def group_of(info) -> str:
    """:data:`MINE` or :data:`SHARED`."""
    return MINE if is_mine(info) else SHARED


def label(info, *, count: bool = True) -> str:
    """A picker label: ``Name (3)``; a shared one adds its owner and my role."""
    text = f"{info.name} ({info.video_count})" if count else info.name
    if not is_mine(info):
        text += f" · {info.owner}'s, you are {info.role}"
    elif getattr(info, "library", "local") == "shared":
        text += " · shared by you"
    return text


def grouped(infos, *, count: bool = True) -> dict[str, dict[str, str]]:
    """``{group: {label: id}}`` for a grouped Select; an empty group is left out."""
    groups: dict[str, dict[str, str]] = {MINE: {}, SHARED: {}}
    for info in infos:
        options = groups[group_of(info)]
        text = label(info, count=count)
        if text in options:  # two collections of one name (a personal and a shared one)
            text += f" [{info.id[:8]}]"
        options[text] = info.id
    return {name: options for name, options in groups.items() if options}


def flat(groups: dict[str, dict[str, str]]) -> dict[str, str]:
    """The options of a grouped Select in one dict (label → value)."""
    return {text: value for options in groups.values() for text, value in options.items()}
