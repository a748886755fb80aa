"""Mail: the core's notifications rendered from templates and delivered off the request path."""

from doorward.mail.outbox import Mail, MailOutbox
from doorward.mail.transports import FileTransport, SmtpTransport, Transport, last_mail, plain_text

__all__ = ["FileTransport", "Mail", "MailOutbox", "SmtpTransport", "Transport", "last_mail", "plain_text"]
