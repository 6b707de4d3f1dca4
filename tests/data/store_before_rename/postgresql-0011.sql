--
-- PostgreSQL database dump
--

\restrict MvYQm0B6eWau6A0UJM6hdZhGmUp6FdfiyBHJfnDCcWDluf9aspYXXRngEeevN1a

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: alert_attempts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_attempts (
    id integer NOT NULL,
    outbox_id integer NOT NULL,
    key character varying(200) NOT NULL,
    receiver character varying(200) NOT NULL,
    kind character varying(32) NOT NULL,
    action character varying(16) NOT NULL,
    at character varying(40) NOT NULL,
    at_ms bigint NOT NULL,
    result character varying(16) NOT NULL,
    status_code integer,
    latency_ms integer,
    error text,
    detail text,
    fence bigint
);


--
-- Name: alert_attempts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_attempts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_attempts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_attempts_id_seq OWNED BY public.alert_attempts.id;


--
-- Name: alert_cursors; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_cursors (
    name character varying(64) NOT NULL,
    seq bigint NOT NULL,
    updated_at character varying(40) NOT NULL
);


--
-- Name: alert_evaluations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_evaluations (
    id integer NOT NULL,
    at character varying(40) NOT NULL,
    at_ms bigint NOT NULL,
    rules integer NOT NULL,
    instances integer NOT NULL,
    transitions integer NOT NULL,
    first_seq bigint,
    last_seq bigint,
    spec_sha256 character varying(64),
    fence bigint,
    errors text NOT NULL
);


--
-- Name: alert_evaluations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_evaluations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_evaluations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_evaluations_id_seq OWNED BY public.alert_evaluations.id;


--
-- Name: alert_groups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_groups (
    key character varying(64) NOT NULL,
    group_key text NOT NULL,
    route text NOT NULL,
    receiver character varying(200) NOT NULL,
    labels text NOT NULL,
    alerts text NOT NULL,
    group_wait_ms bigint NOT NULL,
    group_interval_ms bigint NOT NULL,
    repeat_interval_ms bigint NOT NULL,
    next_flush_ms bigint,
    has_flushed integer NOT NULL,
    flushes integer NOT NULL,
    notified_firing text NOT NULL,
    notified_resolved text NOT NULL,
    notified_ms bigint,
    acked integer NOT NULL,
    updated_at character varying(40) NOT NULL
);


--
-- Name: alert_instances; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_instances (
    id integer NOT NULL,
    rule character varying(200) NOT NULL,
    fingerprint character varying(16) NOT NULL,
    labels text NOT NULL,
    annotations text NOT NULL,
    state character varying(16) NOT NULL,
    active_at character varying(40),
    fired_at character varying(40),
    resolved_at character varying(40),
    last_true_at character varying(40),
    keep_firing_since character varying(40),
    value text,
    seq bigint NOT NULL,
    evaluated_at character varying(40) NOT NULL
);


--
-- Name: alert_instances_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_instances_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_instances_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_instances_id_seq OWNED BY public.alert_instances.id;


--
-- Name: alert_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_outbox (
    id integer NOT NULL,
    key character varying(200) NOT NULL,
    group_key character varying(64) NOT NULL,
    receiver character varying(200) NOT NULL,
    target character varying(200) NOT NULL,
    action character varying(16) NOT NULL,
    dedup_key character varying(255) NOT NULL,
    payload text NOT NULL,
    status character varying(16) NOT NULL,
    created_at character varying(40) NOT NULL,
    created_ms bigint NOT NULL,
    next_attempt_ms bigint NOT NULL,
    attempts integer NOT NULL,
    target_failures integer NOT NULL,
    delivered_at character varying(40),
    last_error text,
    fence bigint
);


--
-- Name: alert_outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_outbox_id_seq OWNED BY public.alert_outbox.id;


--
-- Name: alert_receivers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_receivers (
    name character varying(200) NOT NULL,
    consecutive_failures integer NOT NULL,
    open_until_ms bigint,
    last_error text,
    updated_at character varying(40) NOT NULL
);


--
-- Name: alert_silences; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_silences (
    id character varying(40) NOT NULL,
    matchers text NOT NULL,
    starts_at character varying(40) NOT NULL,
    ends_at character varying(40) NOT NULL,
    starts_ms bigint NOT NULL,
    ends_ms bigint NOT NULL,
    created_by character varying(200) NOT NULL,
    reason text NOT NULL,
    created_at character varying(40) NOT NULL,
    expired_at character varying(40),
    expired_by character varying(200)
);


--
-- Name: alert_transitions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_transitions (
    seq bigint NOT NULL,
    evaluation_id integer NOT NULL,
    at character varying(40) NOT NULL,
    rule character varying(200) NOT NULL,
    fingerprint character varying(16) NOT NULL,
    labels text NOT NULL,
    annotations text NOT NULL,
    previous character varying(16) NOT NULL,
    state character varying(16) NOT NULL,
    active_at character varying(40),
    fired_at character varying(40),
    resolved_at character varying(40),
    value text
);


--
-- Name: bounds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bounds (
    le bigint NOT NULL,
    since_minute bigint NOT NULL
);


--
-- Name: canary_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.canary_events (
    id integer NOT NULL,
    run_id integer NOT NULL,
    at character varying(40) NOT NULL,
    kind character varying(32) NOT NULL,
    status character varying(16) NOT NULL,
    step_index integer,
    weight integer,
    detail text NOT NULL
);


--
-- Name: canary_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.canary_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: canary_events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.canary_events_id_seq OWNED BY public.canary_events.id;


--
-- Name: canary_runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.canary_runs (
    id integer NOT NULL,
    service character varying(128),
    active_key character varying(128),
    baseline text NOT NULL,
    canary text NOT NULL,
    state character varying(24) NOT NULL,
    step_index integer NOT NULL,
    weight integer NOT NULL,
    step_started bigint,
    extensions integer NOT NULL,
    started_at character varying(40) NOT NULL,
    updated_at character varying(40) NOT NULL,
    finished_at character varying(40),
    owner character varying(200),
    lease_until bigint,
    spec_sha256 character varying(64) NOT NULL,
    plan text NOT NULL,
    outcome text
);


--
-- Name: canary_runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.canary_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: canary_runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.canary_runs_id_seq OWNED BY public.canary_runs.id;


--
-- Name: canary_verdicts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.canary_verdicts (
    id integer NOT NULL,
    judged_at character varying(40) NOT NULL,
    service character varying(128),
    run_id integer,
    baseline text NOT NULL,
    canary text NOT NULL,
    window_from character varying(40) NOT NULL,
    window_to character varying(40) NOT NULL,
    verdict character varying(16) NOT NULL,
    score text,
    spec_sha256 character varying(64) NOT NULL,
    detail text NOT NULL
);


--
-- Name: canary_verdicts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.canary_verdicts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: canary_verdicts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.canary_verdicts_id_seq OWNED BY public.canary_verdicts.id;


--
-- Name: cost_actions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cost_actions (
    id integer NOT NULL,
    at character varying(40) NOT NULL,
    actor character varying(200),
    kind character varying(32) NOT NULL,
    service character varying(128),
    env character varying(64),
    target character varying(300) NOT NULL,
    allowed boolean NOT NULL,
    applied boolean NOT NULL,
    reason text,
    detail text NOT NULL
);


--
-- Name: cost_actions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.cost_actions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: cost_actions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.cost_actions_id_seq OWNED BY public.cost_actions.id;


--
-- Name: cost_breaches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cost_breaches (
    key character varying(300) NOT NULL,
    budget character varying(128) NOT NULL,
    month character varying(7) NOT NULL,
    kind character varying(16) NOT NULL,
    threshold character varying(16) NOT NULL,
    env character varying(64),
    service character varying(128),
    amount_nano bigint NOT NULL,
    value_nano bigint NOT NULL,
    detected_at character varying(40) NOT NULL,
    event_sent_at character varying(40),
    detail text NOT NULL
);


--
-- Name: cost_daily; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cost_daily (
    scope character varying(300) NOT NULL,
    day character varying(10) NOT NULL,
    env character varying(64) NOT NULL,
    service character varying(128) NOT NULL,
    service_name character varying(200) NOT NULL,
    region character varying(64) NOT NULL,
    usage_type character varying(200) NOT NULL,
    charge_category character varying(32) NOT NULL,
    billed_nano bigint NOT NULL,
    effective_nano bigint NOT NULL,
    list_nano bigint NOT NULL,
    quantity_micro bigint NOT NULL,
    unit character varying(64) NOT NULL,
    currency character varying(8) NOT NULL,
    line_items bigint NOT NULL,
    import_id integer NOT NULL
);


--
-- Name: cost_imports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cost_imports (
    id integer NOT NULL,
    imported_at character varying(40) NOT NULL,
    kind character varying(16) NOT NULL,
    files text NOT NULL,
    scopes text NOT NULL,
    rows_read bigint NOT NULL,
    rows_rejected bigint NOT NULL,
    rows_stored bigint NOT NULL,
    rows_replaced bigint NOT NULL,
    billed_nano bigint NOT NULL,
    actor character varying(200)
);


--
-- Name: cost_imports_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.cost_imports_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: cost_imports_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.cost_imports_id_seq OWNED BY public.cost_imports.id;


--
-- Name: cost_scopes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cost_scopes (
    scope character varying(300) NOT NULL,
    import_id integer NOT NULL,
    first_day character varying(10) NOT NULL,
    last_day character varying(10) NOT NULL,
    replaced integer NOT NULL
);


--
-- Name: counter_hour; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.counter_hour (
    series_id integer NOT NULL,
    hour bigint NOT NULL,
    value bigint NOT NULL
);


--
-- Name: counter_minute; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.counter_minute (
    series_id integer NOT NULL,
    minute bigint NOT NULL,
    value bigint NOT NULL
);


--
-- Name: deploy_verdicts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deploy_verdicts (
    id integer NOT NULL,
    kind character varying(32) NOT NULL,
    service character varying(128) NOT NULL,
    release character varying(200) NOT NULL,
    verdict character varying(32) NOT NULL,
    recorded_at character varying(40) NOT NULL,
    summary text NOT NULL,
    details text NOT NULL
);


--
-- Name: deploy_verdicts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.deploy_verdicts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: deploy_verdicts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.deploy_verdicts_id_seq OWNED BY public.deploy_verdicts.id;


--
-- Name: dr_backup_runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dr_backup_runs (
    id integer NOT NULL,
    engine character varying(32) NOT NULL,
    stanza character varying(128) NOT NULL,
    repo integer NOT NULL,
    type character varying(16) NOT NULL,
    started_at character varying(40) NOT NULL,
    finished_at character varying(40),
    status character varying(16) NOT NULL,
    label character varying(128),
    seconds bigint,
    error text,
    detail text
);


--
-- Name: dr_backup_runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dr_backup_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dr_backup_runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dr_backup_runs_id_seq OWNED BY public.dr_backup_runs.id;


--
-- Name: dr_drill_phases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dr_drill_phases (
    run_id integer NOT NULL,
    seq integer NOT NULL,
    name character varying(64) NOT NULL,
    started_at character varying(40) NOT NULL,
    ended_at character varying(40),
    ok boolean,
    error text,
    evidence text
);


--
-- Name: dr_drill_runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dr_drill_runs (
    id integer NOT NULL,
    name character varying(128) NOT NULL,
    scenario character varying(32) NOT NULL,
    started_at character varying(40) NOT NULL,
    finished_at character varying(40),
    status character varying(16) NOT NULL,
    rto_us bigint,
    rpo_us bigint,
    rto_objective_us bigint NOT NULL,
    rpo_objective_us bigint NOT NULL,
    gaps integer,
    report_dir text,
    spec_sha256 character varying(64),
    report text
);


--
-- Name: dr_drill_runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dr_drill_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dr_drill_runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dr_drill_runs_id_seq OWNED BY public.dr_drill_runs.id;


--
-- Name: gate_decisions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.gate_decisions (
    id integer NOT NULL,
    at character varying(40) NOT NULL,
    decided_at character varying(40) NOT NULL,
    service character varying(128) NOT NULL,
    allowed boolean NOT NULL,
    overridden boolean NOT NULL,
    labels text NOT NULL,
    reason text,
    actor character varying(200),
    spec_sha256 character varying(64) NOT NULL,
    decision text NOT NULL
);


--
-- Name: gate_decisions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.gate_decisions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: gate_decisions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.gate_decisions_id_seq OWNED BY public.gate_decisions.id;


--
-- Name: gauge_minute; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.gauge_minute (
    series_id integer NOT NULL,
    minute bigint NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    last double precision NOT NULL,
    last_ms bigint NOT NULL,
    samples bigint NOT NULL
);


--
-- Name: ingest_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ingest_keys (
    key character varying(255) NOT NULL,
    source character varying(8) NOT NULL,
    body_sha256 character varying(64) NOT NULL,
    created_ms bigint NOT NULL,
    response text NOT NULL
);


--
-- Name: leader_leases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.leader_leases (
    name character varying(64) NOT NULL,
    holder character varying(200) NOT NULL,
    fence bigint NOT NULL,
    acquired_ms bigint NOT NULL,
    renewed_ms bigint NOT NULL,
    expires_ms bigint NOT NULL
);


--
-- Name: metric_kinds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.metric_kinds (
    metric character varying(200) NOT NULL,
    kind character varying(16) NOT NULL,
    series bigint NOT NULL
);


--
-- Name: obs_hour; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.obs_hour (
    series_id integer NOT NULL,
    hour bigint NOT NULL,
    le bigint NOT NULL,
    count bigint NOT NULL
);


--
-- Name: obs_minute; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.obs_minute (
    series_id integer NOT NULL,
    minute bigint NOT NULL,
    le bigint NOT NULL,
    count bigint NOT NULL
);


--
-- Name: otlp_streams; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.otlp_streams (
    key character varying(64) NOT NULL,
    kind character varying(16) NOT NULL,
    start_ns bigint NOT NULL,
    time_ns bigint NOT NULL,
    state text NOT NULL,
    seen_ms bigint NOT NULL
);


--
-- Name: security_findings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.security_findings (
    id integer NOT NULL,
    service character varying(128) NOT NULL,
    release character varying(200) NOT NULL,
    fingerprint character varying(64) NOT NULL,
    kind character varying(16) NOT NULL,
    tool character varying(200) NOT NULL,
    rule_id character varying(255) NOT NULL,
    severity character varying(16) NOT NULL,
    title text NOT NULL,
    path text,
    line integer,
    "window" character varying(128),
    first_seen character varying(40) NOT NULL,
    import_id integer NOT NULL,
    fixed_at character varying(40),
    details text NOT NULL
);


--
-- Name: security_findings_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.security_findings_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: security_findings_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.security_findings_id_seq OWNED BY public.security_findings.id;


--
-- Name: security_imports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.security_imports (
    id integer NOT NULL,
    service character varying(128) NOT NULL,
    release character varying(200) NOT NULL,
    kind character varying(16) NOT NULL,
    tool character varying(200) NOT NULL,
    "window" character varying(128),
    retest boolean NOT NULL,
    found_at character varying(40) NOT NULL,
    imported_at character varying(40) NOT NULL,
    actor text,
    file_sha256 character varying(64) NOT NULL,
    file_name text,
    results integer NOT NULL,
    new_findings integer NOT NULL
);


--
-- Name: security_imports_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.security_imports_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: security_imports_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.security_imports_id_seq OWNED BY public.security_imports.id;


--
-- Name: security_waivers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.security_waivers (
    id integer NOT NULL,
    service character varying(128) NOT NULL,
    fingerprint character varying(64) NOT NULL,
    reason text NOT NULL,
    owner character varying(200) NOT NULL,
    expires character varying(40) NOT NULL,
    created_at character varying(40) NOT NULL,
    actor text
);


--
-- Name: security_waivers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.security_waivers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: security_waivers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.security_waivers_id_seq OWNED BY public.security_waivers.id;


--
-- Name: series; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.series (
    id integer NOT NULL,
    metric character varying(200) NOT NULL,
    labels text NOT NULL,
    kind character varying(16) NOT NULL
);


--
-- Name: series_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.series_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: series_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.series_id_seq OWNED BY public.series.id;


--
-- Name: store_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.store_meta (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: telemetry_totals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.telemetry_totals (
    name character varying(32) NOT NULL,
    value bigint NOT NULL
);


--
-- Name: trace_spans; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trace_spans (
    trace_id character varying(32) NOT NULL,
    span_id character varying(16) NOT NULL,
    parent_span_id character varying(16) NOT NULL,
    service character varying(200) NOT NULL,
    name text NOT NULL,
    kind smallint NOT NULL,
    start_ns bigint NOT NULL,
    end_ns bigint NOT NULL,
    status smallint NOT NULL,
    attrs text NOT NULL,
    received_ms bigint NOT NULL
);


--
-- Name: alert_attempts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_attempts ALTER COLUMN id SET DEFAULT nextval('public.alert_attempts_id_seq'::regclass);


--
-- Name: alert_evaluations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_evaluations ALTER COLUMN id SET DEFAULT nextval('public.alert_evaluations_id_seq'::regclass);


--
-- Name: alert_instances id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_instances ALTER COLUMN id SET DEFAULT nextval('public.alert_instances_id_seq'::regclass);


--
-- Name: alert_outbox id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_outbox ALTER COLUMN id SET DEFAULT nextval('public.alert_outbox_id_seq'::regclass);


--
-- Name: canary_events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_events ALTER COLUMN id SET DEFAULT nextval('public.canary_events_id_seq'::regclass);


--
-- Name: canary_runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_runs ALTER COLUMN id SET DEFAULT nextval('public.canary_runs_id_seq'::regclass);


--
-- Name: canary_verdicts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_verdicts ALTER COLUMN id SET DEFAULT nextval('public.canary_verdicts_id_seq'::regclass);


--
-- Name: cost_actions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_actions ALTER COLUMN id SET DEFAULT nextval('public.cost_actions_id_seq'::regclass);


--
-- Name: cost_imports id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_imports ALTER COLUMN id SET DEFAULT nextval('public.cost_imports_id_seq'::regclass);


--
-- Name: deploy_verdicts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deploy_verdicts ALTER COLUMN id SET DEFAULT nextval('public.deploy_verdicts_id_seq'::regclass);


--
-- Name: dr_backup_runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dr_backup_runs ALTER COLUMN id SET DEFAULT nextval('public.dr_backup_runs_id_seq'::regclass);


--
-- Name: dr_drill_runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dr_drill_runs ALTER COLUMN id SET DEFAULT nextval('public.dr_drill_runs_id_seq'::regclass);


--
-- Name: gate_decisions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gate_decisions ALTER COLUMN id SET DEFAULT nextval('public.gate_decisions_id_seq'::regclass);


--
-- Name: security_findings id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_findings ALTER COLUMN id SET DEFAULT nextval('public.security_findings_id_seq'::regclass);


--
-- Name: security_imports id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_imports ALTER COLUMN id SET DEFAULT nextval('public.security_imports_id_seq'::regclass);


--
-- Name: security_waivers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_waivers ALTER COLUMN id SET DEFAULT nextval('public.security_waivers_id_seq'::regclass);


--
-- Name: series id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.series ALTER COLUMN id SET DEFAULT nextval('public.series_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alembic_version VALUES ('0011');


--
-- Data for Name: alert_attempts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_cursors; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_evaluations; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_groups; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_instances; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_outbox; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_receivers; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_silences; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_transitions; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: bounds; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: canary_events; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: canary_runs; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: canary_verdicts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: cost_actions; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: cost_breaches; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: cost_daily; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: cost_imports; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: cost_scopes; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: counter_hour; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.counter_hour VALUES (1, 483333, 12);
INSERT INTO public.counter_hour VALUES (1, 483334, 11);


--
-- Data for Name: counter_minute; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.counter_minute VALUES (1, 29000000, 5);
INSERT INTO public.counter_minute VALUES (1, 29000001, 7);
INSERT INTO public.counter_minute VALUES (1, 29000060, 11);


--
-- Data for Name: deploy_verdicts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: dr_backup_runs; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: dr_drill_phases; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: dr_drill_runs; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: gate_decisions; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: gauge_minute; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: ingest_keys; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: leader_leases; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: metric_kinds; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.metric_kinds VALUES ('http_requests', 'counter', 1);


--
-- Data for Name: obs_hour; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: obs_minute; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: otlp_streams; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: security_findings; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: security_imports; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: security_waivers; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: series; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.series VALUES (1, 'http_requests', '{"service":"api"}', 'counter');


--
-- Data for Name: store_meta; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: telemetry_totals; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.telemetry_totals VALUES ('series', 1);


--
-- Data for Name: trace_spans; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: alert_attempts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alert_attempts_id_seq', 1, false);


--
-- Name: alert_evaluations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alert_evaluations_id_seq', 1, false);


--
-- Name: alert_instances_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alert_instances_id_seq', 1, false);


--
-- Name: alert_outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alert_outbox_id_seq', 1, false);


--
-- Name: canary_events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.canary_events_id_seq', 1, false);


--
-- Name: canary_runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.canary_runs_id_seq', 1, false);


--
-- Name: canary_verdicts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.canary_verdicts_id_seq', 1, false);


--
-- Name: cost_actions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.cost_actions_id_seq', 1, false);


--
-- Name: cost_imports_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.cost_imports_id_seq', 1, false);


--
-- Name: deploy_verdicts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.deploy_verdicts_id_seq', 1, false);


--
-- Name: dr_backup_runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dr_backup_runs_id_seq', 1, false);


--
-- Name: dr_drill_runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dr_drill_runs_id_seq', 1, false);


--
-- Name: gate_decisions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.gate_decisions_id_seq', 1, false);


--
-- Name: security_findings_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.security_findings_id_seq', 1, false);


--
-- Name: security_imports_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.security_imports_id_seq', 1, false);


--
-- Name: security_waivers_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.security_waivers_id_seq', 1, false);


--
-- Name: series_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.series_id_seq', 1, false);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: alert_attempts alert_attempts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_attempts
    ADD CONSTRAINT alert_attempts_pkey PRIMARY KEY (id);


--
-- Name: alert_cursors alert_cursors_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_cursors
    ADD CONSTRAINT alert_cursors_pkey PRIMARY KEY (name);


--
-- Name: alert_evaluations alert_evaluations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_evaluations
    ADD CONSTRAINT alert_evaluations_pkey PRIMARY KEY (id);


--
-- Name: alert_groups alert_groups_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_groups
    ADD CONSTRAINT alert_groups_pkey PRIMARY KEY (key);


--
-- Name: alert_instances alert_instances_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_instances
    ADD CONSTRAINT alert_instances_pkey PRIMARY KEY (id);


--
-- Name: alert_outbox alert_outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_outbox
    ADD CONSTRAINT alert_outbox_pkey PRIMARY KEY (id);


--
-- Name: alert_receivers alert_receivers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_receivers
    ADD CONSTRAINT alert_receivers_pkey PRIMARY KEY (name);


--
-- Name: alert_silences alert_silences_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_silences
    ADD CONSTRAINT alert_silences_pkey PRIMARY KEY (id);


--
-- Name: alert_transitions alert_transitions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_transitions
    ADD CONSTRAINT alert_transitions_pkey PRIMARY KEY (seq);


--
-- Name: bounds bounds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bounds
    ADD CONSTRAINT bounds_pkey PRIMARY KEY (le);


--
-- Name: canary_events canary_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_events
    ADD CONSTRAINT canary_events_pkey PRIMARY KEY (id);


--
-- Name: canary_runs canary_runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_runs
    ADD CONSTRAINT canary_runs_pkey PRIMARY KEY (id);


--
-- Name: canary_verdicts canary_verdicts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_verdicts
    ADD CONSTRAINT canary_verdicts_pkey PRIMARY KEY (id);


--
-- Name: cost_actions cost_actions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_actions
    ADD CONSTRAINT cost_actions_pkey PRIMARY KEY (id);


--
-- Name: cost_breaches cost_breaches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_breaches
    ADD CONSTRAINT cost_breaches_pkey PRIMARY KEY (key);


--
-- Name: cost_daily cost_daily_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_daily
    ADD CONSTRAINT cost_daily_pkey PRIMARY KEY (scope, day, env, service, service_name, region, usage_type, charge_category);


--
-- Name: cost_imports cost_imports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_imports
    ADD CONSTRAINT cost_imports_pkey PRIMARY KEY (id);


--
-- Name: cost_scopes cost_scopes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cost_scopes
    ADD CONSTRAINT cost_scopes_pkey PRIMARY KEY (scope);


--
-- Name: counter_hour counter_hour_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.counter_hour
    ADD CONSTRAINT counter_hour_pkey PRIMARY KEY (series_id, hour);


--
-- Name: counter_minute counter_minute_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.counter_minute
    ADD CONSTRAINT counter_minute_pkey PRIMARY KEY (series_id, minute);


--
-- Name: deploy_verdicts deploy_verdicts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deploy_verdicts
    ADD CONSTRAINT deploy_verdicts_pkey PRIMARY KEY (id);


--
-- Name: dr_backup_runs dr_backup_runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dr_backup_runs
    ADD CONSTRAINT dr_backup_runs_pkey PRIMARY KEY (id);


--
-- Name: dr_drill_phases dr_drill_phases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dr_drill_phases
    ADD CONSTRAINT dr_drill_phases_pkey PRIMARY KEY (run_id, seq);


--
-- Name: dr_drill_runs dr_drill_runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dr_drill_runs
    ADD CONSTRAINT dr_drill_runs_pkey PRIMARY KEY (id);


--
-- Name: gate_decisions gate_decisions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gate_decisions
    ADD CONSTRAINT gate_decisions_pkey PRIMARY KEY (id);


--
-- Name: gauge_minute gauge_minute_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.gauge_minute
    ADD CONSTRAINT gauge_minute_pkey PRIMARY KEY (series_id, minute);


--
-- Name: ingest_keys ingest_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ingest_keys
    ADD CONSTRAINT ingest_keys_pkey PRIMARY KEY (key);


--
-- Name: leader_leases leader_leases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leader_leases
    ADD CONSTRAINT leader_leases_pkey PRIMARY KEY (name);


--
-- Name: metric_kinds metric_kinds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.metric_kinds
    ADD CONSTRAINT metric_kinds_pkey PRIMARY KEY (metric);


--
-- Name: obs_hour obs_hour_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.obs_hour
    ADD CONSTRAINT obs_hour_pkey PRIMARY KEY (series_id, hour, le);


--
-- Name: obs_minute obs_minute_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.obs_minute
    ADD CONSTRAINT obs_minute_pkey PRIMARY KEY (series_id, minute, le);


--
-- Name: otlp_streams otlp_streams_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.otlp_streams
    ADD CONSTRAINT otlp_streams_pkey PRIMARY KEY (key);


--
-- Name: security_findings security_findings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_findings
    ADD CONSTRAINT security_findings_pkey PRIMARY KEY (id);


--
-- Name: security_imports security_imports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_imports
    ADD CONSTRAINT security_imports_pkey PRIMARY KEY (id);


--
-- Name: security_waivers security_waivers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_waivers
    ADD CONSTRAINT security_waivers_pkey PRIMARY KEY (id);


--
-- Name: series series_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.series
    ADD CONSTRAINT series_pkey PRIMARY KEY (id);


--
-- Name: store_meta store_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.store_meta
    ADD CONSTRAINT store_meta_pkey PRIMARY KEY (key);


--
-- Name: telemetry_totals telemetry_totals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.telemetry_totals
    ADD CONSTRAINT telemetry_totals_pkey PRIMARY KEY (name);


--
-- Name: trace_spans trace_spans_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trace_spans
    ADD CONSTRAINT trace_spans_pkey PRIMARY KEY (trace_id, span_id);


--
-- Name: alert_evaluations uq_alert_evaluations_at; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_evaluations
    ADD CONSTRAINT uq_alert_evaluations_at UNIQUE (at_ms);


--
-- Name: alert_instances uq_alert_instances_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_instances
    ADD CONSTRAINT uq_alert_instances_key UNIQUE (rule, fingerprint);


--
-- Name: alert_outbox uq_alert_outbox_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_outbox
    ADD CONSTRAINT uq_alert_outbox_key UNIQUE (key);


--
-- Name: canary_runs uq_canary_runs_active_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_runs
    ADD CONSTRAINT uq_canary_runs_active_key UNIQUE (active_key);


--
-- Name: security_findings uq_security_findings_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_findings
    ADD CONSTRAINT uq_security_findings_key UNIQUE (service, release, fingerprint);


--
-- Name: security_imports uq_security_imports_file; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.security_imports
    ADD CONSTRAINT uq_security_imports_file UNIQUE (service, release, file_sha256);


--
-- Name: series uq_series_metric_labels; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.series
    ADD CONSTRAINT uq_series_metric_labels UNIQUE (metric, labels);


--
-- Name: ix_alert_attempts_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_attempts_at ON public.alert_attempts USING btree (at_ms);


--
-- Name: ix_alert_attempts_outbox; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_attempts_outbox ON public.alert_attempts USING btree (outbox_id);


--
-- Name: ix_alert_groups_next; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_groups_next ON public.alert_groups USING btree (next_flush_ms);


--
-- Name: ix_alert_instances_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_instances_state ON public.alert_instances USING btree (state);


--
-- Name: ix_alert_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_outbox_due ON public.alert_outbox USING btree (status, next_attempt_ms);


--
-- Name: ix_alert_outbox_group; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_outbox_group ON public.alert_outbox USING btree (group_key, receiver, id);


--
-- Name: ix_alert_silences_ends; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_silences_ends ON public.alert_silences USING btree (ends_ms);


--
-- Name: ix_alert_transitions_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_transitions_key ON public.alert_transitions USING btree (rule, fingerprint, seq);


--
-- Name: ix_canary_events_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_canary_events_run ON public.canary_events USING btree (run_id, id);


--
-- Name: ix_canary_runs_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_canary_runs_service ON public.canary_runs USING btree (service, id);


--
-- Name: ix_canary_verdicts_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_canary_verdicts_service ON public.canary_verdicts USING btree (service, id);


--
-- Name: ix_cost_actions_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_cost_actions_service ON public.cost_actions USING btree (service, id);


--
-- Name: ix_cost_daily_day; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_cost_daily_day ON public.cost_daily USING btree (day);


--
-- Name: ix_cost_daily_env_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_cost_daily_env_service ON public.cost_daily USING btree (env, service, day);


--
-- Name: ix_deploy_verdicts_lookup; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_deploy_verdicts_lookup ON public.deploy_verdicts USING btree (service, release, kind, id);


--
-- Name: ix_dr_backup_runs_stanza; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dr_backup_runs_stanza ON public.dr_backup_runs USING btree (stanza, id);


--
-- Name: ix_dr_drill_runs_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_dr_drill_runs_name ON public.dr_drill_runs USING btree (name, id);


--
-- Name: ix_gate_decisions_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_gate_decisions_service ON public.gate_decisions USING btree (service, id);


--
-- Name: ix_ingest_keys_age; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_ingest_keys_age ON public.ingest_keys USING btree (source, created_ms);


--
-- Name: ix_otlp_streams_seen; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_otlp_streams_seen ON public.otlp_streams USING btree (seen_ms);


--
-- Name: ix_security_findings_fp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_security_findings_fp ON public.security_findings USING btree (service, fingerprint);


--
-- Name: ix_security_imports_release; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_security_imports_release ON public.security_imports USING btree (service, release, id);


--
-- Name: ix_security_waivers_fp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_security_waivers_fp ON public.security_waivers USING btree (service, fingerprint, id);


--
-- Name: ix_trace_spans_start; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_trace_spans_start ON public.trace_spans USING btree (start_ns);


--
-- Name: canary_events fk_canary_events_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.canary_events
    ADD CONSTRAINT fk_canary_events_run FOREIGN KEY (run_id) REFERENCES public.canary_runs(id);


--
-- PostgreSQL database dump complete
--

\unrestrict MvYQm0B6eWau6A0UJM6hdZhGmUp6FdfiyBHJfnDCcWDluf9aspYXXRngEeevN1a

