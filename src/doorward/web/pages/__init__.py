"""Browser pages: log in, register, the account page, and the form posts behind them.

Pages are plain HTML forms that work without JavaScript. A form posts to a path of its own (the JSON
API's bodies stay as they are) and a success answers 303 to the next page; a failure shows the same
form again with the reason. A browser session travels in an HttpOnly cookie (``web.cookies``) and is
never shown to a page; the CSRF defence is ``web.security``'s middleware, so routes here need none.

By concept: ``login`` (log in with the password and the second step, register, log out), ``account``
(the account page, its sessions, the password change), ``mfa`` (setting up two-step verification, the
recovery codes, turning it off), ``passkeys`` (renaming and removing them; adding one is the
script's), ``links`` (the pages that mails link to: password reset, email verification), ``site``
(the root, the favicon, the 404 page), ``care`` (a new email address and its links, deleting the
account); what they share in ``render`` (templates, pages, the error page), ``account_view`` (the
account page that refused forms show again) and ``forms`` (reading a form, the signed-in browser and
``account_action``, the preamble of every account page).

Most forms answer a success with a 303; a few answer with the page itself, because what it shows is
shown once and kept nowhere to redirect to: the second step (its sign-in's token), the set-up (the
secret) and the recovery codes.
"""

from fastapi import APIRouter

from doorward.core.devices import describe_device
from doorward.web.pages import account, care, links, login, mfa, passkeys, site
from doorward.web.pages.forms import ORIGIN_ONLY_FORMS
from doorward.web.pages.render import error_page
from doorward.web.pages.site import not_found_page

__all__ = ["ORIGIN_ONLY_FORMS", "describe_device", "error_page", "not_found_page", "router"]

router = APIRouter(include_in_schema=False)
for _concept in (login, account, care, mfa, passkeys, links, site):
    router.include_router(_concept.router)
