"""The simulated platform's vocabulary: bounded enums and the shares they occur in.

Backfill (vectorised) and live traffic (row by row) both draw from these tables, so the
history and the live stream look alike. Shares follow the seeds: seed 003's failure mix,
seed 000's test/live split, seed 001's services.
"""

from __future__ import annotations

from dataclasses import dataclass

# (failure_code, share of failed attempts). The contract's label maps the raw codes after
# "expired_card"/"processing_error" to "other".
FAILURE_CODES: tuple[tuple[str, float], ...] = (
    ("card_declined", 0.45),
    ("insufficient_funds", 0.30),
    ("authentication_required", 0.15),
    ("expired_card", 0.04),
    ("processing_error", 0.03),
    ("do_not_honor", 0.015),
    ("fraudulent", 0.01),
    ("lost_card", 0.005),
)
LABELLED_FAILURE_CODES = (
    "card_declined",
    "insufficient_funds",
    "authentication_required",
    "expired_card",
    "processing_error",
)

CARD_BRANDS: tuple[tuple[str, float], ...] = (
    ("visa", 0.52),
    ("mastercard", 0.33),
    ("amex", 0.09),
    ("verve", 0.04),
    ("discover", 0.02),
)
CARD_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.35),
    ("GB", 0.2),
    ("DE", 0.15),
    ("NG", 0.12),
    ("FR", 0.1),
    ("NL", 0.08),
)

# Each location settles in one currency; NGN goes through Paystack, the rest through Stripe.
CURRENCIES: tuple[tuple[str, float], ...] = (
    ("USD", 0.4),
    ("EUR", 0.3),
    ("GBP", 0.18),
    ("NGN", 0.12),
)
PSP_BY_CURRENCY = {"NGN": "paystack", "USD": "stripe", "EUR": "stripe", "GBP": "stripe"}

CITIES = (
    "Amsterdam",
    "Austin",
    "Berlin",
    "Boston",
    "Brighton",
    "Chicago",
    "Denver",
    "Dublin",
    "Edinburgh",
    "Hamburg",
    "Lagos",
    "Leeds",
    "Lisbon",
    "London",
    "Lyon",
    "Madrid",
    "Manchester",
    "Milan",
    "Munich",
    "Nairobi",
    "New York",
    "Paris",
    "Portland",
    "Rotterdam",
    "Seattle",
    "Toronto",
    "Utrecht",
    "Vienna",
    "Abuja",
    "Zurich",
)
RESOURCE_KINDS = ("Room", "Chair", "Court", "Studio", "Desk", "Bay", "Table", "Lane")
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chen",
    "Dara",
    "Emeka",
    "Fatima",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
    "Maya",
    "Noah",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tomi",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zane",
)
LAST_NAMES = (
    "Adeyemi",
    "Bauer",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Muller",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Visser",
    "Wang",
    "Young",
    "Zhang",
)


@dataclass(frozen=True)
class Route:
    """One API endpoint: its share of traffic and its latency distribution."""

    method: str
    route: str
    weight: float
    median_ms: float
    sigma: float  # of the log-normal body; the tail is added on top


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/availability", 0.22, 45, 0.55),
    Route("GET", "/v1/bookings", 0.09, 60, 0.6),
    Route("POST", "/v1/bookings", 0.08, 120, 0.5),
    Route("GET", "/v1/bookings/{id}", 0.12, 25, 0.5),
    Route("POST", "/v1/bookings/{id}/cancel", 0.015, 90, 0.5),
    Route("POST", "/v1/bookings/{id}/confirm", 0.05, 110, 0.5),
    Route("GET", "/v1/customers/{id}", 0.05, 20, 0.45),
    Route("POST", "/v1/customers", 0.02, 70, 0.5),
    Route("GET", "/v1/locations", 0.04, 15, 0.4),
    Route("GET", "/v1/resources", 0.06, 35, 0.5),
    Route("POST", "/v1/payment_intents", 0.08, 240, 0.6),
    Route("POST", "/v1/payment_intents/{id}/confirm", 0.07, 420, 0.7),
    Route("POST", "/v1/payment_intents/{id}/capture", 0.05, 300, 0.6),
    Route("POST", "/v1/refunds", 0.005, 260, 0.6),
    Route("POST", "/v1/webhooks/stripe", 0.03, 18, 0.4),
    Route("POST", "/v1/webhooks/paystack", 0.01, 22, 0.4),
)
# Share of requests that land in the slow tail, and how much slower they are.
LATENCY_TAIL_SHARE = 0.015
LATENCY_TAIL_FACTOR = 12.0

STATUS_CODES: tuple[tuple[int, float], ...] = (
    (200, 0.86),
    (201, 0.09),
    (400, 0.012),
    (401, 0.006),
    (402, 0.01),
    (404, 0.01),
    (409, 0.004),
    (422, 0.004),
    (429, 0.001),
    (500, 0.0016),
    (502, 0.0004),
    (503, 0.0006),
    (504, 0.0004),
)
SERVER_ERROR_CODES = (500, 502, 503, 504)

ERROR_TYPES = {
    400: ("invalid_request_error", "Missing required param: resource_id."),
    401: ("authentication_error", "Invalid API key provided: sk_live_****"),
    402: ("card_error", "Your card was declined."),
    404: ("invalid_request_error", "No such booking: bk_{id}"),
    409: ("idempotency_error", "Keys for idempotent requests can only be used once."),
    422: ("invalid_request_error", "The slot is no longer available."),
    429: ("rate_limit_error", "Too many requests hit the API too quickly."),
    500: ("api_error", "Internal server error: lock wait timeout exceeded"),
    502: ("api_error", "Bad gateway from upstream calendar provider"),
    503: ("api_error", "Service unavailable: connection pool exhausted"),
    504: ("api_error", "Gateway timeout waiting for payment processor"),
}
STACK_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/platform/api/handlers/{handler}.py", line {line}, in handle\n'
    "    result = service.{handler}(request)\n"
    '  File "/srv/platform/services/{handler}.py", line {line2}, in {handler}\n'
    "    row = session.execute(stmt).one()\n"
    "{error}"
)
API_VERSIONS: tuple[tuple[str, float], ...] = (
    ("2026-09-01", 0.55),
    ("2026-03-15", 0.3),
    ("2025-10-01", 0.15),
)

CALENDAR_PROVIDERS: tuple[tuple[str, float, float], ...] = (
    # provider, share of syncs, share that fail
    ("google", 0.6, 0.01),
    ("outlook", 0.3, 0.02),
    ("ical", 0.1, 0.05),
)
CALENDAR_ERRORS = (
    "401 invalid_grant: token expired",
    "429 rate limit exceeded",
    "timeout after 30s",
    "calendar not found",
)

SERVICES = ("booking_api", "payment_webhook_handler", "calendar_sync")
# One anomaly per alert (opsdeck simulate --inject KIND).
INJECTION_KINDS = (
    "api-5xx-burst",
    "calendar-sync-down",
    "chargeback-spike",
    "checks-stop",
    "double-booking",
    "payment-failure-spike",
    "psp-mismatch",
    "psp-outage",
    "service-down",
    "slow-tickets",
    "stuck-bookings",
    "webhook-backlog",
    "webhook-handler-down",
)
SERVICE_CHECK_INTERVAL_SECONDS = 15

TICKET_SUBJECTS = (
    "Double charged for my booking",
    "Cannot reschedule appointment",
    "Refund not received",
    "Calendar not syncing",
    "Booking confirmation email missing",
    "Payment failed but money taken",
    "Wrong location on booking",
    "Staff member unavailable",
)
TICKET_PRIORITIES: tuple[tuple[str, float], ...] = (
    ("low", 0.25),
    ("normal", 0.55),
    ("high", 0.15),
    ("urgent", 0.05),
)
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent", "service_not_provided")
CHARGEBACK_REASONS = ("fraudulent", "product_not_received", "duplicate", "general")

# Shares of the payment flow.
ATTEMPT_FAILURE_SHARE = 0.08  # of first attempts
RETRY_SHARE = 0.55  # of failed attempts that are retried
RETRY_SUCCESS_SHARE = 0.42  # of retries that succeed
REFUND_SHARE = 0.03
PARTIAL_REFUND_SHARE = 0.01
VOID_SHARE = 0.01
CHARGEBACK_SHARE = 0.001  # of captured payments; the alert fires at 0.5 %
# A payment failure spike: first attempts fail this often, with the usual mix of codes at
# both PSPs. With retries about 40 % of attempts fail (twice the spike alert's 20 % floor),
# while each PSP still captures about 60 %, above the PSP outage alert's 50 %.
SPIKE_ATTEMPT_FAILURE_SHARE = 0.35
# A PSP outage: every attempt at this PSP fails with this code (the NGN locations' PSP, so
# the rest of the platform keeps taking payments).
OUTAGE_PSP = "paystack"
OUTAGE_FAILURE_CODE = "processing_error"

BOOKING_CANCEL_SHARE = 0.08
BOOKING_FAIL_SHARE = 0.04
BOOKING_EXPIRE_SHARE = 0.03  # never confirmed, cancelled by the platform
BOOKING_PAID_SHARE = 0.9  # paid online; the rest pay at the venue
SLOT_MINUTES = 30
OPEN_HOUR, CLOSE_HOUR = 8, 20
MAX_LEAD_DAYS = 14


@dataclass(frozen=True)
class Scale:
    """Volumes per simulated day, and the size of the slowly changing dimensions."""

    name: str
    bookings_per_day: float
    transactions_per_day: float
    api_logs_per_day: float
    sessions_per_day: float
    tickets_per_day: float
    calendar_syncs_per_day: float
    locations: int
    staff: int
    resources: int
    customers: int
    accounts: int


SCALES = {
    "small": Scale("small", 3_334, 10_000, 33_334, 10_000, 120, 2_000, 20, 200, 500, 20_000, 200),
    "medium": Scale(
        "medium", 33_334, 100_000, 333_334, 100_000, 600, 10_000, 60, 1_500, 5_000, 200_000, 2_000
    ),
    "large": Scale(
        "large",
        333_334,
        333_334,
        1_666_667,
        1_000_000,
        3_000,
        50_000,
        200,
        8_000,
        30_000,
        1_000_000,
        10_000,
    ),
}

# Daily seasonality (hour of day, UTC) and weekly seasonality (Monday = 0); mean 1.
HOURLY = (
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.2,
    0.45,
    0.9,
    1.35,
    1.6,
    1.7,
    1.65,
    1.55,
    1.5,
    1.45,
    1.45,
    1.5,
    1.65,
    1.75,
    1.6,
    1.3,
    0.9,
    0.5,
    0.25,
)
WEEKLY = (0.95, 0.97, 1.0, 1.02, 1.1, 1.05, 0.91)


def labelled_failure_code(code: str | None) -> str:
    """The bounded label value DESIGN.md's metric contract uses for a failure code."""
    if code is None:
        return "none"
    return code if code in LABELLED_FAILURE_CODES else "other"
