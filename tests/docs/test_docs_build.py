"""The docs site builds as `make docs` builds it (mkdocs build --strict), and fails on what would make it wrong: a
broken link or anchor, a setting of wa_queue/settings.py without a description (docs/hooks/settings_page.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mkdocs.exceptions import PluginError

from wa_queue.settings import Settings, setting, setting_variables

ROOT = Path(__file__).resolve().parents[2]


def _hook():
    spec = importlib.util.spec_from_file_location("settings_page", ROOT / "docs" / "hooks" / "settings_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """The build of `make docs`, into `site`; run from the repository (the snippets' base)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def _copy_of_the_docs(tmp_path: Path) -> tuple[Path, Path]:
    """mkdocs.yml and docs/ copied under tmp_path, the hook still the repository's: (config, docs dir)."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / hook) for hook in config["hooks"]]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path, docs


def test_the_site_builds_strict_with_every_setting(tmp_path: Path) -> None:
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    page = (tmp_path / "site" / "settings" / "index.html").read_text()
    missing = sorted(var for var in setting_variables() if f"<code>{var}</code>" not in page)
    assert not missing, f"the settings page lacks {missing}"
    quickstart = (tmp_path / "site" / "quickstart" / "index.html").read_text()
    assert "make demo" in quickstart and "--8&lt;--" not in quickstart  # the README's commands, included


@pytest.mark.parametrize("link", ["[gone](no-such-page.md)", "[gone](concepts.md#no-such-heading)"])
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str) -> None:
    config, docs = _copy_of_the_docs(tmp_path)
    index = docs / "index.md"
    index.write_text(index.read_text() + f"\nSee {link}.\n")
    result = _build(config, tmp_path / "site")
    assert result.returncode != 0
    assert link.split("(")[1].rstrip(")").split("#")[-1] in result.stderr, result.stderr


def test_a_setting_without_a_description_fails_the_build() -> None:
    hook = _hook()

    @dataclasses.dataclass(frozen=True)
    class Partly:
        told: int = setting(1, "a setting with its description")
        untold: int = 2
        blank: str = setting("", "  ")

    assert hook.undocumented(Partly) == ["WAQ_UNTOLD", "WAQ_BLANK"]
    with pytest.raises(PluginError, match="WAQ_UNTOLD, WAQ_BLANK have no description"):
        hook.settings_table(Partly)
    assert hook.undocumented(Settings) == []


def test_the_settings_page_needs_its_marker() -> None:
    hook = _hook()

    class Page:
        class file:  # noqa: N801 - the shape of mkdocs' Page.file
            src_uri = hook.PAGE

    with pytest.raises(PluginError, match="marker"):
        hook.on_page_markdown("# Settings\n", Page, None, None)
    assert "`WAQ_SESSIONS`" in hook.on_page_markdown(f"# Settings\n\n{hook.MARKER}\n", Page, None, None)


def test_each_default_shown_in_its_variables_form_reads_back_as_the_default() -> None:
    """The default column is the value itself unless a field says otherwise: given to its variable, it is what the
    program would have used anyway."""
    hook = _hook()
    for field in dataclasses.fields(Settings):
        text = hook.variable_form(field.default)
        if field.metadata.get("shown") or not text:
            continue
        var = "WAQ_" + field.name.upper()
        assert getattr(Settings.from_env({var: text}), field.name) == field.default, var
