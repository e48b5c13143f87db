"""MkDocs hook: the table of docs/settings.md, built from the fields of wa_queue.settings.Settings at build time.

Each field is declared with settings.setting(default, doc, shown=...), so its description lives next to it and the
page cannot drift from the code. A field without a description fails the build (PluginError), as does a settings
page without the marker the table replaces.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

# The settings of this checkout, whatever wa_queue the environment has installed (an editable install may point at
# another worktree).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from wa_queue.settings import DOC, SHOWN, Settings  # noqa: E402

MARKER = "<!-- settings-table -->"
PAGE = "settings.md"


def undocumented(settings_class: type = Settings) -> list[str]:
    """The variables of the fields that carry no description."""
    return ["WAQ_" + field.name.upper() for field in dataclasses.fields(settings_class)
            if not str(field.metadata.get(DOC) or "").strip()]


def variable_form(value: Any) -> str:
    """A default as it would be written in its variable: true/false, 30 not 30.0, lists joined by commas."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(variable_form(item) for item in value)
    if isinstance(value, Path):
        return "" if str(value) in ("", ".") else str(value)
    return "" if value is None else str(value)


def shown_default(field: dataclasses.Field) -> str:
    """The default column: the field's own `shown` Markdown, else its default in the variable's form."""
    if field.metadata.get(SHOWN):
        return field.metadata[SHOWN]
    text = variable_form(field.default)
    return f"`{text}`" if text else "(none)"


def _cell(markdown: str) -> str:
    return " ".join(markdown.split()).replace("|", "\\|")


def settings_table(settings_class: type = Settings) -> str:
    """The Markdown table of every setting, in declaration order; PluginError names the undocumented ones."""
    missing = undocumented(settings_class)
    if missing:
        raise PluginError(f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no description: declare the "
                          "field with setting(default, doc) in wa_queue/settings.py")
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(settings_class):
        rows.append(f"| `WAQ_{field.name.upper()}` | {_cell(shown_default(field))} | {_cell(field.metadata[DOC])} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs/{PAGE} has lost its marker {MARKER}: the settings table has nowhere to go")
    return markdown.replace(MARKER, settings_table())
