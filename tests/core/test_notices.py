"""What makes two logins one device (core/notices.py): its name and its network, not its exact
User-Agent or address."""

from __future__ import annotations

from datetime import UTC, datetime

from doorward.core.devices import describe_device
from doorward.core.models import Sighting
from doorward.core.notices import device_digest

CHROME_120 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
CHROME_121 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/121.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def seen(address: str, user_agent: str) -> Sighting:
    return Sighting(datetime(2026, 1, 1, tzinfo=UTC), address, describe_device(user_agent))


def test_an_updated_browser_in_the_same_network_is_the_same_device() -> None:
    assert device_digest(seen("192.0.2.10", CHROME_120)) == device_digest(seen("192.0.2.77", CHROME_121))
    assert device_digest(seen("2001:db8::1", CHROME_120)) == device_digest(seen("2001:db8::ff", CHROME_120))


def test_another_network_or_browser_is_another_device() -> None:
    here = device_digest(seen("192.0.2.10", CHROME_120))
    assert device_digest(seen("198.51.100.10", CHROME_120)) != here
    assert device_digest(seen("192.0.2.10", FIREFOX)) != here
    assert device_digest(seen("2001:db8:0:1::1", CHROME_120)) != device_digest(
        seen("2001:db8::1", CHROME_120)
    )


def test_the_digest_holds_neither_the_address_nor_the_user_agent() -> None:
    digest = device_digest(seen("192.0.2.10", CHROME_120))
    assert len(digest) == 32 and b"192.0.2" not in digest and b"Chrome" not in digest
