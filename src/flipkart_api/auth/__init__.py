"""Users, password hashing and bearer tokens."""
