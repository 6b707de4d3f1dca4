CREATE VIEW post_view AS
SELECT p.*, c.name AS community_name, u.name AS creator_name
FROM post p
JOIN community c ON c.id = p.community_id
JOIN person u ON u.id = p.creator_id;
