"""The SQLite store's statements, built once at import from the transition table (lifecycle.py).

Each transition is one atomic statement, UPDATE ... WHERE <compare-and-set> RETURNING, whose SET list appends the
history entry with json_insert(), so the state and its history change together. The read queries take their status
guards from the table's status groups, written as the partial indexes' WHERE clauses are, so SQLite can use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from wa_queue.models import MessageStatus
from wa_queue.names import MESSAGES, SESSIONS
from wa_queue.store import lifecycle
from wa_queue.store.sqlite_schema import COLS

# Appends one history entry; `{session}` is a parameter or a column (columns read the row's old values).
_HISTORY = (
    "history = json_insert(history, '$[#]', json_object('at', :at, 'event', :event, 'session', {session}, "
    "'error_class', :error_class, 'error_text', :error_text))"
)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def status_sql(statuses: tuple[MessageStatus, ...]) -> str:
    """The guard on the status; one status as `status = '...'`, the form the partial indexes' WHERE is written in."""
    if len(statuses) == 1:
        return f"status = {_literal(statuses[0].value)}"
    return f"status IN ({', '.join(_literal(s.value) for s in statuses)})"


def _value_sql(source: lifecycle.Source) -> str:
    """A lifecycle source as SQL: parameters by name, columns read the row as it was before the UPDATE."""
    if source is lifecycle.NOW:
        return ":now"
    if isinstance(source, lifecycle.Arg):
        return f":{source.name}"
    if isinstance(source, lifecycle.Const):
        return _literal(source.value)
    if isinstance(source, lifecycle.Row):
        return source.columns[0] if len(source.columns) == 1 else f"coalesce({', '.join(source.columns)})"
    raise TypeError(f"no SQL for {source!r}")


def _set_sql(write: lifecycle.Write) -> str:
    """The SET list of a transition: its fields set and cleared, the attempt, updated_at and the history entry."""
    transition = write.transition
    parts = [f"{field} = coalesce({field}, :{source.name})" if isinstance(source, lifecycle.Once)
             else f"{field} = {_value_sql(source)}" for field, source in write.sets]
    parts += [f"{field} = NULL" for field in write.clears]
    if transition.uses_attempt:
        parts.append("attempts = attempts + :inc")
    if transition.event is not None:
        parts += ["updated_at = :now", _HISTORY.format(session=_value_sql(transition.history_session))]
    return ", ".join(parts)


def _condition_sql(condition: lifecycle.Condition) -> str:
    field = condition.field
    if isinstance(condition, lifecycle.IsNull):
        return f"{field} IS NULL"
    if isinstance(condition, lifecycle.Differs):
        return f"({field} IS NULL OR {field} <> {_literal(condition.value)})"
    if isinstance(condition, lifecycle.Later):
        return f"({field} IS NULL OR {field} > :now)"
    if isinstance(condition, lifecycle.Reached):
        return f"{field} <= :now"
    raise TypeError(f"no SQL for {condition!r}")


def _guard_sql(write: lifecycle.Write) -> str:
    """The compare-and-set: the table's from-statuses, the lease owner, the conditions, and something new for Once
    fields."""
    transition = write.transition
    guards = [status_sql(transition.from_statuses), *map(_condition_sql, transition.conditions)]
    if write.owner:
        guards.append("lease_owner = :owner")
    if transition.once:
        sources = dict(write.sets)
        guards.append("(" + " OR ".join(f"(:{sources[field].name} IS NOT NULL AND {field} IS NULL)"  # type: ignore
                                         for field in transition.once) + ")")
    return " AND ".join(guards)


# What the read queries select, from the table's status groups.
DUE = status_sql(lifecycle.DUE)
LEASED = status_sql(lifecycle.LEASED)
FAILED = status_sql(lifecycle.OPERATOR_CASES)
EXPIRING = " AND ".join((status_sql(lifecycle.EXPIRING), *map(_condition_sql, lifecycle.NOT_IN_DOUBT)))

_CLAIM_DUE = "next_attempt_at <= :now"  # the claim's own guards beside the table's
_CLAIM_AT = "attempts = :attempts"


def _update_sql(write: lifecycle.Write, *extra: str) -> tuple[str, str]:
    """The UPDATE of one transition by id, without and with RETURNING the row."""
    sql = f"UPDATE {MESSAGES} SET {_set_sql(write)} WHERE id = :id AND {' AND '.join((_guard_sql(write), *extra))}"
    return sql, f"{sql} RETURNING {COLS}"


# Every transition's statements, built once: keyed by the Write (hashed by identity).
UPDATES: Mapping[lifecycle.Write, tuple[str, str]] = MappingProxyType({
    write: _update_sql(write, *((_CLAIM_DUE,) if transition is lifecycle.CLAIM else ()))
    for transition in lifecycle.TRANSITIONS for write in transition.writes.values()
})
CLAIM_WRITE = lifecycle.CLAIM.write()
CLAIM_AT_SQL = _update_sql(CLAIM_WRITE, _CLAIM_DUE, _CLAIM_AT)
RETRY_ALL_SET = _set_sql(lifecycle.RETRY_FAILED.write())
# The mark's gates (lifecycle.Gate): the row's keys read under the write lock, then each gate's count of the day.
MARK_WRITE = lifecycle.MARK_SENDING.write()
MARK_KEYS = tuple(dict.fromkeys(("claimed_by", "category",
                                  *(gate.key.columns[0] for gate in lifecycle.MARK_SENDING.gates))))
MARK_KEYS_SQL = f"SELECT {', '.join(MARK_KEYS)} FROM {MESSAGES} WHERE id = :id AND {_guard_sql(MARK_WRITE)}"
_NOT_SENT = f"status <> {_literal(lifecycle.RECORD_SENT.to.value)}"  # type: ignore[union-attr]


def _gate_sql(gate: lifecycle.Gate) -> str:
    # Each part is one range on a partial index (ix_msg_sent_by, ix_msg_phone_sent, ix_msg_doubt_*), whose WHERE the
    # terms imply.
    return (f"SELECT (SELECT count(*) FROM {MESSAGES} WHERE {gate.sent_key} = :key AND sent_at >= :since) + "
            f"(SELECT count(*) FROM {MESSAGES} WHERE {gate.sending_key} = :key AND sending_at >= :since "
            f"AND {_NOT_SENT} AND id <> :id)")


GATES: Mapping[lifecycle.Gate, str] = MappingProxyType({g: _gate_sql(g) for g in lifecycle.MARK_SENDING.gates})
SESSION_ONCE_SQL: Mapping[str, str] = MappingProxyType({
    field: f"UPDATE {SESSIONS} SET {field} = coalesce({field}, ?) WHERE name = ?"
    for field, _ in lifecycle.MARK_SENDING.session_once})
DELETE_SQL = f"DELETE FROM {MESSAGES} WHERE id = ? AND {status_sql(lifecycle.DELETE.from_statuses)}"
ARCHIVE_IDS_SQL = (f"SELECT id FROM {MESSAGES} WHERE {status_sql(lifecycle.ARCHIVE.from_statuses)} "
                    "AND failed_at < ? LIMIT ?")

# The sweeper's look-up of what this broker epoch has not seen: three index ranges on (status, dispatch_epoch,
# next_attempt_at), NULL, below and above `epoch`. A single `epoch IS NULL OR epoch <> ?` would walk every due message
# already dispatched in this epoch.
_UNDISPATCHED_PART = (f"SELECT * FROM (SELECT {COLS} FROM {MESSAGES} INDEXED BY ix_msg_undispatched WHERE {DUE} "
                      "AND {cond} AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :limit)")
UNDISPATCHED_SQL = " UNION ALL ".join(
    _UNDISPATCHED_PART.format(cond=cond)
    for cond in ("dispatch_epoch IS NULL", "dispatch_epoch < :epoch", "dispatch_epoch > :epoch")
) + " ORDER BY next_attempt_at LIMIT :limit"


def dispatched_sql(ids: int) -> str:
    """mark_dispatched's UPDATE of `ids` messages: one statement per chunk of ids."""
    return (f"UPDATE {MESSAGES} SET dispatched_at = ?, dispatch_epoch = ?, dispatch_queue = ? "
            f"WHERE id IN ({', '.join('?' * ids)})")


def session_upsert_sql(fields: tuple[str, ...]) -> str:
    """update_session's statement: the record made with `fields`, or those fields set on the one there."""
    cols = ", ".join(("name", *fields))
    marks = ", ".join(f":{k}" for k in ("name", *fields))
    updates = ", ".join(f"{k} = excluded.{k}" for k in fields)
    return f"INSERT INTO {SESSIONS} ({cols}) VALUES ({marks}) ON CONFLICT(name) DO UPDATE SET {updates}"


def failed_filter(session: str | None, error: str | None = None) -> tuple[str, dict[str, Any]]:
    """The WHERE of the failed-message pages and of retry-all, and its parameters: failed or unverified, and, when
    given, the session that held it and a part of its last error."""
    where = FAILED
    if session is not None:
        where += " AND (claimed_by = :fs OR sent_by = :fs OR session = :fs)"
    if error is not None:
        where += " AND (instr(last_error_class, :fe) > 0 OR instr(last_error_text, :fe) > 0)"
    return where, {"fs": session, "fe": error}
