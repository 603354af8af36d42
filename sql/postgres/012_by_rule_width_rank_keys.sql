-- Schema 12 (PostgreSQL flavour): the two new per-rule widths store rank keys, as the other
-- per-rule rollups do, so top rules bounds their rules from four integers a row.
UPDATE ruleperf_rollups SET rank_keys = true WHERE name IN ('metrics_10min_by_rule', 'metrics_6h_by_rule');
