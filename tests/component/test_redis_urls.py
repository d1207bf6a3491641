"""REDIS_URL's forms (shared/contract.md): one server, Sentinel and Cluster, and the start-up refusals."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings
from bot.store.connection import Topology, parse_topology


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6380/0", None),
        ("rediss://user:pw@cache.example:6380/1", None),
        ("unix:///run/redis.sock", None),
        (
            "redis+sentinel://s1:26379,s2:26380/mymaster",
            Topology("sentinel", (("s1", 26379), ("s2", 26380)), "mymaster"),
        ),
        (
            "redis+sentinel://:p%40ss@s1,[::1]:26381/main/3",
            Topology("sentinel", (("s1", 26379), ("::1", 26381)), "main", 3, None, "p@ss"),
        ),
        (
            "redis+sentinel://bot:secret@s1:26379/mymaster/0",
            Topology("sentinel", (("s1", 26379),), "mymaster", 0, "bot", "secret"),
        ),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2",
            Topology("cluster", (("10.0.0.1", 7000), ("10.0.0.2", 6379))),
        ),
        ("redis+cluster://:pw:x@n1:7000", Topology("cluster", (("n1", 7000),), password="pw:x")),
    ],
)
def test_urls_parse(url: str, expected: Topology | None) -> None:
    assert parse_topology(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379", "must start with redis://"),
        ("redis+sentinel://s1:26379", "needs /SERVICE"),
        ("redis+sentinel://s1:26379/mymaster/x", "needs /SERVICE"),
        ("redis+sentinel://s1:26379/a/1/2", "needs /SERVICE"),
        ("redis+sentinel://s1:port/mymaster", "is not host:port"),
        ("redis+sentinel://s1:26379,/mymaster", "is not host:port"),
        ("redis+cluster://n1:70000", "is not host:port"),
        ("redis+cluster://n1:7000/0", "takes no path"),
        ("redis+cluster://n1:7000?ssl=true", "takes no query options"),
    ],
)
def test_bad_urls_stop_the_start_naming_redis_url(
    monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError, match=f"invalid setting REDIS_URL: .*{reason}"):
        load_settings()


@pytest.mark.parametrize("name", ["REDIS_URL", "REDIS_CACHE_URL"])
def test_topology_urls_are_settings(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert getattr(load_settings(), name.lower()) == "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
