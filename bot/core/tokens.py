"""Conservative token estimates. No GLM tokenizer ships on PyPI, so we over-estimate on purpose.

GLM-4's tokenizer is a byte-level BPE: no token is shorter than one UTF-8 byte, so a text's UTF-8 length
is a hard ceiling, and well-known scripts come out far below it. Per character class:

* ASCII: 3 characters per token (English runs about 3.5-4 per real token; code a little less);
* CJK ideographs, kana, Hangul, CJK punctuation and full-width forms: 1 token each;
* other two-byte letters (Latin accents, Greek, Cyrillic, Armenian, Hebrew, Arabic...): 1 token each
  (real vocabularies hold many whole words of these: about 2-3 letters per token);
* other BMP characters (Thai, Indic scripts, symbols, ZWJ, variation selectors): 1 token each;
* characters beyond the BMP (emoji, rare ideographs): 3 tokens each (4 bytes; common emoji are one or
  two tokens, rare ones split into bytes).

The model's reported ``usage.prompt_tokens`` is logged next to the estimate so the ratio can be checked
in production; the tests keep a table of scripts with their estimates and UTF-8 ceilings.
"""

from __future__ import annotations

import re

from bot.core.domain import ChatMessage, StreamProgress

_ASCII = re.compile(r"[\x00-\x7f]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")
ASCII_CHARS_PER_TOKEN = 3
ASTRAL_TOKENS_PER_CHAR = 3
# Role markers and separators the chat template wraps around each message.
MESSAGE_OVERHEAD_TOKENS = 4
# `[gMASK]<sop>`, the assistant header and the `/nothink` switch around a whole request.
REQUEST_OVERHEAD_TOKENS = 16


def estimate_text_tokens(text: str) -> int:
    """Tokens a text is likely to take at most, rounded up (see the module docstring for the rules)."""
    ascii_chars = len(_ASCII.findall(text))
    astral = len(_ASTRAL.findall(text))
    other = len(text) - ascii_chars - astral  # CJK and every other BMP character: one token each
    return -(-ascii_chars // ASCII_CHARS_PER_TOKEN) + other + ASTRAL_TOKENS_PER_CHAR * astral


def estimate_message_tokens(message: ChatMessage) -> int:
    """Tokens one chat message takes: template overhead, text, and each image's exact token count."""
    images = sum(image.tokens for image in message.images)
    return MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(message.text) + images


def estimate_output_tokens(progress: StreamProgress) -> int:
    """Tokens a stream has produced so far (answer and reasoning), estimated from its text."""
    return estimate_text_tokens(progress.text) + estimate_text_tokens(progress.reasoning)
