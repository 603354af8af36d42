-- Tell the query service when a rule or parser changes (name, category, …), so cached
-- answers that mention it are invalidated on every instance (LISTEN ruleperf_invalidate).
CREATE OR REPLACE FUNCTION ruleperf_notify_rule_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ruleperf_invalidate', json_build_object('ruleId', CASE WHEN TG_OP = 'DELETE' THEN OLD.rule_id ELSE NEW.rule_id END)::text);
  IF TG_OP = 'UPDATE' AND NEW.rule_id IS DISTINCT FROM OLD.rule_id THEN
    PERFORM pg_notify('ruleperf_invalidate', json_build_object('ruleId', OLD.rule_id)::text);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_notify_parser_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ruleperf_invalidate', json_build_object('parserId', CASE WHEN TG_OP = 'DELETE' THEN OLD.parser_id ELSE NEW.parser_id END)::text);
  IF TG_OP = 'UPDATE' AND NEW.parser_id IS DISTINCT FROM OLD.parser_id THEN
    PERFORM pg_notify('ruleperf_invalidate', json_build_object('parserId', OLD.parser_id)::text);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS ruleperf_rules_notify ON rules;
CREATE TRIGGER ruleperf_rules_notify AFTER INSERT OR UPDATE OR DELETE ON rules
  FOR EACH ROW EXECUTE FUNCTION ruleperf_notify_rule_change();
DROP TRIGGER IF EXISTS ruleperf_parsers_notify ON parsers;
CREATE TRIGGER ruleperf_parsers_notify AFTER INSERT OR UPDATE OR DELETE ON parsers
  FOR EACH ROW EXECUTE FUNCTION ruleperf_notify_parser_change();
