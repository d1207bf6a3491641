"""Spend quotas: exact money, periods, prices, the Redis ledger and its Lua scripts, admin commands."""
