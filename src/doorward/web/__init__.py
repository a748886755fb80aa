"""The HTTP face of doorward: the FastAPI app factory, schemas, error table and transports."""

from doorward.web.app import create_app

__all__ = ["create_app"]
