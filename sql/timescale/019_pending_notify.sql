-- Schema 19, TimescaleDB flavour: every statement that writes raw rows announces it with
-- NOTIFY ruleperf_changes, 'raw', delivered at its commit, so the query service reads pending
-- changes (TimescaleDB's invalidation logs, written at that commit) at once instead of at its
-- next poll (CHANGES_POLL_MS). Hypertables take no transition tables, so a statement trigger
-- cannot tell late rows from live ones: live inserts announce too, and the service spaces the
-- reads they cause (server/db/change-feed.ts). Notifications with the same payload in one
-- transaction are delivered once.

CREATE OR REPLACE FUNCTION ruleperf_announce_raw_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ruleperf_changes', 'raw');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS ruleperf_metrics_changed ON metrics;
CREATE TRIGGER ruleperf_metrics_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON metrics
  FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_announce_raw_change();
