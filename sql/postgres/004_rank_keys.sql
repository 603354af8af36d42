-- Rank keys: for each row of the by-rule rollups, the sketch keys at the ranks that
-- bound the row's p95 and p99 from below and above. Any range's percentile for a rule lies
-- between the smallest lower key and the largest upper key of the rows it merges (a
-- mixture's quantile lies between its parts'), so top-rules ranking can discard most rules
-- by reading four integers per row instead of merging sketches. Stored as generated
-- columns: computed on every refresh and backfilled by this ALTER (which rewrites the two
-- by-rule tables once: about a minute at 45 million raw rows).

-- {p95 lower, p95 upper, p99 lower, p99 upper}. For n values and level p: the lower key is
-- the one at 0-based rank floor(p(n-1)), the upper the one at min(n-1, ceil(pn)); with those
-- ranks the bounds hold for every union of parts (see server/query/top-rules.ts).
CREATE OR REPLACE FUNCTION ruleperf_sketch_rank_keys(entries bigint[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH e AS (
    SELECT (x >> 32)::int AS k, (x & 4294967295)::float8 AS c FROM unnest(entries) AS x
  ), cum AS (
    SELECT k, c, sum(c) OVER (ORDER BY k) - c AS before, sum(c) OVER () AS n FROM e
  )
  SELECT ARRAY[
    min(k) FILTER (WHERE before <= floor(0.95 * (n - 1)) AND floor(0.95 * (n - 1)) < before + c),
    min(k) FILTER (WHERE before <= least(n - 1, ceil(0.95 * n)) AND least(n - 1, ceil(0.95 * n)) < before + c),
    min(k) FILTER (WHERE before <= floor(0.99 * (n - 1)) AND floor(0.99 * (n - 1)) < before + c),
    min(k) FILTER (WHERE before <= least(n - 1, ceil(0.99 * n)) AND least(n - 1, ceil(0.99 * n)) < before + c)]
  FROM cum
$$;

DO $$
DECLARE r record;
BEGIN
  -- The by-rule rollups answer unfiltered and rule/category/metric-type filtered top rules;
  -- the full rollups (any other filter) are large, and bound from coarse sketches instead.
  FOR r IN SELECT name FROM ruleperf_rollups WHERE name IN ('metrics_hourly_by_rule', 'metrics_daily_by_rule') ORDER BY position LOOP
    EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS latency_rank_keys integer[] '
                   'GENERATED ALWAYS AS (ruleperf_sketch_rank_keys(latency_sketch)) STORED', r.name);
  END LOOP;
END $$;
