"""The metrics registry carries the process's own metrics; a web port that is taken is one clear error."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from bot.settings import SettingsError
from handlers.server import MAIN_PORT_SETTING, METRICS_PORT_SETTING, start_web


def sample_names(metrics: Metrics) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_process_platform_and_gc_metrics_are_on_the_bots_registry() -> None:
    """Memory, CPU, file descriptors, the Python version and the garbage collector, read at scrape time;
    every Metrics (one per bot, several in a test run) has its own."""
    first, second = Metrics(), Metrics()
    for metrics in (first, second):
        names = sample_names(metrics)
        assert {
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "python_info",
            "python_gc_objects_collected_total",
            "python_gc_collections_total",
        } <= names
    rss = first.registry.get_sample_value("process_resident_memory_bytes")
    assert rss is not None
    assert rss > 0


@pytest.mark.parametrize(
    ("setting", "named"), [(MAIN_PORT_SETTING, "PORT / --port"), (METRICS_PORT_SETTING, "METRICS_PORT")]
)
async def test_a_taken_port_is_a_settings_error_naming_what_to_change(setting: str, named: str) -> None:
    """Binding a port another socket listens on raises SettingsError with one line, not an OSError."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SettingsError) as raised:
            await start_web(web.Application(), "127.0.0.1", port, setting=setting)
    assert str(raised.value) == f"port {port} is already in use: stop the other process or set {named}"


async def test_a_free_port_is_served() -> None:
    """The same call on a free port serves the app (and the caller cleans it up)."""
    runner = await start_web(web.Application(), "127.0.0.1", 0)
    try:
        assert runner.addresses
    finally:
        await runner.cleanup()
