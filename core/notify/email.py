"""The email channel of watchers: a plain-text message through the SMTP server in the settings.

NotConfigured is raised when the app has no SMTP host: retrying cannot help until someone
sets one, so the delivery fails at once with a message saying what to set.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from common.settings import Settings
from core.notify.base import Channel, DeliveryError, NotConfigured
from core.schema_history import change_lines

TIMEOUT_S = 10
NOT_CONFIGURED = "email is not set up: set TRIBUTARY_SMTP_HOST (and TRIBUTARY_SMTP_PORT) for the app"


class EmailError(DeliveryError):
    """The mail server could not be reached or refused the message."""


def compose(document: dict, title: str) -> tuple[str, str]:
    """Subject and body of the email for one event; the same facts as the webhook document."""
    subject = f"[Tributary] feed {document['feed']}: {title}"
    duration = document.get("duration_s")
    lines = [
        f"Feed {document['feed']}: {title}.",
        "",
        f"Run:             {document['run_id']}",
        f"Status:          {document['status']}",
        f"Records written: {document['records_written']}",
        f"Records loaded:  {document['records_loaded']}",
        f"Started:         {document.get('started_at') or '-'}",
        f"Finished:        {document.get('finished_at') or '-'}",
        f"Duration:        {f'{duration:g} s' if duration is not None else '-'}",
    ]
    for destination, change in (document.get("schema_changes") or {}).items():
        lines += ["", f"Schema change in {destination}:", *(f"  {line}" for line in change_lines(change))]
    if document.get("error"):
        # Last, on lines of its own: a script's error is often a multi-line traceback.
        lines += ["", "Error:", document["error"]]
    lines += ["", f"Open the run: {document['link']}", ""]
    return subject, "\n".join(lines)


def _message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    # RFC 3834: tells out-of-office responders not to answer a robot.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def _describe(exc: Exception, settings: Settings) -> str:
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = "; ".join(f"{addr}: {code} {text.decode(errors='replace')}"
                             for addr, (code, text) in exc.recipients.items())
        return f"the mail server {server} refused the recipient ({refusals})"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"the mail server {server} answered {exc.smtp_code} {text}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"could not reach the mail server {server}: {exc.strerror}"
    return f"sending through the mail server {server} failed: {type(exc).__name__}: {exc}"


def send(settings: Settings, to: str, subject: str, body: str, timeout_s: float = TIMEOUT_S) -> None:
    if not settings.smtp_host:
        raise NotConfigured(NOT_CONFIGURED)
    message = _message(settings, to, subject, body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s) as client:
            if settings.smtp_starttls:
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                client.login(settings.smtp_username, settings.smtp_password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailError(_describe(exc, settings)) from None


class EmailChannel(Channel):
    name, label = "email", "Email"

    def send(self, target: str, title: str, document: dict, delivery_id: int, settings: Settings) -> None:
        subject, body = compose(document, title)
        send(settings, target, subject, body)

    def configured(self, settings: Settings) -> str | None:
        return None if settings.smtp_host else NOT_CONFIGURED
