"""Thread catch-up's pure parts: earlier messages as turns within the budget, and Slack messages as read."""

from __future__ import annotations

from bot.core.catchup import (
    LEFT_OUT_NOTE,
    NOT_READ_NOTE,
    EarlierMessage,
    catchup_budget,
    catchup_turns,
    earlier_turn,
    fit_newest,
)
from bot.core.domain import Attachment, ChatMessage, ImageRef, ThreadKey
from bot.core.tokens import REQUEST_OVERHEAD_TOKENS, estimate_message_tokens
from handlers.catchup import ReadMessage, catchup_turn_id, read_message
from handlers.reply.streamer import PLACEHOLDER, TYPING_CURSOR

THREAD = ThreadKey("T1", "C1", "1600000000.000100")
IMAGE = ImageRef("F1", "cat.png", "image/png", 280, 280, 102, 1000)


def alice(text: str) -> EarlierMessage:
    return EarlierMessage(author="Alice", text=text)


def cost(message: EarlierMessage) -> int:
    turn = earlier_turn(message)
    assert turn is not None
    return estimate_message_tokens(turn)


def test_budget_is_what_the_prompt_leaves_for_history() -> None:
    """Context less output, request overhead, the system prompt and the question (each with overhead)."""
    system, question = "be brief", "summarise?"
    fixed = (
        REQUEST_OVERHEAD_TOKENS
        + estimate_message_tokens(ChatMessage("system", system))
        + estimate_message_tokens(ChatMessage("user", question))
    )
    assert catchup_budget(4096, 1024, system, question) == 4096 - 1024 - fixed
    assert catchup_budget(100, 90, system, question) == 0


def test_turns_name_their_author_and_the_bot_answers_as_assistant() -> None:
    assert earlier_turn(alice(" ship it ")) == ChatMessage("user", "Alice: ship it")
    assert earlier_turn(EarlierMessage("", "an answer", own=True)) == ChatMessage("assistant", "an answer")
    assert earlier_turn(EarlierMessage("Bob", "", images=(IMAGE,))) == ChatMessage(
        "user", "Bob: [image]", (IMAGE,)
    )
    assert earlier_turn(EarlierMessage("Bob", "", images=(IMAGE, IMAGE))) == ChatMessage(
        "user", "Bob: [2 images]", (IMAGE, IMAGE)
    )
    assert earlier_turn(alice("  ")) is None


def test_fit_keeps_the_newest_within_the_budget() -> None:
    messages = [alice(f"message {n} " + "x" * 60) for n in range(5)]
    assert fit_newest(messages, sum(cost(m) for m in messages)) == messages
    assert fit_newest(messages, cost(messages[0]) * 2) == messages[3:]
    assert fit_newest(messages, cost(messages[0]) - 1) == []


def test_images_count_their_tokens() -> None:
    """An image's token estimate counts: a budget for the words alone drops the message with it."""
    words = alice("look")
    pictured = EarlierMessage("Alice", "look", images=(IMAGE,))
    assert fit_newest([pictured], cost(words)) == []
    assert fit_newest([pictured], cost(words) + IMAGE.tokens) == [pictured]


def test_turns_join_the_parts_of_one_answer_and_note_what_is_missing() -> None:
    messages = [
        alice("first"),
        EarlierMessage("", "part one", own=True),
        EarlierMessage("", "part two", own=True),
        EarlierMessage("Bob", ""),  # no words, no images: nothing to say
        alice("last"),
    ]
    assert catchup_turns(messages, 10_000, left_out=False, unread_after=False) == [
        ChatMessage("user", "Alice: first"),
        ChatMessage("assistant", "part one\n\npart two"),
        ChatMessage("user", "Alice: last"),
    ]
    assert catchup_turns(messages, 10_000, left_out=True, unread_after=True) == [
        ChatMessage("user", LEFT_OUT_NOTE),
        ChatMessage("user", "Alice: first"),
        ChatMessage("assistant", "part one\n\npart two"),
        ChatMessage("user", "Alice: last"),
        ChatMessage("user", NOT_READ_NOTE),
    ]


def test_turns_over_the_budget_drop_the_oldest_with_a_note() -> None:
    messages = [alice(f"message {n} " + "x" * 90) for n in range(6)]
    notes = estimate_message_tokens(ChatMessage("user", LEFT_OUT_NOTE)) + estimate_message_tokens(
        ChatMessage("user", NOT_READ_NOTE)
    )
    turns = catchup_turns(messages, notes + 2 * cost(messages[0]), left_out=False, unread_after=False)
    assert [turn.text.split()[:3] for turn in turns] == [
        LEFT_OUT_NOTE.split()[:3],
        ["Alice:", "message", "4"],
        ["Alice:", "message", "5"],
    ]
    assert catchup_turns(messages, 10, left_out=False, unread_after=True) == []


def test_own_messages_are_found_by_user_or_bot_id() -> None:
    by_user = read_message({"ts": "1.0", "user": "UBOT", "text": "mine"}, THREAD, "UBOT", "BBOT")
    by_bot = read_message({"ts": "1.0", "bot_id": "BBOT", "text": "mine too"}, THREAD, "UBOT", "BBOT")
    assert by_user == ReadMessage(own=True, author_id="", author_name="", text="mine")
    assert by_bot == ReadMessage(own=True, author_id="", author_name="", text="mine too")


def test_unfinished_replies_of_the_bot_are_not_its_words() -> None:
    placeholder = {"ts": "1.0", "user": "UBOT", "text": PLACEHOLDER}
    assert read_message(placeholder, THREAD, "UBOT", "BBOT") is None
    cut = read_message(
        {"ts": "1.0", "user": "UBOT", "text": f"half an answer{TYPING_CURSOR}"}, THREAD, "UBOT", ""
    )
    assert cut == ReadMessage(own=True, author_id="", author_name="", text="half an answer")


def test_other_messages_are_read_like_incoming_ones() -> None:
    """The bot's mention dropped, forwards quoted, files kept; other bots named by their profile."""
    raw = {
        "ts": "1.0",
        "user": "U1",
        "text": "<@UBOT> see <@U2>",
        "files": [{"id": "F1", "name": "a.png", "mimetype": "image/png", "url_private": "https://x/a.png"}],
        "attachments": [{"is_share": True, "author_name": "Erin", "text": "quoted"}],
    }
    assert read_message(raw, THREAD, "UBOT", "BBOT") == ReadMessage(
        own=False,
        author_id="U1",
        author_name="",
        text="see <@U2>\n\n> Shared message from Erin:\n> quoted",
        attachments=(Attachment("F1", "a.png", "image/png", None, "https://x/a.png"),),
    )
    ci = {"ts": "2.0", "bot_id": "B9", "subtype": "bot_message", "bot_profile": {"name": "CI"}, "text": "ok"}
    assert read_message(ci, THREAD, "UBOT", "BBOT") == ReadMessage(
        own=False, author_id="", author_name="CI", text="ok"
    )


def test_joins_and_hidden_messages_carry_no_words() -> None:
    join = {"ts": "1.0", "user": "U1", "subtype": "channel_join", "text": "<@U1> has joined"}
    assert read_message(join, THREAD, "UBOT", "BBOT") is None
    assert read_message({"ts": "1.0", "user": "U1", "hidden": True}, THREAD, "UBOT", "BBOT") is None


def test_catchup_is_stored_under_one_turn_per_thread() -> None:
    assert catchup_turn_id(THREAD) == "catchup:1600000000.000100"
