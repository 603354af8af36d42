-- Schema 20, PostgreSQL flavour: raw rows are found by time through a B-tree instead of BRIN
-- ranges. A BRIN range is 128 pages (about 9,000 rows at any density), so each raw slice an
-- uncached answer reads (the seconds at a range's ends, the live edge) read a whole range of
-- rows and filtered them, through an index read whole on every scan (6,455 ranges at 45M rows):
-- 5-10 ms of a top-rules answer went to the 7 seconds at its range's start. A B-tree finds the
-- slice's own rows. At 1M rows, unaligned ranges, server p50 (p95): stats over 30 days 7.8
-- (17.4) -> 3.9 (7.7) ms, top rules over 7 days 29.7 (43.8) -> 16.1 (25.8), error breakdown
-- 10.1 (16.9) -> 5.0 (8.9), a rule's 24-hour series 9.9 (15.7) -> 4.2 (7.3). Rows arrive in time
-- order, so new keys go to the index's right edge: loading costs about 15 % (COPY of 1.44M rows:
-- 336,000-355,000 rows/s -> 298,000-301,000), where the TimescaleDB flavour's three B-trees
-- (two keyed by rule and parser) cost it two thirds. The index is about 22 bytes a row.
--
-- Building it reads the table once; inserts wait meanwhile (this file runs in one transaction),
-- reads go on: the BRIN index is dropped after the build, which holds the table against reads
-- only from then to the commit.
CREATE INDEX metrics_time_btree ON metrics (time);
DROP INDEX IF EXISTS metrics_time;
ALTER INDEX metrics_time_btree RENAME TO metrics_time;

-- The raw table's upkeep before a refresh: no BRIN ranges to summarize any more.
CREATE OR REPLACE FUNCTION ruleperf_raw_upkeep() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ruleperf_analyze_raw_if_stale();
END $$;
