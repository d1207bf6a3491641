"""Delivering an answer into Slack: mrkdwn, splitting, edit pacing, the edit budget, the streamer."""
