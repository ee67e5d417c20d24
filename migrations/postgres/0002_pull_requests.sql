-- Webhook deliveries, pull requests and the status-report outbox: migrations/sqlite 0005 and
-- 0006 in one step.

-- Webhook deliveries seen, by provider and delivery id: each is processed at most once (a
-- redelivery keeps its id). Pruned after a week.
CREATE TABLE webhook_deliveries (
    provider    TEXT   NOT NULL,
    delivery_id TEXT   NOT NULL,
    event       TEXT   NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_ms);

-- Pull requests vcm keeps clusters for: what the latest accepted event wants (open at a head
-- commit, or closed), and how far the engine has carried it out (done_generation).
CREATE TABLE pull_requests (
    key             TEXT    PRIMARY KEY,
    provider        TEXT    NOT NULL,
    repository      TEXT    NOT NULL,
    number          BIGINT  NOT NULL,
    open            BOOLEAN NOT NULL,
    head_sha        TEXT    NOT NULL,
    branch          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    installation_id BIGINT,
    -- The repository's immutable id (GitHub `repository.id`, Bitbucket `repository.uuid`
    -- without braces): what a CI OIDC token names its repository by.
    repository_id   TEXT,
    version_ms      BIGINT  NOT NULL,
    generation      BIGINT  NOT NULL,
    done_generation BIGINT  NOT NULL,
    cluster_id      TEXT,
    updated_ms      BIGINT  NOT NULL
);
CREATE INDEX pull_requests_pending ON pull_requests (updated_ms) WHERE generation > done_generation;

-- The status-report outbox: per pull request and commit, the state vcm wants the provider to
-- show (seq bumps on every change) and the last one the provider took (sent_seq). Only the
-- latest wanted state is ever sent, so an earlier state never overwrites a later one.
CREATE TABLE status_reports (
    pr_key          TEXT   NOT NULL,
    sha             TEXT   NOT NULL,
    provider        TEXT   NOT NULL,
    repository      TEXT   NOT NULL,
    branch          TEXT   NOT NULL,
    installation_id BIGINT,
    state           TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    target_url      TEXT   NOT NULL,
    seq             BIGINT NOT NULL,
    sent_seq        BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT,
    -- GitHub check runs: the run made for this commit, updated by later states.
    check_run_id    BIGINT,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (pr_key, sha)
);
CREATE INDEX status_reports_due ON status_reports (next_attempt_ms) WHERE sent_seq < seq;
