"""WAQ_API_KEYS and the callback secrets are checked at start (issue 24, parts 3 and 5): duplicate names (they own
messages and scope idempotency keys) and secrets under 32 characters stop the program with a ConfigError that names
the variable and never prints a key."""

from __future__ import annotations

import pytest

from wa_queue.errors import ConfigError
from wa_queue.settings import Settings

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"
SECRET = "s" * 32


def test_duplicate_key_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="WAQ_API_KEYS: key names must be unique; shop") as caught:
        Settings.from_env({"WAQ_API_KEYS": f"shop:producer:{KEY_A},shop:admin:{KEY_B}"})
    assert KEY_A not in str(caught.value) and KEY_B not in str(caught.value)


@pytest.mark.parametrize(("env", "named"), [
    ({"WAQ_API_KEYS": f"shop:producer:{KEY_A}:{'s' * 31}"}, "WAQ_API_KEYS"),
    ({"WAQ_CALLBACK_SECRET": "s" * 31}, "WAQ_CALLBACK_SECRET"),
])
def test_a_secret_under_32_characters_is_refused(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=f"{named}.*at least 32") as caught:
        Settings.from_env(env)
    assert "s" * 31 not in str(caught.value)


def test_a_key_with_its_own_secret() -> None:
    settings = Settings.from_env({"WAQ_API_KEYS": f"shop:producer:{KEY_A}:{SECRET},crm:producer:{KEY_B}",
                                  "WAQ_CALLBACK_SECRET": "g" * 32})
    assert settings.callback_secret_for("shop") == SECRET
    assert settings.callback_secret_for("crm") == "g" * 32  # no secret of its own: the global one
    assert settings.callback_secret_for(None) == "g" * 32  # the Python API and the CLI
    assert SECRET not in repr(settings.api_keys)


@pytest.mark.parametrize("name", ["a b", "a#b", ""])
def test_key_names_hold_no_separator(name: str) -> None:
    with pytest.raises(ConfigError, match="WAQ_API_KEYS"):
        Settings.from_env({"WAQ_API_KEYS": f"{name}:producer:{KEY_A}"})
