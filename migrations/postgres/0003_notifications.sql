-- The alert notifier's outbox (migrations/sqlite 0009): one row per webhook target and alert.
-- `state` is `queued` until the webhook takes it (`sent`) or refuses it for good (`failed`). A
-- row is never queued twice for one target and dedupe key while one is queued, nor within the
-- configured repeat window (`[notify] repeat_after`), which the notifier checks on insert. The
-- payload is kept as the text it was encoded to (nothing queries inside it).
CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target          TEXT   NOT NULL,
    dedupe_key      TEXT   NOT NULL,
    alert           TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    sent_ms         BIGINT,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_ms) WHERE state = 'queued';
CREATE INDEX notifications_key ON notifications (target, dedupe_key, created_ms);

-- Where the notifier stopped reading cluster events (the last `cluster_events.id` it looked
-- at), so a restart neither misses nor repeats a failure.
CREATE TABLE notifier_cursor (
    name     TEXT   PRIMARY KEY,
    event_id BIGINT NOT NULL
);
