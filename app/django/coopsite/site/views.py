import os
import socket
import time

from django.db import connection
from django.http import HttpResponse, JsonResponse

from coopsite.site.models import Visit


def health(request):
    """200 once the database answers."""
    with connection.cursor() as c:
        c.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain")


def version(request):
    return HttpResponse(os.environ.get("APP_VERSION", "django") + "\n", content_type="text/plain")


def slow(request):
    """Answers after ?ms= milliseconds (at most 60 s): a request in flight during a cutover."""
    ms = min(int(request.GET.get("ms", "0") or 0), 60000)
    time.sleep(ms / 1000)
    return HttpResponse("slow done\n", content_type="text/plain")


def index(request):
    Visit.objects.create(path=request.path[:200])
    return JsonResponse({"coop": os.environ.get("COOP_ID", ""), "visits": Visit.objects.count()})


def lookup(request):
    """Looks up a host name (?name=, default LOOKUP_HOST or the proxy's container) on every request,
    as an app that opens a database connection per request (Django's default) looks up its host."""
    name = request.GET.get("name") or os.environ.get("LOOKUP_HOST", "coop-proxy")
    started = time.monotonic()
    addrs = sorted({a[4][0] for a in socket.getaddrinfo(name, 5432, proto=socket.IPPROTO_TCP)})
    return JsonResponse({"name": name, "addresses": addrs, "ms": round((time.monotonic() - started) * 1000, 1)})
