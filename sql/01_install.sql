-- Install: objects land in the schema chosen at CREATE EXTENSION, and the
-- configuration tables are registered for pg_dump.
CREATE EXTENSION matter_capacity;
SELECT e.extname, n.nspname, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'matter_capacity';
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'matter_capacity' ORDER BY 1;
-- the public interface of the partition lifecycle
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'capacity\_%'
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'capacity\_%' AND c.relkind IN ('r', 'v', 'p')
 ORDER BY 1;
-- PUBLIC cannot call mutating functions
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'capacity\_%'
 ORDER BY 1;

-- each call's SQLSTATE, message and hint (a failed call is rolled back whole)
CREATE FUNCTION public.try(q text) RETURNS TABLE(state text, message text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  state := '00000'; message := 'no error'; RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
  RETURN NEXT;
END $$;
