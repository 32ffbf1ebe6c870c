/*-------------------------------------------------------------------------
 * catalog.h
 *		The extension's schema, its catalog tables and policies.
 *-------------------------------------------------------------------------
 */
#ifndef MC_CATALOG_H
#define MC_CATALOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "fmgr.h"
#include "utils/palloc.h"
#include "utils/tuplestore.h"

#include "periods.h"

typedef struct Policy
{
	Oid			relid;
	char	   *time_column;
	Granularity gran;
	char	   *hash_column;	/* NULL: no hash subpartitions */
	int			hash_partitions;
	int			premake;
	Interval   *retention;		/* NULL: keep forever */
	bool		retention_drop; /* false: detach */
	bool		default_partition;
} Policy;

extern char *qualified_name(Oid relid);
extern char *capacity_schema(void);
extern char *capacity_object(const char *name);
extern Oid	capacity_owner(void);
extern Oid	capacity_relid(const char *name);
extern List *load_policies(Oid relid, MemoryContext mcxt);
extern void log_action(Oid relid, const char *table_name, int64 as_of,
					   const char *action, const char *partition,
					   const char *detail, double duration_ms);
extern int	catalog_execute(const char *sql, int nargs, Oid *types,
							Datum *values, const char *nulls, bool read_only);
extern void require_not_in_recovery(const char *what);
extern bool caller_owns_table(Oid relid);
extern Oid	get_rel_owner_oid(Oid relid);
extern void require_table_owner(Oid relid);
extern int	pin_search_path(void);
extern void init_materialized(FunctionCallInfo fcinfo, Tuplestorestate **store,
							  TupleDesc *desc);

#endif							/* MC_CATALOG_H */
