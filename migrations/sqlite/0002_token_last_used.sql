-- When a token last authenticated a request (written at most once a minute per token).
ALTER TABLE api_tokens ADD COLUMN last_used_ms INTEGER;
