from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.decorators import org_role_required


@org_role_required()
def index(request: HttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "community/index.html", {})
