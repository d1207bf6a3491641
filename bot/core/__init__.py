"""The platform-free core: domain values, errors, user-facing wording, ports, the conversation service."""
