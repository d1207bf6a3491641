"""Delivering an answer into Slack: blocks, defusing, splitting, edit pacing and budget, the streamer."""
