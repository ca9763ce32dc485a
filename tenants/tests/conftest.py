from payments.tests.helpers import fresh_mtn_client  # noqa: F401 - an autouse fixture
