-- The warehouse, beside the store (compose.yaml's TRIBUTARY_POSTGRES_URL).
CREATE DATABASE warehouse OWNER tributary;
