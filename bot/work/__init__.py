"""Durable work: every acknowledged message is a Redis Stream entry until its answer is delivered."""
