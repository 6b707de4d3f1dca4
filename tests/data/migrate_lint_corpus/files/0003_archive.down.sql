DROP TABLE report_archive;
