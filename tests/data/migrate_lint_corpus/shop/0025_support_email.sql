UPDATE settings SET support_email = 'help@example.com' WHERE id = 1;
INSERT INTO accounts (email, plan) VALUES ('ops@example.com', 'internal');
