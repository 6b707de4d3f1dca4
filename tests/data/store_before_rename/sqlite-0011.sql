BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0011');
CREATE TABLE alert_attempts (
	id INTEGER NOT NULL, 
	outbox_id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	receiver VARCHAR(200) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	at_ms BIGINT NOT NULL, 
	result VARCHAR(16) NOT NULL, 
	status_code INTEGER, 
	latency_ms INTEGER, 
	error TEXT, 
	detail TEXT, 
	fence BIGINT, 
	PRIMARY KEY (id)
);
CREATE TABLE alert_cursors (
	name VARCHAR(64) NOT NULL, 
	seq BIGINT NOT NULL, 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE alert_evaluations (
	id INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	at_ms BIGINT NOT NULL, 
	rules INTEGER NOT NULL, 
	instances INTEGER NOT NULL, 
	transitions INTEGER NOT NULL, 
	first_seq BIGINT, 
	last_seq BIGINT, 
	spec_sha256 VARCHAR(64), 
	fence BIGINT, 
	errors TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_alert_evaluations_at UNIQUE (at_ms)
);
CREATE TABLE alert_groups (
	"key" VARCHAR(64) NOT NULL, 
	group_key TEXT NOT NULL, 
	route TEXT NOT NULL, 
	receiver VARCHAR(200) NOT NULL, 
	labels TEXT NOT NULL, 
	alerts TEXT NOT NULL, 
	group_wait_ms BIGINT NOT NULL, 
	group_interval_ms BIGINT NOT NULL, 
	repeat_interval_ms BIGINT NOT NULL, 
	next_flush_ms BIGINT, 
	has_flushed INTEGER NOT NULL, 
	flushes INTEGER NOT NULL, 
	notified_firing TEXT NOT NULL, 
	notified_resolved TEXT NOT NULL, 
	notified_ms BIGINT, 
	acked INTEGER NOT NULL, 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE alert_instances (
	id INTEGER NOT NULL, 
	rule VARCHAR(200) NOT NULL, 
	fingerprint VARCHAR(16) NOT NULL, 
	labels TEXT NOT NULL, 
	annotations TEXT NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	active_at VARCHAR(40), 
	fired_at VARCHAR(40), 
	resolved_at VARCHAR(40), 
	last_true_at VARCHAR(40), 
	keep_firing_since VARCHAR(40), 
	value TEXT, 
	seq BIGINT NOT NULL, 
	evaluated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_alert_instances_key UNIQUE (rule, fingerprint)
);
CREATE TABLE alert_outbox (
	id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	group_key VARCHAR(64) NOT NULL, 
	receiver VARCHAR(200) NOT NULL, 
	target VARCHAR(200) NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	dedup_key VARCHAR(255) NOT NULL, 
	payload TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	created_ms BIGINT NOT NULL, 
	next_attempt_ms BIGINT NOT NULL, 
	attempts INTEGER NOT NULL, 
	target_failures INTEGER NOT NULL, 
	delivered_at VARCHAR(40), 
	last_error TEXT, 
	fence BIGINT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_alert_outbox_key UNIQUE ("key")
);
CREATE TABLE alert_receivers (
	name VARCHAR(200) NOT NULL, 
	consecutive_failures INTEGER NOT NULL, 
	open_until_ms BIGINT, 
	last_error TEXT, 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE alert_silences (
	id VARCHAR(40) NOT NULL, 
	matchers TEXT NOT NULL, 
	starts_at VARCHAR(40) NOT NULL, 
	ends_at VARCHAR(40) NOT NULL, 
	starts_ms BIGINT NOT NULL, 
	ends_ms BIGINT NOT NULL, 
	created_by VARCHAR(200) NOT NULL, 
	reason TEXT NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	expired_at VARCHAR(40), 
	expired_by VARCHAR(200), 
	PRIMARY KEY (id)
);
CREATE TABLE alert_transitions (
	seq BIGINT NOT NULL, 
	evaluation_id INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	rule VARCHAR(200) NOT NULL, 
	fingerprint VARCHAR(16) NOT NULL, 
	labels TEXT NOT NULL, 
	annotations TEXT NOT NULL, 
	previous VARCHAR(16) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	active_at VARCHAR(40), 
	fired_at VARCHAR(40), 
	resolved_at VARCHAR(40), 
	value TEXT, 
	PRIMARY KEY (seq)
);
CREATE TABLE bounds (
	le BIGINT NOT NULL, 
	since_minute BIGINT NOT NULL, 
	PRIMARY KEY (le)
);
CREATE TABLE canary_events (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	step_index INTEGER, 
	weight INTEGER, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT fk_canary_events_run FOREIGN KEY(run_id) REFERENCES canary_runs (id)
);
CREATE TABLE canary_runs (
	id INTEGER NOT NULL, 
	service VARCHAR(128), 
	active_key VARCHAR(128), 
	baseline TEXT NOT NULL, 
	canary TEXT NOT NULL, 
	state VARCHAR(24) NOT NULL, 
	step_index INTEGER NOT NULL, 
	weight INTEGER NOT NULL, 
	step_started BIGINT, 
	extensions INTEGER NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	updated_at VARCHAR(40) NOT NULL, 
	finished_at VARCHAR(40), 
	owner VARCHAR(200), 
	lease_until BIGINT, 
	spec_sha256 VARCHAR(64) NOT NULL, 
	"plan" TEXT NOT NULL, 
	outcome TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_canary_runs_active_key UNIQUE (active_key)
);
CREATE TABLE canary_verdicts (
	id INTEGER NOT NULL, 
	judged_at VARCHAR(40) NOT NULL, 
	service VARCHAR(128), 
	run_id INTEGER, 
	baseline TEXT NOT NULL, 
	canary TEXT NOT NULL, 
	window_from VARCHAR(40) NOT NULL, 
	window_to VARCHAR(40) NOT NULL, 
	verdict VARCHAR(16) NOT NULL, 
	score TEXT, 
	spec_sha256 VARCHAR(64) NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE cost_actions (
	id INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	actor VARCHAR(200), 
	kind VARCHAR(32) NOT NULL, 
	service VARCHAR(128), 
	env VARCHAR(64), 
	target VARCHAR(300) NOT NULL, 
	allowed BOOLEAN NOT NULL, 
	applied BOOLEAN NOT NULL, 
	reason TEXT, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE cost_breaches (
	"key" VARCHAR(300) NOT NULL, 
	budget VARCHAR(128) NOT NULL, 
	month VARCHAR(7) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	threshold VARCHAR(16) NOT NULL, 
	env VARCHAR(64), 
	service VARCHAR(128), 
	amount_nano BIGINT NOT NULL, 
	value_nano BIGINT NOT NULL, 
	detected_at VARCHAR(40) NOT NULL, 
	event_sent_at VARCHAR(40), 
	detail TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE cost_daily (
	scope VARCHAR(300) NOT NULL, 
	day VARCHAR(10) NOT NULL, 
	env VARCHAR(64) NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	service_name VARCHAR(200) NOT NULL, 
	region VARCHAR(64) NOT NULL, 
	usage_type VARCHAR(200) NOT NULL, 
	charge_category VARCHAR(32) NOT NULL, 
	billed_nano BIGINT NOT NULL, 
	effective_nano BIGINT NOT NULL, 
	list_nano BIGINT NOT NULL, 
	quantity_micro BIGINT NOT NULL, 
	unit VARCHAR(64) NOT NULL, 
	currency VARCHAR(8) NOT NULL, 
	line_items BIGINT NOT NULL, 
	import_id INTEGER NOT NULL, 
	PRIMARY KEY (scope, day, env, service, service_name, region, usage_type, charge_category)
)
 WITHOUT ROWID

;
CREATE TABLE cost_imports (
	id INTEGER NOT NULL, 
	imported_at VARCHAR(40) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	files TEXT NOT NULL, 
	scopes TEXT NOT NULL, 
	rows_read BIGINT NOT NULL, 
	rows_rejected BIGINT NOT NULL, 
	rows_stored BIGINT NOT NULL, 
	rows_replaced BIGINT NOT NULL, 
	billed_nano BIGINT NOT NULL, 
	actor VARCHAR(200), 
	PRIMARY KEY (id)
);
CREATE TABLE cost_scopes (
	scope VARCHAR(300) NOT NULL, 
	import_id INTEGER NOT NULL, 
	first_day VARCHAR(10) NOT NULL, 
	last_day VARCHAR(10) NOT NULL, 
	replaced INTEGER NOT NULL, 
	PRIMARY KEY (scope)
);
CREATE TABLE counter_hour (
	series_id INTEGER NOT NULL, 
	hour BIGINT NOT NULL, 
	value BIGINT NOT NULL, 
	PRIMARY KEY (series_id, hour)
)
 WITHOUT ROWID

;
INSERT INTO "counter_hour" VALUES(1,483333,12);
INSERT INTO "counter_hour" VALUES(1,483334,11);
CREATE TABLE counter_minute (
	series_id INTEGER NOT NULL, 
	minute BIGINT NOT NULL, 
	value BIGINT NOT NULL, 
	PRIMARY KEY (series_id, minute)
)
 WITHOUT ROWID

;
INSERT INTO "counter_minute" VALUES(1,29000000,5);
INSERT INTO "counter_minute" VALUES(1,29000001,7);
INSERT INTO "counter_minute" VALUES(1,29000060,11);
CREATE TABLE deploy_verdicts (
	id INTEGER NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	release VARCHAR(200) NOT NULL, 
	verdict VARCHAR(32) NOT NULL, 
	recorded_at VARCHAR(40) NOT NULL, 
	summary TEXT NOT NULL, 
	details TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE dr_backup_runs (
	id INTEGER NOT NULL, 
	engine VARCHAR(32) NOT NULL, 
	stanza VARCHAR(128) NOT NULL, 
	repo INTEGER NOT NULL, 
	type VARCHAR(16) NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	finished_at VARCHAR(40), 
	status VARCHAR(16) NOT NULL, 
	label VARCHAR(128), 
	seconds BIGINT, 
	error TEXT, 
	detail TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE dr_drill_phases (
	run_id INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	ended_at VARCHAR(40), 
	ok BOOLEAN, 
	error TEXT, 
	evidence TEXT, 
	PRIMARY KEY (run_id, seq)
);
CREATE TABLE dr_drill_runs (
	id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	scenario VARCHAR(32) NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	finished_at VARCHAR(40), 
	status VARCHAR(16) NOT NULL, 
	rto_us BIGINT, 
	rpo_us BIGINT, 
	rto_objective_us BIGINT NOT NULL, 
	rpo_objective_us BIGINT NOT NULL, 
	gaps INTEGER, 
	report_dir TEXT, 
	spec_sha256 VARCHAR(64), 
	report TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE gate_decisions (
	id INTEGER NOT NULL, 
	at VARCHAR(40) NOT NULL, 
	decided_at VARCHAR(40) NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	allowed BOOLEAN NOT NULL, 
	overridden BOOLEAN NOT NULL, 
	labels TEXT NOT NULL, 
	reason TEXT, 
	actor VARCHAR(200), 
	spec_sha256 VARCHAR(64) NOT NULL, 
	decision TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE gauge_minute (
	series_id INTEGER NOT NULL, 
	minute BIGINT NOT NULL, 
	min FLOAT NOT NULL, 
	max FLOAT NOT NULL, 
	last FLOAT NOT NULL, 
	last_ms BIGINT NOT NULL, 
	samples BIGINT NOT NULL, 
	PRIMARY KEY (series_id, minute)
)
 WITHOUT ROWID

;
CREATE TABLE ingest_keys (
	"key" VARCHAR(255) NOT NULL, 
	source VARCHAR(8) NOT NULL, 
	body_sha256 VARCHAR(64) NOT NULL, 
	created_ms BIGINT NOT NULL, 
	response TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE leader_leases (
	name VARCHAR(64) NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	fence BIGINT NOT NULL, 
	acquired_ms BIGINT NOT NULL, 
	renewed_ms BIGINT NOT NULL, 
	expires_ms BIGINT NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE metric_kinds (
	metric VARCHAR(200) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	series BIGINT NOT NULL, 
	PRIMARY KEY (metric)
);
INSERT INTO "metric_kinds" VALUES('http_requests','counter',1);
CREATE TABLE obs_hour (
	series_id INTEGER NOT NULL, 
	hour BIGINT NOT NULL, 
	le BIGINT NOT NULL, 
	count BIGINT NOT NULL, 
	PRIMARY KEY (series_id, hour, le)
)
 WITHOUT ROWID

;
CREATE TABLE obs_minute (
	series_id INTEGER NOT NULL, 
	minute BIGINT NOT NULL, 
	le BIGINT NOT NULL, 
	count BIGINT NOT NULL, 
	PRIMARY KEY (series_id, minute, le)
)
 WITHOUT ROWID

;
CREATE TABLE otlp_streams (
	"key" VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	start_ns BIGINT NOT NULL, 
	time_ns BIGINT NOT NULL, 
	state TEXT NOT NULL, 
	seen_ms BIGINT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE security_findings (
	id INTEGER NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	release VARCHAR(200) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	tool VARCHAR(200) NOT NULL, 
	rule_id VARCHAR(255) NOT NULL, 
	severity VARCHAR(16) NOT NULL, 
	title TEXT NOT NULL, 
	path TEXT, 
	line INTEGER, 
	window VARCHAR(128), 
	first_seen VARCHAR(40) NOT NULL, 
	import_id INTEGER NOT NULL, 
	fixed_at VARCHAR(40), 
	details TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_security_findings_key UNIQUE (service, release, fingerprint)
);
CREATE TABLE security_imports (
	id INTEGER NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	release VARCHAR(200) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	tool VARCHAR(200) NOT NULL, 
	window VARCHAR(128), 
	retest BOOLEAN NOT NULL, 
	found_at VARCHAR(40) NOT NULL, 
	imported_at VARCHAR(40) NOT NULL, 
	actor TEXT, 
	file_sha256 VARCHAR(64) NOT NULL, 
	file_name TEXT, 
	results INTEGER NOT NULL, 
	new_findings INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_security_imports_file UNIQUE (service, release, file_sha256)
);
CREATE TABLE security_waivers (
	id INTEGER NOT NULL, 
	service VARCHAR(128) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	reason TEXT NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	expires VARCHAR(40) NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	actor TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE series (
	id INTEGER NOT NULL, 
	metric VARCHAR(200) NOT NULL, 
	labels TEXT NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_series_metric_labels UNIQUE (metric, labels)
);
INSERT INTO "series" VALUES(1,'http_requests','{"service":"api"}','counter');
CREATE TABLE store_meta (
	"key" TEXT NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE telemetry_totals (
	name VARCHAR(32) NOT NULL, 
	value BIGINT NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "telemetry_totals" VALUES('series',1);
CREATE TABLE trace_spans (
	trace_id VARCHAR(32) NOT NULL, 
	span_id VARCHAR(16) NOT NULL, 
	parent_span_id VARCHAR(16) NOT NULL, 
	service VARCHAR(200) NOT NULL, 
	name TEXT NOT NULL, 
	kind SMALLINT NOT NULL, 
	start_ns BIGINT NOT NULL, 
	end_ns BIGINT NOT NULL, 
	status SMALLINT NOT NULL, 
	attrs TEXT NOT NULL, 
	received_ms BIGINT NOT NULL, 
	PRIMARY KEY (trace_id, span_id)
)
 WITHOUT ROWID

;
CREATE INDEX ix_gate_decisions_service ON gate_decisions (service, id);
CREATE INDEX ix_canary_runs_service ON canary_runs (service, id);
CREATE INDEX ix_canary_events_run ON canary_events (run_id, id);
CREATE INDEX ix_canary_verdicts_service ON canary_verdicts (service, id);
CREATE INDEX ix_dr_backup_runs_stanza ON dr_backup_runs (stanza, id);
CREATE INDEX ix_dr_drill_runs_name ON dr_drill_runs (name, id);
CREATE INDEX ix_deploy_verdicts_lookup ON deploy_verdicts (service, release, kind, id);
CREATE INDEX ix_ingest_keys_age ON ingest_keys (source, created_ms);
CREATE INDEX ix_security_imports_release ON security_imports (service, release, id);
CREATE INDEX ix_security_findings_fp ON security_findings (service, fingerprint);
CREATE INDEX ix_security_waivers_fp ON security_waivers (service, fingerprint, id);
CREATE INDEX ix_alert_instances_state ON alert_instances (state);
CREATE INDEX ix_alert_transitions_key ON alert_transitions (rule, fingerprint, seq);
CREATE INDEX ix_alert_groups_next ON alert_groups (next_flush_ms);
CREATE INDEX ix_alert_outbox_due ON alert_outbox (status, next_attempt_ms);
CREATE INDEX ix_alert_outbox_group ON alert_outbox (group_key, receiver, id);
CREATE INDEX ix_alert_attempts_at ON alert_attempts (at_ms);
CREATE INDEX ix_alert_attempts_outbox ON alert_attempts (outbox_id);
CREATE INDEX ix_alert_silences_ends ON alert_silences (ends_ms);
CREATE INDEX ix_trace_spans_start ON trace_spans (start_ns);
CREATE INDEX ix_otlp_streams_seen ON otlp_streams (seen_ms);
CREATE INDEX ix_cost_daily_day ON cost_daily (day);
CREATE INDEX ix_cost_daily_env_service ON cost_daily (env, service, day);
CREATE INDEX ix_cost_actions_service ON cost_actions (service, id);
COMMIT;
