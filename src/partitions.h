/*-------------------------------------------------------------------------
 * partitions.h
 *		A partitioned table's layout as read from the catalog, and the DDL
 *		text that extends it.
 *-------------------------------------------------------------------------
 */
#ifndef MC_PARTITIONS_H
#define MC_PARTITIONS_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "periods.h"

/* One level-1 partition of a managed table. */
typedef struct PartInfo
{
	Oid			relid;
	bool		is_default;
	bool		from_unbounded;
	bool		to_unbounded;
	int64		from;
	int64		to;
	int			nleaves;		/* -1: not read; see leaf_modulus() */
} PartInfo;

/* What rollover needs to know about a managed table. */
typedef struct TableLayout
{
	Oid			relid;
	Oid			owner;
	Oid			nspid;
	char	   *nspname;
	char	   *relname;
	char	   *qualname;		/* quoted, schema-qualified */
	Oid			timetype;		/* DATEOID, TIMESTAMPOID or TIMESTAMPTZOID */
	char	   *timecol_q;		/* quoted time column */
	char	   *columns_q;		/* quoted list of stored columns, for moves */
	List	   *parts;			/* PartInfo *, ranged ones sorted by from */
	PartInfo   *deflt;			/* NULL when there is no default partition */
} TableLayout;

extern void check_range_partitioned_by(Oid relid, const char *time_column,
									   Oid *timetype);
extern void check_hash_column(Oid relid, const char *hash_column);
extern TableLayout *read_table_layout(Oid relid, const char *time_column);
extern int	leaf_modulus(Oid relid);
extern bool partition_range(Oid relid, Oid parent, int64 *from, int64 *to);
extern PartInfo *find_overlapping(TableLayout *layout, Period p);
extern List *free_spans(TableLayout *layout, Period p);
extern char *partition_key_column(Oid relid);
extern char *hash_key_column(TableLayout *layout);
extern void check_keys_for_hash(Oid relid, const char *hash_column);
extern Oid	name_holder(Oid nspid, const char *name, char *kind);

extern char *sql_create_period(TableLayout *layout, const char *relname,
							   Period p, const char *hash_column_q);
extern char *sql_create_leaf(TableLayout *layout, const char *period_relname,
							 const char *leaf_relname, int modulus, int remainder);
extern List *sql_build_period(TableLayout *layout, const char *suffix, Period p,
							  const char *hash_column, int hash_partitions);
extern char *sql_create_default(TableLayout *layout, const char *relname);
extern char *sql_attach_period(TableLayout *layout, const char *relname, Period p);
extern char *sql_attach_default(TableLayout *layout, const char *relname);
extern char *sql_move_rows(TableLayout *layout, const char *target_relname, Period p);
extern char *sql_default_buckets(TableLayout *layout, Granularity g);
extern char *sql_default_has_rows(TableLayout *layout, Period p);
extern char *sql_qualify(TableLayout *layout, const char *relname);

#endif							/* MC_PARTITIONS_H */
