"""The gateway's route table, and HAProxy and nginx configurations generated from it.

The gateway routes ``/api/v1/<segment>[/...]`` to the service that answers that segment
and each service's public paths (``/verificar/{csv}``…) to ``/api/v1/<segment>/<upstream>``.
An established proxy in front of services run as separate processes has to route the
same way; generating its configuration from this one table keeps the two from drifting.
It is what ``tests.bench.gateway_hop`` measures the gateway's own proxy against, and what
an operator may put in front (or instead, for the routing alone) of it.

These configurations only route: authentication, rate limits, request ids and
problem+json answers are the gateway's and are not reproduced (see docs/benchmarks.md,
"Gateway hop"). The services verify the token themselves in any case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from services.common.public_paths import PublicPath

__all__ = ["PublicRoute", "RouteTable", "haproxy_config", "nginx_config"]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SEGMENT = re.compile(r"[a-z0-9-]+")
# The problem+json the routers answer for a path no service owns, as the gateway would.
# Characters a path may hold that mean something in a regular expression.
_SPECIAL = frozenset(".+*?()[]^$|\\")
_NOT_FOUND = (
    '{"type":"https://consistorio.es/problemas/no-encontrado","title":"Not Found",'
    '"status":404,"detail":"No existe el recurso."}'
)


@dataclass(frozen=True)
class PublicRoute:
    """A public path as a regular expression and its rewrite to the service's path."""

    pattern: str  # anchored, with one group a parameter
    rewrite: str  # with \\1, \\2... for the groups
    segment: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class RouteTable:
    """Where each gateway segment's service listens, and the public paths."""

    upstreams: Mapping[str, tuple[str, int]]
    public: tuple[PublicRoute, ...]

    @classmethod
    def from_gateway(
        cls, service_urls: Mapping[str, str], public_paths: Iterable[PublicPath]
    ) -> RouteTable:
        """The table of a gateway built with these ``service_urls`` and ``public_paths``."""
        upstreams: dict[str, tuple[str, int]] = {}
        for segment, url in service_urls.items():
            if not _SEGMENT.fullmatch(segment):
                raise ValueError(f"segment {segment!r} cannot name a backend")
            parts = urlsplit(url)
            if parts.scheme != "http" or parts.hostname is None or parts.path not in ("", "/"):
                raise ValueError(f"{segment}: only http://host[:port] URLs route ({url})")
            upstreams[segment] = (parts.hostname, parts.port or 80)
        public = tuple(_public_route(p) for p in public_paths if p.service in upstreams)
        return cls(upstreams=upstreams, public=public)


def _public_route(path: PublicPath) -> PublicRoute:
    names: list[str] = []

    def group(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return "([^/]+)"

    literal = "".join("\\" + c if c in _SPECIAL else c for c in path.path)
    pattern = "^" + _PARAM.sub(group, literal) + "$"
    rewrite = _PARAM.sub(
        lambda m: f"\\{names.index(m.group(1)) + 1}", f"/api/v1/{path.service}/{path.upstream}"
    )
    methods = tuple(sorted({*path.methods, *(("HEAD",) if "GET" in path.methods else ())}))
    return PublicRoute(pattern=pattern, rewrite=rewrite, segment=path.service, methods=methods)


def haproxy_config(
    table: RouteTable,
    *,
    port: int,
    host: str = "127.0.0.1",
    threads: int | None = None,
    connect_timeout_seconds: float = 5.0,
    timeout_seconds: float = 30.0,
    max_body_bytes: int = 64 * 1024 * 1024,
) -> str:
    """An HAProxy (2.2 or later) configuration routing like the gateway, in the foreground."""
    lines = ["global", "    maxconn 4096"]
    if threads is not None:
        lines.append(f"    nbthread {threads}")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        f"    timeout connect {int(connect_timeout_seconds * 1000)}ms",
        f"    timeout client {int(timeout_seconds * 1000)}ms",
        f"    timeout server {int(timeout_seconds * 1000)}ms",
        "    timeout http-request 10s",
        "",
        "frontend gateway",
        f"    bind {host}:{port}",
        "    http-request deny deny_status 413 "
        f"if {{ req.hdr_val(content-length) gt {max_body_bytes} }}",
    ]
    for route in table.public:
        methods = " ".join(route.methods)
        lines.append(
            f"    http-request replace-path {route.pattern} {route.rewrite} "
            f"if {{ method {methods} }} !{{ path_beg /api/v1/ }}"
        )
    for segment in table.upstreams:
        lines += [
            f"    acl seg_{_name(segment)} path /api/v1/{segment}",
            f"    acl seg_{_name(segment)} path_beg /api/v1/{segment}/",
            f"    use_backend svc_{_name(segment)} if seg_{_name(segment)}",
        ]
    lines += [
        "    default_backend not_found",
        "",
        "backend not_found",
        "    http-request return status 404 content-type application/problem+json "
        f"string '{_NOT_FOUND}'",
    ]
    for segment, (upstream_host, upstream_port) in table.upstreams.items():
        lines += [
            "",
            f"backend svc_{_name(segment)}",
            "    http-reuse safe",
            f"    server {_name(segment)} {upstream_host}:{upstream_port}",
        ]
    return "\n".join(lines) + "\n"


def nginx_config(
    table: RouteTable,
    *,
    port: int,
    prefix: Path,
    host: str = "127.0.0.1",
    workers: int | str = "auto",
    user: str | None = None,
    connect_timeout_seconds: float = 5.0,
    timeout_seconds: float = 30.0,
    max_body_bytes: int = 64 * 1024 * 1024,
) -> str:
    """An nginx configuration routing like the gateway, in the foreground (``daemon off``).

    Bodies stream both ways (no request or response buffering), as in the gateway;
    ``prefix`` holds the pid file and nginx's temporary directories.
    """
    lines = ["daemon off;", f"worker_processes {workers};", f"pid {prefix / 'nginx.pid'};"]
    if user is not None:
        lines.append(f"user {user};")
    lines += [
        "error_log stderr warn;",
        "events { worker_connections 4096; }",
        "http {",
        "    access_log off;",
        f"    client_body_temp_path {prefix / 'client_body'};",
        f"    proxy_temp_path {prefix / 'proxy'};",
        f"    fastcgi_temp_path {prefix / 'fastcgi'};",
        f"    uwsgi_temp_path {prefix / 'uwsgi'};",
        f"    scgi_temp_path {prefix / 'scgi'};",
    ]
    for segment, (upstream_host, upstream_port) in table.upstreams.items():
        lines.append(
            f"    upstream svc_{_name(segment)} {{ server {upstream_host}:{upstream_port}; "
            "keepalive 64; }"
        )
    lines += [
        "    server {",
        f"        listen {host}:{port};",
        f"        client_max_body_size {max_body_bytes};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_request_buffering off;",
        "        proxy_buffering off;",
        f"        proxy_connect_timeout {int(connect_timeout_seconds * 1000)}ms;",
        f"        proxy_read_timeout {int(timeout_seconds * 1000)}ms;",
        f"        proxy_send_timeout {int(timeout_seconds * 1000)}ms;",
    ]
    for route in table.public:
        rewrite = re.sub(r"\\(\d)", r"$\1", route.rewrite)
        lines += [
            f'        location ~ "{route.pattern}" {{',
            f"            limit_except {' '.join(route.methods)} {{ deny all; }}",
            f'            rewrite "{route.pattern}" "{rewrite}" break;',
            f"            proxy_pass http://svc_{_name(route.segment)};",
            "        }",
        ]
    for segment in table.upstreams:
        for location in (f"= /api/v1/{segment}", f"/api/v1/{segment}/"):
            lines.append(
                f"        location {location} {{ proxy_pass http://svc_{_name(segment)}; }}"
            )
    lines += [
        "        location / {",
        "            default_type application/problem+json;",
        f"            return 404 '{_NOT_FOUND}';",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _name(segment: str) -> str:
    return segment.replace("-", "_")
