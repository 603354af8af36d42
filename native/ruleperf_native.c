/*
 * ruleperf_native: the latency-sketch functions in C, an optional PostgreSQL extension.
 *
 * Each function returns exactly what its PL/pgSQL namesake of sql/common/006_registry.sql
 * (and sql/postgres/006_registry_driven.sql for the rank keys) returns, and the two that
 * queries use (percentiles, keys at a rank) what the SQL of server/query/sql.ts and
 * server/query/kinds/top-rules.ts computes, for every input the service produces
 * (tests/rollups/sketch-functions.test.ts compares them on random inputs,
 * tests/rollups/native-postgres.test.ts whole rollups). A sketch is a bigint[] of entries
 * key << 32 | count, sorted by key (see sql/common/001_read_model.sql). Building rollups calls
 * these once per rollup row, which in PL/pgSQL costs microseconds a call; here it is a sort of
 * a few integers. server/db/native.ts points ruleperf's functions at these.
 *
 * Entries must not be NULL (the service never makes one); a NULL element is an error rather
 * than a silently different answer.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

PG_MODULE_MAGIC;

#define COUNT_MASK INT64CONST(4294967295)

typedef struct
{
	int64		key;
	int64		count;
} Entry;

/* key << 32 | count, with the shift done on unsigned bits as SQL's bigint << does. */
static inline int64
make_entry(int64 key, int64 count)
{
	return (int64) ((uint64) key << 32) | count;
}

static inline int64
entry_key(int64 e)
{
	return e >> 32;				/* arithmetic shift, as SQL's >> on bigint */
}

static ArrayType *
int8_array(const int64 *values, int n)
{
	Datum	   *d;
	int			i;

	if (n == 0)
		return construct_empty_array(INT8OID);
	d = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

static void
no_nulls(ArrayType *a, const char *what)
{
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what)));
}

/* The elements of a bigint[] (no NULLs), and how many. */
static int64 *
int8_elements(ArrayType *a, int *n)
{
	no_nulls(a, "a sketch");
	*n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	return (int64 *) ARR_DATA_PTR(a);
}

static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

static int
cmp_entry_key(const void *a, const void *b)
{
	int64		x = ((const Entry *) a)->key;
	int64		y = ((const Entry *) b)->key;

	return (x > y) - (x < y);
}

/*
 * The items summed by key, ascending, in place (SQL's GROUP BY key ORDER BY key, sum(count));
 * returns how many keys there are. Sketch keys span a few thousand values however many
 * entries are merged, so a merge counts them in an array indexed by key (linear; 60 sketches
 * of 600 entries took 6 ms in qsort, and sorting each rule's few dozen entries was a quarter
 * of top rules' coarse stage over 5,000 rules); a handful of entries, or widely spread ones,
 * are sorted.
 */
static int
sum_by_key(Entry *items, int n)
{
	int64		lo;
	int64		hi;
	int64		span;
	int			m = 0;
	int			i;

	if (n == 0)
		return 0;
	lo = hi = items[0].key;
	for (i = 1; i < n; i++)
	{
		if (items[i].key < lo)
			lo = items[i].key;
		if (items[i].key > hi)
			hi = items[i].key;
	}
	span = hi - lo + 1;
	if (n >= 16 && span <= (int64) n * 4)
	{
		/* -1: no entry with this key (an entry may hold a zero count, which SQL keeps). */
		int64	   *sums = palloc(sizeof(int64) * span);
		int64		k;

		memset(sums, 0xff, sizeof(int64) * span);
		for (i = 0; i < n; i++)
		{
			int64	   *s = &sums[items[i].key - lo];

			*s = (*s < 0 ? 0 : *s) + items[i].count;
		}
		for (k = 0; k < span; k++)
			if (sums[k] >= 0)
			{
				items[m].key = lo + k;
				items[m].count = sums[k];
				m++;
			}
		pfree(sums);
		return m;
	}
	qsort(items, n, sizeof(Entry), cmp_entry_key);
	for (i = 0; i < n;)
	{
		int64		count = 0;
		int			j = i;

		while (j < n && items[j].key == items[i].key)
			count += items[j++].count;
		items[m].key = items[i].key;
		items[m].count = count;
		m++;
		i = j;
	}
	return m;
}

/* Entries sorted by key, counts of equal keys added: the result, as SQL's GROUP BY key ORDER BY key. */
static ArrayType *
grouped(Entry *items, int n)
{
	int64	   *out;
	int			m;
	int			i;

	if (n == 0)
		return construct_empty_array(INT8OID);
	m = sum_by_key(items, n);
	out = palloc(sizeof(int64) * m);
	for (i = 0; i < m; i++)
		out[i] = make_entry(items[i].key, items[i].count);
	return int8_array(out, m);
}

/* Whether keys rise strictly (a compact sketch, returned as it is). */
static bool
strictly_sorted(const int64 *e, int n)
{
	int			i;

	for (i = 1; i < n; i++)
		if (entry_key(e[i]) <= entry_key(e[i - 1]))
			return false;
	return true;
}

/* ruleperf_native_from_keys(keys integer[]) → sorted entries, one per key with its count. */
PG_FUNCTION_INFO_V1(ruleperf_native_from_keys);
Datum
ruleperf_native_from_keys(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	int32	   *keys;
	int64	   *out;
	int			n;
	int			m = 0;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	a = PG_GETARG_ARRAYTYPE_P(0);
	no_nulls(a, "sketch keys");
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	keys = palloc(sizeof(int32) * n);
	memcpy(keys, ARR_DATA_PTR(a), sizeof(int32) * n);
	qsort(keys, n, sizeof(int32), cmp_int32);
	out = palloc(sizeof(int64) * n);
	for (i = 0; i < n;)
	{
		int			j = i;

		while (j < n && keys[j] == keys[i])
			j++;
		out[m++] = make_entry(keys[i], j - i);
		i = j;
	}
	PG_RETURN_ARRAYTYPE_P(int8_array(out, m));
}

/* Entries as (key / divisor, count) items; SQL's bigint / truncates toward zero, as C's does. */
static Entry *
entry_items(const int64 *e, int n, int divisor)
{
	Entry	   *items = palloc(sizeof(Entry) * (n > 0 ? n : 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		items[i].key = entry_key(e[i]) / divisor;
		items[i].count = e[i] & COUNT_MASK;
	}
	return items;
}

/* ruleperf_native_compact(entries bigint[]) → sorted by key, one entry per key, counts added. */
PG_FUNCTION_INFO_V1(ruleperf_native_compact);
Datum
ruleperf_native_compact(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	int64	   *e;
	int			n;

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	a = PG_GETARG_ARRAYTYPE_P(0);
	e = int8_elements(a, &n);
	if (strictly_sorted(e, n))
		PG_RETURN_ARRAYTYPE_P(a);	/* already compact (or empty) */
	PG_RETURN_ARRAYTYPE_P(grouped(entry_items(e, n, 1), n));
}

/* ruleperf_native_coarsen(entries bigint[]) → the coarse sketch: keys / 16, counts added. */
PG_FUNCTION_INFO_V1(ruleperf_native_coarsen);
Datum
ruleperf_native_coarsen(PG_FUNCTION_ARGS)
{
	int64	   *e;
	int			n;

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	e = int8_elements(PG_GETARG_ARRAYTYPE_P(0), &n);
	PG_RETURN_ARRAYTYPE_P(grouped(entry_items(e, n, 16), n));
}

/*
 * ruleperf_native_rank_keys(entries bigint[]) → {p95 lower, p95 upper, p99 lower, p99 upper}
 * keys, as sql/postgres/004_rank_keys.sql defines them: over the entries ordered by key, an
 * entry's `before` is the count of all entries with a key up to its own, less its own count
 * (SQL's window sum ORDER BY k, peers included); a rank's key is the least key of an entry
 * with before <= rank < before + count. Ranks and counts are float8, as in SQL.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_rank_keys);
Datum
ruleperf_native_rank_keys(PG_FUNCTION_ARGS)
{
	Datum		out[4];
	bool		isnull[4] = {true, true, true, true};
	int			dims[1] = {4};
	int			lbs[1] = {1};
	double		rank[4];
	double		total = 0;
	Entry	   *items;
	int64	   *e = NULL;
	int			n = 0;
	int			i;
	int			r;

	if (!PG_ARGISNULL(0))
		e = int8_elements(PG_GETARG_ARRAYTYPE_P(0), &n);
	items = entry_items(e, n, 1);
	for (i = 0; i < n; i++)
		total += (double) items[i].count;
	rank[0] = floor(0.95 * (total - 1));
	rank[1] = fmin(total - 1, ceil(0.95 * total));
	rank[2] = floor(0.99 * (total - 1));
	rank[3] = fmin(total - 1, ceil(0.99 * total));
	if (n > 1)
		qsort(items, n, sizeof(Entry), cmp_entry_key);
	{
		double		cum = 0;		/* the counts of all keys below the current one */

		for (i = 0; i < n;)
		{
			double		through = cum;
			int			j = i;
			int			k;

			while (j < n && items[j].key == items[i].key)
			{
				through += (double) items[j].count;
				j++;
			}
			for (k = i; k < j; k++)
			{
				double		c = (double) items[k].count;
				double		before = through - c;

				for (r = 0; r < 4; r++)
					if (isnull[r] && before <= rank[r] && rank[r] < before + c)
					{
						out[r] = Int32GetDatum((int32) items[k].key);
						isnull[r] = false;
					}
			}
			cum = through;
			i = j;
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, isnull, 1, dims, lbs, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/*
 * The sketches of an array of one-column rows (ruleperf_sketch_part, whose only attribute is
 * the entries); NULL rows and NULL entries count as empty. Sets *single to the one part's
 * sketch when the array holds exactly one row with a sketch, and *total to the entries in all.
 */
static ArrayType **
part_sketches(ArrayType *parts, int *nparts, int **sizes, int *total)
{
	Oid			elemtype = ARR_ELEMTYPE(parts);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *rows;
	bool	   *rownulls;
	ArrayType **sketches;
	int			i;

	if (!type_is_rowtype(elemtype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("ruleperf_native takes an array of rows whose first column is a sketch")));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(parts, elemtype, typlen, typbyval, typalign, &rows, &rownulls, nparts);
	sketches = palloc0(sizeof(ArrayType *) * (*nparts > 0 ? *nparts : 1));
	*sizes = palloc0(sizeof(int) * (*nparts > 0 ? *nparts : 1));
	*total = 0;
	for (i = 0; i < *nparts; i++)
	{
		bool		isnull;
		Datum		entries;

		if (rownulls[i])
			continue;
		entries = GetAttributeByNum(DatumGetHeapTupleHeader(rows[i]), 1, &isnull);
		if (isnull)
			continue;
		sketches[i] = DatumGetArrayTypeP(entries);
		(void) int8_elements(sketches[i], &(*sizes)[i]);
		*total += (*sizes)[i];
	}
	return sketches;
}

/* Every entry of the parts, as (key, count) items. */
static Entry *
part_items(ArrayType **sketches, const int *sizes, int nparts, int total)
{
	Entry	   *items = palloc(sizeof(Entry) * (total > 0 ? total : 1));
	int			m = 0;
	int			i;
	int			k;

	for (i = 0; i < nparts; i++)
	{
		int64	   *e;

		if (sketches[i] == NULL)
			continue;
		e = (int64 *) ARR_DATA_PTR(sketches[i]);
		for (k = 0; k < sizes[i]; k++)
		{
			items[m].key = entry_key(e[k]);
			items[m].count = e[k] & COUNT_MASK;
			m++;
		}
	}
	return items;
}

/*
 * ruleperf_native_merge_parts(parts anyarray) → the parts' sketches added up. One part whose
 * keys rise strictly is returned as it is.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_merge_parts);
Datum
ruleperf_native_merge_parts(PG_FUNCTION_ARGS)
{
	ArrayType **sketches;
	int		   *sizes;
	int			nparts;
	int			total;

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
	sketches = part_sketches(PG_GETARG_ARRAYTYPE_P(0), &nparts, &sizes, &total);
	if (nparts == 1 && sketches[0] != NULL &&
		strictly_sorted((int64 *) ARR_DATA_PTR(sketches[0]), sizes[0]))
		PG_RETURN_ARRAYTYPE_P(sketches[0]);
	PG_RETURN_ARRAYTYPE_P(grouped(part_items(sketches, sizes, nparts, total), total));
}

/* The values' count of summed items. */
static double
count_of(const Entry *items, int m)
{
	double		n = 0;
	int			i;

	for (i = 0; i < m; i++)
		n += (double) items[i].count;
	return n;
}

/*
 * The parts' sketches merged: one item per key, ascending, counts added (SQL: GROUP BY k,
 * sum(c)); *m items, *n their count as float8 (as SQL sums them). NULL when no part holds an
 * entry (SQL's unnest then yields no row for the group).
 */
static Entry *
merged_items(ArrayType *parts, int *m, double *n)
{
	ArrayType **sketches;
	Entry	   *items;
	int		   *sizes;
	int			nparts;
	int			total;

	sketches = part_sketches(parts, &nparts, &sizes, &total);
	if (total == 0)
		return NULL;
	items = part_items(sketches, sizes, nparts, total);
	*m = sum_by_key(items, total);
	*n = count_of(items, *m);
	return items;
}

/*
 * The index of the item holding 0-based rank r (before <= r < before + count, counts as
 * float8 as in SQL), or -1 when none does (r out of range, or between zero counts).
 */
static int
item_at(const Entry *items, int m, double r)
{
	double		before = 0;
	int			i;

	for (i = 0; i < m; i++)
	{
		double		c = (double) items[i].count;

		if (before <= r && r < before + c)
			return i;
		before += c;
	}
	return -1;
}

/*
 * The value a sketch key stands for, as server/query/sketch.ts's representativeSql computes it:
 * the top key (4000) holds Infinity, NaN and the largest values alike, and stands for Infinity.
 */
static double
representative(int64 key)
{
	if (key == 0)
		return 0;
	if (key >= 4000)
		return INFINITY;
	return 2 * pow(1.016129032258064, (double) (key - 1500)) / 2.016129032258064;
}

/* {the key at rank floor(h), the key at rank ceil(h)}, h = q·(n − 1), of merged items, as ruleperf_native_keys_at returns them. */
static ArrayType *
keys_at_of(const Entry *items, int m, double n, double q)
{
	double		h = q * (n - 1);
	int			at[2];
	Datum		out[2];
	bool		isnull[2];
	int			dims[1] = {2};
	int			lbs[1] = {1};
	int			i;

	at[0] = item_at(items, m, floor(h));
	at[1] = item_at(items, m, ceil(h));
	for (i = 0; i < 2; i++)
	{
		isnull[i] = at[i] < 0;
		out[i] = Int32GetDatum(isnull[i] ? 0 : (int32) items[at[i]].key);
	}
	return construct_md_array(out, isnull, 1, dims, lbs, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

/* {p50, p95, p99} of merged items (m keys, n values), as ruleperf_native_percentiles returns them. */
static ArrayType *
percentiles_of(const Entry *items, int m, double n)
{
	static const double levels[3] = {0.5, 0.95, 0.99};
	int			l;
	Datum		out[3];
	bool		isnull[3];
	int			dims[1] = {3};
	int			lbs[1] = {1};

	for (l = 0; l < 3; l++)
	{
		double		h = levels[l] * (n - 1);
		int			lo = item_at(items, m, floor(h));
		int			hi = item_at(items, m, ceil(h));

		isnull[l] = lo < 0 || hi < 0;
		out[l] = Float8GetDatum(isnull[l] ? 0 :
								representative(items[lo].key) +
								(h - floor(h)) * (representative(items[hi].key) - representative(items[lo].key)));
	}
	return construct_md_array(out, isnull, 1, dims, lbs, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * ruleperf_native_percentiles(parts anyarray) → {p50, p95, p99} of the parts' sketches merged,
 * computed as server/query/sql.ts's mergedSelect does in SQL: per level q, h = q·(n − 1), the
 * values at the ranks floor(h) and ceil(h), interpolated (lo + (h − floor(h))·(hi − lo)), in
 * float8 throughout; a rank no entry holds gives NULL. NULL when the parts hold no entry.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_percentiles);
Datum
ruleperf_native_percentiles(PG_FUNCTION_ARGS)
{
	Entry	   *items;
	int			m;
	double		n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	items = merged_items(PG_GETARG_ARRAYTYPE_P(0), &m, &n);
	if (items == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(percentiles_of(items, m, n));
}

/*
 * ruleperf_native_keys_at(parts anyarray, q float8) → {the key at rank floor(h), the key at
 * rank ceil(h)} of the parts' sketches merged, h = q·(n − 1): what top rules' coarse stage
 * reads (server/query/kinds/top-rules.ts), NULL for a rank no entry holds. NULL when the parts
 * hold no entry.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_keys_at);
Datum
ruleperf_native_keys_at(PG_FUNCTION_ARGS)
{
	Entry	   *items;
	int			m;
	double		n;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	items = merged_items(PG_GETARG_ARRAYTYPE_P(0), &m, &n);
	if (items == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(keys_at_of(items, m, n, PG_GETARG_FLOAT8(1)));
}

typedef struct
{
	int32		key;
	double		weight;
} KeyWeight;

static int
cmp_key_weight(const void *a, const void *b)
{
	int32		x = ((const KeyWeight *) a)->key;
	int32		y = ((const KeyWeight *) b)->key;

	return (x > y) - (x < y);
}

static int
cmp_key_weight_desc(const void *a, const void *b)
{
	return cmp_key_weight(b, a);
}

/*
 * The last key of items (in their order) whose items before it weigh at most slack in all;
 * the first key always counts, so the answer is never past the extreme.
 */
static int32
key_within(const KeyWeight *items, int m, double slack)
{
	double		before = 0;
	int32		found = items[0].key;
	int			i = 0;

	while (i < m && before <= slack)
	{
		int32		key = items[i].key;

		found = key;
		for (; i < m && items[i].key == key; i++)
			before += items[i].weight;
	}
	return found;
}

/*
 * ruleperf_native_rank_bounds(n bigint[], lo int[], hi int[], q float8) → {klo, khi}, for top
 * rules' first stage as ruleperf 1.1 ran it (the service now merges coarse sketches with
 * ruleperf_native_keys_at_agg instead; kept so that services started before an upgrade keep
 * answering): part i holds n[i] values, and lo[i],
 * hi[i] are its keys at ranks a_i = floor(q·(n_i − 1)) and b_i = min(n_i − 1, ceil(q·n_i)),
 * the rank keys rollups store. Of the parts' union (N values, h = q·(N − 1)):
 * - the key at rank floor(h) is at least klo: part i has at most a_i values below lo[i], and
 *   at most n_i below any key, so fewer than x values lie below x when sum a_i plus the
 *   (n_i − a_i) of the parts with lo[i] < x is at most floor(h); klo is the largest lo[i]
 *   for which that holds (min lo always does);
 * - the key at rank ceil(h) is at most khi: part i has at most n_i − 1 − b_i values above
 *   hi[i], so at most N − 1 − ceil(h) lie above y when sum (n_i − 1 − b_i) plus the (b_i + 1)
 *   of the parts with hi[i] > y is at most that; khi is the smallest hi[i] for which it holds
 *   (max hi always does).
 * A part of few values so moves the bounds by little, where min(lo) and max(hi) would take its
 * extremes. Parts with n ≤ 0 are skipped; NULL when none is left. Arrays of unequal length or
 * with NULL elements are an error.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_rank_bounds);
Datum
ruleperf_native_rank_bounds(PG_FUNCTION_ARGS)
{
	ArrayType  *na;
	ArrayType  *loa;
	ArrayType  *hia;
	int64	   *n;
	int32	   *lo;
	int32	   *hi;
	int			count;
	int			m = 0;
	int			i;
	double		q;
	double		total = 0;
	double		below_lo = 0;	/* sum of a_i */
	double		above_hi = 0;	/* sum of n_i − 1 − b_i */
	double		h;
	KeyWeight  *lows;
	KeyWeight  *highs;
	Datum		out[2];
	int			dims[1] = {2};
	int			lbs[1] = {1};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	na = PG_GETARG_ARRAYTYPE_P(0);
	loa = PG_GETARG_ARRAYTYPE_P(1);
	hia = PG_GETARG_ARRAYTYPE_P(2);
	q = PG_GETARG_FLOAT8(3);
	no_nulls(na, "part sizes");
	no_nulls(loa, "rank keys");
	no_nulls(hia, "rank keys");
	count = ArrayGetNItems(ARR_NDIM(na), ARR_DIMS(na));
	if (ArrayGetNItems(ARR_NDIM(loa), ARR_DIMS(loa)) != count || ArrayGetNItems(ARR_NDIM(hia), ARR_DIMS(hia)) != count)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("part sizes and rank keys must be arrays of one length")));
	n = (int64 *) ARR_DATA_PTR(na);
	lo = (int32 *) ARR_DATA_PTR(loa);
	hi = (int32 *) ARR_DATA_PTR(hia);
	lows = palloc(sizeof(KeyWeight) * Max(count, 1));
	highs = palloc(sizeof(KeyWeight) * Max(count, 1));
	for (i = 0; i < count; i++)
	{
		double		size = (double) n[i];
		double		a;
		double		b;

		if (n[i] <= 0)
			continue;
		a = floor(q * (size - 1));
		b = fmin(size - 1, ceil(q * size));
		total += size;
		below_lo += a;
		above_hi += size - 1 - b;
		lows[m].key = lo[i];
		lows[m].weight = size - a;
		highs[m].key = hi[i];
		highs[m].weight = b + 1;
		m++;
	}
	if (m == 0)
		PG_RETURN_NULL();
	h = q * (total - 1);
	qsort(lows, m, sizeof(KeyWeight), cmp_key_weight);
	qsort(highs, m, sizeof(KeyWeight), cmp_key_weight_desc);
	out[0] = Int32GetDatum(key_within(lows, m, floor(h) - below_lo));
	out[1] = Int32GetDatum(key_within(highs, m, (total - 1 - ceil(h)) - above_hi));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, NULL, 1, dims, lbs, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/*
 * The same answer as an aggregate over sketches (ruleperf_native 1.2):
 * ruleperf_native_keys_at_agg(sketch, q) equals ruleperf_native_keys_at(array_agg(ROW(sketch)),
 * q), without a composite row per sketch and an array and memory context per group (top rules
 * merges the coarse sketches of every rule in one pass: 5,000 groups over 7 days took 10–20 %
 * less than with the arrays). The state is the entries so far, summed by key whenever it fills,
 * so it stays within about twice the keys present plus one row's (a few hundred coarse ones)
 * however many rows arrive. The level is the same on every row of a query (the last non-NULL
 * one counts). The final function sums the state in place (READ_WRITE): not a window function.
 */
typedef struct
{
	int			n;
	int			cap;
	double		q;				/* the level, once a row brings one */
	bool		has_q;
	bool		summed;			/* items ascend strictly by key: no sort needed at the end */
	int			merged;			/* sketches merged in key order so far */
	MemoryContext context;		/* the aggregate's, where the items live */
	Entry	   *items;
} MergeState;

/*
 * Sketches merged in key order (a linear merge, as each sketch ascends) before the state falls
 * back to collecting entries and sorting them at the end. A group of a few rows (a per-rule
 * timeseries' minute rows, two or three of 30 entries each) then costs no sort, which was a
 * fifth of such a query's time at the database; a group of many rows costs at most this many
 * passes over its keys before the usual path.
 */
#define MERGES_IN_ORDER 8

/* A new, empty merge state in the aggregate's memory context. */
static MergeState *
merge_state_new(MemoryContext aggcontext)
{
	MergeState *st = MemoryContextAlloc(aggcontext, sizeof(MergeState));

	st->n = 0;
	st->cap = 64;
	st->q = 0;
	st->has_q = false;
	st->summed = true;
	st->merged = 0;
	st->context = aggcontext;
	st->items = MemoryContextAlloc(aggcontext, sizeof(Entry) * st->cap);
	return st;
}

/*
 * Items a (na) and the entries e (ne), both strictly ascending by key, merged into out (room for
 * na + ne), counts of equal keys added; returns how many items out holds.
 */
static int
merge_in_order(const Entry *a, int na, const int64 *e, int ne, Entry *out)
{
	int			i = 0;
	int			j = 0;
	int			m = 0;

	while (i < na && j < ne)
	{
		int64		key = entry_key(e[j]);

		if (a[i].key < key)
			out[m++] = a[i++];
		else
		{
			out[m].key = key;
			out[m].count = (e[j] & COUNT_MASK) + (a[i].key == key ? a[i++].count : 0);
			m++;
			j++;
		}
	}
	while (i < na)
		out[m++] = a[i++];
	for (; j < ne; j++, m++)
	{
		out[m].key = entry_key(e[j]);
		out[m].count = e[j] & COUNT_MASK;
	}
	return m;
}

/* The sketch's entries added to the state (repalloc keeps the items in the aggregate's context). */
static void
merge_state_add(MergeState *st, ArrayType *sketch)
{
	int			k;
	int			i;
	int64	   *e = int8_elements(sketch, &k);

	if (k == 0)
		return;
	if (st->summed && st->merged < MERGES_IN_ORDER && strictly_sorted(e, k))
	{
		int			room = Max(st->n + k, 64);
		Entry	   *out = MemoryContextAlloc(st->context, sizeof(Entry) * room);

		st->n = merge_in_order(st->items, st->n, e, k, out);
		st->cap = room;
		pfree(st->items);
		st->items = out;
		st->merged++;
		return;
	}
	st->summed = false;
	if (st->n + k > st->cap)
	{
		/*
		 * Full: sum what is there, and grow only when that leaves it more than half full (so
		 * each entry is summed a bounded number of times, not once a row).
		 */
		st->n = sum_by_key(st->items, st->n);
		if (st->n + k > st->cap / 2)
		{
			st->cap = Max(st->cap * 2, st->n + k);
			st->items = repalloc(st->items, sizeof(Entry) * st->cap);
		}
	}
	for (i = 0; i < k; i++)
	{
		st->items[st->n].key = entry_key(e[i]);
		st->items[st->n].count = e[i] & COUNT_MASK;
		st->n++;
	}
}

/* The state's items summed by key, ascending (in place: the final functions are READ_WRITE). */
static void
state_summed(MergeState *st)
{
	if (!st->summed)
		st->n = sum_by_key(st->items, st->n);
	st->summed = true;
}

/* ruleperf_native_merge_step(state internal, sketch bigint[], q float8) → the state with the sketch's entries added. */
PG_FUNCTION_INFO_V1(ruleperf_native_merge_step);
Datum
ruleperf_native_merge_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MergeState *st;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ruleperf_native_merge_step called outside an aggregate");
	st = PG_ARGISNULL(0) ? merge_state_new(aggcontext) : (MergeState *) PG_GETARG_POINTER(0);
	if (!PG_ARGISNULL(2))
	{
		st->q = PG_GETARG_FLOAT8(2);
		st->has_q = true;
	}
	if (!PG_ARGISNULL(1))
		merge_state_add(st, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_POINTER(st);
}

/* The state's entries summed by key (in place: the final function is READ_WRITE); NULL when it holds none. */
static MergeState *
merged_state(FunctionCallInfo fcinfo, double *n)
{
	MergeState *st;

	if (PG_ARGISNULL(0))
		return NULL;
	st = (MergeState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		return NULL;
	state_summed(st);
	*n = count_of(st->items, st->n);
	return st;
}

PG_FUNCTION_INFO_V1(ruleperf_native_keys_at_final);
Datum
ruleperf_native_keys_at_final(PG_FUNCTION_ARGS)
{
	double		n;
	MergeState *st = merged_state(fcinfo, &n);

	if (st == NULL || !st->has_q)
		PG_RETURN_NULL();			/* as ruleperf_native_keys_at with a NULL level */
	PG_RETURN_ARRAYTYPE_P(keys_at_of(st->items, st->n, n, st->q));
}


/*
 * ruleperf_native 1.3: top rules' coarse keys when some rows may hold values outside the range
 * (the range's partial first day read as its whole day: one row a rule instead of up to 22).
 * ruleperf_native_keys_within_agg(sketch bigint[], outside boolean, q float8) over the rows of a
 * group: I, the entries of the rows wholly inside the range (outside false), and O, those of
 * every row; the range's values S lie between them (I ⊆ S ⊆ O), n = |S| in [n0, |O|],
 * n0 = max(|I|, 1). Bounds on S's keys at ranks floor(q(n − 1)) and ceil(q(n − 1)), for
 * any such S:
 * - lower: S[r] ≥ O[r] (a subset's r-th smallest is no smaller), and r ≥ floor(q(n0 − 1));
 *   S[r] ≥ I[r − (n − |I|)] (I is S less n − |I| values), least at n = |O|:
 *   I[floor(q(|O| − 1)) − (|O| − |I|)] where that rank is ≥ 0. The larger of the two. No
 *   lower bound (NULL) when |I| = 0: S may be empty, and a rule with no value in the range must
 *   not raise the threshold others are judged by.
 * - upper: S[c] ≤ I[c] (I ⊆ S) where c < |I|, c ≤ ceil(q(|O| − 1)); S[c] ≤ O[c + |O| − n],
 *   greatest at n = n0: O[min(|O| − 1, ceil(q(n0 − 1)) + |O| − n0)]. The smaller of the two.
 * With no outside row (I = O) these are the keys ruleperf_native_keys_at_agg returns, but for a
 * group whose entries all count zero (no rollup row has one), which this drops (NULL) where that
 * one returns {NULL, NULL}. Returns {lower key or NULL, upper key}; NULL when the group holds no
 * value or no level was given.
 */
typedef struct
{
	MergeState *inside;			/* entries of rows wholly inside the range; the level */
	MergeState *outside;		/* entries of rows partly outside it */
} WithinState;

/* ruleperf_native_within_step(state internal, sketch bigint[], outside boolean, q float8). */
PG_FUNCTION_INFO_V1(ruleperf_native_within_step);
Datum
ruleperf_native_within_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	WithinState *st;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ruleperf_native_within_step called outside an aggregate");
	if (PG_ARGISNULL(0))
	{
		st = MemoryContextAlloc(aggcontext, sizeof(WithinState));
		st->inside = merge_state_new(aggcontext);
		st->outside = merge_state_new(aggcontext);
	}
	else
		st = (WithinState *) PG_GETARG_POINTER(0);
	if (!PG_ARGISNULL(3))
	{
		st->inside->q = PG_GETARG_FLOAT8(3);
		st->inside->has_q = true;
	}
	/* A row of unknown place (NULL) counts as outside: the bounds stay sound. */
	if (!PG_ARGISNULL(1))
		merge_state_add(!PG_ARGISNULL(2) && !PG_GETARG_BOOL(2) ? st->inside : st->outside, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_POINTER(st);
}

/* The key at 0-based rank r of summed items (n values), or -1 when r is outside [0, n − 1]. */
static int64
key_at_rank(const Entry *items, int m, double n, double r)
{
	int			i;

	if (r < 0 || r > n - 1)
		return -1;
	i = item_at(items, m, r);
	return i < 0 ? -1 : items[i].key;
}

PG_FUNCTION_INFO_V1(ruleperf_native_within_final);
Datum
ruleperf_native_within_final(PG_FUNCTION_ARGS)
{
	WithinState *st;
	MergeState *in;
	MergeState *out;
	Entry	   *all;
	int			m_all;
	double		n_in;
	double		n_all;
	double		n0;
	double		q;
	int64		a;
	int64		b;
	int64		lo = -1;
	int64		hi;
	Datum		result[2];
	bool		isnull[2];
	int			dims[1] = {2};
	int			lbs[1] = {1};

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (WithinState *) PG_GETARG_POINTER(0);
	in = st->inside;
	out = st->outside;
	if (!in->has_q)
		PG_RETURN_NULL();
	q = in->q;
	state_summed(in);
	n_in = count_of(in->items, in->n);
	/* O, every row's entries: I's and the outside rows' together, summed by key. */
	all = palloc(sizeof(Entry) * Max(in->n + out->n, 1));
	memcpy(all, in->items, sizeof(Entry) * in->n);
	memcpy(all + in->n, out->items, sizeof(Entry) * out->n);
	m_all = sum_by_key(all, in->n + out->n);
	n_all = count_of(all, m_all);
	if (n_all <= 0)
		PG_RETURN_NULL();
	n0 = Max(n_in, 1);

	if (n_in > 0)
	{
		lo = key_at_rank(all, m_all, n_all, floor(q * (n0 - 1)));
		a = key_at_rank(in->items, in->n, n_in, floor(q * (n_all - 1)) - (n_all - n_in));
		if (a > lo)
			lo = a;
	}
	hi = key_at_rank(all, m_all, n_all, Min(n_all - 1, ceil(q * (n0 - 1)) + n_all - n0));
	b = key_at_rank(in->items, in->n, n_in, ceil(q * (n_all - 1)));
	if (b >= 0 && (hi < 0 || b < hi))
		hi = b;

	isnull[0] = lo < 0;
	isnull[1] = hi < 0;
	result[0] = Int32GetDatum(isnull[0] ? 0 : (int32) lo);
	result[1] = Int32GetDatum(isnull[1] ? 0 : (int32) hi);
	PG_RETURN_ARRAYTYPE_P(construct_md_array(result, isnull, 1, dims, lbs, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}


/*
 * ruleperf_native 1.4: percentiles as an aggregate over sketches.
 * ruleperf_native_percentiles_agg(sketch bigint[]) returns what
 * ruleperf_native_percentiles(array_agg(ROW(sketch)::ruleperf_sketch_part)) returns for the
 * same rows, without building a row and an array per group: a 24-hour per-rule timeseries
 * merges 720 groups of two minute rows, where that array was most of the merge's cost.
 */
PG_FUNCTION_INFO_V1(ruleperf_native_percentiles_step);
Datum
ruleperf_native_percentiles_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MergeState *st;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ruleperf_native_percentiles_step called outside an aggregate");
	st = PG_ARGISNULL(0) ? merge_state_new(aggcontext) : (MergeState *) PG_GETARG_POINTER(0);
	if (!PG_ARGISNULL(1))
		merge_state_add(st, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(ruleperf_native_percentiles_final);
Datum
ruleperf_native_percentiles_final(PG_FUNCTION_ARGS)
{
	double		n;
	MergeState *st = merged_state(fcinfo, &n);

	if (st == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(percentiles_of(st->items, st->n, n));
}
