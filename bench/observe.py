"""What the fake Slack shows of a run's threads: complete answers, duplicates, leftovers, timings.

A thread is one mention's thread: (channel, thread_ts). Its bot messages that are not deleted are read:

* an *answer message* shows answer text, whole or in part: anything but the placeholder or a
  ``:warning:`` (the answers are short enough for one message, so there are no continuation parts);
* the thread is *complete* when one message shows exactly the expected text (the rendered fallback text
  of an edited message, or the Markdown of a native stream) and no message still shows the placeholder
  or the typing cursor, or is a stream not yet stopped;
* it is *settled* when nothing in it will change any more: complete, or ended another way (a warning);
* it has a *duplicate* when it holds more than one answer message.

Times are ``time.monotonic()`` seconds, as the fake records them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR
from tests.fakes.slack_api import FakeMessage, FakeSlack

Thread = tuple[str, str]  # (channel, thread_ts)
_WARNING = ":warning:"
_TEXTS_CALLS = ("chat.postMessage", "chat.update", "chat.appendStream", "chat.stopStream")


@dataclass(frozen=True, slots=True)
class ThreadOutcome:
    """How one thread ended up (or stands now)."""

    complete: bool
    settled: bool
    answers: int  # answer messages (more than one: a duplicate)
    leftover: bool  # a placeholder or a typing cursor is still showing
    completed_at: float | None  # when the full answer landed (monotonic s)
    ending: str  # the first 100 characters of its last message, when not complete ("" when none)


def is_answer_text(text: str) -> bool:
    """True for text showing (part of) an answer: not empty, not the placeholder, not a warning."""
    return bool(text.strip()) and text != PLACEHOLDER and not text.startswith(_WARNING)


def _is_leftover(text: str) -> bool:
    return text == PLACEHOLDER or text.endswith(TYPING_CURSOR)


def _outcome(messages: list[FakeMessage], expected: tuple[str, ...], streaming: set[str]) -> ThreadOutcome:
    full = [m for m in messages if m.text in expected and m.ts not in streaming]
    # The cursor shows in the blocks only; a stream not stopped yet is still being written.
    leftover = any(_is_leftover(m.shown) or m.ts in streaming for m in messages)
    complete = bool(full) and not leftover
    settled = complete or (bool(messages) and not leftover)
    return ThreadOutcome(
        complete=complete,
        settled=settled,
        answers=sum(1 for m in messages if is_answer_text(m.text)),
        leftover=leftover,
        completed_at=min(m.updated_at for m in full) if complete else None,
        ending="" if complete or not messages else messages[-1].text[:100],
    )


def thread_outcomes(
    slack: FakeSlack, threads: set[Thread], expected: tuple[str, ...]
) -> dict[Thread, ThreadOutcome]:
    """Each thread's outcome, from the messages the fake keeps (deleted ones left out); ``expected``: the
    texts a complete answer's message may show."""
    streaming = {ts for ts, stream in slack.streams.streams.items() if not stream.stopped}
    by_thread: dict[Thread, list[FakeMessage]] = defaultdict(list)
    for message in slack.messages.values():
        key = (message.channel, message.thread_ts or "")
        if key in threads and not message.deleted:
            by_thread[key].append(message)
    return {thread: _outcome(by_thread.get(thread, []), expected, streaming) for thread in threads}


def first_text_times(slack: FakeSlack, threads: set[Thread]) -> dict[Thread, float]:
    """When each thread first showed answer text: the first accepted post or edit carrying some."""
    refused = {id(call) for call in slack.rate_limited_calls}
    thread_of = {ts: (m.channel, m.thread_ts or "") for ts, m in slack.messages.items()}
    first: dict[Thread, float] = {}
    for call in slack.calls:
        if call.method not in _TEXTS_CALLS or id(call) in refused:
            continue
        if not is_answer_text(str(call.body.get("text") or call.body.get("markdown_text") or "")):
            continue
        if call.method == "chat.postMessage":
            thread = (str(call.body.get("channel")), str(call.body.get("thread_ts") or ""))
        else:
            thread = thread_of.get(str(call.body.get("ts")), ("", ""))
        if thread in threads and thread not in first:
            first[thread] = call.at
    return first


def edit_mode_counts(slack: FakeSlack, threads: set[Thread]) -> tuple[int, int]:
    """(threads whose reply began as a placeholder, accepted interim edits showing a typing cursor)."""
    placeholders = {
        (m.channel, m.thread_ts or "")
        for m in slack.messages.values()
        if m.history and m.history[0] == PLACEHOLDER
    }
    refused = {id(call) for call in slack.rate_limited_calls}
    interim = sum(
        1
        for call in slack.calls
        if call.method == "chat.update" and id(call) not in refused and call.shown.endswith(TYPING_CURSOR)
    )
    return len(placeholders & threads), interim


def endings(outcomes: dict[Thread, ThreadOutcome]) -> Counter[str]:
    """How threads that are not complete end, counted (``(nothing)`` for a thread with no message)."""
    return Counter(o.ending or "(nothing)" for o in outcomes.values() if not o.complete)
