-- The repository's immutable id (GitHub `repository.id`, Bitbucket `repository.uuid` without
-- braces): what a CI OIDC token names its repository by.
ALTER TABLE pull_requests ADD COLUMN repository_id TEXT;

-- A gateway credential of a CI job keeps the repository grant its principal had (`repo` or
-- `repo-id` and the value): the pull-request clusters of that repository it may use.
ALTER TABLE gateway_credentials ADD COLUMN grant_label TEXT;
ALTER TABLE gateway_credentials ADD COLUMN grant_value TEXT;

-- The status-report outbox: per pull request and commit, the state vcm wants the provider to
-- show (seq bumps on every change) and the last one the provider took (sent_seq). Only the
-- latest wanted state is ever sent, so an earlier state never overwrites a later one.
CREATE TABLE status_reports (
    pr_key TEXT NOT NULL,
    sha TEXT NOT NULL,
    provider TEXT NOT NULL,
    repository TEXT NOT NULL,
    branch TEXT NOT NULL,
    installation_id INTEGER,
    state TEXT NOT NULL,
    description TEXT NOT NULL,
    target_url TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sent_seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    -- GitHub check runs: the run made for this commit, updated by later states.
    check_run_id INTEGER,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (pr_key, sha)
);
CREATE INDEX status_reports_due ON status_reports (next_attempt_ms) WHERE sent_seq < seq;
