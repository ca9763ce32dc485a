"""Support staff in a real browser: sign in (with a one-time code), read the dashboard, scan
the payment list at 1366 and 1920 px, search as staff type, open a payment.

Screenshots land in var/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from gateway.audit import Actor
from payments.models import Payment
from payments.services import transfer_transition
from payments.states import Status
from payments.tests.admin.factories import HOSTILE, make_transfer, make_transfer_with_history

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "pass-w0rd!"  # noqa: S105 - a test user's

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def screenshot(browser: Any, name: str, width: int) -> Path:
    """The whole page at this width, saved for a person to look at."""
    browser.set_window_size(width, 900)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, 600), 4000))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{width}.png"
    browser.save_screenshot(str(path))
    return path


def log_in(browser: Any, live_server: Any, wait: Any, username: str = "support") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "site-name")))


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def wait(browser: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20)


@pytest.fixture
def support(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("support", "support@example.com", PASSWORD)


@pytest.fixture
def busy_day(tenant: Any, other_tenant: Any) -> list[Payment]:
    """Payments as a list shows them on a busy day: long references, failures, a flag."""
    made = [make_transfer_with_history(tenant)]
    for index in range(8):
        payment = make_transfer(
            other_tenant if index % 2 else tenant,
            amount=str(990000 + index),
            party=f"25670000{index:04d}",
            reference=f"invoice-2026-11-{index:04d}-customer-account-with-a-long-reference",
        )
        if index % 3 == 0:
            transfer_transition(
                transfer=payment,
                target=Status.FAILED,
                actor=Actor.mtn(),
                failure_code="INTERNAL_PROCESSING_ERROR",
                failure_message="MTN could not process the payment; the payer can try again.",
                data={},
            )
        made.append(payment)
    Payment.objects.filter(pk=made[-1].pk).update(needs_review=True)
    return made


def test_staff_sign_in_with_a_one_time_code_and_see_the_dashboard(
    live_server: Any, browser: Any, wait: Any, support: Any, busy_day: Any, settings: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    settings.ADMIN_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=support, name="phone", confirmed=True)

    log_in(browser, live_server, wait)
    # The password was right; the admin asks for the code before anything else.
    wait.until(ec.presence_of_element_located((By.ID, "otp-form")))
    assert "/admin/otp/" in browser.current_url
    screenshot(browser, "otp-step", 1366)
    browser.find_element(By.ID, "id_otp_token").send_keys(current_code(device))
    browser.find_element(By.CSS_SELECTOR, "#otp-form [type=submit].default").click()

    board = wait.until(ec.presence_of_element_located((By.ID, "dashboard")))
    assert "Success rate this week" in board.text
    assert "INTERNAL_PROCESSING_ERROR" in board.text
    chart = browser.find_element(By.CSS_SELECTOR, "#chart-payments svg.gateway-chart")
    assert chart.size["width"] > 300
    assert chart.size["height"] > 80
    today = timezone.localdate().isoformat()
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-payments rect")
    assert any(today in bar.get_attribute("innerHTML") for bar in bars)
    # The page loads nothing from another host.
    hosts = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
    )
    assert set(hosts) <= {live_server.url.split("//")[1]}
    screenshot(browser, "dashboard", 1366)
    screenshot(browser, "dashboard", 1920)


def test_staff_without_a_device_enrol_by_scanning_a_qr_code(
    live_server: Any, browser: Any, wait: Any, support: Any, settings: Any
) -> None:
    import base64

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    settings.ADMIN_REQUIRE_2FA = True

    log_in(browser, live_server, wait)
    qr = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#otp-qr svg")))
    assert "/admin/otp/enrol/" in browser.current_url
    assert qr.size["width"] >= 150
    screenshot(browser, "otp-enrol", 1366)
    # What a person types into their app by hand, turned into the app's current code.
    key = browser.find_element(By.ID, "otp-manual-key").text.replace(" ", "")
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    code = TOTP(secret, 30, 0, 6, 0).token()
    browser.find_element(By.ID, "id_otp_token").send_keys(f"{code:06d}")
    browser.find_element(By.CSS_SELECTOR, "#otp-form [type=submit].default").click()

    wait.until(ec.presence_of_element_located((By.ID, "content-main")))
    assert browser.current_url.endswith("/admin/")
    assert TOTPDevice.objects.get(user=support).confirmed


@pytest.mark.parametrize("width", [1366, 1920])
def test_payment_list_reads_at_a_glance(
    live_server: Any, browser: Any, wait: Any, support: Any, busy_day: Any, width: int
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in(browser, live_server, wait)
    browser.set_window_size(width, 1000)
    browser.get(f"{live_server.url}/admin/payments/payment/")
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))

    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == len(busy_day)
    header = browser.find_element(By.CSS_SELECTOR, "#result_list thead th.column-status_display")
    heights = {row.size["height"] for row in rows}
    # One line per row: no id, label or reference wraps (a wrapped cell doubles a row).
    assert max(heights) < 2 * min(heights), heights
    assert header.size["height"] < 50
    for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list td, #result_list th"):
        assert cell.size["height"] <= max(heights) + 1
    # No sideways scrolling: the table fits beside the filters.
    table = browser.find_element(By.ID, "result_list")
    container = browser.find_element(By.CSS_SELECTOR, "#changelist .results")
    assert table.size["width"] <= container.size["width"] + 1
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    # Quiet rows: the flag only on the one that needs review; failures say why.
    assert len(browser.find_elements(By.CSS_SELECTOR, ".gateway-flag")) == 1
    reasons = browser.find_elements(By.CSS_SELECTOR, ".gateway-reason")
    assert reasons
    assert reasons[0].get_attribute("title").startswith("MTN could not process")
    screenshot(browser, "payment-list", width)


def test_support_searches_as_they_type_and_reads_a_payment(
    live_server: Any, browser: Any, wait: Any, support: Any, busy_day: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    paid = busy_day[0]
    log_in(browser, live_server, wait)

    def search(term: str) -> list[Any]:
        browser.get(f"{live_server.url}/admin/payments/payment/")
        box = wait.until(ec.presence_of_element_located((By.ID, "searchbar")))
        box.send_keys(term, Keys.ENTER)
        wait.until(ec.url_contains("q="))
        return browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")

    # The first segment of the id, as the list shows it.
    [row] = search(str(paid.pk).split("-")[0])
    assert row.find_element(By.CSS_SELECTOR, ".gateway-id").get_attribute("title") == str(paid.pk)
    # The payer's number as the API takes it, with the +.
    assert [
        r.find_element(By.CSS_SELECTOR, ".gateway-id").get_attribute("title")
        for r in search(f"+{paid.payer}")
    ] == [str(paid.pk)]

    # Open it: its fields, and its audit trail on the same page.
    row = search(str(paid.pk).split("-")[0])[0]
    row.find_element(By.CSS_SELECTOR, "th a").click()
    trail = wait.until(ec.presence_of_element_located((By.ID, "audit-trail")))
    assert str(paid.pk) in browser.find_element(By.ID, "content-main").text
    assert "payment.created" in trail.text
    assert "payment.succeeded" in trail.text
    assert "api_key:mgw_testkey0" in trail.text
    assert " UTC" in trail.text
    assert "MTN reference ID" in browser.find_element(By.ID, "content-main").text
    callbacks = browser.find_element(By.ID, "mtn-callbacks").text
    assert "Per-payment URL" in callbacks
    deliveries = browser.find_element(By.ID, "merchant-deliveries").text
    assert "payment.succeeded" in deliveries
    assert "merchant is down" in deliveries
    # The untrusted metadata and MTN body are shown as text, never run.
    assert HOSTILE in browser.find_element(By.ID, "content-main").text
    assert browser.execute_script("return window.__xss === undefined")
    screenshot(browser, "payment-page", 1366)


def test_the_favicon_and_view_site_work_in_the_browser(
    live_server: Any, browser: Any, wait: Any, support: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in(browser, live_server, wait)
    favicon = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/favicon.ico').then(r => done(r.status + ' ' + r.headers.get('content-type')));"
    )
    assert favicon == "200 image/svg+xml"
    browser.find_element(By.CSS_SELECTOR, "#user-tools a[href='/api/docs/']").click()
    wait.until(ec.url_contains("/api/docs/"))
    browser.get(f"{live_server.url}/no-such-page")
    assert "Nothing here" in browser.find_element(By.TAG_NAME, "h1").text


@pytest.fixture
def refunded_day(tenant: Any, busy_day: Any) -> list[Any]:
    """Refunds as support sees them: several of one payment, one failed with MTN's code."""
    from conftest import fund_tenant
    from payments.models import Payout
    from payments.services import refund_create

    fund_tenant(tenant, "UGX")
    paid = busy_day[0]
    reasons = {"100": "damaged on arrival, customer sent photos", "200": "late", None: "size"}
    refunds = [
        refund_create(
            payment=paid,
            actor=Actor.system(),
            amount=None if amount is None else Decimal(amount),
            reason=reason,
        )
        for amount, reason in reasons.items()
    ]
    transfer_transition(
        transfer=refunds[1],
        target=Status.FAILED,
        actor=Actor.mtn(),
        failure_code="NOT_ENOUGH_FUNDS",
        failure_message="The disbursement account does not hold enough to refund the payer.",
    )
    # MTN errors of every kind this week, with MTN's longest codes, for the dashboard's table.
    for code in ("PAYEE_NOT_ALLOWED_TO_RECEIVE", "TRANSACTION_CANCELED", "RESOURCE_NOT_FOUND"):
        payout = make_transfer(tenant, model=Payout, reference=None)
        transfer_transition(
            transfer=payout,
            target=Status.FAILED,
            actor=Actor.mtn(),
            failure_code=code,
            failure_message="MTN refused it.",
        )
    return refunds


def test_refund_list_fits_at_1366_px(
    live_server: Any, browser: Any, wait: Any, support: Any, refunded_day: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in(browser, live_server, wait)
    browser.set_window_size(1366, 1000)
    browser.get(f"{live_server.url}/admin/payments/refund/")
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))

    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == len(refunded_day)
    heights = {row.size["height"] for row in rows}
    assert max(heights) < 2 * min(heights), heights
    table = browser.find_element(By.ID, "result_list")
    container = browser.find_element(By.CSS_SELECTOR, "#changelist .results")
    assert table.size["width"] <= container.size["width"] + 1
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    # Every column is shown whole, "created at" included.
    created = browser.find_element(By.CSS_SELECTOR, "#result_list thead th.column-created_at")
    assert created.is_displayed()
    assert created.location["x"] + created.size["width"] <= container.location["x"] + (
        container.size["width"] + 1
    )
    # The payment column shows the first segment of its id, the whole id on hover.
    link = rows[0].find_element(By.CSS_SELECTOR, "td.field-payment_short_link .gateway-id")
    assert link.get_attribute("title") == str(refunded_day[0].payment_id)
    screenshot(browser, "refund-list", 1366)


def test_dashboard_boxes_and_chart_labels_read_at_1366_px(
    live_server: Any, browser: Any, wait: Any, support: Any, refunded_day: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in(browser, live_server, wait)
    browser.set_window_size(1366, 1000)
    browser.get(f"{live_server.url}/admin/")
    board = wait.until(ec.presence_of_element_located((By.ID, "dashboard")))
    assert "PAYEE_NOT_ALLOWED_TO_RECEIVE" in board.text

    # No box is wider inside than it is shown (the MTN errors table overflowed its box).
    overflowing = browser.execute_script(
        "return [...document.querySelectorAll('.gateway-card')]"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id)"
    )
    assert overflowing == []
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    # Chart labels are drawn at 11 px or more on screen (the SVG is scaled to its box).
    smallest = browser.execute_script(
        "const svg = document.querySelector('#chart-payments svg.gateway-chart');"
        "const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;"
        "return Math.min(...[...svg.querySelectorAll('text.axis')]"
        ".map(t => parseFloat(getComputedStyle(t).fontSize) * scale));"
    )
    assert smallest >= 11, smallest
    screenshot(browser, "dashboard-errors", 1366)


def test_buttons_and_links_on_an_object_page_line_up(
    live_server: Any, browser: Any, wait: Any, support: Any, busy_day: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    log_in(browser, live_server, wait)
    browser.set_window_size(1366, 1000)
    browser.get(f"{live_server.url}/admin/payments/payment/{busy_day[0].pk}/change/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".object-tools")))

    tools = browser.find_elements(
        By.CSS_SELECTOR, ".object-tools li > a, .object-tools button.gateway-action"
    )
    assert len(tools) >= 2  # "re-check with MTN" (a button) and "history" (a link)
    assert len({tool.size["height"] for tool in tools}) == 1, [t.size for t in tools]
    assert len({tool.location["y"] for tool in tools}) == 1


def test_payout_batches_read_at_1366_px(
    live_server: Any, browser: Any, wait: Any, support: Any, tenant: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from payments.tests.admin.test_batch_admin import make_batch

    batch = make_batch(tenant, count=60, failed=2, succeeded=3)
    make_batch(tenant, count=3, failed=0, succeeded=3)  # a completed one beside it
    log_in(browser, live_server, wait)
    browser.set_window_size(1366, 1000)

    browser.get(f"{live_server.url}/admin/payments/payoutbatch/")
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 2
    progress = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".gateway-progress")]
    assert sorted(progress) == ["3/3 done, 0 failed", "5/60 done, 2 failed"]
    heights = {row.size["height"] for row in rows}
    assert max(heights) < 2 * min(heights), heights  # one line per row
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    screenshot(browser, "payout-batch-list", 1366)

    # The batch's page: its payouts, filtered to the failed ones, then the next page of all.
    browser.get(f"{live_server.url}/admin/payments/payoutbatch/{batch.pk}/change/")
    section = wait.until(ec.presence_of_element_located((By.ID, "batch-payouts")))
    assert len(section.find_elements(By.CSS_SELECTOR, "tbody tr")) == 50
    assert "Page 1 of 2 (60 payouts)" in section.text
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    screenshot(browser, "payout-batch-page", 1366)
    section.find_element(By.LINK_TEXT, "FAILED").click()
    wait.until(ec.url_contains("items_status=FAILED"))
    section = browser.find_element(By.ID, "batch-payouts")
    failed_rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(failed_rows) == 2
    assert all("PAYEE_NOT_FOUND" in row.text for row in failed_rows)
    section.find_element(By.LINK_TEXT, "All").click()
    wait.until(ec.presence_of_element_located((By.ID, "batch-payouts")))
    browser.find_element(By.CSS_SELECTOR, "#batch-payouts-pages a[rel=next]").click()
    wait.until(ec.url_contains("items_page=2"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#batch-payouts tbody tr")) == 10

    # "Download results (CSV)" answers the report (fetched by the page, with its session).
    link = browser.find_element(By.ID, "batch-results-csv")
    head = browser.execute_async_script(
        "const done = arguments[1];"
        "fetch(arguments[0]).then(r => r.text().then(t => done(r.status + ' ' + "
        "r.headers.get('content-type') + ' ' + t.split('\\r\\n').length)));",
        link.get_attribute("href"),
    )
    assert head == "200 text/csv 62"  # the header, 60 payouts and the final line break
