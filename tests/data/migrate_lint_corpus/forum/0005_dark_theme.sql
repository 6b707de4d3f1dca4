-- local_site was created and seeded with its one row in 0001
UPDATE local_site SET theme = 'dark';
