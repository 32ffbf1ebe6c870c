/*-------------------------------------------------------------------------
 * periods.c
 *		Period arithmetic in UTC and deterministic partition names.
 *
 * Owns: truncating an instant to its day, ISO week or month; stepping
 * periods; rendering a boundary as a literal of the column's type; naming
 * partitions.  Must not touch the catalog or run SQL: everything here is a
 * pure function of its arguments, which keeps it easy to reason about and
 * independent of the session TimeZone.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "periods.h"

/* 2000-01-03, the first Monday after the PostgreSQL epoch, in days */
#define FIRST_MONDAY_DAYS 2

/* Boundaries must stay inside years 1000..9999 so names and literals are sane */
#define MIN_USECS ((int64) (date2j(1000, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)
#define MAX_USECS ((int64) (date2j(9999, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

bool
parse_granularity(const char *text, Granularity *g)
{
	if (strcmp(text, "day") == 0)
		*g = GRAN_DAY;
	else if (strcmp(text, "week") == 0)
		*g = GRAN_WEEK;
	else if (strcmp(text, "month") == 0)
		*g = GRAN_MONTH;
	else
		return false;
	return true;
}

const char *
granularity_name(Granularity g)
{
	switch (g)
	{
		case GRAN_DAY:
			return "day";
		case GRAN_WEEK:
			return "week";
		case GRAN_MONTH:
			return "month";
	}
	return "?";
}

/*
 * Refuse instants for which periods would have odd names or overflow.
 */
void
check_time_in_range(int64 t, const char *what)
{
	if (t < MIN_USECS || t >= MAX_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("matter_capacity: %s is outside the supported range", what),
				 errhint("Use a finite time between the years 1000 and 9998.")));
}

int64
period_floor(int64 t, Granularity g)
{
	int64		days = floor_div(t, USECS_PER_DAY);

	switch (g)
	{
		case GRAN_DAY:
			break;
		case GRAN_WEEK:
			days -= ((days - FIRST_MONDAY_DAYS) % 7 + 7) % 7;
			break;
		case GRAN_MONTH:
			{
				int			y,
							m,
							d;

				j2date((int) days + POSTGRES_EPOCH_JDATE, &y, &m, &d);
				days = date2j(y, m, 1) - POSTGRES_EPOCH_JDATE;
				break;
			}
	}
	return days * USECS_PER_DAY;
}

/* The start of the period n periods after the one starting at start. */
int64
period_advance(int64 start, Granularity g, int n)
{
	int64		days = floor_div(start, USECS_PER_DAY);

	switch (g)
	{
		case GRAN_DAY:
			days += n;
			break;
		case GRAN_WEEK:
			days += (int64) 7 * n;
			break;
		case GRAN_MONTH:
			{
				int			y,
							m,
							d;
				int			months;

				j2date((int) days + POSTGRES_EPOCH_JDATE, &y, &m, &d);
				months = y * 12 + (m - 1) + n;
				days = date2j(months / 12, months % 12 + 1, 1) - POSTGRES_EPOCH_JDATE;
				break;
			}
	}
	return days * USECS_PER_DAY;
}

Period
period_containing(int64 t, Granularity g)
{
	Period		p;

	p.from = period_floor(t, g);
	p.to = period_advance(p.from, g, 1);
	return p;
}

/* Length of one period, for comparing with intervals (a month counts 30 days). */
int64
granularity_nominal_usecs(Granularity g)
{
	switch (g)
	{
		case GRAN_DAY:
			return USECS_PER_DAY;
		case GRAN_WEEK:
			return 7 * USECS_PER_DAY;
		case GRAN_MONTH:
			return 30 * USECS_PER_DAY;
	}
	return USECS_PER_DAY;
}

/*
 * "p20261122", "p2026w47" (ISO year and week) or "p202611".
 */
char *
period_suffix(int64 start, Granularity g)
{
	int			y,
				m,
				d;

	j2date((int) floor_div(start, USECS_PER_DAY) + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	switch (g)
	{
		case GRAN_DAY:
			return psprintf("p%04d%02d%02d", y, m, d);
		case GRAN_WEEK:
			return psprintf("p%04dw%02d", date2isoyear(y, m, d), date2isoweek(y, m, d));
		case GRAN_MONTH:
			return psprintf("p%04d%02d", y, m);
	}
	return NULL;
}

/*
 * A boundary as an SQL literal of the partition column's type, unambiguous
 * whatever the session TimeZone or DateStyle ("+00" pins timestamptz to
 * UTC; ISO order is accepted under every DateStyle).
 */
char *
period_literal(int64 t, Oid typid)
{
	int			y,
				m,
				d;
	int64		days = floor_div(t, USECS_PER_DAY);
	int64		usecs = t - days * USECS_PER_DAY;
	int			hh = (int) (usecs / USECS_PER_HOUR);
	int			mi = (int) ((usecs / USECS_PER_MINUTE) % 60);
	int			ss = (int) ((usecs / USECS_PER_SEC) % 60);

	j2date((int) days + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	switch (typid)
	{
		case DATEOID:
			return psprintf("'%04d-%02d-%02d'::pg_catalog.date", y, m, d);
		case TIMESTAMPOID:
			return psprintf("'%04d-%02d-%02d %02d:%02d:%02d'::pg_catalog.timestamp",
							y, m, d, hh, mi, ss);
		default:
			return psprintf("'%04d-%02d-%02d %02d:%02d:%02d+00'::pg_catalog.timestamptz",
							y, m, d, hh, mi, ss);
	}
}

/*
 * base || "_" || suffix, shortened to fit when needed: the base is clipped
 * (on a character boundary, never inside a multibyte character) and
 * followed by 8 hex digits of a hash of the whole base, so long names stay
 * deterministic and unique.  The limit is MC_NAME_MAX_BYTES (62), one byte
 * under PostgreSQL's 63: every table we create also gets a row type whose
 * array type is named "_" || name, and PostgreSQL truncates (and then
 * prepends more underscores to) array names that do not fit, which makes
 * names sharing a long prefix collide until "could not form array type
 * name" stops the rollover.
 */
char *
partition_relname(const char *base, const char *suffix)
{
	int			baselen = strlen(base);
	int			sufflen = strlen(suffix);
	int			keep;
	uint32		h;

	if (baselen + 1 + sufflen <= MC_NAME_MAX_BYTES)
		return psprintf("%s_%s", base, suffix);

	h = hash_bytes((const unsigned char *) base, baselen);
	keep = MC_NAME_MAX_BYTES - (1 + 8) - (1 + sufflen);
	if (keep < 0)
		keep = 0;
	keep = pg_mbcliplen(base, baselen, keep);
	return psprintf("%.*s_%08x_%s", keep, base, h, suffix);
}

/* Is t inside the range periods can be made for (years 1000..9998)? */
bool
period_time_supported(int64 t)
{
	return t >= MIN_USECS && t < MAX_USECS;
}

/* "h07" for remainder 7 of 16; four digits once the modulus passes 100. */
char *
hash_leaf_suffix(int remainder, int modulus)
{
	int			width = (modulus > 100) ? 4 : 2;

	return psprintf("h%0*d", width, remainder);
}

/* "2026-11-16" for a midnight, else "2026-11-16 12:30:00"; always UTC. */
char *
utc_label(int64 t)
{
	int			y,
				m,
				d;
	int64		days = floor_div(t, USECS_PER_DAY);
	int64		usecs = t - days * USECS_PER_DAY;

	j2date((int) days + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (usecs == 0)
		return psprintf("%04d-%02d-%02d", y, m, d);
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d", y, m, d,
					(int) (usecs / USECS_PER_HOUR), (int) ((usecs / USECS_PER_MINUTE) % 60),
					(int) ((usecs / USECS_PER_SEC) % 60));
}

/* A granularity argument of a SQL function; errors name it. */
static Granularity
granularity_arg(text *arg)
{
	char	   *gran_text = text_to_cstring(arg);
	Granularity g;

	if (!parse_granularity(gran_text, &g))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: granularity \"%s\" is not day, week or month", gran_text),
				 errhint("Periods are days, ISO weeks (Monday 00:00 UTC) or months.")));
	return g;
}

/*
 * The SQL face of this file, for the SQL that builds partitions (the
 * online conversion), so it computes periods and names exactly as the
 * engine does.
 *
 * capacity_partition_name(base text, granularity text, period_start
 *		timestamptz, hash_remainder int DEFAULT NULL, hash_modulus int
 *		DEFAULT NULL) RETURNS text: the name of the period partition of base
 *		containing period_start (or of its hash leaf).
 */
PG_FUNCTION_INFO_V1(capacity_partition_name);

Datum
capacity_partition_name(PG_FUNCTION_ARGS)
{
	Granularity g;
	char	   *name;
	char	   *suffix;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	g = granularity_arg(PG_GETARG_TEXT_PP(1));
	suffix = period_suffix(period_floor(PG_GETARG_TIMESTAMPTZ(2), g), g);
	/* a leaf is named from the table's name, as the rollover names it */
	if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4))
		suffix = psprintf("%s_%s", suffix, hash_leaf_suffix(PG_GETARG_INT32(3), PG_GETARG_INT32(4)));
	name = partition_relname(text_to_cstring(PG_GETARG_TEXT_PP(0)), suffix);
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * capacity_derived_name(base text, suffix text) RETURNS text: base_suffix,
 * shortened as partition names are, for the other names derived from a
 * table's (the conversion's renamed table, its indexes, its default).
 */
PG_FUNCTION_INFO_V1(capacity_derived_name);

Datum
capacity_derived_name(PG_FUNCTION_ARGS)
{
	char	   *suffix = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (strlen(suffix) > 32)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("matter_capacity: name suffix \"%s\" is longer than 32 bytes", suffix),
				 errhint("Derived names keep room for a part of the base name and its hash.")));
	PG_RETURN_TEXT_P(cstring_to_text(partition_relname(text_to_cstring(PG_GETARG_TEXT_PP(0)), suffix)));
}

/*
 * capacity_period_start(t timestamptz, granularity text, n int DEFAULT 0)
 *		RETURNS timestamptz: start of the period containing t, moved n
 *		periods on (n = 1: the next period's start).
 */
PG_FUNCTION_INFO_V1(capacity_period_start);

Datum
capacity_period_start(PG_FUNCTION_ARGS)
{
	Granularity g;
	int64		start;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	g = granularity_arg(PG_GETARG_TEXT_PP(1));
	check_time_in_range(PG_GETARG_TIMESTAMPTZ(0), "t");
	start = period_advance(period_floor(PG_GETARG_TIMESTAMPTZ(0), g), g, PG_GETARG_INT32(2));
	check_time_in_range(start, "the period start");
	PG_RETURN_TIMESTAMPTZ(start);
}

/*
 * capacity_time_literal(t timestamptz, typ regtype) RETURNS text: t as a
 * literal of the time column's type (UTC wall time for timestamp, the day
 * for date), as partition bounds and CHECK constraints are written.
 */
PG_FUNCTION_INFO_V1(capacity_time_literal);

Datum
capacity_time_literal(PG_FUNCTION_ARGS)
{
	check_time_in_range(PG_GETARG_TIMESTAMPTZ(0), "t");
	PG_RETURN_TEXT_P(cstring_to_text(period_literal(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_OID(1))));
}
