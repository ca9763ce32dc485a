"""Query parameters an endpoint does not know are refused, as unknown body fields are.

A typo such as ``?stauts=FAILED`` or a filter the endpoint lacks (``?payer=...`` where no
such filter exists) would otherwise be ignored silently and answer with everything: the
contract makes it a 400 ``validation_error`` naming the parameter in ``fields``.

Views declare what they take with ``KnownQueryParamsMixin``::

    class PaymentListView(KnownQueryParamsMixin, APIView):
        query_params = {"GET": ("status", "reference", "limit", "cursor")}

Methods not listed take no query parameter at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework.request import Request

from gateway.errors import ValidationFailed, error_body

_MAX_NAME = 64  # a hostile name is cut before it is echoed in ``fields``


def check_query_params(params: Iterable[str], *, allowed: Collection[str]) -> None:
    """Raise ``ValidationFailed`` naming every parameter of ``params`` not in ``allowed``."""
    unknown = sorted({str(name) for name in params} - set(allowed))
    if not unknown:
        return
    takes = (
        f"this endpoint takes {', '.join(sorted(allowed))}"
        if allowed
        else "this endpoint takes none"
    )
    fields = {name[:_MAX_NAME]: [f"Unknown query parameter; {takes}."] for name in unknown}
    names = ", ".join(repr(name[:_MAX_NAME]) for name in unknown)
    plural = "s" if len(unknown) > 1 else ""
    raise ValidationFailed(f"Unknown query parameter{plural} {names}; {takes}.", fields=fields)


# For DRF views: refuse query parameters that ``query_params[method]`` does not list.
# Checked in ``initial`` after authentication, permissions and throttling, so a stranger
# still gets 401 first and a refused request still counts against the rate limit.
# (A comment, not a docstring: drf-spectacular would publish a view's inherited docstring.)
class KnownQueryParamsMixin:
    query_params: ClassVar[Mapping[str, Collection[str]]] = {}

    def get_query_params(self) -> Mapping[str, Collection[str]]:
        """The parameters each method takes; override when they depend on the view."""
        return self.query_params

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        declared = self.get_query_params()
        method = "GET" if request.method == "HEAD" else (request.method or "")
        check_query_params(request.query_params.keys(), allowed=declared.get(method, ()))


def trailing_slash_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """404 for an API path with a trailing slash, pointing at the path without it.

    The API's paths have no trailing slash (``APPEND_SLASH`` is off: a redirect would lose a
    POST's body). Answering the slashed path as well would give every resource two URLs.
    """
    target = request.path.rstrip("/")
    try:
        resolve(target)
    except Resolver404:
        message = f"No such path: {request.path}."
    else:
        message = (
            f"No such path: {request.path}. The API's paths have no trailing slash: use {target}."
        )
    return JsonResponse(error_body("not_found", message), status=404)
