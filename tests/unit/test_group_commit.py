"""GroupCommit: concurrent callers share batches, and each gets exactly its own result or error."""

from __future__ import annotations

import threading
import time

import pytest

from wa_queue.group_commit import GroupCommit


def _callers(group: GroupCommit, payloads: list[int]) -> dict[int, object]:
    got: dict[int, object] = {}
    start = threading.Barrier(len(payloads))

    def call(p: int) -> None:
        start.wait()
        try:
            got[p] = group.run(p)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            got[p] = exc

    threads = [threading.Thread(target=call, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "a caller never returned"
    return got


def test_callers_share_batches_and_get_their_own_results() -> None:
    batches: list[list[int]] = []
    active = [0]

    def work(payloads: list[int]) -> list[object]:
        active[0] += 1
        assert active[0] == 1, "two batches ran at once"
        batches.append(payloads)
        time.sleep(0.01)  # long enough for the other callers to queue behind this batch
        active[0] -= 1
        return [ValueError(f"odd {p}") if p % 2 else p * 10 for p in payloads]

    got = _callers(GroupCommit(work, max_batch=8), list(range(40)))
    for p in range(40):
        if p % 2:
            assert isinstance(got[p], ValueError) and str(got[p]) == f"odd {p}"
        else:
            assert got[p] == p * 10
    assert sorted(p for batch in batches for p in batch) == list(range(40))  # each exactly once
    assert max(len(b) for b in batches) > 1  # shared
    assert max(len(b) for b in batches) <= 8


def test_an_error_of_the_batch_fails_only_that_batch() -> None:
    calls = [0]

    def work(payloads: list[int]) -> list[object]:
        calls[0] += 1
        if calls[0] == 1:
            time.sleep(0.05)
            raise RuntimeError("store down")
        return payloads

    group = GroupCommit(work)
    first = threading.Thread(target=lambda: pytest.raises(RuntimeError, group.run, -1))
    first.start()
    time.sleep(0.01)
    got = _callers(group, [1, 2, 3])
    first.join(10)
    assert got == {1: 1, 2: 2, 3: 3}  # queued behind the failing batch, served by the next one


def test_a_lone_caller_runs_its_own_batch() -> None:
    assert GroupCommit(lambda ps: [p + 1 for p in ps]).run(41) == 42
    with pytest.raises(KeyError):
        GroupCommit(lambda ps: [KeyError("mine") for _ in ps]).run(1)


def test_the_next_batch_commits_while_finish_runs_and_callers_wait_for_their_finish() -> None:
    """finish() (the fsync and the publish) of one batch overlaps the next batch's work; nobody returns before the
    finish of their own batch has run."""
    order: list[str] = []
    first_finish_may_end = threading.Event()
    finished: set[int] = set()

    def work(payloads: list[int]) -> list[object]:
        order.append(f"work {payloads}")
        return list(payloads)

    def finish(results: list[object]) -> None:
        if results == [0]:
            assert first_finish_may_end.wait(10), "the next batch never ran while this finish was running"
        finished.update(results)  # type: ignore[arg-type]

    group = GroupCommit(work, finish=finish)
    got: dict[int, object] = {}

    def call(p: int) -> None:
        got[p] = group.run(p)
        assert p in finished, "answered before its batch's finish ran"

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not order:
        time.sleep(0.001)
    second = threading.Thread(target=call, args=(1,))
    second.start()
    second.join(10)  # batch [1] works and finishes while batch [0] is still in its finish
    assert got == {1: 1} and order == ["work [0]", "work [1]"]
    first_finish_may_end.set()
    first.join(10)
    assert got == {0: 0, 1: 1}


def test_a_failing_finish_fails_its_batch_only() -> None:
    def finish(results: list[object]) -> None:
        if 3 in results:
            raise OSError("fsync failed")

    group = GroupCommit(lambda payloads: list(payloads), finish=finish)
    with pytest.raises(OSError, match="fsync failed"):
        group.run(3)
    assert group.run(4) == 4  # the group is usable again
