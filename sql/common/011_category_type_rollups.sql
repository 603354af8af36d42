-- Schema 11: rollups per rule category and metric type only, at every width. Questions about
-- categories (the error breakdown's default grouping, a category's stats or series) read the
-- smallest rollup holding their dimensions; per category (category, type, source, status)
-- holds about 550 rows a day at the bench's densities and per rule as many as there are
-- rules, while category and type alone hold about 34, whatever the number of rules. Each is
-- summed from the per-category rollup of its width (a merge of few rows), so a build costs
-- little more. Positions are left to the registry's trigger (after the last), so a rollup an
-- operator added before this migration keeps its own.
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, refresh_every, retention) VALUES
  ('metrics_hourly_by_category_type', 'metrics_hourly_by_category', '1 hour',   '{rule_category,metric_type}', '5 minutes', NULL),
  ('metrics_daily_by_category_type',  'metrics_daily_by_category',  '1 day',    '{rule_category,metric_type}', '1 hour',    NULL),
  ('metrics_minute_by_category_type', 'metrics_minute_by_category', '1 minute', '{rule_category,metric_type}', '1 minute',  '7 days')
ON CONFLICT (name) DO NOTHING;
