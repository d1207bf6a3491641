"""``glmbot check``: verify a deployment (settings, Slack, the model, Redis, ports) and say how to fix it."""
