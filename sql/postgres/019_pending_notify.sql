-- Schema 19, PostgreSQL flavour: a statement that changes raw rows below a rollup's watermark
-- (a late row, a back-fill, an update or a delete in settled buckets) announces it with
-- NOTIFY ruleperf_changes, 'pending', delivered at its commit. The query service reads pending
-- changes at once instead of at its next poll (CHANGES_POLL_MS), so an answer cached from
-- before the change is not served for that long. Rows at the live edge, after every
-- watermark, are no change to any cached settled answer: they announce nothing.

-- The time range a statement touched: logged for every rollup built from raw rows, and announced.
CREATE OR REPLACE FUNCTION ruleperf_log_range(lo timestamptz, hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF lo IS NULL THEN RETURN; END IF;
  INSERT INTO ruleperf_invalidations (rollup, lo, hi)
  SELECT r.name, lo, hi FROM ruleperf_rollups AS r WHERE r.source = 'metrics';
  PERFORM ruleperf_announce_pending(lo, hi);
END $$;

CREATE OR REPLACE FUNCTION ruleperf_log_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ruleperf_log_range(min(time), max(time)) FROM new_rows;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_log_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Raw-data retention removes rows whose rollups must be kept: it sets this flag.
  IF current_setting('ruleperf.retention', true) = 'on' THEN RETURN NULL; END IF;
  PERFORM ruleperf_log_range(min(time), max(time)) FROM old_rows;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ruleperf_log_range('-infinity', 'infinity');
  RETURN NULL;
END $$;

-- The condition is the one the service reads pending changes by (an entry below a rollup's
-- watermark, within what it retains). Notifications with the same payload in one transaction
-- are delivered once. A transaction that notifies takes a lock held to its commit, one such
-- commit at a time across the server: rows at the live edge, the steady stream, never do.
-- SECURITY DEFINER: a role that writes raw rows needs no grant on the rollups' state for it.
CREATE OR REPLACE FUNCTION ruleperf_announce_pending(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM ruleperf_rollup_state s JOIN ruleperf_rollups r ON r.name = s.rollup
             WHERE r.source = 'metrics' AND lo < s.watermark AND hi >= s.retained_from) THEN
    PERFORM pg_notify('ruleperf_changes', 'pending');
  END IF;
END $$;
