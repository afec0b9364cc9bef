"""A labelled corpus for free-text PII detection: strings that hold PII (by kind) and look-alikes that
must come out of `scrub_text` unchanged. Built from value lists × the places PII hides (a page path, a
query string, a sentence, glued to text), so each kind is tried a few dozen ways."""

from __future__ import annotations

from urllib.parse import quote

EMAILS = [
    "jane.doe@example.com",
    "john.doe@gmail.com",
    "JOHN.DOE@GMAIL.COM",
    "Jane.Doe+shop@Mail.Example.org",
    "josé@example.com",
    "müller@firma.de",
    "françois.dupont@orange.fr",
    "zoë_o'brien@example.ie".replace("'", ""),
    "a@b.co",
    "x_y-z@sub.domain.co.uk",
    "user123@domain-with-dash.io",
    "first.last@xn--mnchen-3ya.de",
    "ünïcödé@exämple.com",
    "support@acme.travel",
    "o.k.@strange.example",
    "e@localhost",
    "name.surname@company.com.br",
    "12345@numbers.net",
]
EMAIL_PLACES = [
    "{v}",
    "/users/{v}/settings",
    "/p?email={v}&x=1",
    "mailto:{v}",
    "contact {v}, please",
    "/users/{enc}/settings",
    "?to={enc}",
    "<{v}>",
]

PHONES = [
    "555.123.4567",
    "555-123-4567",
    "(555) 123-4567",
    "(555)123-4567",
    "555 123 4567",
    "1-555-123-4567",
    "+1 555 123 4567",
    "+1 (555) 123-4567",
    "+15551234567",
    "+44 20 7946 0958",
    "+44 7911 123456",
    "0049 30 1234567",
    "+49 30 1234567",
    "+49 (30) 1234-567",
    "030 1234567",
    "030/1234567",
    "07911 123456",
    "020 7946 0958",
    "+33 1 23 45 67 89",
    "01 23 45 67 89",
    "+91 98765 43210",
    "+81 3-1234-5678",
    "+55 11 98765-4321",
    "+5511987654321",
    "0171-1234567",
]
PHONE_PLACES = ["{v}", "call {v} now", "/contact/{v}/", "tel:{v}", "Tel. {v}"]
CUED_BARE = ["tel:5551234567", "phone=07911123456", "call 5551234567", "mobile: 4915112345678"]

IPV4 = [
    "192.168.1.10",
    "10.0.0.7",
    "203.0.113.77",
    "8.8.8.8",
    "192.168.001.010",
    "172.16.254.1",
    "255.255.255.254",
]
IPV4_PLACES = [
    "{v}",
    "host{v}",
    "ip={v}",
    "from {v}:8080",
    "http://{v}/admin",
    "[{v}]",
    "x-forwarded-for: {v}, 10.1.1.1",
]

IPV6 = [
    "2001:db8:1234:5678::9",
    "fe80::1",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "2a00:1450:4001:81b::200e",
    "fd12:3456:789a:1::1",
]
IPV6_PLACES = ["{v}", "ip={v}", "host{v}", "[{v}]:443", "from {v}: refused", "{v}%eth0"]

LOOKALIKES = [
    # times and dates
    "12:34:56",
    "at 12:34:56",
    "10:00:00Z",
    "2026-11-29T10:00:00Z",
    "2026-11-29T10:00:00.123+05:30",
    "2026-11-29",
    "29.11.2026",
    "11/29/2026",
    "29/11/2026 10:00",
    "05.11.2026 10:00",
    "20261129",
    "1733212800",
    "1733212800123",
    "Sun, 29 Nov 2026 10:00:00 GMT",
    "2026-W48",
    "P1DT2H",
    # versions
    "Chrome/124.0.0.0",
    "OPR/109.0.0.0",
    "Safari/537.36",
    "Version/17.4.1",
    "Firefox/115.0",
    "Edg/124.0.2478.80",
    "Chrome/120.0.6099.230",
    "Android 14; Build/UQ1A.240105.004",
    "v1.2.3",
    "lodash@4.17.21",
    "node@18.19.0",
    "python 3.11.7",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148",
    # hashes, uuids
    "d41d8cd98f00b204e9800998ecf8427e",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "123e4567-e89b-12d3-a456-426614174000",
    "12345678-1234-5678-1234-567812345678",
    "0bcebe72-1cd7-41e1-a298-ea4681477ae7",
    "sha256:5551234567abcdef",
    "commit 5551234567890abc",
    # ids
    "s_3a9f01234567",
    "s_a5551234567",
    "s-u_100280-2026120300",
    "2026120300123456",
    "u_000123",
    "i_00042",
    "order-5551234567",
    "ORD_2026_0012345678",
    "/orders/2026120300123456",
    "/session/s_303dd8fb83e4/p",
    "/item/i_1234567/reviews",
    "0012345678",
    "ref=AB12345678",
    "cust#100280",
    # prices and numbers
    "$1,234.56",
    "1.234.567,89 €",
    "€ 1 234 567",
    "12345.67",
    "USD 5551234.00",
    "-23.55",
    "3.14159",
    "1e+10",
    "1,000,000",
    "99.99 EUR",
    # ISBNs and codes
    "978-3-16-148410-0",
    "ISBN 978-0-306-40615-7",
    "0-306-40615-2",
    "ISBN 0306406152",
    "ISBN-10: 0306406152",
    "EAN 4006381333931",
    # colons that are no address
    "std::vector",
    "a:b:c",
    "00:1a:2b:3c:4d:5e",
    "urn:isbn:0451450523",
    "Foo::Bar::baz",
    "::",
    "ratio 16:9:4",
    # at-signs that are no email
    "@mention",
    "meet @ 5pm",
    "user@",
    "@example.com",
    "a @ b",
    # paths and pages
    "/",
    "/p",
    "/search",
    "/cart/checkout",
    "/c/electronics/page/2",
    "/static/app.3f9a01.js",
    "https://t.co/",
    "https://www.example.com/a/b?",
    "https://shop.example.com/product/12345",
    "São Paulo",
    "Zürich",
    "New York",
    "Saint-Étienne",
    "ios",
    "safari",
    "mobile",
    "page 2 of 10",
    "qty 3 x 19.99",
    "tracking 1Z999AA10123456784",
    "+1 day",
    "UTC+05:30",
    "GMT-0800",
    "2.0.0.0",
    "Windows NT 10.0.19045",
    "192.168.1.0",
    "10.0.0.0",
    "10.0.0.0/8",
    "network 192.168.1.0/24",
]


def labelled() -> list[tuple[str, str | None, str]]:
    """``(text, kind, the PII value)``; kind None for a look-alike (its value is the text itself)."""
    out: list[tuple[str, str | None, str]] = []
    for v in EMAILS:
        enc = quote(v, safe=".-_~")
        out += [(place.format(v=v, enc=enc), "email", v) for place in EMAIL_PLACES]
    for v in PHONES:
        out += [(place.format(v=v), "phone", v) for place in PHONE_PLACES]
    out += [(text, "phone", text.split(":")[-1].split("=")[-1].split()[-1]) for text in CUED_BARE]
    for v in IPV4:
        out += [(place.format(v=v), "ipv4", v) for place in IPV4_PLACES]
    for v in IPV6:
        out += [(place.format(v=v), "ipv6", v) for place in IPV6_PLACES]
    out += [(text, None, text) for text in LOOKALIKES]
    return out
