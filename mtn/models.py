"""The MTN client keeps no database state of its own."""
