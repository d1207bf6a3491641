"""The model adapter: glm-4.5v over an OpenAI-compatible, streamed chat-completions endpoint (httpx + SSE)."""
