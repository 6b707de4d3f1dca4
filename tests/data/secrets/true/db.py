import psycopg

conn = psycopg.connect(host="db.internal", dbname="shop", user="shop", password="pp1d0S6GJEeoCqK_")
