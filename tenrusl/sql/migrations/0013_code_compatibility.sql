-- TenRusl schema, version 13: the oldest code this schema still serves.
--
-- A release never drops or narrows what the previous release's code uses: it expands (new
-- columns with defaults, new functions, old functions kept or re-implemented on the new ones)
-- and contracts only in the release after (docs/design-notes.md, "Schema compatibility"). So a
-- `helm rollback` by one release finds everything its code calls. This one-row table says how far
-- back that promise goes: a process whose version is older than oldest_code_version refuses to
-- start (`tenrusl migrate`, `tenrusl serve`, `tenrusl retry`), and a running receiver's /ready
-- answers 503 code_too_old. A contracting migration raises it to the oldest release that no
-- longer uses what it drops, in the same transaction as the drop.
--
-- 0.2.0 only expands, so the schema still serves 0.1.0's code.

CREATE TABLE tenrusl_compatibility (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    oldest_code_version text NOT NULL CHECK (oldest_code_version ~ '^[0-9]+(\.[0-9]+)*$'),
    set_by              text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenrusl_compatibility (oldest_code_version, set_by)
VALUES ('0.1.0', '0013_code_compatibility');
