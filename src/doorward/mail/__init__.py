"""Mail: the core's notifications rendered from templates and delivered off the request path."""

from doorward.mail.outbox import Mail, MailOutbox
from doorward.mail.transports import FileTransport, SmtpTransport, Transport

__all__ = ["FileTransport", "Mail", "MailOutbox", "SmtpTransport", "Transport"]
