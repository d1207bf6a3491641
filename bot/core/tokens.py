"""Conservative token estimates. No GLM tokenizer ships on PyPI, so we over-estimate on purpose.

Latin text runs about 3.5-4 characters per token with a GLM-4 class vocabulary; we count 3. CJK
characters count one token each. The model's reported ``usage.prompt_tokens`` is logged next to the
estimate so the ratio can be checked in production.
"""

from __future__ import annotations

import re

from bot.core.domain import ChatMessage, StreamProgress

# Kana, CJK ideographs (+ extension A), Hangul, compatibility ideographs, full-width forms.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
LATIN_CHARS_PER_TOKEN = 3
# Role markers and separators the chat template wraps around each message.
MESSAGE_OVERHEAD_TOKENS = 4
# `[gMASK]<sop>`, the assistant header and the `/nothink` switch around a whole request.
REQUEST_OVERHEAD_TOKENS = 16


def estimate_text_tokens(text: str) -> int:
    """Tokens a text is likely to take, rounded up."""
    cjk = len(_CJK.findall(text))
    other = len(text) - cjk
    return cjk + -(-other // LATIN_CHARS_PER_TOKEN)


def estimate_message_tokens(message: ChatMessage) -> int:
    """Tokens one chat message takes: template overhead, text, and each image's exact token count."""
    images = sum(image.tokens for image in message.images)
    return MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(message.text) + images


def estimate_output_tokens(progress: StreamProgress) -> int:
    """Tokens a stream has produced so far (answer and reasoning), estimated from its text."""
    return estimate_text_tokens(progress.text) + estimate_text_tokens(progress.reasoning)
