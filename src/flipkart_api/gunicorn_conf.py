"""gunicorn settings, derived from the one settings object."""

from __future__ import annotations

from flipkart_api.settings import load_settings

_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
worker_class = "gthread"
threads = _settings.web_threads
# An in-process cache is per process: with several workers a write in one would leave the
# others serving stale reads, so without Redis there is exactly one worker.
workers = _settings.web_concurrency if _settings.redis_url else 1
timeout = 30
graceful_timeout = 20  # compose/k8s stop grace periods are set above this
keepalive = 75  # longer than nginx's upstream keepalive_timeout (60 s), so nginx closes first
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
# X-Forwarded-* are handled by werkzeug's ProxyFix (PROXY_HOPS), in one place.
forwarded_allow_ips = "127.0.0.1"
reload = _settings.web_reload
control_socket_disable = True  # no gunicornc here; and the root filesystem is read-only
