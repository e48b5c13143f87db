"""Who owns a message: the name of the API key that enqueued it (Message.enqueued_by), and the idempotency scope
each key's requests live in. The REST API (api/messages.py) is the only caller that sets an owner; the Python API
and the CLI run with the operator's rights and enqueue messages without one.

Scopes. A REST request's Idempotency-Key is stored as "<key name> <key>", and item i of a bulk request as
"<key name> <key> <i>". The separator is a space, which neither an idempotency key (validation.IDEMPOTENCY_KEY_PATTERN:
printable ASCII without spaces) nor a key name (settings._KEY_NAME) can contain, so no two scopes meet: a single
request's key "k#0" and item 0 of a bulk request under "k" are different rows, and a Python or CLI key (no space)
never equals a REST one.

Older versions stored "<name>:<key>" and "<name>:<key>#<i>" (where "k#0" and bulk item 0 of "k" were one row). Those
rows have no owner; a request whose scoped key is not found also looks up its old form among ownerless rows only
(legacy_idempotency_key, common.plan_inserts), so a retry that spans the upgrade replays instead of sending twice,
and a row written since (which has an owner) is never taken for an old one.
"""

from __future__ import annotations

from wa_queue.models import Message

SCOPE_SEPARATOR = " "


def scoped_idempotency_key(key_name: str, raw: str, index: int | None = None) -> str:
    """The stored idempotency key of a REST request (`index`: the item of a bulk request)."""
    scoped = f"{key_name}{SCOPE_SEPARATOR}{raw}"
    return scoped if index is None else f"{scoped}{SCOPE_SEPARATOR}{index}"


def legacy_idempotency_key(key_name: str, raw: str, index: int | None = None) -> str:
    """The form versions before owners stored (read only, for rows without an owner)."""
    scoped = f"{key_name}:{raw}"
    return scoped if index is None else f"{scoped}#{index}"


def visible_to(message: Message, key_name: str, *, admin: bool) -> bool:
    """Admins see every message; any other key only those it enqueued (an ownerless one, enqueued by the Python
    API, the CLI or a version before owners, only admins)."""
    return admin or (message.enqueued_by is not None and message.enqueued_by == key_name)
