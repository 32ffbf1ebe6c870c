-- pgTAP: a role that may create objects in the extension's schema plants a
-- look-alike of a function the extension calls (same name, an argument
-- position typed text where the real one has integer).  Code that runs
-- with the extension owner's rights passes typed arguments, so the
-- look-alike is never chosen (found by a fresh-eyes review of
-- capacity_plan_export, which passed untyped NULLs).  Roles are
-- cluster-wide: they go away with the ROLLBACK at the end.
BEGIN;
SELECT plan(3);
SET client_min_messages = warning;
CREATE ROLE mc_ovl_hostile;
GRANT CREATE ON SCHEMA public TO mc_ovl_hostile;
CREATE TABLE public.mc_ovl_ran (who text, super boolean);
GRANT INSERT ON public.mc_ovl_ran TO mc_ovl_hostile;
SET ROLE mc_ovl_hostile;
CREATE FUNCTION public.capacity_plan_condition_doc(name text, indicator text, label_filter jsonb, bind_table text,
    aggregate text, ratio_filter jsonb, per_period interval, comparator text, threshold float8, threshold_setting text,
    sustain interval, days text, daily text, declared_flag text, description text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.mc_ovl_ran SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
    RETURN '{}';
END $$;
RESET ROLE;
SELECT lives_ok($$SELECT capacity_plan_export('matter-six-stage')$$, 'the plan is exported with a look-alike planted beside its helper');
SELECT is_empty($$SELECT * FROM public.mc_ovl_ran$$, 'the look-alike never ran');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'mc_ovl_hostile'), false, 'the planting role did not become superuser');
SELECT * FROM finish();
ROLLBACK;
