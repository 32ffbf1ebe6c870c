/*-------------------------------------------------------------------------
 * forecast.c
 *		capacity_fit_trend(): a robust trend through daily points and the
 *		day it crosses a threshold.
 *
 * Two models are fitted with the Theil-Sen estimator (slope = median of
 * the slopes of every pair of points, level = median of the residual
 * intercepts), which ignores a spike or two that would drag least squares
 * far off:
 *
 *	linear			y = level + slope * t
 *	multiplicative	ln y = ln level + slope * t   (only when every y > 0)
 *
 * The multiplicative model is used only when its mean absolute residual
 * (original units, the largest tenth left out) is under 90% of the linear
 * one: compounding growth is recognised, and a noisy straight line is
 * seldom mistaken for it.  When the model not chosen fits within 10% as
 * well, the data cannot tell them apart: its crossing date is returned too
 * (other_days) and the band is widened to include it.
 *
 * The 95% band of the slope is the order-statistic interval of Sen (1968):
 * the pairwise slopes ranked (N -/+ 1.96 sqrt(Var S)) / 2 with
 * Var S = n(n-1)(2n+5)/18.  A trend counts only when the whole band points
 * towards the threshold; when it all points away the series is moving
 * away, and when it holds zero the series is flat or too noisy to say.
 * The crossing time is projected from the level at t = 0 (or from a given
 * anchor, the exact current row count for instance) with the median slope,
 * and the band's steep and shallow ends give the earliest and latest
 * plausible dates.
 *
 * Owns: the arithmetic only.  Which points are fitted (daily aggregates of
 * the hourly rollups, the lookback) is decided in SQL (44_forecast.sql).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* more points than a year of days is not what the fit is for */
#define MAX_TREND_POINTS 1000

/* the linear model stays unless the multiplicative one fits this much better */
#define MULTIPLICATIVE_GAIN 0.9

/* the model not chosen is still plausible within this margin of error */
#define PLAUSIBLE_MARGIN 1.1

typedef struct TrendFit
{
	double		level;			/* fitted value at t = 0 */
	double		slope;			/* per unit of t (per day); log units if
								 * multiplicative */
	double		slope_low;		/* 95% band of the slope */
	double		slope_high;
	double		error;			/* mean absolute residual without the largest
								 * tenth, original units */
} TrendFit;

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Median of v[0..n-1]; sorts v. */
static double
median_of(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/*
 * Theil-Sen fit of y against t; when take_log, of ln y (every y > 0).
 * Returns false when no two points have distinct t.
 */
static bool
fit_theil_sen(const double *t, const double *y, int n, bool take_log, TrendFit *fit)
{
	double	   *slopes = palloc(sizeof(double) * ((Size) n * (n - 1) / 2 + 1));
	double	   *work = palloc(sizeof(double) * n);
	int			npairs = 0;
	int			i,
				j;
	double		c,
				lo_rank,
				hi_rank;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
		{
			double		dy;

			if (t[j] == t[i])
				continue;
			dy = take_log ? log(y[j]) - log(y[i]) : y[j] - y[i];
			slopes[npairs++] = dy / (t[j] - t[i]);
		}
	if (npairs == 0)
		return false;

	fit->slope = median_of(slopes, npairs);	/* slopes now sorted */

	/* Sen's interval: ranks (N -/+ C) / 2 and (N + C) / 2 + 1, 1-based */
	c = 1.96 * sqrt((double) n * (n - 1) * (2.0 * n + 5) / 18.0);
	lo_rank = rint((npairs - c) / 2.0);
	hi_rank = rint((npairs + c) / 2.0) + 1;
	fit->slope_low = slopes[(int) Max(1, Min(lo_rank, npairs)) - 1];
	fit->slope_high = slopes[(int) Max(1, Min(hi_rank, npairs)) - 1];

	for (i = 0; i < n; i++)
		work[i] = (take_log ? log(y[i]) : y[i]) - fit->slope * t[i];
	fit->level = median_of(work, n);
	if (take_log)
		fit->level = exp(fit->level);

	for (i = 0; i < n; i++)
	{
		double		pred = take_log ? fit->level * exp(fit->slope * t[i])
			: fit->level + fit->slope * t[i];

		work[i] = fabs(y[i] - pred);
	}
	/* trimmed mean: efficient enough to tell the models apart, and a spike
	 * or two (the largest tenth of residuals) cannot decide it */
	qsort(work, n, sizeof(double), cmp_double);
	fit->error = 0;
	for (i = 0; i < n - n / 10; i++)
		fit->error += work[i];
	fit->error /= (n - n / 10);

	pfree(slopes);
	pfree(work);
	return true;
}

/* Days from t = 0 until start reaches target at this slope; < 0: never. */
static double
days_to_reach(double start, double target, double slope, bool multiplicative)
{
	double		d;

	if (multiplicative)
	{
		if (start <= 0 || target <= 0 || slope == 0)
			return -1;
		d = log(target / start) / slope;
	}
	else
	{
		if (slope == 0)
			return -1;
		d = (target - start) / slope;
	}
	return d >= 0 ? d : -1;
}

/* float8[] without NULLs as a C array; errors name the argument */
static double *
float8_array(ArrayType *arr, const char *argname, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	double	   *out;
	int			i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("matter_capacity: %s must be a one-dimensional array", argname),
				 errhint("Pass the points as float8[] built with array_agg(... ORDER BY ...).")));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, n);
	if (*n > MAX_TREND_POINTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("matter_capacity: %s has %d points, more than the %d a trend is fitted on",
						argname, *n, MAX_TREND_POINTS),
				 errhint("Fit daily aggregates over a lookback of at most %d days.", MAX_TREND_POINTS)));
	out = palloc(sizeof(double) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		if (nulls[i] || isnan(DatumGetFloat8(elems[i])) || isinf(DatumGetFloat8(elems[i])))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("matter_capacity: %s[%d] is not a finite number", argname, i + 1),
					 errhint("Leave days without data out of both arrays.")));
		out[i] = DatumGetFloat8(elems[i]);
	}
	return out;
}

/*
 * capacity_fit_trend(t float8[], y float8[], threshold float8 DEFAULT NULL,
 *		comparator text DEFAULT '>', anchor float8 DEFAULT NULL,
 *		min_points int DEFAULT 7) RETURNS capacity_trend
 *
 * t in days relative to the moment of the forecast (normally <= 0).
 * other_days: the crossing by the model not chosen, when it fits nearly as
 * well (and the band then includes it).
 * verdict: insufficient data | trend | reached | moving away (the whole
 * band of the slope points away) | flat or too noisy (the band holds
 * zero); days / days_earliest / days_latest are set for trend and
 * reached (0 when the level is already past the threshold).
 */
PG_FUNCTION_INFO_V1(capacity_fit_trend);

Datum
capacity_fit_trend(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[12];
	bool		nulls[12];
	double	   *t,
			   *y;
	int			nt,
				ny,
				i,
				min_points;
	bool		have_threshold = !PG_ARGISNULL(2);
	double		threshold = have_threshold ? PG_GETARG_FLOAT8(2) : 0;
	int			dir = 1;
	bool		inclusive = false;
	TrendFit	lin,
				mul;
	TrendFit   *fit = NULL;
	TrendFit   *other = NULL;
	bool		multiplicative = false;
	bool		all_positive = true;
	const char *verdict;
	double		start,
				towards,
				towards_low,
				towards_high;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "capacity_fit_trend must return a composite type");
	desc = BlessTupleDesc(desc);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();

	if (!PG_ARGISNULL(3))
	{
		char	   *cmp = text_to_cstring(PG_GETARG_TEXT_PP(3));

		if (strcmp(cmp, ">") == 0 || strcmp(cmp, ">=") == 0)
			dir = 1;
		else if (strcmp(cmp, "<") == 0 || strcmp(cmp, "<=") == 0)
			dir = -1;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: comparator \"%s\" is not one of >, >=, <, <=", cmp),
					 errhint("The comparator says on which side of the threshold the condition holds.")));
		inclusive = (strchr(cmp, '=') != NULL);
	}
	min_points = PG_ARGISNULL(5) ? 7 : PG_GETARG_INT32(5);
	if (have_threshold && (isnan(threshold) || isinf(threshold)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: threshold %g is not a finite number", threshold),
				 errhint("Pass the trigger's effective threshold, or NULL to fit only.")));

	if (!PG_ARGISNULL(4) && !isfinite(PG_GETARG_FLOAT8(4)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: anchor %g is not a finite number", PG_GETARG_FLOAT8(4)),
				 errhint("Pass the current value (a row count, say), or NULL to project from the fitted level.")));

	t = float8_array(PG_GETARG_ARRAYTYPE_P(0), "t", &nt);
	y = float8_array(PG_GETARG_ARRAYTYPE_P(1), "y", &ny);
	if (nt != ny)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("matter_capacity: t has %d points but y has %d", nt, ny),
				 errhint("Build both arrays from the same rows.")));

	memset(nulls, true, sizeof(nulls));
	values[0] = Int32GetDatum(nt);
	nulls[0] = false;

	if (nt < Max(min_points, 2) || !fit_theil_sen(t, y, nt, false, &lin))
	{
		values[11] = CStringGetTextDatum("insufficient data");
		nulls[11] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	}
	/* finite points can still overflow: differences of +-1e308 */
	if (!isfinite(lin.level) || !isfinite(lin.slope) || !isfinite(lin.slope_low) ||
		!isfinite(lin.slope_high) || !isfinite(lin.error))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("matter_capacity: the trend of these %d points overflows double precision", nt),
				 errhint("The values span more than about 1e307; scale them (to thousands, say) before fitting.")));
	fit = &lin;
	for (i = 0; i < nt; i++)
		if (y[i] <= 0)
			all_positive = false;
	if (all_positive && fit_theil_sen(t, y, nt, true, &mul) &&
		isfinite(mul.level) && isfinite(mul.error))
	{
		if (mul.error < MULTIPLICATIVE_GAIN * lin.error)
		{
			fit = &mul;
			multiplicative = true;
			other = &lin;
		}
		else
			other = &mul;
		if (other->error > PLAUSIBLE_MARGIN * fit->error)
			other = NULL;
	}

	values[1] = CStringGetTextDatum(multiplicative ? "multiplicative" : "linear");
	values[2] = Float8GetDatum(fit->level);
	values[3] = Float8GetDatum(fit->slope);
	values[4] = Float8GetDatum(fit->slope_low);
	values[5] = Float8GetDatum(fit->slope_high);
	values[6] = Float8GetDatum(fit->error);
	for (i = 1; i <= 6; i++)
		nulls[i] = false;

	start = PG_ARGISNULL(4) ? fit->level : PG_GETARG_FLOAT8(4);
	if (multiplicative && start <= 0)
		start = fit->level;		/* an anchor of 0 cannot compound */

	/* slopes seen from the threshold's side: > 0 means "getting closer" */
	towards = dir * fit->slope;
	towards_low = dir > 0 ? fit->slope_low : -fit->slope_high;
	towards_high = dir > 0 ? fit->slope_high : -fit->slope_low;

	if (have_threshold &&
		(dir * (start - threshold) > 0 || (inclusive && start == threshold)))
	{
		verdict = "reached";
		values[7] = values[8] = values[9] = Float8GetDatum(0.0);
		nulls[7] = nulls[8] = nulls[9] = false;
	}
	else if (towards_high < 0)
		verdict = "moving away";
	else if (towards_low <= 0 || towards <= 0)
		verdict = "flat or too noisy";
	else
	{
		verdict = "trend";
		if (have_threshold)
		{
			double		days[3];

			days[0] = days_to_reach(start, threshold, fit->slope, multiplicative);
			days[1] = days_to_reach(start, threshold,
									dir > 0 ? fit->slope_high : fit->slope_low, multiplicative);
			days[2] = days_to_reach(start, threshold,
									dir > 0 ? fit->slope_low : fit->slope_high, multiplicative);
			if (other != NULL)
			{
				double		other_start = PG_ARGISNULL(4) ? other->level : start;
				double		d = days_to_reach(other_start, threshold, other->slope, !multiplicative);

				if (d >= 0)
				{
					values[10] = Float8GetDatum(d);
					nulls[10] = false;
					if (days[1] >= 0)
						days[1] = Min(days[1], d);
					days[2] = days[2] >= 0 ? Max(days[2], d) : -1;
				}
			}
			for (i = 0; i < 3; i++)
				if (days[i] >= 0)
				{
					values[7 + i] = Float8GetDatum(days[i]);
					nulls[7 + i] = false;
				}
		}
	}
	values[11] = CStringGetTextDatum(verdict);
	nulls[11] = false;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
