-- pgTAP: issue 19, kind 3, for the conversion.  A superuser converts and
-- backfills a table whose owner (no superuser, no grant on the extension)
-- put their own code on it: a CHECK constraint, an index expression and a
-- row trigger, each recording who ran it and, when that is a superuser,
-- trying to make the owner one.  None of it may run with the caller's
-- rights.  The conversion commits between its steps, so this file runs
-- outside a transaction block and cleans up at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT plan(10);

DROP SCHEMA IF EXISTS mc_sc CASCADE;
DROP TABLE IF EXISTS public.mc_sc_evidence;
DROP ROLE IF EXISTS mc_sc_owner;
CREATE ROLE mc_sc_owner;
CREATE SCHEMA mc_sc AUTHORIZATION mc_sc_owner;
CREATE TABLE public.mc_sc_evidence (who name, superuser boolean, via text, escalated boolean);
GRANT INSERT ON public.mc_sc_evidence TO PUBLIC;

SET ROLE mc_sc_owner;
CREATE FUNCTION mc_sc.rec(via text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    su boolean := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user);
    worked boolean := false;
BEGIN
    IF su THEN
        BEGIN
            EXECUTE 'ALTER ROLE mc_sc_owner SUPERUSER';
            worked := true;
        EXCEPTION WHEN OTHERS THEN
            worked := false;
        END;
    END IF;
    INSERT INTO public.mc_sc_evidence VALUES (current_user, su, via, worked);
    RETURN true;
END $$;
CREATE FUNCTION mc_sc.chk(t text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN mc_sc.rec('check');
END $$;
-- an index expression must be immutable; it calls the volatile recorder anyway
CREATE FUNCTION mc_sc.idx(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM mc_sc.rec('index');
    RETURN t;
END $$;
CREATE FUNCTION mc_sc.trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mc_sc.rec('trigger ' || TG_OP);
    RETURN NEW;
END $$;
CREATE TABLE mc_sc.orders (id bigint NOT NULL, created_at timestamptz NOT NULL, note text,
                           PRIMARY KEY (id, created_at),
                           CONSTRAINT note_checked CHECK (mc_sc.chk(note)));
CREATE INDEX orders_note ON mc_sc.orders (mc_sc.idx(note));
INSERT INTO mc_sc.orders SELECT g, '2026-05-01 00:00+00'::timestamptz + g * interval '1 hour', 'old'
  FROM generate_series(1, 200) g;
RESET ROLE;
TRUNCATE public.mc_sc_evidence;

-- the runbook: a superuser converts, then backfills
SET matter_capacity.lock_timeout = 1000;
CALL capacity_convert('mc_sc.orders', 'created_at', 'month', premake => 1, as_of => '2026-06-15 00:00+00');
-- (a table with triggers is refused; the owner adds them to the partitioned table)
SET ROLE mc_sc_owner;
CREATE TRIGGER orders_trg BEFORE INSERT OR UPDATE ON mc_sc.orders FOR EACH ROW EXECUTE FUNCTION mc_sc.trg();
INSERT INTO mc_sc.orders VALUES (1000, '2026-06-16 00:00+00', 'new');
UPDATE mc_sc.orders SET note = 'touched' WHERE id = 150;
-- after the conversion the owner FORCEs row-level security on the historical
-- partition, with a policy (their code) that hides half of the old rows
CREATE FUNCTION mc_sc.pol(id bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM mc_sc.rec('policy');
    RETURN id % 2 = 0;
END $$;
CREATE POLICY hide_odd ON mc_sc.orders_historical USING (mc_sc.pol(id));
ALTER TABLE mc_sc.orders_historical ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
RESET ROLE;
SELECT is((SELECT count(*) FROM public.mc_sc_evidence WHERE via = 'policy'), 0::bigint,
          'convert-kind3: (the policy has not run yet)');
CALL capacity_convert_backfill('mc_sc.orders', 50);

SELECT is((SELECT state FROM capacity_conversion WHERE table_name = 'mc_sc.orders'::regclass), 'done',
          'convert-kind3: the conversion and its backfill completed');
SELECT is((SELECT count(*) FROM mc_sc.orders), 201::bigint, 'convert-kind3: every row is in the partitioned table');
SELECT is((SELECT count(*) FROM ONLY mc_sc.orders_historical h
            WHERE NOT EXISTS (SELECT 1 FROM mc_sc.orders o WHERE o.id = h.id)), 0::bigint,
          'convert-kind3: the owner''s FORCEd policy hid no old row from the backfill (none left only in the detached table)');
SELECT is((SELECT count(*) FROM public.mc_sc_evidence WHERE via = 'policy'), 0::bigint,
          'convert-kind3: the owner''s policy on the historical partition did not run during the backfill');
SELECT ok((SELECT count(*) FROM public.mc_sc_evidence WHERE via = 'check') > 0,
          'convert-kind3: the owner''s CHECK ran during the conversion (as the owner)');
SELECT is((SELECT string_agg(DISTINCT via || ' as ' || who, ', ') FROM public.mc_sc_evidence WHERE superuser),
          NULL, 'convert-kind3: no CHECK, index expression or trigger of the owner ran as a superuser');
SELECT is((SELECT string_agg(DISTINCT who::text, ', ') FROM public.mc_sc_evidence), 'mc_sc_owner',
          'convert-kind3: the owner''s code ran only as the owner');
SELECT is((SELECT count(*) FROM public.mc_sc_evidence WHERE escalated), 0::bigint,
          'convert-kind3: no attempt to grant superuser worked');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'mc_sc_owner'), false,
          'convert-kind3: the owner is still no superuser');

SELECT * FROM finish();
DROP SCHEMA mc_sc CASCADE;
DROP TABLE public.mc_sc_evidence;
DELETE FROM capacity_conversion WHERE table_name IS NULL;
DROP ROLE mc_sc_owner;
