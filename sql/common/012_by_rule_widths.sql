-- Schema 12: two more widths per rule, between minute, hour and day. A per-rule question over
-- days (top rules, one rule's stats) reads whole days inside, and at its ends hours and
-- minutes: at 45M raw rows an hour's edge is up to 60 minute rows per active rule (26,000 rows
-- for 440 of 500 rules), and a partial day up to 23 hourly rows per rule. Ten minutes and six
-- hours bound those to 9 minute, 5 ten-minute, 5 hourly and 3 six-hour rows per rule at each
-- end. Each is summed from the rollup one width finer (a merge of a few rows); the router reads
-- them only where they hold fewer rows per unit of time than the finer level (not for totals
-- or categories: server/query/plan.ts, worthReading). Positions: after the last (the trigger).
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, retention) VALUES
  ('metrics_10min_by_rule', 'metrics_minute_by_rule', '10 minutes', '{rule_id,rule_category,metric_type}', '7 days'),
  ('metrics_6h_by_rule',    'metrics_hourly_by_rule', '6 hours',    '{rule_id,rule_category,metric_type}', NULL)
ON CONFLICT (name) DO NOTHING;
