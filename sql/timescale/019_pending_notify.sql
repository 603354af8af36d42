-- Schema 19, TimescaleDB flavour: statements that change raw rows announce it with NOTIFY
-- ruleperf_changes, 'raw', delivered at their commit, so the query service reads pending
-- changes (TimescaleDB's invalidation logs, written at that commit) at once instead of at its
-- next poll (CHANGES_POLL_MS).
--
-- Hypertables take no transition tables, so a statement trigger cannot tell late rows from
-- live ones, and a transaction that notifies takes a lock held to its commit, one such commit
-- at a time across the server (measured: 8 clients of one-row inserts, 4-8x fewer commits). So
-- updates, deletes and truncates (rare, and the changes a cached settled answer cannot show)
-- announce; inserts only where the session sets ruleperf.announce_inserts (the embedded
-- database, one session serving one statement at a time, where the lock costs nothing). Late
-- rows inserted on a server reach cached answers at the next poll.

CREATE OR REPLACE FUNCTION ruleperf_announce_raw_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' OR current_setting('ruleperf.announce_inserts', true) = 'on' THEN
    PERFORM pg_notify('ruleperf_changes', 'raw');
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS ruleperf_metrics_changed ON metrics;
CREATE TRIGGER ruleperf_metrics_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON metrics
  FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_announce_raw_change();
