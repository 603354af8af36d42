-- Schema 8 (PostgreSQL flavour): the minute by-rule rollup stores rank keys too. Top rules
-- over a range that does not start and end on whole hours reads the minute tier for its
-- edges; without stored keys each of those rows had its keys computed at query time (at 10M
-- raw rows, 7 days: 17,673 minute rows, 77 ms of a 137-197 ms answer). The registry's
-- trigger adds the column and fills it once (about 1.3M rows at 10M raw rows: seconds); the
-- refresh fills it for new minutes from then on.
UPDATE ruleperf_rollups SET rank_keys = true WHERE name = 'metrics_minute_by_rule';
