"""glmbot: the platform-free core of a Slack bot for the glm-4.5v vision-language model."""
