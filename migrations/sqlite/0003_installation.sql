-- This store's installation id: generated once, here, and the same for every vcm replica that
-- shares the store. Host namespaces carry it (label vcm.dev/installation), so the orphan sweeper
-- of one installation never deletes another's.
CREATE TABLE installation (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL
);
INSERT INTO installation (singleton, id) VALUES (1, lower(hex(randomblob(8))));
