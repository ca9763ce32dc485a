"""Nothing of the MTN client is administered through Django admin."""
