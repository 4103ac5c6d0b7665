"""Differential test of sluice's declarative interpreter against Airbyte's own runtime.

For each real manifest in manifests.lock (from its pinned, hash-checked PyPI wheel), the same
manifest and config run once through airbyte-cdk and once through sluice (imported as a signed
package, installed, synced into files), both against one local HTTP server that answers
deterministic responses shaped by the manifest's streams: records at each extractor's path,
generated from the stream's schema; pagination tokens, headers and stop fields that ask for a
second page; a 429 with Retry-After now and then. The clock is frozen at one instant for both
(freezegun in the CDK, libfaketime for sluice). Compared: the requests (method, path, query,
body), the records of every stream and the final state of every stream.

The report lists each manifest as identical, differs (what), refused (sluice's reason) or
broken (the CDK itself cannot run it); the run fails when an outcome is not the one the lock
expects. Usage: harness.py --sluice BIN --component WASM --wheels DIR --work DIR
[--only NAME]… [--report FILE].
"""

import argparse
import collections
import copy
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import yaml
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import (
    ManifestComponentTransformer,
)
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = "2025-01-05T00:00:00Z"
NOW_DT = datetime.datetime(2025, 1, 5, tzinfo=datetime.timezone.utc)
FAKETIME_LIBS = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
]
SENTINEL = "\x00"
#: Records on a first page when the manifest names no page size.
DEFAULT_PAGE = 3
#: The largest page the server fills (a bigger page size gets this many and no second page).
MAX_PAGE = 200
TIMEOUT = 120


# --- the lock ------------------------------------------------------------------------------


def read_lock(path):
    rows = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            package, version, sha256, expect = line.split()[:4]
            rows.append({"package": package, "version": version, "sha256": sha256, "expect": expect})
    return rows


# --- the manifest, as both runtimes get it -------------------------------------------------

URL_KEYS = {"url_base", "url", "token_refresh_endpoint"}
AUTHORITY = re.compile(r"https?://(?:\{\{.*?\}\}|[^/\s'\"{}])+")


def rewrite_urls(doc, origin, hosts):
    """Point every URL the manifest requests at the local server: `https://api.acme.com/v2`
    becomes `ORIGIN/_kN/v2`, one N per original host (so paths stay apart)."""

    def sub(m):
        key = m.group(0)
        if key.startswith(origin):
            return key
        hosts.setdefault(key, "_k%d" % len(hosts))
        return "%s/%s" % (origin, hosts[key])

    def walk(v):
        if isinstance(v, dict):
            for k, x in list(v.items()):
                if k in URL_KEYS and isinstance(x, str):
                    v[k] = AUTHORITY.sub(sub, x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    return doc


def extract(wheel, dest):
    """The manifest (with the wheel's spec embedded when it has none), the package name and
    the schemas, from a wheel."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        manifest = next(n for n in names if n.endswith("/manifest.yaml") and n.count("/") == 1)
        package = manifest.split("/")[0]
        doc = yaml.safe_load(z.read(manifest))
        if "spec" not in doc:
            for spec_name in ("spec.yaml", "spec.json"):
                if "%s/%s" % (package, spec_name) in names:
                    spec = yaml.safe_load(z.read("%s/%s" % (package, spec_name)))
                    doc["spec"] = {
                        "type": "Spec",
                        "connection_specification": spec["connectionSpecification"],
                    }
                    break
        schemas = {}
        for n in names:
            if n.startswith(package + "/schemas/") and n.endswith(".json"):
                schemas[n[len(package) + len("/schemas/") :]] = z.read(n)
    return package, doc, schemas


# --- configs from the spec -----------------------------------------------------------------

DATE_CANDIDATES = [
    "2025-01-01T00:00:00Z",
    "2025-01-01",
    "2025-01-01T00:00:00.000Z",
    "2025-01-01T00:00:00+00:00",
    "2025-01-01 00:00:00",
    "2025-01-01T00:00:00",
    "01/01/2025",
    "01-01-2025",
    "01/01/2025 00:00",
    "2025-01-01 00:00",
    "2025-01",
    "20250101",
]


def value_for(name, schema, origin, depth=0):
    """A value an operator could give for a property: its const, default, first example or
    enum value, else one of its type (dates early in the frozen week, URLs at the server)."""
    v = value_of(name, schema, origin, depth)
    if isinstance(v, str) and re.match(r"https?://", v) and not v.startswith(origin):
        # Never a real host: a URL in the config points at the local server.
        return origin + "/_kcfg"
    return v


def value_of(name, schema, origin, depth):
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    for key in ("oneOf", "anyOf"):
        if key in schema and schema[key]:
            return value_for(name, schema[key][0], origin, depth)
    typ = schema.get("type", "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "object":
        props = schema.get("properties", {})
        out = {}
        for k, p in props.items():
            # The required properties, and the optional ones a manifest most often reads
            # without a default: a start date, a choice of credentials.
            wanted = (
                k in schema.get("required", [])
                or (k.lower().startswith("start") and looks_like_date(k, p))
                or (isinstance(p, dict) and ("oneOf" in p or "anyOf" in p) and p.get("type") == "object")
            )
            if wanted:
                out[k] = value_for(k, p, origin, depth + 1)
        return out
    if "examples" in schema and schema["examples"]:
        ex = schema["examples"][0]
        if not (typ == "string" and looks_like_date(name, schema)):
            return ex
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if typ == "array":
        item = schema.get("items", {"type": "string"})
        return [value_for(name, item, origin, depth + 1)]
    if typ == "boolean":
        return False
    if typ == "integer":
        return int(schema.get("minimum", 10))
    if typ == "number":
        return float(schema.get("minimum", 10))
    pattern = schema.get("pattern")
    if looks_like_date(name, schema) or (pattern and "{4}" in pattern):
        for c in DATE_CANDIDATES:
            if not pattern or re.search(pattern, c):
                return c
        if schema.get("examples"):
            return schema["examples"][0]
    if "url" in name.lower() or schema.get("format") == "uri":
        return origin + "/_kcfg"
    if schema.get("airbyte_secret"):
        return "secret-%s-0123456789" % name
    pattern = schema.get("pattern")
    for c in ("value-%s" % name, "abc123", "us", "1", "a"):
        if not pattern or re.search(pattern, c):
            return c
    return "value"


def looks_like_date(name, schema):
    n = name.lower()
    return (
        schema.get("format") in ("date", "date-time")
        or n.endswith("_date")
        or n.startswith("start")
        or n.endswith("date")
        or "datetime" in n
    )


def make_config(spec, origin):
    cs = spec["connection_specification"]
    return value_for("config", dict(cs, type="object"), origin)


# --- the streams, as the server sees them ---------------------------------------------------


def render_shape(template, parameters, config):
    """A template as a regex: `parameters` and `config` filled in, anything else a wildcard."""
    if not isinstance(template, str):
        return re.escape(str(template))
    import jinja2

    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)

    class U(jinja2.ChainableUndefined):
        def __str__(self):
            return SENTINEL

    env.undefined = U
    try:
        text = env.from_string(template).render(parameters=parameters, config=config)
    except Exception:
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", SENTINEL, template)
    parts = [re.escape(p) for p in text.split(SENTINEL)]
    return "[^?]*?".join(parts)


class StreamShape:
    """What the server needs of one stream: where its requests go, where its records sit,
    how its pages continue, what its records hold."""

    def __init__(self, stream, config, schemas, index):
        self.name = stream.get("name") or "stream%d" % index
        params = stream.get("$parameters", {}) or {}
        retriever = stream.get("retriever", {}) or {}
        requester = retriever.get("requester", {}) or {}
        rparams = dict(params, **(requester.get("$parameters", {}) or {}))
        base = requester.get("url_base", "") or ""
        path = requester.get("path", "") or ""
        url = requester.get("url")
        full = url if url else (base.rstrip("/") + "/" + str(path).lstrip("/") if path else base)
        rx = render_shape(full, rparams, config)
        # scheme and authority are the server's own
        rx = re.sub(r"^http\\?://127\\?\.0\\?\.0\\?\.1:\d+", "", rx)
        # a query written into the path is not part of it
        rx = rx.split("\\?", 1)[0]
        self.path_re = re.compile("^" + rx.rstrip("/") + "/?$")
        self.literal = len(re.sub(r"\[\^\?\]\*\?", "", rx))
        selector = retriever.get("record_selector", {}) or {}
        extractor = selector.get("extractor", {}) or {}
        fp = extractor.get("field_path", []) or []
        self.field_path = [
            re.sub(r"\\(.)", r"\1", render_shape(p, dict(rparams, **(extractor.get("$parameters") or {})), config))
            for p in fp
        ]
        self.schema = self.load_schema(stream, schemas, params)
        pk = stream.get("primary_key")
        self.primary_key = [pk] if isinstance(pk, str) else [
            p if isinstance(p, str) else p[0] for p in (pk or []) if p
        ]
        inc = stream.get("incremental_sync") or {}
        self.cursor_field = inc.get("cursor_field") if isinstance(inc, dict) else None
        if isinstance(self.cursor_field, str) and "{{" in self.cursor_field:
            self.cursor_field = render_shape(self.cursor_field, params, config).replace("\\", "")
        fmts = (inc.get("cursor_datetime_formats") or []) if isinstance(inc, dict) else []
        self.cursor_format = fmts[0] if fmts else (inc.get("datetime_format") if isinstance(inc, dict) else None)
        self.paginator = retriever.get("paginator") or {}
        self.config = config
        self.params = rparams

    def load_schema(self, stream, schemas, params):
        loader = stream.get("schema_loader") or {}
        if isinstance(loader, list):
            loader = loader[0] if loader else {}
        if loader.get("type") == "InlineSchemaLoader":
            return loader.get("schema") or {}
        fp = loader.get("file_path")
        name = self.name
        if isinstance(fp, str):
            name = os.path.basename(render_shape(fp, dict(params, **(loader.get("$parameters") or {})), {}).replace("\\", ""))
            name = name[: -len(".json")] if name.endswith(".json") else name
        raw = schemas.get(name + ".json")
        return json.loads(raw) if raw else {}

    # pagination -------------------------------------------------------------------------

    def strategy(self):
        return self.paginator.get("pagination_strategy") or {}

    def page_size(self):
        size = self.strategy().get("page_size")
        if isinstance(size, str):
            try:
                size = int(InterpolatedString.create(size, parameters=self.params).eval(self.config))
            except Exception:
                size = None
        return size if isinstance(size, int) and size > 0 else None

    def token_option(self):
        return self.paginator.get("page_token_option") or {}


def shapes_of(doc, config, schemas):
    resolved = ManifestReferenceResolver().preprocess_manifest(copy.deepcopy(doc))
    resolved.setdefault("type", "DeclarativeSource")
    resolved = ManifestComponentTransformer().propagate_types_and_parameters("", resolved, {})
    streams = resolved.get("streams") or []
    return [StreamShape(s, config, schemas, i) for i, s in enumerate(streams) if isinstance(s, dict)]


# --- the server ----------------------------------------------------------------------------


def digest(*parts):
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def fake(schema, seed, name, cursor, depth=0):
    """A value of a JSON schema, the same for the same seed."""
    if not isinstance(schema, dict):
        return "v"
    n = int.from_bytes(digest(seed, name)[:6], "big")
    typ = schema.get("type", "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if "anyOf" in schema or "oneOf" in schema:
        alts = schema.get("anyOf") or schema.get("oneOf")
        alt = next((a for a in alts if isinstance(a, dict) and a.get("type") != "null"), alts[0])
        return fake(alt, seed, name, cursor, depth)
    if typ == "object":
        props = schema.get("properties") or {}
        if depth > 3:
            return {}
        out = {}
        for k, v in list(props.items())[:40]:
            if cursor and depth == 0 and k == cursor[0]:
                out[k] = cursor[1](int.from_bytes(digest(seed, k)[:6], "big"))
            else:
                out[k] = fake(v, seed, name + "." + k, None, depth + 1)
        if cursor and depth == 0 and cursor[0] not in out:
            out[cursor[0]] = cursor[1](n)
        return out
    if typ == "array":
        if depth > 3:
            return []
        return [fake(schema.get("items") or {}, seed, name + "[]", None, depth + 1)]
    if typ == "integer":
        return n % 100000
    if typ == "number":
        return (n % 100000) / 100
    if typ == "boolean":
        return n % 2 == 0
    if typ == "null":
        return None
    fmt = schema.get("format")
    moment = NOW_DT - datetime.timedelta(seconds=n % (4 * 86400))
    if fmt == "date-time":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "date":
        return moment.strftime("%Y-%m-%d")
    return "%s-%x" % (name.rsplit(".", 1)[-1][:12], n % 0xFFFFFF)


def nest(field_path, records, top):
    """`records` placed at an extractor's field path inside `top` (a `*` is a list of one)."""
    if not field_path:
        return records
    key, rest = field_path[0], field_path[1:]
    if key == "*":
        return [nest(rest, records, {})]
    top = dict(top)
    top[key] = nest(rest, records, {})
    return top


RESPONSE_REF = re.compile(
    r"response((?:\.(?!get\b)\w+|\[\s*['\"][^'\"]+['\"]\s*\]|\.get\(\s*['\"][^'\"]+['\"][^)]*\))+)"
)
HEADER_REF = re.compile(r"headers((?:\.\w+|\[\s*['\"][^'\"]+['\"]\s*\])+)")


def ref_path(chain):
    return re.findall(r"\.get\(\s*['\"]([^'\"]+)['\"]|\[\s*['\"]([^'\"]+)['\"]\s*\]|\.(\w+)", chain)


def flat(parts):
    return [next(p for p in t if p) for t in parts]


def set_in(d, path, value):
    for k in path[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[path[-1]] = value


class Server:
    """One local API for one manifest at a time: answers from the streams' shapes, logs every
    request per run."""

    def __init__(self):
        self.shapes = []
        self.log = []
        self.throttled = set()
        self.lock = threading.Lock()
        harness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = harness.answer(self.command, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self, shapes):
        with self.lock:
            self.shapes = shapes
            self.log = []
            self.throttled = set()

    def take_log(self):
        with self.lock:
            log, self.log, self.throttled = self.log, [], set()
        return log

    def answer(self, method, target, body):
        u = urlsplit(target)
        query = sorted(parse_qsl(u.query, keep_blank_values=True))
        text = body.decode("utf-8", "replace")
        try:
            norm_body = json.dumps(json.loads(text), sort_keys=True) if text else ""
        except ValueError:
            norm_body = json.dumps(sorted(parse_qsl(text, keep_blank_values=True)))
        key = (method, u.path, json.dumps(query), norm_body)
        with self.lock:
            self.log.append(key)
            # A 429 for one request in 32 (the same ones in every run), once each.
            if digest(*key)[0] % 32 == 0 and key not in self.throttled:
                self.throttled.add(key)
                return 429, {"Retry-After": "1"}, {"message": "slow down"}
        matches = [s for s in self.shapes if s.path_re.match(u.path)]
        if not matches:
            return 404, {}, {"message": "no stream of the manifest asks for %s" % u.path}
        shape = max(matches, key=lambda s: s.literal)
        return self.page(shape, method, u, query, text, key)

    def page(self, shape, method, u, query, text, key):
        second = is_second_page(shape, u, query, text)
        size = shape.page_size()
        stype = shape.strategy().get("type")
        if second:
            count = 1 if size else 0
        else:
            count = min(size, MAX_PAGE) if size else DEFAULT_PAGE
        seed = json.dumps(key)
        cursor = None
        if shape.cursor_field and isinstance(shape.cursor_field, str):
            fmt = shape.cursor_format or "%Y-%m-%dT%H:%M:%SZ"

            def cursor_value(n, fmt=fmt):
                moment = NOW_DT - datetime.timedelta(seconds=(n % (4 * 86400)))
                try:
                    return DatetimeParser().format(moment, fmt)
                except Exception:
                    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

            cursor = (shape.cursor_field, cursor_value)
        records = [
            fake(shape.schema or {"type": "object", "properties": {"id": {"type": "integer"}}}, seed + str(i), "r", cursor)
            for i in range(count)
        ]
        for i, r in enumerate(records):
            if isinstance(r, dict):
                for k in shape.primary_key:
                    r.setdefault(k, int.from_bytes(digest(seed, str(i), k)[:3], "big"))
        body = nest(shape.field_path, records, {})
        headers = {}
        if stype == "CursorPagination" and not second:
            body, headers = continue_cursor(shape, body, headers, u)
        elif stype == "CursorPagination" and second:
            body, headers = stop_cursor(shape, body, headers)
        return 200, headers, body


def is_second_page(shape, u, query, text):
    if "_page=2" in u.query or "tok2" in u.path or any("tok2" in v for _, v in query) or "tok2" in text:
        return True
    strategy = shape.strategy()
    opt = shape.token_option()
    field = opt.get("field_name") or opt.get("field_path")
    if isinstance(field, list):
        field = field[-1] if field else None
    if not isinstance(field, str):
        return False
    if "{{" in field:
        try:
            field = InterpolatedString.create(field, parameters=shape.params).eval(shape.config)
        except Exception:
            return False
    values = [v for k, v in query if k == field]
    if not values and text:
        try:
            b = json.loads(text)
            if isinstance(b, dict) and field in b:
                values = [str(b[field])]
        except ValueError:
            values = [v for k, v in parse_qsl(text) if k == field]
    if not values:
        return False
    if strategy.get("type") == "PageIncrement":
        first = strategy.get("start_from_page", 1)
        return values[0] != str(first)
    if strategy.get("type") == "OffsetIncrement":
        return values[0] not in ("0", "")
    return False


def cursor_token(shape, u):
    opt = shape.token_option()
    if opt.get("type") == "RequestPath" or not opt:
        sep = "&" if u.query else "?"
        return "http://127.0.0.1:%s%s%s%s_page=2" % (shape.port, u.path, "?" + u.query if u.query else "", sep)
    return "tok2"


def continue_cursor(shape, body, headers, u):
    strategy = shape.strategy()
    value = strategy.get("cursor_value") or ""
    stop = strategy.get("stop_condition") or ""
    token = cursor_token(shape, u)
    for h in HEADER_REF.findall(value):
        parts = flat(ref_path(h))
        if parts and parts[0].lower() == "link":
            headers["Link"] = '<%s>; rel="next"' % token
        elif parts:
            headers[parts[0]] = token
    if isinstance(body, list):
        return body, headers
    for r in RESPONSE_REF.findall(value):
        parts = flat(ref_path(r))
        if parts:
            set_in(body, parts, token)
    stop_fields = [flat(ref_path(r)) for r in RESPONSE_REF.findall(stop)]
    stop_fields = [p for p in stop_fields if p and p not in [flat(ref_path(r)) for r in RESPONSE_REF.findall(value)]]
    if stop_fields:
        choose_stop(shape, body, headers, stop_fields[:3], want=False)
    return body, headers


def stop_cursor(shape, body, headers):
    strategy = shape.strategy()
    stop = strategy.get("stop_condition") or ""
    value = strategy.get("cursor_value") or ""
    if isinstance(body, list):
        return body, headers
    for r in RESPONSE_REF.findall(value):
        parts = flat(ref_path(r))
        if parts:
            set_in(body, parts, None)
    stop_fields = [flat(ref_path(r)) for r in RESPONSE_REF.findall(stop)]
    stop_fields = [p for p in stop_fields if p]
    if stop_fields:
        choose_stop(shape, body, headers, stop_fields[:3], want=True)
    return body, headers


CANDIDATES = [True, False, None, 2, 1, 0, "tok2"]


def choose_stop(shape, body, headers, fields, want):
    """Give the stop condition's response fields values that make it `want`."""
    import itertools

    cond = shape.strategy().get("stop_condition")
    for combo in itertools.product(CANDIDATES, repeat=len(fields)):
        trial = copy.deepcopy(body)
        for f, v in zip(fields, combo):
            set_in(trial, f, v)
        try:
            got = InterpolatedBoolean(condition=cond, parameters=shape.params).eval(
                shape.config, response=trial, headers=headers, last_record={}, last_page_size=1
            )
        except Exception:
            continue
        if bool(got) == want:
            for f, v in zip(fields, combo):
                set_in(body, f, v)
            return


# --- the two runs --------------------------------------------------------------------------


def run(cmd, env=None, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT)
    return p.returncode, p.stdout, p.stderr


def airbyte_messages(text):
    for line in text.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if isinstance(m, dict):
            yield m


def cdk(work, package, manifest, config_path, args):
    env = dict(
        os.environ,
        SLUICE_DIFF_NOW=NOW,
        PYTHONPATH=os.path.join(work, "pkg"),
        # Anything but the local server goes to a closed port: tests reach 127.0.0.1 only.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1",
    )
    cmd = [sys.executable, os.path.join(HERE, "cdk_run.py"), package] + args
    cmd += ["--manifest-path", manifest, "--config", config_path]
    code, out, err = run(cmd, env=env)
    with open(os.path.join(work, "cdk-%s.out" % args[0]), "w") as f:
        f.write(out + "\n--- stderr\n" + err)
    return code, out, err


def canon(v):
    return json.dumps(v, sort_keys=True)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (json.dumps(k), toml_value(x)) for k, x in v.items() if x is not None) + " }"
    raise ValueError("no TOML for %r" % (v,))


class Sluice:
    def __init__(self, binary, component, root):
        self.binary = binary
        self.component = component
        self.root = root
        self.data = os.path.join(root, "data")
        if os.path.exists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        lib = next((l for l in FAKETIME_LIBS if os.path.exists(l)), None)
        if lib is None:
            sys.exit("airbyte-diff: libfaketime is missing (apt-get install faketime)")
        self.env = dict(
            os.environ,
            LD_PRELOAD=lib,
            # The wall clock stands still (as freezegun's does for the CDK); timers and
            # sleeps run on the monotonic clock, which moves.
            FAKETIME=NOW.replace("T", " ").rstrip("Z"),
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            TZ="UTC",
        )
        for args in (["keys", "publisher", "new", "harness"], ["trust", "add", "harness.pub"]):
            code, out, err = self.cli(args)
            if code != 0:
                sys.exit("airbyte-diff: sluice %s failed: %s" % (" ".join(args), err))

    def cli(self, args, cwd=None):
        return run([self.binary, "--data-dir", self.data] + args, env=self.env, cwd=cwd or self.root)


def compare(name, row, wheel, server, sluice, work):
    """One manifest through both runtimes: the outcome and what differs."""
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    package, doc, schemas = extract(wheel, work)
    hosts = {}
    doc = rewrite_urls(doc, server.origin, hosts)
    if "spec" not in doc:
        return "broken", "the wheel has no spec for its manifest"
    config = make_config(doc["spec"], server.origin)
    short = row["package"][len("airbyte-source-") :]
    src = os.path.join(work, "source-" + short)
    os.makedirs(os.path.join(src, "schemas"))
    manifest_path = os.path.join(src, "manifest.yaml")
    with open(manifest_path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    pkg = os.path.join(work, "pkg", package)
    os.makedirs(os.path.join(pkg, "schemas"))
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for n, raw in schemas.items():
        for d in (os.path.join(src, "schemas"), os.path.join(pkg, "schemas")):
            os.makedirs(os.path.dirname(os.path.join(d, n)), exist_ok=True)
            with open(os.path.join(d, n), "wb") as f:
                f.write(raw)
    config_path = os.path.join(work, "config.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    try:
        shapes = shapes_of(doc, config, schemas)
    except Exception as e:
        return "broken", "the CDK cannot resolve the manifest: %s" % e
    for s in shapes:
        s.port = server.port

    # sluice: import, publish, install (a refusal is the outcome, whatever the CDK makes of it)
    pkgname = row["package"]
    code, out, err = sluice.cli(
        [
            "connector", "import-airbyte", manifest_path, "--component", sluice.component,
            "--key", "harness.key", "--name", pkgname, "--version", row["version"],
            "--out", os.path.join(work, "pkg.slpkg"),
        ]
    )
    if code != 0:
        return "refused", first_line(err or out)
    for args in (
        ["connector", "publish", os.path.join(work, "pkg.slpkg"), "--index", "index"],
        ["connector", "install", pkgname, "--index", "index", "--approve"],
    ):
        code, out, err = sluice.cli(args)
        if code != 0:
            return "sluice-failed", "%s: %s" % (args[1], first_line(err or out))

    # airbyte-cdk: discover, then read every stream (incremental where it can be)
    server.reset(shapes)
    code, out, err = cdk(work, package, manifest_path, config_path, ["discover"])
    catalog = next((m["catalog"] for m in airbyte_messages(out) if m.get("type") == "CATALOG"), None)
    if catalog is None:
        return "broken", "airbyte-cdk discover failed: %s" % last_error(out, err)
    configured = {"streams": []}
    for st in catalog["streams"]:
        incremental = "incremental" in st.get("supported_sync_modes", [])
        configured["streams"].append(
            {
                "stream": st,
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append",
            }
        )
    catalog_path = os.path.join(work, "catalog.json")
    with open(catalog_path, "w") as f:
        json.dump(configured, f)
    server.take_log()
    code, out, err = cdk(work, package, manifest_path, config_path, ["read", "--catalog", catalog_path])
    cdk_log = server.take_log()
    cdk_requests = collections.Counter(cdk_log)
    dump(work, "cdk-requests.txt", cdk_log)
    cdk_records = collections.defaultdict(list)
    cdk_state = {}
    cdk_errors = []
    for m in airbyte_messages(out):
        if m.get("type") == "RECORD":
            cdk_records[m["record"]["stream"]].append(canon(m["record"]["data"]))
        elif m.get("type") == "STATE" and m["state"].get("type") == "STREAM":
            s = m["state"]["stream"]
            cdk_state[s["stream_descriptor"]["name"]] = s.get("stream_state")
        elif m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR":
            cdk_errors.append(m["trace"]["error"].get("message", "")[:200])

    # sluice: sync into files, read the state back
    streams = "".join(
        '[[streams]]\nname = %s\nsync_mode = "%s"\n' % (json.dumps(c["stream"]["name"]), c["sync_mode"])
        for c in configured["streams"]
    )
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir)
    conn = """name = "%s"
%s
[source]
connector = "%s"
config = %s
[source.grant.network]
allow = ["%s"]
[destination]
connector = "%s"
config = { path = "/output", format = "jsonl" }
[[destination.grant.dirs]]
host = "%s"
guest = "/output"
""" % (
        short, streams, pkgname, toml_value(config), server.origin,
        os.path.join(os.path.dirname(sluice.component), "destination-file.wasm"), out_dir,
    )
    # [[streams]] tables must follow the top-level keys and come before [source]
    conn_path = os.path.join(work, "conn.toml")
    with open(conn_path, "w") as f:
        f.write(conn)
    server.take_log()
    code, out, err = sluice.cli(["run", conn_path, "--fresh"])
    with open(os.path.join(work, "sluice-run.out"), "w") as f:
        f.write(out + "\n--- stderr\n" + err)
    sl_log = server.take_log()
    sl_requests = collections.Counter(sl_log)
    dump(work, "sluice-requests.txt", sl_log)
    sl_error = None if code == 0 else first_line(tail_error(err or out))
    sl_records = collections.defaultdict(list)
    for fn in os.listdir(out_dir):
        if fn.endswith(".jsonl"):
            for line in open(os.path.join(out_dir, fn)):
                sl_records[fn[: -len(".jsonl")]].append(canon(json.loads(line)))
    code, out, err = sluice.cli(["state", "show", conn_path])
    sl_state = {}
    if code == 0:
        for m in json.loads(out):
            sl_state[m["stream"]["stream_descriptor"]["name"]] = m["stream"].get("stream_state")

    diffs = []
    if cdk_errors and sl_error is None:
        diffs.append("airbyte-cdk failed (%s), sluice did not" % cdk_errors[0])
    if sl_error and not cdk_errors:
        diffs.append("sluice failed (%s), airbyte-cdk did not" % sl_error)
    # The distinct requests must be the same. How often each was sent is reported, not
    # compared: the CDK reads streams concurrently, so two streams can both miss its parent
    # cache (or both hit a 429) from one run to the next.
    if set(cdk_requests) != set(sl_requests):
        only_cdk = sorted(set(cdk_requests) - set(sl_requests))
        only_sl = sorted(set(sl_requests) - set(cdk_requests))
        diffs.append(
            "requests: %d only from airbyte-cdk (first %s), %d only from sluice (first %s)"
            % (len(only_cdk), show_req(only_cdk), len(only_sl), show_req(only_sl))
        )
    for st in sorted(set(cdk_records) | set(sl_records)):
        a, b = sorted(cdk_records.get(st, [])), sorted(sl_records.get(st, []))
        if a != b:
            diffs.append("records of %s: %d from airbyte-cdk, %d from sluice%s" % (st, len(a), len(b), first_diff(a, b)))
    for st in sorted(set(cdk_state) | set(sl_state)):
        a, b = cdk_state.get(st), sl_state.get(st)
        if canon(no_state(a)) != canon(no_state(b)):
            diffs.append("state of %s: airbyte-cdk %s, sluice %s" % (st, canon(a)[:160], canon(b)[:160]))
    total = sum(len(v) for v in cdk_records.values())
    summary = "%d distinct requests (airbyte-cdk sent %d, sluice %d), %d records in %d streams" % (
        len(cdk_requests), sum(cdk_requests.values()), sum(sl_requests.values()), total, len(cdk_records))
    if diffs:
        return "differs", "; ".join(diffs)
    if cdk_errors and sl_error:
        # Alike, but the harness's API did not serve the manifest: nothing was compared.
        return "both-failed", "%s; airbyte-cdk: %s; sluice: %s" % (summary, cdk_errors[0][:150], sl_error[:150])
    return "identical", summary


def dump(work, name, log):
    with open(os.path.join(work, name), "w") as f:
        for r in log:
            f.write(" ".join(r) + "\n")


def no_state(s):
    """The CDK's marker for a stream with no cursor is no state."""
    if s in (None, {}) or s == {"__ab_no_cursor_state_message": True}:
        return None
    return s


def show_req(reqs):
    if not reqs:
        return "-"
    m, p, q, b = reqs[0]
    return "%s %s %s%s" % (m, p, q, (" body " + b[:80]) if b else "")


def first_diff(a, b):
    for x, y in zip(a, b):
        if x != y:
            return " (first difference: %s)" % where(json.loads(x), json.loads(y), "")
    return ""


def where(x, y, path):
    """Where two JSON values first differ, and how."""
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            if k not in y:
                return "%s.%s only from airbyte-cdk" % (path, k)
            if k not in x:
                return "%s.%s only from sluice" % (path, k)
            if x[k] != y[k]:
                return where(x[k], y[k], "%s.%s" % (path, k))
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return where(p, q, "%s[%d]" % (path, i))
    return "%s: airbyte-cdk %s, sluice %s" % (path or ".", json.dumps(x)[:120], json.dumps(y)[:120])


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[0][:300] if lines else "(no message)"


def tail_error(text):
    lines = [l for l in text.strip().splitlines() if "error" in l.lower() or "failed" in l.lower()]
    return lines[-1] if lines else text


def last_error(out, err):
    for m in airbyte_messages(out):
        if m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR":
            return m["trace"]["error"].get("message", "")[:300]
    return first_line(tail_error(err))


# --- main ----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--component", required=True)
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--lock", default=os.path.join(HERE, "manifests.lock"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--report")
    args = ap.parse_args()
    rows = read_lock(args.lock)
    if args.only:
        rows = [r for r in rows if r["package"] in args.only or r["package"][15:] in args.only]
    os.makedirs(args.work, exist_ok=True)
    server = Server()
    sluice = Sluice(os.path.abspath(args.sluice), os.path.abspath(args.component), os.path.join(args.work, "sluice"))
    results = []
    started = time.time()
    for row in rows:
        wheel = os.path.join(
            args.wheels, "%s-%s-py3-none-any.whl" % (row["package"].replace("-", "_"), row["version"])
        )
        t = time.time()
        try:
            outcome, why = compare(row["package"], row, wheel, server, sluice, os.path.join(args.work, row["package"]))
        except subprocess.TimeoutExpired as e:
            outcome, why = "differs", "timed out: %s" % " ".join(e.cmd[:3])
        except Exception as e:  # the harness's own failure is a result too, with its reason
            outcome, why = "harness-error", "%s: %s" % (type(e).__name__, e)
        # A manifest the lock says is identical must stay so; any other change is reported
        # (an improvement is a reason to update the lock, not a failure).
        ok = outcome == "identical" or row["expect"] != "identical"
        results.append((row, outcome, why, ok))
        mark = "ok" if outcome == row["expect"] else ("FAIL" if not ok else "new")
        print(
            "%-4s %-34s %-11s (lock: %s, %.0fs) %s"
            % (mark, row["package"], outcome, row["expect"], time.time() - t, why),
            flush=True,
        )
    counts = collections.Counter(o for _, o, _, _ in results)
    line = ", ".join("%d %s" % (n, o) for o, n in sorted(counts.items()))
    print("airbyte-diff: %d manifests in %.0fs: %s" % (len(results), time.time() - started, line))
    if args.report:
        with open(args.report, "w") as f:
            f.write("# airbyte-cdk 7.39.1 and sluice on %d real manifests\n\n%s\n\n" % (len(results), line))
            f.write("| package | version | outcome | detail |\n|---|---|---|---|\n")
            for row, outcome, why, ok in results:
                f.write("| %s | %s | %s | %s |\n" % (row["package"], row["version"], outcome, why.replace("|", "\\|")))
    changed = [r for r in results if r[1] != r[0]["expect"]]
    for row, outcome, why, ok in changed:
        print("airbyte-diff: %s is %s, the lock says %s%s" % (
            row["package"], outcome, row["expect"], "" if ok else " — a regression"))
    if any(not r[3] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
