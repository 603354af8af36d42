-- Schema 13: the two smallest minute rollups, total and per rule category and metric type,
-- keep every minute (no retention, as the hourly and daily rollups) and are built from raw
-- rows. A range that starts more than 7 days back, as every "last 30 days" panel does, begins
-- mid-hour: with the minute tier kept 7 days, the minutes up to that hour came from raw rows
-- (up to 59 of them, about 60,000 rows at the bench's 45M, most of a 30-day answer's time); these two hold one
-- and about 34 rows a minute (about 18 million rows a year), read a handful at a time. Per
-- category, per type and per rule keep their 7 days: they hold hundreds of rows a minute.
--
-- A rollup's source cannot change in place (a continuous aggregate is built from its source),
-- so both are dropped and registered again; the next refresh builds them from raw rows, and
-- until then answers read the other tiers and raw rows, as for any rollup not yet built. A
-- rollup an operator built on either of them stops the migration, saying which (it would have
-- to be refreshed after its new source).
DO $$
DECLARE
  n text;
  kind "char";
  dependents text;
BEGIN
  IF (SELECT source FROM ruleperf_rollups WHERE name = 'metrics_minute_by_category_type') = 'metrics'
     AND (SELECT source FROM ruleperf_rollups WHERE name = 'metrics_minute_total') = 'metrics_minute_by_category_type' THEN
    RETURN;  -- already in this shape
  END IF;
  SELECT string_agg(name, ', ' ORDER BY name) INTO dependents FROM ruleperf_rollups
  WHERE source IN ('metrics_minute_total', 'metrics_minute_by_category_type')
    AND name NOT IN ('metrics_minute_total', 'metrics_minute_by_category_type');
  IF dependents IS NOT NULL THEN
    RAISE EXCEPTION 'schema 13 rebuilds metrics_minute_total and metrics_minute_by_category_type from raw rows, and % % built from them: drop % first (DELETE FROM ruleperf_rollups and its table or continuous aggregate), migrate, then add it again',
      dependents, CASE WHEN dependents LIKE '%,%' THEN 'are' ELSE 'is' END, CASE WHEN dependents LIKE '%,%' THEN 'them' ELSE 'it' END;
  END IF;
  FOREACH n IN ARRAY ARRAY['metrics_minute_total', 'metrics_minute_by_category_type'] LOOP
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = to_regclass(format('%I', n));
    IF kind = 'v' THEN
      EXECUTE format('DROP MATERIALIZED VIEW %I', n);  -- a continuous aggregate
    ELSIF kind IS NOT NULL THEN
      EXECUTE format('DROP TABLE %I', n);
    END IF;
    DELETE FROM ruleperf_rollups WHERE name = n;
    DELETE FROM ruleperf_rollup_state WHERE rollup = n;
    IF to_regclass('ruleperf_invalidations') IS NOT NULL THEN  -- the PostgreSQL flavour's
      DELETE FROM ruleperf_invalidations WHERE rollup = n;
    END IF;
  END LOOP;
END $$;

-- Positions are left to the registry's trigger (after the last), the total after its source.
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, refresh_every, retention) VALUES
  ('metrics_minute_by_category_type', 'metrics', '1 minute', '{rule_category,metric_type}', '1 minute', NULL)
ON CONFLICT (name) DO NOTHING;
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, refresh_every, retention) VALUES
  ('metrics_minute_total', 'metrics_minute_by_category_type', '1 minute', '{}', '1 minute', NULL)
ON CONFLICT (name) DO NOTHING;
