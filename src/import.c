/*-------------------------------------------------------------------------
 * import.c
 *		capacity_import_samples(source regclass, as_of): history exported
 *		from the monitoring system already in use, from a table or view.
 *
 * Owns: reading the source relation with the CALLER's rights (so RLS
 * policies, view functions and operators of the source run as the caller,
 * never with the extension owner's), under a pinned search_path and with
 * the four columns cast to their types, and handing the rows to
 * capacity_import_load() (33_measures.sql), which validates every row and
 * writes them as the extension owner through the sampler's write path
 * (capacity_write_samples, sampler.c) and rolls them up through the one
 * rollup path (rollup.c).
 *
 * Must not write or roll up samples itself, nor touch the sampler's probes
 * or counters (sampler.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "partitions.h"

PG_FUNCTION_INFO_V1(capacity_import_samples_from);

static const char *const import_columns[4] = {"indicator", "labels", "sampled_at", "value"};

Datum
capacity_import_samples_from(PG_FUNCTION_ARGS)
{
	Oid			source;
	TimestampTz as_of;
	char	   *qualname;
	int			nest;
	int			k;
	AclResult	acl;
	Datum		arrays[4];
	bool		isnull[4];
	Oid			types[6] = {TEXTARRAYOID, JSONBOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	int64		loaded;
	bool		n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: source must not be NULL"),
				 errhint("Pass a table or view with columns indicator, labels, sampled_at, value.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: as_of must not be NULL"),
				 errhint("Omit it to use now().")));
	source = PG_GETARG_OID(0);
	as_of = PG_GETARG_TIMESTAMPTZ(1);
	require_not_in_recovery("import samples");
	if (get_rel_name(source) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: relation with OID %u does not exist", source),
				 errhint("Pass the table or view to import from.")));
	qualname = qualified_name(source);
	acl = pg_class_aclcheck(source, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: permission denied to read %s for the import", qualname),
				 errhint("The source is read with your rights: GRANT SELECT ON %s to you, or import as its owner.", qualname)));
	for (k = 0; k < 4; k++)
		if (get_attnum(source, import_columns[k]) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("matter_capacity: %s has no column \"%s\" to import", qualname, import_columns[k]),
					 errhint("The source needs columns indicator (text), labels (jsonb), sampled_at (timestamptz) and value (float8); "
							 "rename them in a view: CREATE VIEW v AS SELECT metric AS indicator, ... FROM export.")));

	SPI_connect();
	nest = pin_search_path();
	/*
	 * As the caller (this function is not SECURITY DEFINER): whatever user
	 * code reading the source runs, it runs with the caller's rights.
	 * Ordered, so that a row number in an error means something.
	 */
	if (SPI_execute(psprintf("SELECT pg_catalog.array_agg(indicator ORDER BY o), pg_catalog.array_agg(labels ORDER BY o), "
							 "pg_catalog.array_agg(sampled_at ORDER BY o), pg_catalog.array_agg(value ORDER BY o) "
							 "FROM (SELECT s.indicator::pg_catalog.text AS indicator, s.labels::pg_catalog.jsonb AS labels, "
							 "  s.sampled_at::pg_catalog.timestamptz AS sampled_at, s.value::pg_catalog.float8 AS value, "
							 "  pg_catalog.row_number() OVER (ORDER BY s.sampled_at::pg_catalog.timestamptz, "
							 "    s.indicator::pg_catalog.text COLLATE \"C\", s.labels::pg_catalog.jsonb::pg_catalog.text COLLATE \"C\") AS o "
							 "  FROM %s s) r",
							 qualname), true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "matter_capacity: reading %s failed", qualname);
	for (k = 0; k < 4; k++)
		arrays[k] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &isnull[k]);
	if (isnull[0])
	{
		/* an empty source imports nothing */
		AtEOXact_GUC(true, nest);
		SPI_finish();
		PG_RETURN_INT64(0);
	}
	/* jsonb[]: no OID macro in every version, look it up */
	types[1] = get_array_type(JSONBOID);
	for (k = 0; k < 4; k++)
		values[k] = arrays[k];
	values[4] = TimestampTzGetDatum(as_of);
	values[5] = CStringGetTextDatum("row");
	catalog_execute(psprintf("SELECT %s($1, $2, $3, $4, $5, $6)", capacity_object("capacity_import_load")),
					6, types, values, nulls, false);
	loaded = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n));
	AtEOXact_GUC(true, nest);
	SPI_finish();
	PG_RETURN_INT64(loaded);
}
