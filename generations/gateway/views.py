"""The API tokens page: make a token (shown once), see when each was last used and what it spent, revoke one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from generations.gateway import caps, tokens
from generations.gateway.forms import TokenForm
from generations.gateway.models import ApiToken
from sora_studio.htmx import partial_wanted, vary_on_htmx


def _rows(user) -> list[ApiToken]:
    rows = list(ApiToken.objects.owned_by(user))
    for token in rows:
        token.spent = caps.committed(token)
    return rows


def _render(request: HttpRequest, form: TokenForm, *, secret: str = "", status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "rows": _rows(request.user),
        "secret": secret,
        "api_base": request.build_absolute_uri(reverse("api:videos")).removesuffix("/videos"),
    }
    template = "gateway/tokens.html#tokens" if partial_wanted(request) else "gateway/tokens.html"
    return vary_on_htmx(render(request, template, context, status=status))


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The creator's tokens and the form for a new one; a new token's secret is shown in this answer only."""
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            _, secret = tokens.issue(request.user, form.cleaned_data["name"], form.cleaned_data["monthly_cap"])
            return _render(request, TokenForm(), secret=secret)
        return _render(request, form, status=400)
    return _render(request, TokenForm())


@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a token working, for good."""
    token = get_object_or_404(ApiToken.objects.owned_by(request.user), pk=pk)
    token.revoke()
    if request.htmx:
        token.spent = caps.committed(token)
        return render(request, "gateway/tokens.html#row", {"token": token})
    messages.success(request, f"The token “{token.name}” is revoked.")
    return redirect("gateway:tokens")
