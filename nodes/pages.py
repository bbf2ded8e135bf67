# SPDX-License-Identifier: MIT
"""Sites and pages: what a site module registers, and what a page function receives.

    from zeromesh.nodes import Part, Site

    site = Site("ecards")

    @site.page("card.html")
    def card(req, gather):
        got = gather(card=Part("cards", {"op": "get", "id": req.params["id"]}))
        return {"card": got["card"]}, [f"card:{req.params['id']}"]

A page function returns its template context, or (context, tags). It may set
`req.status`, `req.response_headers` and `req.cache_ttl`, add `req.tags`,
render sub-templates (`req.render`) and cache them (`req.fragment`).
A template without a page function renders with the route's path parameters
as its context.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from markupsafe import Markup

from . import names
from .features import FeatureSwitches
from .fragments import FragmentCache
from .gather import Gathered, Part, gather

Page = Callable[..., Any]


class Site:
    """A registry of page functions by template name (shared by every template set)."""

    def __init__(self, name: str = "site") -> None:
        self.name = name
        self.pages: dict[str, Page] = {}

    def page(self, template: str) -> Callable[[Page], Page]:
        def register(fn: Page) -> Page:
            self.pages[template] = fn
            return fn

        return register

    def get(self, template: str) -> Page | None:
        return self.pages.get(template)


def load_site(spec: str | None) -> Site:
    """`package.module`, `package.module:attr` or `path/to/file.py[:attr]`; attr defaults to `site`."""
    if not spec:
        return Site()
    target, _, attr = spec.partition(":")
    if target.endswith(".py"):
        path = Path(target).resolve()
        module_spec = importlib.util.spec_from_file_location(f"zeromesh_site_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load a site module from {path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    site = getattr(module, attr or "site", None)
    if not isinstance(site, Site):
        raise TypeError(f"{spec}: expected a zeromesh.nodes.Site named {attr or 'site'!r}")
    return site


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


class PageRequest:
    """One render request as a page function sees it (the HTTP mapping's headers, parsed)."""

    def __init__(
        self,
        job: Any,
        *,
        env: Any,
        template_set: str,
        client: Any,
        features: FeatureSwitches,
        fragments: FragmentCache,
        deadline: float,
        gather_deadline: float,
    ) -> None:
        h = job.headers
        self.job = job
        self.template: str = h.get(names.H_TEMPLATE, "")
        self.site: str = str(h.get(names.H_SITE) or "")
        self.template_set = template_set
        self.method: str = str(h.get(names.H_METHOD) or "GET")
        self.path: str = str(h.get(names.H_PATH) or "/")
        self.query: str = str(h.get(names.H_QUERY) or "")
        self.headers = _str_map(h.get(names.H_HEADERS))
        self.host: str = str(h.get(names.H_HOST) or "")
        self.client_address: str = str(h.get(names.H_CLIENT) or "")
        self.route: str = str(h.get(names.H_ROUTE) or "")
        self.params = _str_map(h.get(names.H_PARAMS))
        self.body: bytes = job.body
        self.trace: str = job.trace
        self.id: str = job.id  # the page request's id: the gathered parts' parent in the trace
        self.deadline = deadline
        self.gather_deadline = gather_deadline
        # What the page decides about its response.
        self.status = 200
        self.response_headers: dict[str, str] = {}
        self.cache_ttl: int | None = None
        self.tags: set[str] = set()
        self.degraded: dict[str, str] = {}
        self.features_used: set[str] = set()
        self._env = env
        self._client = client
        self._features = features
        self._fragments = fragments
        self._args: dict[str, str] | None = None

    @property
    def args(self) -> dict[str, str]:
        """The query string's first value per name."""
        if self._args is None:
            self._args = {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}
        return self._args

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def feature(self, name: str) -> bool:
        """Is `name` on? The page then depends on it (tag feature:NAME)."""
        self.features_used.add(name)
        return self._features.is_on(name)

    def gather(self, **parts: Part) -> Gathered:
        got = gather(self._client, parts, self.gather_deadline, self._features, trace=self.trace, parent=self.id)
        self.degraded.update(got.degraded)
        self.features_used.update(got.features)
        return got

    def push(
        self, queue: str, body: bytes, headers: dict[str, Any] | None = None, at: datetime.datetime | None = None
    ) -> str:
        """Queue a job (a form's work, once the page has checked it), for now or `at` that instant;
        its id once the broker confirmed it."""
        return self._client.push(queue, body, headers=headers, timeout=max(0.1, self.remaining()), at=at)

    def publish(self, topic: str, body: bytes) -> None:
        """Publish an event (at most once, SPEC 8.3): for what a page did, such as a card scheduled."""
        self._client.publish(topic, body)

    def render(self, template: str, **context: Any) -> Markup:
        """A sub-template of this site rendered to safe HTML (to pass into the page's context)."""
        from .templating import describe

        try:
            return Markup(self._env.get_template(template).render({"feature": self.feature, **context}))
        except Exception as exc:
            raise describe(exc, template, [Path(p) for p in self._env.loader.searchpath]) from None

    def fragment(self, key: str, tags: Iterable[str], fn: Callable[[], Any], ttl: float | None = None) -> Markup:
        """fn()'s HTML, cached on this node under `key` (per template set) until one of its tags is invalidated.

        fn returns the HTML, or (html, more_tags) when the tags depend on data fn
        fetched itself: a hit then costs no request at all. The page carries the
        fragment's tags, so the edge drops the page when the fragment goes.
        """
        value, all_tags = self._fragments.get_or_render_tagged(f"{self.template_set}:{key}", tags, fn, ttl)
        self.tags.update(all_tags)
        return Markup(value)

    def info(self) -> dict[str, Any]:
        """What templates see as `request` (plain values only)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "args": self.args,
            "host": self.host,
            "site": self.site or self.template_set,
            "params": self.params,
            "route": self.route,
        }
