/**
 * An emulator of Grafana's data source proxy (`/api/datasources/proxy/uid/<uid>/<path>`),
 * written from Grafana's source so the plugin can be tested against what Grafana does
 * rather than against what we assume it does. What it reproduces, and where from:
 *
 *  - pkg/services/datasourceproxy/datasourceproxy.go: the proxy path is what follows
 *    `/api/datasources/proxy/uid/<uid>/`, taken from the escaped request path.
 *  - pkg/api/pluginproxy/ds_proxy.go validateRequest: routes are tried in plugin.json
 *    order; the FIRST whose method matches (empty or "*" matches any) and whose cleaned
 *    path is a string prefix of the cleaned proxy path wins; then hasAccessToRoute:
 *    `reqAction` is checked with RBAC (scoped to `datasources:uid:<uid>` for data source
 *    actions) and, only when there is no reqAction, `reqRole` by org role. Refused:
 *    403 `{"message":"plugin proxy route access denied"}`. No route matching means the
 *    request goes to the data source's own URL without any route headers.
 *  - ds_proxy.go director + ds_auth_provider.go ApplyRoute: the route URL and headers are
 *    Go templates over `.JsonData` and `.SecureJsonData` (text/template: a missing JsonData
 *    key prints "<no value>", a missing secure key ""); the forwarded path is the route URL's
 *    path joined with the proxy path minus the route path (util.JoinURLFragments); the query
 *    string is kept; route headers are Set (replacing what the browser sent);
 *    X-DS-Authorization becomes Authorization; cookies are dropped except jsonData.keepCookies;
 *    User-Agent becomes Grafana's; X-Grafana-User only with send_user_header.
 *  - pkg/util/proxyutil: Origin and Referer removed (Referer copied to X-Grafana-Referer),
 *    X-Forwarded-Host/Port/Proto removed, X-Forwarded-For appended; on the answer,
 *    Set-Cookie removed and `Content-Security-Policy: sandbox` added; a failed upstream
 *    call is 502, a timeout 504.
 *  - ds_proxy.go modifyResponse: an upstream 401 becomes 400 with the text body
 *    "Authentication to data source failed" and no upstream headers.
 *  - net/http/httputil.ReverseProxy: hop-by-hop headers (Connection and the headers it
 *    names, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, Te,
 *    Trailer, Transfer-Encoding, Upgrade) are stripped both ways; X-Forwarded-For gets the
 *    client address appended once more.
 *
 * Not reproduced: OAuth pass-through, tokenAuth/jwtTokenAuth, team headers, TLS settings,
 * the data proxy allow-list, streaming flushes.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import path from 'node:path';

export type OrgRole = 'Viewer' | 'Editor' | 'Admin';

export interface PluginRoute {
  path: string;
  method?: string;
  url?: string;
  reqRole?: string;
  reqAction?: string;
  headers?: Array<{ name: string; content: string }>;
  urlParams?: Array<{ name: string; content: string }>;
}

export interface Permission {
  action: string;
  /** Absent for actions that are not scoped. */
  scope?: string;
}

export interface GrafanaUser {
  login: string;
  role: OrgRole;
  /** RBAC permissions; by default those Grafana's basic role grants for data sources. */
  permissions?: Permission[];
}

export interface ProxiedDataSource {
  uid: string;
  /** The data source's own URL (empty for this plugin: routes carry the service URL). */
  url?: string;
  jsonData: Record<string, unknown>;
  secureJsonData: Record<string, string>;
}

export interface DataProxyOptions {
  routes: PluginRoute[];
  datasource: () => ProxiedDataSource;
  user: () => GrafanaUser;
  /** Grafana's `[dataproxy] send_user_header`. */
  sendUserHeader?: boolean;
  /** Grafana's `[dataproxy] timeout`, in ms (default 30 s). */
  timeoutMs?: number;
  grafanaVersion?: string;
  /** Every request as it left for the upstream, for tests. */
  onUpstreamRequest?: (request: UpstreamRequest) => void;
}

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  route: PluginRoute | null;
}

/** Data source permissions of Grafana's basic roles (fixed:datasources:* roles in OSS). */
export const BASIC_ROLE_PERMISSIONS: Record<OrgRole, Permission[]> = {
  Viewer: [{ action: 'datasources:query', scope: 'datasources:*' }],
  Editor: [{ action: 'datasources:query', scope: 'datasources:*' }, { action: 'datasources:explore' }],
  Admin: [
    { action: 'datasources:query', scope: 'datasources:*' },
    { action: 'datasources:explore' },
    { action: 'datasources:read', scope: 'datasources:*' },
    { action: 'datasources:write', scope: 'datasources:*' },
    { action: 'datasources:delete', scope: 'datasources:*' },
    { action: 'datasources:create' },
    { action: 'datasources.permissions:read', scope: 'datasources:*' },
    { action: 'datasources.permissions:write', scope: 'datasources:*' },
  ],
};

/** Actions Grafana scopes to the data source when a route asks for them (pluginaccesscontrol). */
const DATASOURCE_ACTIONS = new Set([
  'datasources:id:read',
  'datasources:query',
  'datasources:read',
  'datasources:write',
  'datasources:delete',
  'datasources.permissions:read',
  'datasources.permissions:write',
  'datasources.caching:read',
  'datasources.caching:write',
]);

const ROLE_ORDER: Record<string, number> = { None: 0, Viewer: 1, Editor: 2, Admin: 3 };

export const ROUTE_DENIED = 'plugin proxy route access denied';
export const AUTH_FAILED = 'Authentication to data source failed';

const HOP_BY_HOP = [
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

// ---------- paths ----------

/** util.CleanRelativePath: the path made absolute, cleaned, and made relative again ("." for the root). */
export function cleanRelativePath(p: string): string {
  const clean = path.posix.normalize(path.posix.join('/', p));
  const rel = path.posix.relative('/', clean);
  return rel === '' ? '.' : rel;
}

/** util.JoinURLFragments. */
export function joinUrlFragments(a: string, b: string): string {
  if (b.length === 0) {
    return a;
  }
  const aSlash = a.endsWith('/');
  const bSlash = b.startsWith('/');
  if (aSlash && bSlash) {
    return a + b.slice(1);
  }
  if (!aSlash && !bSlash) {
    return `${a}/${b}`;
  }
  return a + b;
}

/** validateRequest's route loop: the first route whose method and (cleaned) path prefix match. */
export function matchRoute(routes: PluginRoute[], method: string, proxyPath: string): PluginRoute | undefined {
  for (const route of routes) {
    if (route.method && route.method !== '*' && route.method !== method) {
      continue;
    }
    let r1 = cleanRelativePath(proxyPath);
    let r2 = cleanRelativePath(route.path);
    // grafana/grafana#116273: "." from an empty path must not act as a prefix.
    if (r1 === '.' && proxyPath !== '.') {
      r1 = '';
    }
    if (r2 === '.' && route.path !== '.') {
      r2 = '';
    }
    if (r1.startsWith(r2)) {
      return route;
    }
  }
  return undefined;
}

function scopeCovers(scope: string | undefined, wanted: string): boolean {
  return scope === wanted || scope === '*' || scope === 'datasources:*' || scope === 'datasources:uid:*';
}

/** ac.EvalPermission: the action, and for data source actions a scope covering this data source. */
function hasPermission(user: GrafanaUser, action: string, uid: string): boolean {
  const permissions = user.permissions ?? BASIC_ROLE_PERMISSIONS[user.role];
  const wanted = DATASOURCE_ACTIONS.has(action) ? `datasources:uid:${uid}` : undefined;
  return permissions.some((p) => p.action === action && (wanted === undefined || scopeCovers(p.scope, wanted)));
}

/** hasAccessToRoute: reqAction by RBAC when set, otherwise reqRole by org role. */
export function hasAccessToRoute(route: PluginRoute, user: GrafanaUser, uid: string): boolean {
  if (route.reqAction) {
    return hasPermission(user, route.reqAction, uid);
  }
  if (route.reqRole && route.reqRole in ROLE_ORDER) {
    return ROLE_ORDER[user.role] >= ROLE_ORDER[route.reqRole];
  }
  return true;
}

// ---------- templates ----------

interface TemplateData {
  JsonData: Record<string, unknown>;
  SecureJsonData: Record<string, string>;
}

type Node = { text: string } | { field: 'JsonData' | 'SecureJsonData'; key: string; orEmpty: boolean } | IfNode;
interface IfNode {
  cond: { field: 'JsonData' | 'SecureJsonData'; key: string };
  then: Node[];
  else: Node[];
}

const ACTION = /\{\{-?\s*(.*?)\s*-?\}\}/g;
const FIELD = /^\.(JsonData|SecureJsonData)\.(\w+)$/;

/**
 * The part of Go's text/template that route templates use: `{{ .JsonData.key }}`,
 * `{{ .SecureJsonData.key }}`, `| orEmpty`, and `{{ if … }}…{{ else }}…{{ end }}`.
 * Anything else throws, so a plugin.json this emulator cannot judge fails loudly.
 */
export function parseTemplate(template: string): Node[] {
  const root: Node[] = [];
  const stack: Array<{ node: IfNode; inElse: boolean }> = [];
  const target = () => {
    const top = stack[stack.length - 1];
    return top ? (top.inElse ? top.node.else : top.node.then) : root;
  };
  let last = 0;
  for (const m of template.matchAll(ACTION)) {
    if (m.index! > last) {
      target().push({ text: template.slice(last, m.index) });
    }
    last = m.index! + m[0].length;
    const action = m[1];
    const ifMatch = /^if\s+(\S+)$/.exec(action);
    if (ifMatch) {
      const field = FIELD.exec(ifMatch[1]);
      if (!field) {
        throw new Error(`unsupported template condition: ${action}`);
      }
      const node: IfNode = {
        cond: { field: field[1] as 'JsonData' | 'SecureJsonData', key: field[2] },
        then: [],
        else: [],
      };
      target().push(node);
      stack.push({ node, inElse: false });
    } else if (action === 'else') {
      if (!stack.length) {
        throw new Error('{{ else }} outside {{ if }}');
      }
      stack[stack.length - 1].inElse = true;
    } else if (action === 'end') {
      if (!stack.pop()) {
        throw new Error('{{ end }} without {{ if }}');
      }
    } else {
      const [expr, ...pipes] = action.split('|').map((s) => s.trim());
      const field = FIELD.exec(expr);
      if (!field || pipes.some((p) => p !== 'orEmpty')) {
        throw new Error(`unsupported template action: ${action}`);
      }
      target().push({ field: field[1] as 'JsonData' | 'SecureJsonData', key: field[2], orEmpty: pipes.length > 0 });
    }
  }
  if (stack.length) {
    throw new Error('unclosed {{ if }}');
  }
  if (last < template.length) {
    root.push({ text: template.slice(last) });
  }
  return root;
}

function lookup(data: TemplateData, field: 'JsonData' | 'SecureJsonData', key: string): unknown {
  const bag = data[field] as Record<string, unknown>;
  return Object.prototype.hasOwnProperty.call(bag, key) ? bag[key] : undefined;
}

function truthy(value: unknown): boolean {
  return !(value === undefined || value === null || value === '' || value === false || value === 0);
}

function render(nodes: Node[], data: TemplateData): string {
  return nodes
    .map((node) => {
      if ('text' in node) {
        return node.text;
      }
      if ('cond' in node) {
        return render(truthy(lookup(data, node.cond.field, node.cond.key)) ? node.then : node.else, data);
      }
      const value = lookup(data, node.field, node.key);
      if (value === undefined || value === null) {
        // map[string]any prints a missing key as "<no value>"; map[string]string as "".
        return node.field === 'JsonData' && !node.orEmpty ? '<no value>' : '';
      }
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    })
    .join('');
}

/** interpolateString: a route URL or header content with the data source's settings. */
export function interpolate(template: string, data: TemplateData): string {
  return render(parseTemplate(template), data);
}

// ---------- the proxy ----------

const PROXY_PATH = /^\/api\/datasources\/proxy\/(\d+|uid\/[\w-]+)\/?/;

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

function stripHopByHop(headers: Record<string, string>) {
  const named = (headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  for (const h of [...HOP_BY_HOP, ...named]) {
    if (h === 'te' && headers.te?.trim().toLowerCase() === 'trailers') {
      continue;
    }
    delete headers[h];
  }
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) {
      out[k.toLowerCase()] = Array.isArray(v) ? v.join(k.toLowerCase() === 'cookie' ? '; ' : ', ') : v;
    }
  }
  return out;
}

function keepCookies(cookieHeader: string | undefined, keep: string[]): string | undefined {
  if (!cookieHeader) {
    return undefined;
  }
  const kept = cookieHeader
    .split(';')
    .map((c) => c.trim())
    .filter(Boolean)
    .filter((c) => {
      const name = c.split('=')[0];
      if (name === 'grafana_session') {
        return false;
      }
      return keep.some((k) => k === '[]' || (k.endsWith('[]') ? name.startsWith(k.slice(0, -2)) : name === k));
    })
    .sort();
  return kept.length ? kept.join('; ') : undefined;
}

/**
 * Returns a handler for the data proxy paths; it answers and returns true for them, and
 * returns false (answering nothing) for any other path.
 */
export function createDataProxy(options: DataProxyOptions) {
  const version = options.grafanaVersion ?? '13.2.3';
  const timeoutMs = options.timeoutMs ?? 30_000;

  return async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<boolean> => {
    const rawUrl = req.url ?? '/';
    const [escapedPath, search = ''] = rawUrl.split(/\?(.*)/s);
    const prefix = PROXY_PATH.exec(escapedPath);
    if (!prefix) {
      return false;
    }
    const ds = options.datasource();
    const user = options.user();
    const idOrUid = prefix[1].replace(/^uid\//, '');
    if (idOrUid !== ds.uid) {
      sendJson(res, 404, { message: 'Unable to find datasource' });
      return true;
    }
    const proxyPath = escapedPath.slice(prefix[0].length);
    const method = req.method ?? 'GET';

    // validateRequest
    const route = matchRoute(options.routes, method, proxyPath) ?? null;
    if (route && !hasAccessToRoute(route, user, ds.uid)) {
      sendJson(res, 403, { message: ROUTE_DENIED });
      return true;
    }

    // director
    const headers = flatten(req.headers);
    delete headers.host;
    delete headers['content-length'];
    const target = new URL('http://placeholder');
    let hasTarget = false;
    if (ds.url) {
      const dsUrl = new URL(ds.url);
      target.protocol = dsUrl.protocol;
      target.host = dsUrl.host;
      target.pathname = joinUrlFragments(dsUrl.pathname, proxyPath);
      hasTarget = true;
    }
    target.search = search ? `?${search}` : '';
    if (headers['x-ds-authorization']) {
      headers.authorization = headers['x-ds-authorization'];
      delete headers['x-ds-authorization'];
    }
    delete headers['x-grafana-user'];
    if (options.sendUserHeader) {
      headers['x-grafana-user'] = user.login;
    }
    const kept = keepCookies(headers.cookie, (ds.jsonData.keepCookies as string[] | undefined) ?? []);
    if (kept) {
      headers.cookie = kept;
    } else {
      delete headers.cookie;
    }
    headers['user-agent'] = `Grafana/${version}`;

    if (route) {
      const data: TemplateData = { JsonData: ds.jsonData, SecureJsonData: ds.secureJsonData };
      const rest = proxyPath.startsWith(route.path) ? proxyPath.slice(route.path.length) : proxyPath;
      let urlOk = true;
      if (route.url) {
        try {
          const routeUrl = new URL(interpolate(route.url, data));
          target.protocol = routeUrl.protocol;
          target.host = routeUrl.host;
          target.pathname = joinUrlFragments(routeUrl.pathname, rest);
          hasTarget = true;
        } catch {
          // ApplyRoute logs and returns: no route URL, no route headers.
          urlOk = false;
        }
      }
      if (urlOk) {
        const params = new URLSearchParams(target.search);
        for (const p of route.urlParams ?? []) {
          params.append(interpolate(p.name, data), interpolate(p.content, data));
        }
        target.search = params.toString() ? `?${params}` : '';
        for (const h of route.headers ?? []) {
          headers[h.name.toLowerCase()] = interpolate(h.content, data);
        }
      }
    }

    // proxyutil wrapDirector / PrepareProxyRequest
    headers['x-grafana-referer'] = headers.referer ?? '';
    delete headers.origin;
    delete headers.referer;
    delete headers['x-forwarded-host'];
    delete headers['x-forwarded-port'];
    delete headers['x-forwarded-proto'];
    const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${client}` : client;

    // httputil.ReverseProxy
    stripHopByHop(headers);
    headers['x-forwarded-for'] = `${headers['x-forwarded-for']}, ${client}`;

    options.onUpstreamRequest?.({ method, url: hasTarget ? target.toString() : '', headers: { ...headers }, route });
    if (!hasTarget || !/^https?:$/.test(target.protocol)) {
      // "unsupported protocol scheme": errorHandler answers 502 without a body.
      res.writeHead(502).end();
      return true;
    }

    await new Promise<void>((resolve) => {
      const client = target.protocol === 'https:' ? https : http;
      const upstream = client.request(
        target,
        { method, headers: { ...headers, 'content-length': String(body.length) }, timeout: timeoutMs, agent: false },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.on('end', () => {
            let status = answer.statusCode ?? 502;
            let out = flatten(answer.headers);
            let payload = Buffer.concat(chunks);
            if (status === 401) {
              status = 400;
              out = {};
              payload = Buffer.from(AUTH_FAILED);
            }
            delete out['set-cookie'];
            out['content-security-policy'] = 'sandbox';
            stripHopByHop(out);
            delete out['content-length'];
            if (!out['content-type'] && payload.length) {
              // Go's server sniffs a body without a Content-Type.
              out['content-type'] = 'text/plain; charset=utf-8';
            }
            res.writeHead(status, { ...out, 'content-length': String(payload.length) });
            res.end(payload);
            resolve();
          });
          answer.on('error', () => {
            if (!res.headersSent) {
              res.writeHead(502).end();
            }
            resolve();
          });
        }
      );
      upstream.on('timeout', () => {
        upstream.destroy();
        if (!res.headersSent) {
          res.writeHead(504).end();
        }
        resolve();
      });
      upstream.on('error', () => {
        if (!res.headersSent) {
          res.writeHead(502).end();
        }
        resolve();
      });
      upstream.end(body);
    });
    return true;
  };
}
