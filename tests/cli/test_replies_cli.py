"""`waq inbound list` and `waq suppressions`, the CLI's door: a number added by hand (recorded with the OS user)
is refused by `waq enqueue` (exit 2 naming phone, nothing stored), an existing opt-out list is imported whole or not
at all, and a removal lets the next enqueue through."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import waq
from tests.helpers.constants import PHONE
from wa_queue.hub import default_hub


def test_add_refuses_enqueue_and_remove_lets_it_through(waq_env: dict[str, str]) -> None:
    assert waq("suppressions", "add", PHONE).stdout.strip() == f"{PHONE}: added"
    assert "already on the list" in waq("suppressions", "add", PHONE).stdout
    refused = waq("enqueue", PHONE, "hello")
    assert refused.exit_code == 2 and "phone" in refused.output and "suppression list" in refused.output
    assert sum(default_hub().store.count_by_status().values()) == 0
    listed = json.loads(waq("suppressions", "list", "--json").stdout)
    assert listed["total"] == 1 and listed["items"][0]["phone"] == PHONE
    assert listed["items"][0]["by"].startswith("cli:")
    assert waq("suppressions", "remove", PHONE).exit_code == 0
    assert waq("suppressions", "remove", PHONE).exit_code == 1
    assert waq("enqueue", PHONE, "hello").exit_code == 0


def test_import_adds_a_whole_file_or_nothing(waq_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "old-list.csv"
    bad.write_text("name,phone\nAna,+14155550101\nBo,not a number\nCy,+14155550103\n", encoding="utf-8")
    refused = waq("suppressions", "import", str(bad))
    assert refused.exit_code == 2 and "line 3" in refused.output and "nothing imported" in refused.output
    assert default_hub().store.list_suppressions()[1] == 0
    good = tmp_path / "list.csv"
    good.write_text("Phone\n+14155550101\n+1 415 555 0103\n+14155550101\n", encoding="utf-8")
    done = waq("suppressions", "import", str(good))
    assert done.exit_code == 0 and "2 added" in done.stdout, done.output
    entries, total = default_hub().store.list_suppressions()
    assert total == 2 and {e.phone for e in entries} == {"+14155550101", "+14155550103"}
    assert all(e.by.endswith("import list.csv") for e in entries)
    shown = waq("suppressions", "list")
    assert "+14155550103" in shown.stdout and "2 of 2" in shown.stdout
    assert waq("suppressions", "import", str(tmp_path / "none.csv")).exit_code == 2


def test_inbound_lists_replies_newest_first_with_filters(waq_env: dict[str, str]) -> None:
    from wa_queue import inbound

    hub = default_hub()
    for i, (text, phone) in enumerate((("thanks", PHONE), ("STOP", PHONE), ("hola", None))):
        inbound.receive(hub, session="primary", chat=phone or "Ana Lima", wa_id=f"w{i}", text=text, phone=phone,
                        shown_at=None)
    listed = json.loads(waq("inbound", "list", "--json").stdout)
    assert listed["total"] == 3 and [r["text"] for r in listed["items"]][0] in ("thanks", "STOP", "hola")
    assert {r["text"] for r in json.loads(waq("inbound", "list", "--phone", PHONE, "--json").stdout)["items"]} == {
        "thanks", "STOP"}
    shown = waq("inbound", "list")
    assert "Ana Lima (no number)" in shown.stdout and "out" in shown.stdout and "3 of 3" in shown.stdout
    assert waq("inbound", "list", "--since", "yesterday").exit_code == 2
    assert waq("inbound", "list", "--session", "nope").exit_code == 2


def test_the_log_keeps_who_added_and_removed_and_the_category_passes_the_scope(
        waq_env: dict[str, str], monkeypatch) -> None:  # noqa: ANN001
    waq("suppressions", "add", PHONE)
    waq("suppressions", "remove", PHONE)
    log = json.loads(waq("suppressions", "log", "--phone", PHONE, "--json").stdout)
    assert log["total"] == 2 and [c["change"] for c in log["items"]] == ["in", "out"]
    assert all(c["by"].startswith("cli:") for c in log["items"])
    assert "2 of 2" in waq("suppressions", "log").stdout
    monkeypatch.setenv("WAQ_OPT_OUT_SCOPE", "marketing")
    from wa_queue.hub import close_default_hub

    close_default_hub()
    waq("suppressions", "add", PHONE)
    refused = waq("enqueue", PHONE, "50% off today", "--category", "marketing")
    assert refused.exit_code == 2 and "suppression list" in refused.output
    queued = waq("enqueue", PHONE, "your receipt", "--json")
    assert queued.exit_code == 0, queued.output
    message = default_hub().store.get(json.loads(queued.stdout)["id"])
    assert message.category.value == "transactional"
    assert waq("enqueue", PHONE, "x", "--category", "promo").exit_code == 2
