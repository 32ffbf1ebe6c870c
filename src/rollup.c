/*-------------------------------------------------------------------------
 * rollup.c
 *		The one rollup path of samples: hourly rollups from the raw
 *		samples, daily ones from the hourly ones.
 *
 * Owns: capacity_sample_hourly (min, max, avg, last, count of the raw
 * samples of each series and hour: roll_up_hour_range) and
 * capacity_sample_daily (the day's extremes, weighted average, last value,
 * best and worst hours from the hourly rollups, and the exact p95 of the
 * raw samples where a condition reads it: roll_up_day_range); which hours a
 * sampling rolls up (roll_up_from) and rolling them and their days up after
 * it (roll_up_hours); and their SQL forms, capacity_roll_up_hours() and
 * capacity_roll_up_days(), for what writes samples outside a sampling (late
 * pushes in capacity_record, the import in capacity_import_load).  Hours
 * and days are UTC (date_bin from 2000-01-01 00:00 UTC), a day 24 hours
 * whatever the session's TimeZone ('1 day' added to a timestamptz is a
 * local calendar day: 23 or 25 hours where the clocks change).
 *
 * Which indicators keep a daily p95 is a table of the indicators piece,
 * capacity_daily_p95, that the plans piece keeps in step with its
 * conditions (a trigger on capacity_plan_condition, 40_stages.sql): the
 * rollup reads no plan.
 *
 * Must not write raw samples or newest values (the write path is
 * sampler.c's write_rows), delete rollups other than those of the days it
 * recomputes (retention is the sampler's maintain_history), or read plans,
 * stages or thresholds.
 *
 * A 1.0 database runs this library until ALTER EXTENSION UPDATE: where
 * capacity_daily_p95 does not exist, the daily rollup writes the columns
 * 1.0 has and no p95.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "rollup.h"

PG_FUNCTION_INFO_V1(capacity_roll_up_hours);
PG_FUNCTION_INFO_V1(capacity_roll_up_days);

/* hours and days are binned from this origin: UTC */
#define ORIGIN "TIMESTAMPTZ '2000-01-01 00:00+00'"

/*
 * The one hourly rollup: min, max, avg, last and count of the raw samples
 * of the hours from .. to touches, up to to.  Returns the rollups written.
 * last is the value with the latest sampled_at, taken as the greatest
 * (epoch, value) pair (as the daily rollup takes the last hour's):
 * one hash aggregate, where array_agg(... ORDER BY) sorted every group
 * and, at 50,000 partitions, spilled past work_mem (100 ms of 50,000 rows
 * against 40 ms).  Among samples of one series at the very same time the
 * greater value is last.
 */
int64
roll_up_hour_range(TimestampTz from, TimestampTz to)
{
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2] = {TimestampTzGetDatum(from), TimestampTzGetDatum(to)};

	catalog_execute(psprintf("INSERT INTO %s AS h (indicator, labels, hour, min, max, avg, last, count) "
							 "SELECT indicator, labels, date_bin('1 hour', sampled_at, " ORIGIN "), "
							 "min(value), max(value), avg(value), "
							 "(max(ARRAY[date_part('epoch', sampled_at), value]))[2], count(*) "
							 "FROM %s WHERE sampled_at >= date_bin('1 hour', $1, " ORIGIN ") "
							 "AND sampled_at <= $2 GROUP BY 1, 2, 3 "
							 "ON CONFLICT (indicator, labels, hour) DO UPDATE SET min = EXCLUDED.min, "
							 "max = EXCLUDED.max, avg = EXCLUDED.avg, last = EXCLUDED.last, count = EXCLUDED.count",
							 capacity_object("capacity_sample_hourly"), capacity_object("capacity_sample")),
					2, types, values, NULL, false);
	return (int64) SPI_processed;
}

/*
 * The daily rollups of the UTC days from .. to touches, recomputed from
 * their hourly rollups; returns the rollups written.  A day no hour of its
 * series is left for loses its rollup.
 *
 * A day's p95 cannot be merged from hours, so it is the exact one, of the
 * day's raw samples, and kept only where it is read: for the indicators in
 * capacity_daily_p95 (those an N-day plan condition reads by p95), on
 * complete days (before to's day), computed once and carried over while
 * the day's rollup (count, avg, min, max) is unchanged: the sampler
 * re-rolls a day for two hours after it ends, and sorting a day of raw
 * samples each time would cost more than the whole rollup.
 */
int64
roll_up_day_range(TimestampTz from, TimestampTz to)
{
	Oid			types[5] = {TIMESTAMPTZOID, TIMESTAMPTZOID, InvalidOid, TEXTARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		values[5] = {TimestampTzGetDatum(from), TimestampTzGetDatum(to)};
	char		nulls[5] = "     ";
	Oid			daily_relid = capacity_relid("capacity_sample_daily");
	const char *daily = capacity_object("capacity_sample_daily");
	const char *range = "d.day >= date_bin('1 day', $1, " ORIGIN ") "
		"AND d.day < date_bin('1 day', $2, " ORIGIN ") + interval '24 hours'";
	bool		has_p95;
	bool		isnull;
	Datum		pinds = (Datum) 0;
	int64		n;

	/* the indicators whose days keep a p95 (none, and no column, in 1.0) */
	has_p95 = OidIsValid(get_relname_relid("capacity_daily_p95", get_rel_namespace(daily_relid)));
	if (has_p95)
	{
		catalog_execute(psprintf("SELECT array_agg(indicator ORDER BY indicator) FROM %s",
								 capacity_object("capacity_daily_p95")),
						0, NULL, NULL, NULL, false);
		pinds = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			pinds = (Datum) 0;
	}

	/* the p95s there are, to carry over to the days whose rollup stays */
	types[2] = get_array_type(get_rel_type_id(daily_relid));
	nulls[2] = 'n';
	if (pinds != (Datum) 0)
	{
		catalog_execute(psprintf("SELECT array_agg(d) FROM %s d WHERE %s AND d.p95 IS NOT NULL", daily, range),
						2, types, values, NULL, false);
		values[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		nulls[2] = isnull ? 'n' : ' ';
	}

	catalog_execute(psprintf("DELETE FROM %s d WHERE %s", daily, range), 2, types, values, NULL, false);
	/* one join with the p95s kept, not a subquery per rollup: the sampler writes thousands */
	catalog_execute(psprintf("INSERT INTO %s AS d "
							 "SELECT r.*%s FROM (SELECT h.indicator, h.labels, date_bin('1 day', h.hour, " ORIGIN ") AS day, "
							 "min(h.min) AS min, max(h.max) AS max, sum(h.avg * h.count) / nullif(sum(h.count), 0) AS avg, "
							 "(max(ARRAY[extract(epoch FROM h.hour)::float8, h.last]))[2] AS last, sum(h.count) AS count, "
							 "max(h.min) AS peak_hour_min, min(h.max) AS trough_hour_max, "
							 "max(h.avg) AS peak_hour_avg, min(h.avg) AS trough_hour_avg "
							 "FROM %s h WHERE h.hour >= date_bin('1 day', $1, " ORIGIN ") "
							 "AND h.hour < date_bin('1 day', $2, " ORIGIN ") + interval '24 hours' "
							 "GROUP BY 1, 2, 3) r %s"
							 "ON CONFLICT (indicator, labels, day) DO UPDATE "
							 "SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg, last = EXCLUDED.last, "
							 "count = EXCLUDED.count, peak_hour_min = EXCLUDED.peak_hour_min, "
							 "trough_hour_max = EXCLUDED.trough_hour_max, peak_hour_avg = EXCLUDED.peak_hour_avg, "
							 "trough_hour_avg = EXCLUDED.trough_hour_avg%s",
							 daily, has_p95 ? ", k.p95" : "", capacity_object("capacity_sample_hourly"),
							 has_p95 ? "LEFT JOIN unnest($3) k ON k.indicator = r.indicator AND k.labels = r.labels "
							 "AND k.day = r.day AND k.count = r.count AND k.avg IS NOT DISTINCT FROM r.avg "
							 "AND k.min IS NOT DISTINCT FROM r.min AND k.max IS NOT DISTINCT FROM r.max " : "",
							 has_p95 ? ", p95 = EXCLUDED.p95" : ""),
					has_p95 ? 3 : 2, types, values, nulls, false);
	n = (int64) SPI_processed;
	if (pinds == (Datum) 0)
		return n;

	/* complete days of those indicators without a p95 yet */
	values[3] = pinds;
	nulls[2] = 'n';				/* $3 is not used below */
	catalog_execute(psprintf("SELECT min(d.day), max(d.day) + interval '24 hours', array_agg(DISTINCT d.day) "
							 "FROM %s d WHERE d.indicator = ANY ($4) AND d.day >= date_bin('1 day', $1, " ORIGIN ") "
							 "AND d.day < date_bin('1 day', $2, " ORIGIN ") AND d.p95 IS NULL",
							 daily),
					4, types, values, nulls, false);
	{
		Datum		need_lo = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		Datum		need_hi,
					need;

		if (isnull)
			return n;
		need_hi = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		need = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		/* the bounds as parameters, so the raw samples' day partitions are pruned */
		values[0] = need_lo;
		values[1] = need_hi;
		values[4] = need;
		catalog_execute(psprintf("UPDATE %s d SET p95 = x.p95 "
								 "FROM (SELECT s.indicator, s.labels, date_bin('1 day', s.sampled_at, " ORIGIN ") AS day, "
								 "percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value) AS p95 "
								 "FROM %s s WHERE s.indicator = ANY ($4) AND s.sampled_at >= $1 AND s.sampled_at < $2 "
								 "GROUP BY 1, 2, 3) x "
								 "WHERE x.day = ANY ($5) AND d.indicator = x.indicator AND d.labels = x.labels "
								 "AND d.day = x.day AND d.p95 IS NULL",
								 daily, capacity_object("capacity_sample")),
						5, types, values, nulls, false);
	}
	return n;
}

/*
 * The hours the sampling at as_of rolls up: from the hour of the previous
 * sampling (the latest run recorded in capacity_indicator_run before
 * as_of), at most two hours back, to as_of.  Every sample the sampler
 * wrote before the previous sampling was rolled up by it; a value pushed
 * since (capacity_record) lies in the previous sampling's hour or later,
 * or capacity_record rolls its own hour up (a late value); the import
 * rolls up its hours.  So a sampling re-aggregates one hour, two at the
 * turn of the hour, where it re-aggregated two or three.  Run before the
 * sampling records its own runs.
 */
TimestampTz
roll_up_from(TimestampTz as_of)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(as_of)};
	TimestampTz from = as_of - 2 * USECS_PER_HOUR;
	bool		isnull;
	Datum		prev;

	catalog_execute(psprintf("SELECT max(last_run) FROM %s WHERE last_run < $1",
							 capacity_object("capacity_indicator_run")),
					1, types, values, NULL, true);
	prev = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull && DatumGetTimestampTz(prev) > from)
		from = DatumGetTimestampTz(prev);
	return from;
}

/*
 * Hourly rollup of the hours since the previous sampling (roll_up_from),
 * run after sampling so the samples just written (and values pushed since)
 * are included; then the daily rollup of the day(s) they fall in, which
 * forecasts are fitted on.
 */
void
roll_up_hours(TimestampTz from, TimestampTz as_of)
{
	(void) roll_up_hour_range(from, as_of);
	(void) roll_up_day_range(from, as_of);
}

/* from_ts and to_ts of the SQL forms: both finite, in order */
static bool
finite_range(FunctionCallInfo fcinfo)
{
	return !(PG_ARGISNULL(0) || PG_ARGISNULL(1) ||
			 TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(0)) || TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)) ||
			 PG_GETARG_TIMESTAMPTZ(0) > PG_GETARG_TIMESTAMPTZ(1));
}

/*
 * capacity_roll_up_hours(from_ts timestamptz, to_ts timestamptz) RETURNS
 *		bigint: roll_up_hour_range() for SQL (late pushes, the import).
 */
Datum
capacity_roll_up_hours(PG_FUNCTION_ARGS)
{
	int64		n;

	if (!finite_range(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: the hours to roll up are not a range of finite times"),
				 errhint("Pass from_ts <= to_ts, e.g. now() - interval '2 hours', now().")));
	require_not_in_recovery("roll up samples");
	SPI_connect();
	n = roll_up_hour_range(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_TIMESTAMPTZ(1));
	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * capacity_roll_up_days(from_ts timestamptz, to_ts timestamptz) RETURNS
 *		bigint: roll_up_day_range() for SQL (late pushes, the import, a
 *		range of hourly history loaded or corrected by hand).  The range is
 *		named in the error as the session prints times.
 */
Datum
capacity_roll_up_days(PG_FUNCTION_ARGS)
{
	int64		n;

	if (!finite_range(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: %s .. %s is not a range of finite times",
						PG_ARGISNULL(0) ? "<NULL>" : DatumGetCString(DirectFunctionCall1(timestamptz_out, PG_GETARG_DATUM(0))),
						PG_ARGISNULL(1) ? "<NULL>" : DatumGetCString(DirectFunctionCall1(timestamptz_out, PG_GETARG_DATUM(1)))),
				 errhint("Pass from_ts <= to_ts, e.g. now() - interval '30 days', now().")));
	require_not_in_recovery("roll up samples");
	SPI_connect();
	n = roll_up_day_range(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_TIMESTAMPTZ(1));
	SPI_finish();
	PG_RETURN_INT64(n);
}
