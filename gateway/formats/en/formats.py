"""Dates and times as the support console shows them: with seconds and the zone, everywhere.

Django's own admin fields (lists, read-only pages, inlines) use DATETIME_FORMAT; the
gateway's templates and helpers use the same format (gateway.admin.TIME_FORMAT).
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
