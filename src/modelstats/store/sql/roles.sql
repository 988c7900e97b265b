-- The read-only role of migration 0007 (see store/reader.py).

-- name: reader_login
-- ALTER ROLE takes no parameters: the password is composed in as a quoted literal.
ALTER ROLE modelstats_reader LOGIN PASSWORD {password}
