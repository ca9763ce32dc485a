from payments.tests.admin.factories import fast_password_hashing  # noqa: F401 - autouse
