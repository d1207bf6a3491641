"""WorkRunner: this replica's share of the work, and the leases that let others take over when it dies.

Three loops run side by side:

* reading: XREADGROUP new entries while fewer than ``max_in_flight`` replies run here;
* reclaiming: every quarter lease, XAUTOCLAIM entries idle for longer than a lease (their owner died or
  hung) and resume them here;
* renewing: every quarter lease, XCLAIM this replica's own entries, which resets their idle time. An
  entry that another replica took over meanwhile is cancelled here, so a thread never gets two answers.

An entry is acknowledged only when its reply has been delivered (``deliver`` returned). A reply
cancelled by a shutdown is not acknowledged: another replica (or this one after a restart) resumes it
when its lease runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from bot.core.errors import StoreUnavailable
from bot.work.queue import WorkItem, WorkQueue

log = structlog.get_logger(__name__)

# A replica that stops renewing loses its entries this long after its last renewal.
LEASE_SECONDS = 20.0
MAX_IN_FLIGHT = 256
# Entries taken per read: small enough that replicas share a burst, large enough to take it quickly.
READ_BATCH = 32
READ_BLOCK_MS = 1000
STORE_RETRY_SECONDS = 1.0
# Time cancelled replies get to settle their money before the process goes on stopping.
CANCEL_GRACE_SECONDS = 5.0
# Time the reading, reclaiming and renewing loops get to notice they should stop.
LOOP_STOP_SECONDS = 5.0
# While events are being acknowledged, new work waits (at most this long): an ack that Slack does not
# get within 3 s is retried, and replies started meanwhile would only slow the acks down.
ACKS_FIRST_SECONDS = 0.5
ACKS_POLL_SECONDS = 0.005
# Replies stop when their leases went unrenewed for this share of a lease (before others may take over).
EXPIRE_SHARE = 0.75

Deliver = Callable[[WorkItem, dict[str, str]], Awaitable[None]]
"""Answers one item, given what earlier attempts recorded; returns once the answer is delivered."""


class WorkRunner:
    """Runs work items from the queue through ``deliver``, at most ``max_in_flight`` at a time."""

    def __init__(
        self,
        queue: WorkQueue,
        deliver: Deliver,
        max_in_flight: int = MAX_IN_FLIGHT,
        lease_seconds: float = LEASE_SECONDS,
        acking: Callable[[], bool] = lambda: False,
    ) -> None:
        self._queue = queue
        self._deliver = deliver
        self._max_in_flight = max_in_flight
        self._lease = lease_seconds
        self._acking = acking
        self._renewed_at = float("inf")  # set when the loops start
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._delivered: set[str] = set()  # answered, being acknowledged: no lease needed any more
        self._freed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._renewer: asyncio.Task[None] | None = None
        self._reading = True  # the loops also check this: a cancellation lost in a library cannot keep them
        self._renewing = True

    @property
    def in_flight(self) -> int:
        """Replies running in this process."""
        return len(self._tasks)

    async def start(self) -> None:
        """Make sure the group exists, then start reading, reclaiming and renewing."""
        try:
            await self._queue.ensure_group()
        except StoreUnavailable as exc:
            log.warning("work_group_not_ready", detail=str(exc))  # the read loop makes it later
        self._renewed_at = asyncio.get_running_loop().time()
        self._loops = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._reclaim_loop())]
        self._renewer = asyncio.create_task(self._renew_loop())

    async def stop(self, drain_seconds: float) -> None:
        """Take no more work; let replies finish for ``drain_seconds``, then cancel the rest (not acked)."""
        self._reading = False
        await _cancel(self._loops)
        running = set(self._tasks.values())
        if running:
            log.info("draining_replies", in_flight=len(running))
            await asyncio.wait(running, timeout=drain_seconds)
        late = set(self._tasks.values())
        if late:
            log.warning("interrupting_replies", in_flight=len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=CANCEL_GRACE_SECONDS)
        self._renewing = False
        if self._renewer is not None:
            await _cancel([self._renewer])

    async def _read_loop(self) -> None:
        while self._reading:
            free = self._max_in_flight - len(self._tasks)
            if free <= 0:
                self._freed.clear()
                await self._freed.wait()
                continue
            await self._acks_first()
            try:
                items = await self._queue.read(min(free, READ_BATCH), READ_BLOCK_MS)
            except StoreUnavailable as exc:
                log.warning("work_read_failed", detail=str(exc))
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            for item in items:
                self._spawn(item)

    async def _acks_first(self) -> None:
        """Let events being acknowledged go first (bounded): they are what Slack is timing."""
        waited = 0.0
        while self._acking() and waited < ACKS_FIRST_SECONDS:
            await asyncio.sleep(ACKS_POLL_SECONDS)
            waited += ACKS_POLL_SECONDS

    async def _reclaim_loop(self) -> None:
        while self._reading:
            await asyncio.sleep(self._lease / 4)
            free = self._max_in_flight - len(self._tasks)
            if free <= 0:
                continue
            try:
                items = await self._queue.reclaim(free, int(self._lease * 1000))
            except StoreUnavailable as exc:
                log.warning("work_reclaim_failed", detail=str(exc))
                continue
            for item in items:
                if item.entry_id not in self._tasks:
                    log.info("work_resumed", entry_id=item.entry_id)
                    self._spawn(item)

    async def _renew_loop(self) -> None:
        while self._renewing:
            await asyncio.sleep(self._lease / 4)
            ids = [entry for entry in self._tasks if entry not in self._delivered]
            try:
                owned = await self._queue.renew(ids)
            except StoreUnavailable as exc:
                log.warning("work_renew_failed", detail=str(exc))
                self._expire_if_unrenewed()
                continue
            self._renewed_at = asyncio.get_running_loop().time()
            for lost in set(ids) - owned:
                task = self._tasks.get(lost)
                if task is not None and lost not in self._delivered:
                    # Another replica took this entry over (we were too slow to renew): let it answer.
                    log.warning("work_lease_lost", entry_id=lost)
                    task.cancel()

    def _expire_if_unrenewed(self) -> None:
        """Leases not renewed for most of a lease may be taken over soon: stop this replica's replies
        first, so that a message is never answered by two replicas at once."""
        if asyncio.get_running_loop().time() - self._renewed_at < EXPIRE_SHARE * self._lease:
            return
        for entry, task in list(self._tasks.items()):
            if entry not in self._delivered:
                log.warning("work_lease_expiring", entry_id=entry)
                task.cancel()

    def _spawn(self, item: WorkItem) -> None:
        task = asyncio.create_task(self._work(item))
        self._tasks[item.entry_id] = task

        def finished(_: asyncio.Task[None]) -> None:
            if self._tasks.get(item.entry_id) is task:
                del self._tasks[item.entry_id]
                self._delivered.discard(item.entry_id)
            self._freed.set()

        task.add_done_callback(finished)

    async def _work(self, item: WorkItem) -> None:
        try:
            # One turn at a time per thread: an earlier message's answer comes first, and is in this prompt.
            await self._queue.wait_turn(item)
            state = await self._queue.begin(item)
        except StoreUnavailable as exc:
            log.warning("work_begin_failed", entry_id=item.entry_id, detail=str(exc))
            return  # not acknowledged: taken up again once its lease runs out
        try:
            await self._deliver(item, state)
        except Exception:
            # A bug in the delivery glue: leave the entry for another attempt (attempts are counted).
            log.exception("work_delivery_crashed", entry_id=item.entry_id)
            return
        self._delivered.add(item.entry_id)
        try:
            await self._queue.done(item)
        except StoreUnavailable as exc:
            log.error("work_done_failed", entry_id=item.entry_id, detail=str(exc))


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait a bounded time for them to end."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=LOOP_STOP_SECONDS)
