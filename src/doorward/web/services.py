"""The one typed way from a request to the services that ``create_app``'s lifespan put on the app's state."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from doorward.wiring import Services


def services_of(request: HTTPConnection) -> Services:
    """The services of the app serving ``request`` (``app.state`` itself is untyped)."""
    services: Services = request.app.state.services
    return services
