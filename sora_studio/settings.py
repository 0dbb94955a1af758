"""Sora Studio settings: one file, every knob an environment variable with a working default.

Check out, `make run`, and it works: SQLite, the ORM broker and the embedded simulator.
`DATABASE_URL` switches to PostgreSQL, `REDIS_URL` switches django-q2 and the cache to Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sora_studio import storage

BASE_DIR = Path(__file__).resolve().parent.parent
# KEY=value lines that fill in variables not set in the environment: the same file honcho gives
# `make run`'s processes, so a `manage.py` command run by hand sees the same configuration.
# `manage.py seed_demo` writes the simulator's key here on a fresh install.
ENV_FILE = BASE_DIR / ".env"


def load_env_file(path: Path) -> None:
    """Plain KEY=value lines and # comments; a later line wins, as in honcho; the environment wins over both."""
    if not path.is_file():
        return
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    for name, value in values.items():
        os.environ.setdefault(name, value)


load_env_file(ENV_FILE)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    # Sessions, signed clip links, task signatures and (by default) API-key encryption hang on it.
    raise ImproperlyConfigured("Set SECRET_KEY (and ENCRYPTION_KEYS) in the environment when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Where this site is reachable from a provider's point of view. Used to build signed links to
# uploaded character clips for task_api backends, which take a `video_url` instead of a file.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_q",
    "characters",
    "generations",
    "generations.gateway",
    "simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "sora_studio.middleware.RejectNulCharactersMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "sora_studio.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "sora_studio.wsgi.application"

_SQLITE_OPTIONS = {
    # WAL lets the web process read while a worker writes; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on busy_timeout instead of failing with "database is locked".
    "init_command": "PRAGMA busy_timeout = 5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
}
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**_SQLITE_OPTIONS, "timeout": 20}
    # Opening a SQLite file is cheap, but running its init pragmas on every task is not: `make bench`
    # measured a worker's CPU per job at 67 ms with a connection per task and 37 ms with them kept 60 s.
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DB_CONN_MAX_AGE", "60"))
else:
    # PostgreSQL: a new connection costs a fork on the server and a few round trips. Issue 12 measured: with
    # CONN_MAX_AGE=0 a job opened 10 connections and used 3x the database CPU; 60 s raised throughput
    # from 8.0 to 11.5 jobs/s. Each web thread and qcluster process keeps one connection (django-q2
    # runs close_old_connections() before every task, so age and health are checked there); the health
    # check drops a connection the server closed (restart, failover) instead of failing the next query.
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DB_CONN_MAX_AGE", "60"))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", True)
    # Prepared statements: parameters bound on the server, and a statement run five times on a connection prepared
    # there, so PostgreSQL plans it once instead of on every run. The pipeline's statements run thousands of times;
    # bench_pipeline measured the server's CPU per job at 6.4-9.2 ms with them against 9.3-13.3 without. Off
    # (DB_PREPARED_STATEMENTS=false) behind a pooler in transaction mode that does not track prepared statements
    # (PgBouncer before 1.21, or without max_prepared_statements).
    if env_bool("DB_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2. It retries forever unless told otherwise (max_attempts=0); every task of ours is
# idempotent and state lives in our own tables, so a bounded retry after a lost worker is safe.
# retry > timeout > the slowest task, or a task would be handed out twice while still running.
Q_CLUSTER = {
    "name": "sora_studio",
    "workers": int(os.environ.get("Q_WORKERS", "3")),
    "timeout": int(os.environ.get("Q_TIMEOUT", "300")),
    "retry": int(os.environ.get("Q_RETRY", "360")),
    "max_attempts": int(os.environ.get("Q_MAX_ATTEMPTS", "3")),
    "catch_up": False,
    # Successful task results are not kept (-1): job state and history live in our own tables, and a
    # positive limit makes the result saver lock and scan that many rows after every task (at 500, about
    # 2,700 rows per job). Failures are always kept, for the admin's "Failed tasks".
    "save_limit": int(os.environ.get("Q_SAVE_LIMIT", "-1")),
    "ack_failures": True,
    "poll": 0.2,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
Q_CLUSTER["sync"] = env_bool("Q_SYNC", False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
X_FRAME_OPTIONS = "DENY"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Videos, thumbnails, clips, stills and exports go through Django's storage API: files under MEDIA_ROOT
# by default; an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set (sora_studio/storage.py), and
# then pages send creators to short-lived signed links (MEDIA_URL_SECONDS) instead of streaming files.
MEDIA_URL_SECONDS = storage.media_url_seconds(os.environ)
STORAGES = {
    "default": storage.default_storage(os.environ),
    # In production (DEBUG off) whitenoise serves the collected static files, compressed and with hashed
    # names cached for a year; `make prod` runs collectstatic first.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 60 * 1024 * 1024
# May the server fetch creator-given URLs on private/loopback addresses? Only in development,
# where the simulator is on loopback (see sora_studio/netguard.py).
ALLOW_PRIVATE_FETCH = env_bool("ALLOW_PRIVATE_FETCH", DEBUG)
CHARACTER_CLIP_MAX_BYTES = int(os.environ.get("CHARACTER_CLIP_MAX_BYTES", str(50 * 1024 * 1024)))

# API keys of backends are encrypted at rest with these Fernet keys (comma-separated, newest first,
# so keys can be rotated). Unset, a key is derived from SECRET_KEY: fine for development, but then
# changing SECRET_KEY makes stored API keys unreadable (the app says so loudly, it never sends
# ciphertext as a key).
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS", "")

# Generation pipeline knobs.
GENERATION_POLL_INTERVAL = float(os.environ.get("GENERATION_POLL_INTERVAL", "2"))
GENERATION_MAX_POLL_INTERVAL = float(os.environ.get("GENERATION_MAX_POLL_INTERVAL", "30"))
# A provider's own poll hint (openai-poll-after-ms) is followed, but never below this many seconds.
GENERATION_MIN_POLL_INTERVAL = float(os.environ.get("GENERATION_MIN_POLL_INTERVAL", "0.1"))
GENERATION_TIMEOUT = int(os.environ.get("GENERATION_TIMEOUT", str(30 * 60)))
GENERATION_MAX_SUBMIT_ATTEMPTS = int(os.environ.get("GENERATION_MAX_SUBMIT_ATTEMPTS", "5"))
# How long to keep looking for a job in the provider's list after a create whose answer was lost
# (backends that do not honour idempotency keys), before ending it as submit_unknown.
GENERATION_RECONCILE_SECONDS = int(os.environ.get("GENERATION_RECONCILE_SECONDS", "60"))
GENERATION_LEASE_SECONDS = int(os.environ.get("GENERATION_LEASE_SECONDS", "120"))
PROVIDER_CONNECT_TIMEOUT = float(os.environ.get("PROVIDER_CONNECT_TIMEOUT", "5"))
PROVIDER_READ_TIMEOUT = float(os.environ.get("PROVIDER_READ_TIMEOUT", "30"))
# A backend's circuit opens after this many transient failures in a row (5xx, timeouts, connection
# errors; not 429s): no new jobs go there for the cooldown, then one trial job decides.
CIRCUIT_FAILURES = int(os.environ.get("CIRCUIT_FAILURES", "5"))
CIRCUIT_COOLDOWN_SECONDS = int(os.environ.get("CIRCUIT_COOLDOWN_SECONDS", "60"))
# After a confirmed failure a job routed by policy moves to the next backend, at most this many times.
FALLBACK_LIMIT = int(os.environ.get("FALLBACK_LIMIT", "3"))
# The pump claims due jobs and hands them to the workers; it runs inside qcluster as a
# long-lived task (see generations/pump.py) or on its own with `manage.py pump`.
PUMP_TICK_SECONDS = float(os.environ.get("PUMP_TICK_SECONDS", "0.5"))
# A shift inside qcluster is short because a cluster asked to stop waits for its running tasks.
PUMP_RUN_SECONDS = int(os.environ.get("PUMP_RUN_SECONDS", "30"))
# The pump's own threads: a due step runs on one of them at once when one is free, and goes to the qcluster
# workers as a task otherwise (0: always a task). As many as a cluster has workers, by default.
PUMP_THREADS = int(os.environ.get("PUMP_THREADS", Q_CLUSTER["workers"]))
# Completion callbacks (generations/providers/webhooks.py): "auto" asks providers that offer them (Replicate,
# fal) to call back at SITE_URL/webhooks/<backend id>/ only when SITE_URL is on a public address; "on" always
# (a tunnel, a provider on the same network), "off" never. Jobs that asked for one are polled
# WEBHOOK_POLL_FACTOR times less often: polling stays the safety net for a callback that never comes.
WEBHOOKS_ENABLED = os.environ.get("WEBHOOKS_ENABLED", "auto").strip().lower()
if WEBHOOKS_ENABLED not in ("auto", "on", "off"):
    raise ImproperlyConfigured("WEBHOOKS_ENABLED is auto, on or off.")
WEBHOOK_POLL_FACTOR = float(os.environ.get("WEBHOOK_POLL_FACTOR", "5"))
WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", str(1024 * 1024)))

# The OpenAI-compatible API at /v1/ (generations/gateway): requests per token per window, counted in
# the database so every web process shares one count.
API_RATE_LIMIT = int(os.environ.get("API_RATE_LIMIT", "300"))
API_RATE_WINDOW_SECONDS = int(os.environ.get("API_RATE_WINDOW_SECONDS", "60"))
# Exports (zips of a series or of a whole library) are built by a worker. It holds a lease on the export
# and renews it as it copies files; a build silent for EXPORT_LEASE_SECONDS is given to another worker
# (at most EXPORT_MAX_ATTEMPTS builds). EXPORT_TIMEOUT is the task's own time limit, above Q_TIMEOUT:
# copying a library of thousands of videos takes minutes.
EXPORT_LEASE_SECONDS = int(os.environ.get("EXPORT_LEASE_SECONDS", "120"))
EXPORT_MAX_ATTEMPTS = int(os.environ.get("EXPORT_MAX_ATTEMPTS", "3"))
EXPORT_TIMEOUT = int(os.environ.get("EXPORT_TIMEOUT", "3600"))

# The built-in simulated provider (both protocols), mounted at /simulator/ when enabled.
SIMULATOR_ENABLED = env_bool("SIMULATOR_ENABLED", DEBUG)
SIMULATOR_SPEED = float(os.environ.get("SIMULATOR_SPEED", "1"))
# No key works until one is configured: `make run` (seed_demo) writes a random one to .env per
# install, because a well-known default would let anyone who can reach the site use the simulator.
SIMULATOR_API_KEYS = env_list("SIMULATOR_API_KEYS", "")
# Origins (scheme://host[:port]) the simulator may fetch character clips from; empty means the
# origin of SITE_URL, where the studio's signed clip links live. Anything else is refused, so the
# simulator is not a fetch-anything proxy.
SIMULATOR_FETCH_ORIGINS = env_list("SIMULATOR_FETCH_ORIGINS", "")
SIMULATOR_MAX_IN_FLIGHT = int(os.environ.get("SIMULATOR_MAX_IN_FLIGHT", "6"))
# Completion callbacks are signed with keys derived from SECRET_KEY and this number: change it to rotate them.
SIMULATOR_WEBHOOK_KEY_VERSION = int(os.environ.get("SIMULATOR_WEBHOOK_KEY_VERSION", "1"))
# Which simulated protocols deduplicate creates by Idempotency-Key (simulator/models.py); leave one out to
# play a provider without the feature (a create sent twice makes two videos).
SIMULATOR_IDEMPOTENCY_KEYS = env_list("SIMULATOR_IDEMPOTENCY_KEYS", "openai,task")
# Fault mode (simulator/faults.py): the share of calls that fail at random (0 = off), a seed for repeatable
# draws, the kinds to draw from (server_error, rate_limited, timeout, malformed, reset; empty = all), how long
# a `timeout` holds its answer (longer than the client's read timeout, PROVIDER_READ_TIMEOUT) and the
# Retry-After a `rate_limited` answer carries.
SIMULATOR_FAULT_RATE = float(os.environ.get("SIMULATOR_FAULT_RATE", "0"))
SIMULATOR_FAULT_SEED = os.environ.get("SIMULATOR_FAULT_SEED") or None
SIMULATOR_FAULT_KINDS = env_list("SIMULATOR_FAULT_KINDS", "")
SIMULATOR_FAULT_DELAY = float(os.environ.get("SIMULATOR_FAULT_DELAY", "35"))
SIMULATOR_FAULT_RETRY_AFTER = int(os.environ.get("SIMULATOR_FAULT_RETRY_AFTER", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # urllib3 logs request lines, never headers; keep it quiet anyway.
        "urllib3": {"level": "WARNING"},
        "django-q": {"level": os.environ.get("Q_LOG_LEVEL", "WARNING")},
    },
}

# --- Login throttling (django-axes) -----------------------------------------------------------------
# Failed log-ins are counted per account and per client address (every login form, /admin/login/ too:
# the count lives behind authenticate()). An account is locked after LOGIN_FAILURE_LIMIT failures, an
# address after LOGIN_ADDRESS_FAILURE_LIMIT (higher: people behind one office NAT share it), each for
# LOGIN_COOLOFF_MINUTES after its last counted failure. See sora_studio/login_throttle.py.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes asks: it turns a lock-out into the 429 page
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out attempt before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "20"))
LOGIN_COOLOFF_MINUTES = float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15"))
# How many reverse proxies in front of the app append to X-Forwarded-For. 0: the client address is the
# connecting address (REMOTE_ADDR) and X-Forwarded-For is ignored, since anyone can send it.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_HANDLER = "sora_studio.login_throttle.LoginThrottle"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # LoginThrottle gives each its own limit, in this order
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# Attempts made while locked out are refused without being counted, so a lock-out ends when it said it
# would (and the Retry-After we send is true) even if the form is sent again meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "sora_studio.login_throttle.client_address"
AXES_LOCKOUT_CALLABLE = "sora_studio.login_throttle.lockout_response"
AXES_VERBOSE = False
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # failures and lock-outs, not every successful log-in

# --- Production headers and request size ----------------------------------------------------------
# Content-Security-Policy (django-csp): scripts and styles only from our own static files. No inline
# <script>, on*= handler or style= attribute in our templates, and htmx runs with allowEval off and
# its indicator styles in studio.css (the htmx-config <meta> in base.html), so neither 'unsafe-inline'
# nor 'unsafe-eval' is needed.
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # data: for the empty favicon; the bucket's origin when media is served by signed links.
        "img-src": ["'self'", "data:", *storage.media_origins(os.environ)],
        "media-src": ["'self'", *storage.media_origins(os.environ)],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# HTTPS. Off by default so `make run` works on http://127.0.0.1; production sets them (see README).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
# Only sub-domains of this host (sub.studio.example.com), never its siblings: safe to default on.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # check --deploy asks for preload (security.W021). Preloading commits the whole registrable domain to
    # HTTPS in browsers' built-in lists, which a studio on someone's sub-domain cannot decide for them:
    # an operator opts in with SECURE_HSTS_PRELOAD=true.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Behind a TLS-terminating proxy, the header it sets to "https" (e.g. HTTP_X_FORWARDED_PROTO). The proxy
# must overwrite that header on every request, or a client could claim HTTPS itself.
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"].strip(), "https")
# The largest request body accepted, checked against Content-Length before any of it is read (413);
# Django itself never caps a multipart upload. A character clip plus the form around it.
MAX_REQUEST_BYTES = int(os.environ.get("MAX_REQUEST_BYTES", str(CHARACTER_CLIP_MAX_BYTES + 1024 * 1024)))
MIDDLEWARE.insert(0, "sora_studio.middleware.RequestSizeLimitMiddleware")
if not DEBUG:
    # Static files straight from the WSGI process (gunicorn), before sessions or auth are touched.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
