-- café menu
SELECT 1;
