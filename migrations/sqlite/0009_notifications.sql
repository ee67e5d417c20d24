-- The alert notifier's outbox: one row per webhook target and alert. `state` is `queued`
-- until the webhook takes it (`sent`) or refuses it for good (`failed`). A row is never
-- queued twice for one target and dedupe key while one is queued, nor within the configured
-- repeat window (`[notify] repeat_after`), which the notifier checks on insert.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    alert TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    sent_ms INTEGER,
    last_error TEXT
) STRICT;
CREATE INDEX notifications_due ON notifications (next_attempt_ms) WHERE state = 'queued';
CREATE INDEX notifications_key ON notifications (target, dedupe_key, created_ms);

-- Where the notifier stopped reading cluster events (the last `cluster_events.id` it looked
-- at), so a restart neither misses nor repeats a failure.
CREATE TABLE notifier_cursor (
    name TEXT PRIMARY KEY,
    event_id INTEGER NOT NULL
) STRICT;
