"""A local HTTP server speaking the part of HubSpot's CRM v3 API Closer uses, standing in for
HubSpot in tests: create, update (PATCH) and search (EQ filters; groups OR-ed, filters AND-ed) of
contacts, deals and notes, kept in memory, with HubSpot's error bodies for a missing or wrong
Bearer token (401), invalid or missing properties and associations (400), a duplicate contact
email (409) and an unknown id (404).

Failure modes, set by the test: ``rate_limit(n)`` answers the next n requests with 429 and
``Retry-After: 1``; ``outage = True`` answers 503; ``stop()`` closes the port (connection
refused) until ``start()``; ``slow_creates`` holds object types whose create is stored but answered
only after ``slow_s`` seconds (a client timeout after HubSpot committed); ``searchable = False``
makes search find nothing (HubSpot's search index lags a few seconds behind writes). Every
request is recorded in ``requests``."""

import asyncio
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

PROPERTIES = {
    "contacts": {"firstname", "lastname", "email", "phone", "company"},
    "deals": {"dealname", "amount", "deal_currency_code", "pipeline", "dealstage", "closedate"},
    "notes": {"hs_note_body", "hs_timestamp"},
}
REQUIRED = {"contacts": set(), "deals": {"dealname", "dealstage"}, "notes": {"hs_timestamp"}}
ASSOCIATIONS = {"deals": {3: "contacts"}, "notes": {214: "deals", 202: "contacts"}}  # HUBSPOT_DEFINED type ids
DEFAULT_PIPELINE_STAGES = {
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
}
AUTHENTICATION_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


@dataclass
class FakeHubSpot:
    token: str = "pat-na1-test-token"
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {kind: {} for kind in PROPERTIES})
    requests: list[Recorded] = field(default_factory=list)
    outage: bool = False
    searchable: bool = True
    slow_creates: set[str] = field(default_factory=set)
    slow_s: float = 0.0
    server: TestServer | None = None
    port: int = 0
    _rate_limited: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rate_limit(self, requests: int) -> None:
        """Answer the next ``requests`` requests with HubSpot's secondly-limit 429."""
        self._rate_limited = requests

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def properties(self, kind: str) -> list[dict[str, str]]:
        return [record["properties"] for record in self.objects[kind].values()]

    @web.middleware
    async def _gate(self, request: web.Request, handler) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, AUTHENTICATION_MESSAGE, category="INVALID_AUTHENTICATION")
        if self._rate_limited:
            self._rate_limited -= 1
            return web.json_response(
                {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": "SECONDLY",
                },
                status=429,
                headers={"Retry-After": "1"},
            )
        if self.outage:
            return web.Response(
                status=503,
                text="<html><body>503 Service Temporarily Unavailable</body></html>",
                content_type="text/html",
            )
        return await handler(request)

    async def _create(self, request: web.Request) -> web.Response:
        kind, body = request.match_info["kind"], await request.json()
        properties = body.get("properties") or {}
        error = self._invalid(kind, properties, creating=True) or self._invalid_associations(kind, body)
        if error:
            return error
        if kind == "contacts" and properties.get("email"):
            existing = self._find(kind, "email", properties["email"])
            if existing:
                return _error(409, f"Contact already exists. Existing ID: {existing[0]['id']}", category="CONFLICT")
        record = {
            "id": str(next(self._ids)),
            "properties": dict(properties),
            "associations": [
                (a["types"][0]["associationTypeId"], str(a["to"]["id"])) for a in body.get("associations", [])
            ],
        }
        self.objects[kind][record["id"]] = record
        if kind in self.slow_creates:
            await asyncio.sleep(self.slow_s)
        return web.json_response(_public(record), status=201)

    async def _update(self, request: web.Request) -> web.Response:
        kind, object_id = request.match_info["kind"], request.match_info["id"]
        record = self.objects[kind].get(object_id)
        if record is None:
            return _error(404, "Object not found.  objectId are usually numeric.", category="OBJECT_NOT_FOUND")
        properties = (await request.json()).get("properties") or {}
        error = self._invalid(kind, properties, creating=False)
        if error:
            return error
        record["properties"].update(properties)
        return web.json_response(_public(record))

    async def _search(self, request: web.Request) -> web.Response:
        kind, body = request.match_info["kind"], await request.json()
        found = [
            _public(record)
            for record in (self.objects[kind].values() if self.searchable else [])
            if any(all(_matches(record, f) for f in group["filters"]) for group in body.get("filterGroups", []))
        ]
        limit = body.get("limit", 10)
        return web.json_response({"total": len(found), "results": found[:limit]})

    def _find(self, kind: str, name: str, value: str) -> list[dict]:
        return [r for r in self.objects[kind].values() if (r["properties"].get(name) or "").lower() == value.lower()]

    def _invalid(self, kind: str, properties: dict[str, Any], creating: bool) -> web.Response | None:
        problems = [
            {
                "isValid": False,
                "message": f'Property "{name}" does not exist',
                "error": "PROPERTY_DOESNT_EXIST",
                "name": name,
            }
            for name in properties
            if name not in PROPERTIES[kind]
        ]
        if creating:
            problems += [
                {"isValid": False, "message": f"{name} is required", "error": "REQUIRED_FIELD", "name": name}
                for name in sorted(REQUIRED[kind])
                if not properties.get(name)
            ]
        email = properties.get("email")
        if email and not EMAIL.match(email):
            problems.append(
                {
                    "isValid": False,
                    "message": f"Email address {email} is invalid",
                    "error": "INVALID_EMAIL",
                    "name": "email",
                }
            )
        if "amount" in properties:
            try:
                Decimal(properties["amount"])
            except InvalidOperation:
                problems.append(
                    {
                        "isValid": False,
                        "message": f"{properties['amount']} is not a valid number",
                        "error": "INVALID_DECIMAL",
                        "name": "amount",
                    }
                )
        if "pipeline" in properties and properties["pipeline"] != "default":
            problems.append(
                {
                    "isValid": False,
                    "message": f"{properties['pipeline']} is not a valid pipeline",
                    "error": "INVALID_OPTION",
                    "name": "pipeline",
                }
            )
        if "dealstage" in properties and properties["dealstage"] not in DEFAULT_PIPELINE_STAGES:
            problems.append(
                {
                    "isValid": False,
                    "error": "INVALID_OPTION",
                    "name": "dealstage",
                    "message": f"{properties['dealstage']} was not one of the allowed options",
                }
            )
        if not problems:
            return None
        return _error(400, f"Property values were not valid: {json.dumps(problems, separators=(',', ':'))}")

    def _invalid_associations(self, kind: str, body: dict[str, Any]) -> web.Response | None:
        for association in body.get("associations", []):
            spec = association["types"][0]
            target = ASSOCIATIONS.get(kind, {}).get(spec["associationTypeId"])
            if spec.get("associationCategory") != "HUBSPOT_DEFINED" or target is None:
                return _error(400, f"invalid association type {spec} from {kind}")
            if str(association["to"]["id"]) not in self.objects[target]:
                missing = f"{target} {association['to']['id']}"
                return _error(400, f"One or more associations are invalid: {missing} not found")
        return None

    async def start(self) -> "FakeHubSpot":
        """Serve (again, on the same port after :meth:`stop`)."""
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/crm/v3/objects/{kind:contacts|deals|notes}/search", self._search)
        app.router.add_post("/crm/v3/objects/{kind:contacts|deals|notes}", self._create)
        app.router.add_patch("/crm/v3/objects/{kind:contacts|deals|notes}/{id}", self._update)
        self.server = TestServer(app, host="127.0.0.1", port=self.port or None)
        await self.server.start_server()
        self.port = self.server.port
        return self

    async def stop(self) -> None:
        """Close the port: clients get connection refused. The data is kept."""
        await self.server.close()


def _matches(record: dict, spec: dict[str, str]) -> bool:
    if spec["operator"] != "EQ":
        raise NotImplementedError(spec["operator"])
    return (record["properties"].get(spec["propertyName"]) or "").lower() == str(spec["value"]).lower()


def _public(record: dict) -> dict:
    return {
        "id": record["id"],
        "properties": record["properties"],
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z",
        "archived": False,
    }


def _error(status: int, message: str, category: str = "VALIDATION_ERROR") -> web.Response:
    return web.json_response(
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}, status=status
    )
