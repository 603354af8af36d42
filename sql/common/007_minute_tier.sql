-- Schema 7: a minute tier for the small rollups, so answers can cover the asked range to
-- the minute without reading raw rows for more than the last minute or two. Kept 7 days
-- (change with UPDATE ruleperf_rollups SET retention = '14 days' WHERE bucket_width =
-- '1 minute'), refreshed every minute. There is no full-dimension minute rollup: at the
-- bench's densities one would hold nearly as many rows as the raw table it summarizes
-- (README, "The read model and rollups"). Each row is materialized by its flavour's
-- ruleperf_materialize through the registry's trigger.
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, refresh_every, retention, position) VALUES
  ('metrics_minute_by_category', 'metrics',                    '1 minute', '{rule_category,metric_type,source_type,status}', '1 minute', '7 days', 11),
  ('metrics_minute_by_type',     'metrics_minute_by_category', '1 minute', '{metric_type,status}',                           '1 minute', '7 days', 12),
  ('metrics_minute_total',       'metrics_minute_by_type',     '1 minute', '{}',                                             '1 minute', '7 days', 13),
  ('metrics_minute_by_rule',     'metrics',                    '1 minute', '{rule_id,rule_category,metric_type}',            '1 minute', '7 days', 14)
ON CONFLICT (name) DO NOTHING;
