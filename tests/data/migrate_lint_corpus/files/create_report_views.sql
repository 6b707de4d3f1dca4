CREATE VIEW report_titles AS SELECT id, left(body, 80) AS title FROM reports;
