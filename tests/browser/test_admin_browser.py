"""Support staff in a real browser: log in, filter payments, open one, read its trail."""

from __future__ import annotations

from typing import Any

import pytest

from payments.tests.admin.factories import HOSTILE, make_transfer, make_transfer_with_history

SCREENSHOT = "/tmp/admin_payment.png"  # noqa: S108 - a file for a person to look at

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_support_filters_payments_and_reads_the_audit_trail(
    live_server: Any, browser: Any, django_user_model: Any, tenant: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    paid = make_transfer_with_history(tenant)
    pending = make_transfer(tenant, reference="still-pending")
    django_user_model.objects.create_superuser("support", "support@example.com", "pass-w0rd!")
    wait = WebDriverWait(browser, 20)

    # Log in.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys("support")
    browser.find_element(By.ID, "id_password").send_keys("pass-w0rd!")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "site-name")))
    assert "momo-gateway support" in browser.find_element(By.ID, "site-name").text

    # Payments, both of them; then only the successful ones.
    browser.find_element(By.CSS_SELECTOR, "a[href='/admin/payments/payment/']").click()
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 2
    browser.find_element(
        By.CSS_SELECTOR, "#changelist-filter a[href*='status__exact=SUCCESSFUL']"
    ).click()
    wait.until(ec.url_contains("status__exact=SUCCESSFUL"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert str(paid.pk) in rows[0].text
    assert str(pending.pk) not in browser.find_element(By.ID, "result_list").text

    # Open it: its fields, and its audit trail on the same page.
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    trail = wait.until(ec.presence_of_element_located((By.ID, "audit-trail")))
    assert str(paid.pk) in browser.title or str(paid.pk) in browser.page_source
    assert "payment.created" in trail.text
    assert "payment.succeeded" in trail.text
    assert "api_key:mgw_testkey0" in trail.text
    callbacks = browser.find_element(By.ID, "mtn-callbacks").text
    assert "Per-payment URL" in callbacks
    deliveries = browser.find_element(By.ID, "merchant-deliveries").text
    assert "payment.succeeded" in deliveries
    assert "merchant is down" in deliveries
    # The untrusted metadata and MTN body are shown as text, never run.
    assert HOSTILE in browser.find_element(By.ID, "content-main").text
    assert browser.execute_script("return window.__xss === undefined")

    browser.set_window_size(1366, browser.execute_script("return document.body.scrollHeight"))
    browser.save_screenshot(SCREENSHOT)
