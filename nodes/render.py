# SPDX-License-Identifier: MIT
"""The rendering node: a gevent worker for service `render` that turns render requests into pages.

A REQUEST follows the HTTP mapping (protocol/SPEC.md): `render.template`
names the template, `render.site` the template set, `http.params` the path
parameters, and so on. The node runs the site's page function for that
template if there is one (which may gather data from other services), renders
the template in the site's sandboxed environment, and replies with the HTML
and the `http.status`, `http.headers`, `cache.tags` (and `cache.ttl`) headers.

Template errors and sandbox violations become an ERROR reply (code remote)
whose message names the template and line (TemplateFailure); a required part
that failed becomes one too (PartFailed). Neither stops the node.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
import time
from typing import Any

from zeromesh import Job, Reply, Worker
from zeromesh.endpoints import FAILOVER_S

from . import names
from .control import ControlListener
from .features import FeatureSwitches
from .fragments import FragmentCache
from .pages import PageRequest, Site
from .templating import TemplateFailure, TemplateSets, describe

log = logging.getLogger("zeromesh.nodes.render")

DEFAULT_SERVICE = "render"
"""The service name a render node serves unless told otherwise."""

DEFAULT_CONCURRENCY = 100
"""Render greenlets at once per node."""

GATHER_MARGIN_S = 0.15
"""A gather's deadline is the request's minus this (or a quarter of what is left, if less):
time kept to render the page and send it back."""

DEGRADED_TTL_S = 5
"""`cache.ttl` of a page rendered with an optional part missing: cache it briefly, then try again."""

DEFAULT_TIMEOUT_S = 5.0
"""A render request without a timeout (impossible from the broker) gets this deadline."""


@functools.lru_cache(maxsize=1024)
def content_type(template: str) -> str:
    kind = mimetypes.guess_type(template)[0] or "text/html"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith(("+xml", "/json")) else kind


class BadRenderRequest(ValueError):
    """The request does not say what to render."""


class RenderNode:
    """Serves `service` on `worker` (which must be a gevent-mode Worker) with `client` for gathers.

    Everything is passed in; `build()` wires the usual set from endpoints.
    """

    def __init__(
        self,
        worker: Worker,
        client: Any,
        templates: TemplateSets,
        site: Site,
        *,
        service: str = DEFAULT_SERVICE,
        features: FeatureSwitches | None = None,
        fragments: FragmentCache | None = None,
        redis: Any = None,
        gather_margin: float = GATHER_MARGIN_S,
    ) -> None:
        if worker.pool != "gevent":
            raise TypeError("a render node needs Worker(pool='gevent')")
        if not getattr(client, "green", False):
            raise TypeError("a render node needs a green Client (gathers run in greenlets)")
        self.worker = worker
        self.client = client
        self.templates = templates
        self.site = site
        self.service = service
        self.features = features if features is not None else FeatureSwitches()
        self.fragments = fragments if fragments is not None else FragmentCache()
        self.control = ControlListener(client, self.fragments, self.features, redis)
        self.gather_margin = gather_margin
        self.rendered = 0
        self.failed = 0
        worker.handler(service)(self.handle)

    @classmethod
    def build(
        cls,
        endpoint: str,
        pub_endpoint: str,
        templates_dir: str,
        site: Site,
        *,
        service: str = DEFAULT_SERVICE,
        concurrency: int = DEFAULT_CONCURRENCY,
        dev: bool = False,
        bytecode_dir: str | None = None,
        redis: Any = None,
        label: str | None = None,
        failover_s: float = FAILOVER_S,
    ) -> RenderNode:
        """`endpoint` and `pub_endpoint`: one broker's, or lists (the worker serves every broker,
        the client uses one at a time and moves after `failover_s`)."""
        from zeromesh import Client

        worker = Worker(endpoint, concurrency=concurrency, label=label, pool="gevent")
        client = Client(endpoint, pub_endpoint, green=True, failover_s=failover_s)
        templates = TemplateSets(templates_dir, dev=dev, bytecode_dir=bytecode_dir)
        return cls(worker, client, templates, site, service=service, redis=redis)

    # -- lifetime ----------------------------------------------------------

    def start(self) -> RenderNode:
        self.control.start()
        self.worker.start()
        return self

    def run(self, grace: float = 10.0) -> None:
        """Serve until SIGTERM/SIGINT (in the main thread) or stop()."""
        self.start()
        try:
            self.worker.run(grace)
        finally:
            self.close()

    def stop(self, grace: float = 10.0) -> None:
        self.worker.stop(grace)
        self.close()

    def close(self) -> None:
        self.control.stop()
        if not self.client.closed:
            self.client.close()

    # -- one request -------------------------------------------------------

    def handle(self, job: Job) -> Reply:
        try:
            reply = self._render(job)
        except Exception:
            self.failed += 1
            raise
        self.rendered += 1
        return reply

    def _render(self, job: Job) -> Reply:
        template = job.headers.get(names.H_TEMPLATE)
        if not isinstance(template, str) or not template:
            raise BadRenderRequest(f"a render request names its template in the header {names.H_TEMPLATE!r}")
        site_name = job.headers.get(names.H_SITE)
        template_set = self.templates.site_for(site_name if isinstance(site_name, str) else None)
        env = self.templates.env(template_set)
        deadline = job.received_at + (job.timeout_s or DEFAULT_TIMEOUT_S)
        remaining = deadline - time.monotonic()
        gather_deadline = deadline - min(self.gather_margin, max(0.0, remaining) / 4)
        req = PageRequest(
            job,
            env=env,
            template_set=template_set,
            client=self.client,
            features=self.features,
            fragments=self.fragments,
            deadline=deadline,
            gather_deadline=gather_deadline,
        )

        page = self.site.get(template)
        if page is not None:
            context, tags = _split_result(page(req, req.gather), template)
            req.tags.update(tags)
        else:
            context = {**req.params, "params": req.params}
        context.setdefault("request", req.info())
        context.setdefault("feature", req.feature)

        try:
            html = env.get_template(template).render(context)
        except TemplateFailure:
            raise
        except Exception as exc:
            raise describe(exc, template, self.templates.search_path(template_set)) from None

        req.tags.update(names.FEATURE_TAG_PREFIX + f for f in req.features_used)
        headers: dict[str, Any] = {
            names.H_STATUS: req.status,
            names.H_HEADERS: {"Content-Type": content_type(template), **req.response_headers},
            names.H_CACHE_TAGS: sorted(req.tags),
        }
        ttl = req.cache_ttl
        if req.degraded:
            # Don't let a page missing a part stay in caches for the route's full TTL.
            ttl = DEGRADED_TTL_S if ttl is None else min(ttl, DEGRADED_TTL_S)
            headers[names.H_HEADERS]["X-Degraded"] = ",".join(sorted(req.degraded))
        if ttl is not None:
            headers[names.H_CACHE_TTL] = int(ttl)
        return Reply(html.encode("utf-8"), headers)


def _split_result(result: Any, template: str) -> tuple[dict[str, Any], list[str]]:
    """A page's return value: context, or (context, tags)."""
    if isinstance(result, tuple) and len(result) == 2:
        context, tags = result
    else:
        context, tags = result, ()
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise TypeError(
            f"the page function for {template!r} returned {type(context).__name__}, "
            "not a context dict or (context, tags)"
        )
    if isinstance(tags, str):
        tags = [tags]
    return dict(context), [str(t) for t in tags or ()]
