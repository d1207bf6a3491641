"""Prometheus metrics, on a registry of their own (built at start, passed in; no globals).

Besides the bot's own ``glmbot_*`` metrics, the registry carries prometheus_client's standard process
(``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ``process_open_fds``, ...), platform
(``python_info``) and garbage-collector (``python_gc_*``) collectors, which the library registers only on
its global registry by default.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


SECONDS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, float("inf"))
"""Reply times reach GLM_REPLY_SECONDS (600 s by default): buckets go that far, not just to 10 s."""


class Metrics:
    """Every metric the bot exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Read at scrape time from /proc and the gc module: nothing runs between scrapes.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # One count per reply, when it ends (bot.core.report): ok, stopped, an error's name, ...
        self.replies = self._counter("glmbot_replies", "Replies by outcome", "outcome")
        self.tokens = self._counter("glmbot_model_tokens", "Tokens reported by the model", "kind")
        # bot.model.client: every ModelError a model call ended with (bot.core.generation adds the
        # content filter's "declined" and "empty_answer"), and every retry of a failed attempt.
        self.model_errors = self._counter(
            "glmbot_model_errors",
            "Model calls that failed, by kind (unavailable, rejected, stream_failed, timeout_first_token, "
            "timeout_reply, declined, empty_answer)",
            "kind",
        )
        self.model_retries = self._counter(
            "glmbot_model_retries",
            "Model request attempts retried, by reason (status_429, status_503, connect, read_timeout, ...)",
            "reason",
        )
        self.slack_calls = self._counter(
            "glmbot_slack_calls",
            "Slack Web API calls by method and result (ok, rate_limited, error, skipped_budget)",
            "method",
            "result",
        )
        self.first_token_seconds = self._seconds(
            "glmbot_first_token_seconds", "Time from accepting a message to the model's first visible token"
        )
        self.reply_seconds = self._seconds(
            "glmbot_reply_seconds", "Time from accepting a message to the final edit"
        )
        # Spend quotas (bot/billing/ledger.py). The period label ("2026-01", "2026-W05", "2026-01-31") is
        # the period a charge was booked into: a reply reserved before midnight is counted in the old one.
        self.spend_usd = self._counter(
            "glmbot_spend_usd", "US dollars charged for replies (settled charges), by quota period", "period"
        )
        self.quota_refusals = self._counter(
            "glmbot_quota_refusals", "Replies refused because the user's limit did not cover a minimal reply"
        )
        # 👍/👎 pressed on finished answers (handlers/actions.py); value is "good" or "bad".
        self.feedback = self._counter(
            "glmbot_feedback", "Feedback buttons pressed on answers, by value", "value"
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _seconds(self, name: str, documentation: str) -> Histogram:
        return Histogram(name, documentation, buckets=SECONDS_BUCKETS, registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
