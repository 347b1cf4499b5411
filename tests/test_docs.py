"""The README's configuration tables against the code, both ways (as datasette tests its
documentation): every setting is documented with its true default, and every variable
the README names is one the code reads.

Three tables under "## Configuration": kernel settings (``Settings`` fields, each read from
``VIDRAG_<FIELD>``), hub settings (``VidragHubOptions`` traits tagged with an ``env``), and
other variables read directly where they are used.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import traitlets

from hub_config.options import VidragHubOptions
from vidrag_kernel.errors import InvalidInput
from vidrag_kernel.settings import Settings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
#: Code that ships or that people run; a name it spells out as a string is a variable it reads
#: or sets. tests/ is left out: it sets variables for the code under test, it reads none.
CODE_DIRS = ["vidrag_kernel", "hub_config", "dashboards", "extensions", "benchmarks"]
NAME = re.compile(r"\b((?:VIDRAG|OAUTH)_[A-Z0-9_]*[A-Z0-9])\b")
#: Defaults that depend on the machine or the checkout: the README describes them in words.
DESCRIBED_DEFAULTS = {"kernel": {"user"}, "hub": {"home", "dashboards_dir"}}
TRUE = {"1", "true", "yes", "on"}


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    match = re.search(rf"^{re.escape(heading)}\s*$", text, flags=re.M)
    assert match, f"README has no {heading!r} heading"
    rest = text[match.end() :]
    nxt = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.M)
    return rest[: nxt.start()] if nxt else rest


def _table(heading: str) -> dict[str, tuple[str, str]]:
    """``{variable: (second cell, third cell)}`` of the table under a Configuration subsection."""
    rows: dict[str, tuple[str, str]] = {}
    for line in _section(_section(README, "## Configuration"), heading).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[1]) <= {"-", " "}:
            continue
        names = NAME.findall(cells[0])
        if not names:
            continue  # the header row
        assert len(names) == 1 and cells[0] == f"`{names[0]}`", f"one variable per row: {line}"
        assert names[0] not in rows, f"{names[0]} documented twice in {heading}"
        assert cells[1] and cells[2], f"{names[0]} needs a default and a meaning: {line}"
        rows[names[0]] = (cells[1], cells[2])
    assert rows, f"no table under {heading}"
    return rows


KERNEL = _table("### Kernel settings")
HUB = _table("### Hub settings")
OTHER = _table("### Other variables")


def kernel_variable(name: str) -> str:
    """The variable ``Settings.from_env`` reads for field ``name``."""
    return "VIDRAG_" + name.upper()


def _literal(cell: str) -> str | None:
    """The value of a default cell that is one code literal (`x`), else None (described in words)."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    return match.group(1) if match else None


def _same(literal: str, default) -> bool:
    if isinstance(default, bool):
        return (literal.lower() in TRUE) == default
    if isinstance(default, int | float):
        return float(literal) == float(default)
    if isinstance(default, list | tuple):
        return [p.strip() for p in literal.split(",") if p.strip()] == list(default)
    if isinstance(default, Path):
        return Path(literal).expanduser() == default
    return literal == default


def _check_default(name: str, cell: str, default, described: bool) -> None:
    literal = _literal(cell)
    if literal is not None:
        assert _same(literal, default), f"{name}: README says {cell}, the code's default is {default!r}"
    else:
        # a default in words is fine for "unset" and for machine-dependent values only
        assert described or default in (None, "", [], (), {}), (
            f"{name}: give the default {default!r} as `code`"
        )


def _kernel_defaults() -> dict[str, object]:
    defaults = {}
    for f in fields(Settings):
        defaults[f.name] = f.default if f.default is not MISSING else f.default_factory()
    return defaults


def _code_names() -> dict[str, set[str]]:
    """Every VIDRAG_*/OAUTH_* name spelled as a whole string literal in the code, with its files."""
    found: dict[str, set[str]] = {}
    # the files git tracks (or would): a local virtualenv or cache below a folder is not our code
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *CODE_DIRS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in (REPO / p for p in listed if p.endswith(".py")):
        if path.is_file():
            for name in re.findall(r"""["']((?:VIDRAG|OAUTH)_[A-Z0-9_]*[A-Z0-9])["']""", path.read_text()):
                found.setdefault(name, set()).add(path.relative_to(REPO).as_posix())
    return found


# ------------------------------------------------------------------------ kernel settings
def test_every_settings_field_is_documented_with_its_default():
    defaults = _kernel_defaults()
    documented = {kernel_variable(name) for name in defaults}
    assert sorted(documented - set(KERNEL)) == [], "Settings fields missing from README's kernel table"
    assert sorted(set(KERNEL) - documented) == [], (
        "README's kernel table names variables Settings does not read"
    )
    for name, default in defaults.items():
        cell = KERNEL[kernel_variable(name)][0]
        _check_default(kernel_variable(name), cell, default, name in DESCRIBED_DEFAULTS["kernel"])


def _a_different_value(type_: str, default) -> str:
    """A string for the environment that ``Settings.from_env`` turns into a non-default value."""
    if type_.startswith("bool"):
        return "false" if default else "true"
    if type_.startswith(("int", "float")):
        return str((default or 0) + 7)
    if "Path" in type_:
        return "/srv/docs-check"
    if type_.startswith("tuple"):
        return "docs-check.example"
    return "docs-check"


@pytest.mark.parametrize("field", [f.name for f in fields(Settings)])
def test_each_documented_kernel_variable_is_read_by_settings(field):
    """Setting the documented variable changes that field (or is refused by name as invalid)."""
    f = next(f for f in fields(Settings) if f.name == field)
    default = _kernel_defaults()[field]
    variable = kernel_variable(field)
    assert variable in KERNEL
    raw = _a_different_value(str(f.type), default)
    base = {"VIDRAG_HOME": "/srv/docs-home"} if field != "home" else {}
    try:
        value = getattr(Settings.from_env({**base, variable: raw}), field)
    except InvalidInput as exc:  # e.g. VIDRAG_CAPTIONS accepts four words only: still read
        assert variable in str(exc)
        return
    assert value != default, f"{variable}={raw} left {field} at its default"


# --------------------------------------------------------------------------- hub settings
def _hub_traits() -> dict[str, object]:
    return VidragHubOptions.class_traits(env=lambda v: v is not None)


def test_every_hub_option_is_documented_with_its_default():
    traits = _hub_traits()
    env_names = {t.metadata["env"]: name for name, t in traits.items()}
    assert sorted(set(env_names) - set(HUB)) == [], "VidragHubOptions missing from README's hub table"
    assert sorted(set(HUB) - set(env_names)) == [], "README's hub table names variables no option reads"
    defaults = VidragHubOptions(environ={})
    for variable, name in env_names.items():
        _check_default(variable, HUB[variable][0], getattr(defaults, name), name in DESCRIBED_DEFAULTS["hub"])


def _another_hub_value(trait, default) -> str:
    """A string for the environment that ``VidragHubOptions`` turns into a non-default value."""
    if isinstance(trait, traitlets.Enum):
        return next(v for v in trait.values if v != default)
    if isinstance(trait, traitlets.Bool):
        return "false" if default else "true"
    if isinstance(trait, traitlets.Int | traitlets.Float):
        return str(default + 7)
    if isinstance(trait, traitlets.List):
        return "docs-a,docs-b"
    if isinstance(trait, traitlets.Dict):
        return "docs=a,b"
    return "docs-check"


@pytest.mark.parametrize("name", sorted(_hub_traits()))
def test_each_documented_hub_variable_is_read_by_the_options(name):
    trait = _hub_traits()[name]
    variable = trait.metadata["env"]
    assert variable in HUB
    default = getattr(VidragHubOptions(environ={}), name)
    opts = VidragHubOptions(environ={variable: _another_hub_value(trait, default)})
    assert getattr(opts, name) != default, f"{variable} did not change {name}"


# ---------------------------------------------------------------- every name, both ways
def test_other_variables_are_read_where_the_readme_says():
    code = _code_names()
    for variable, (reader, _meaning) in OTHER.items():
        path = _literal(reader)
        assert path and (REPO / path).is_file(), f"{variable}: name the file that reads it as `path`"
        assert path in code.get(variable, set()), f"{variable} is not read in {path}"
        assert variable not in HUB and variable not in KERNEL, f"{variable} belongs in one table only"


def test_every_variable_the_code_names_is_documented():
    known = set(KERNEL) | set(HUB) | set(OTHER)
    missing = {name: sorted(files) for name, files in _code_names().items() if name not in known}
    assert missing == {}, "variables the code reads or sets that README's Configuration tables omit"


def test_every_variable_the_readme_names_exists():
    """Anywhere in the README (deployment tables, examples): a name the tables define."""
    known = set(KERNEL) | set(HUB) | set(OTHER)
    assert sorted(set(NAME.findall(README)) - known) == []
