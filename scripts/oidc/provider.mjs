// The real OpenID provider tollgate's tests run against: the certified `oidc-provider`
// package, on 127.0.0.1 only. `scripts/test.sh` starts it; see README.md here for the
// contract (environment, client, claims, test-only admin routes).
//
// Two provider instances share one key set: one serves plain HTTP (issuer
// http://127.0.0.1:<OIDC_HTTP_PORT>), one HTTPS with the given certificate (issuer
// https://localhost:<OIDC_HTTPS_PORT>).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const HTTP_PORT = Number(env('OIDC_HTTP_PORT'));
const HTTPS_PORT = Number(env('OIDC_HTTPS_PORT'));
const AUDIENCE = 'https://api.tollgate.test';
const CLIENT_ID = 'tollgate-test';
const CLIENT_SECRET = 'tollgate-test-secret';
const HTTP_ISSUER = `http://127.0.0.1:${HTTP_PORT}`;
const HTTPS_ISSUER = `https://localhost:${HTTPS_PORT}`;

function signingKey(type, alg) {
  const { privateKey } = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomUUID()}`, alg, use: 'sig' };
}

// The access-token key first: oidc-provider signs with the first key of the algorithm.
let keys = [signingKey('rsa', 'RS256'), signingKey('ec', 'ES256')];

function configuration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'orders:read orders:write',
    }],
    jwks: { keys },
    scopes: ['orders:read', 'orders:write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'orders:read orders:write',
          audience: AUDIENCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
    // Where Auth0, Entra ID, Keycloak and Cognito put roles, for the claim-mapping tests.
    extraTokenClaims: () => ({
      permissions: ['orders:read'],
      roles: ['Orders.Admin'],
      realm_access: { roles: ['orders-admin', 'offline_access'] },
      resource_access: { [CLIENT_ID]: { roles: ['orders-reader'] } },
      'cognito:groups': ['ops'],
    }),
    cookies: { keys: ['tollgate-test-cookie-key'] },
  };
}

let providers;
function build() {
  providers = {
    http: new Provider(HTTP_ISSUER, configuration()),
    https: new Provider(HTTPS_ISSUER, configuration()),
  };
  for (const p of Object.values(providers)) {
    p.on('server_error', (_ctx, err) => console.error('server_error', err));
  }
}
build();

let outage = false;

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function handler(which) {
  return (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/__test/')) {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
      if (url.pathname === '/__test/rotate') {
        const fresh = signingKey('rsa', 'RS256');
        keys = [fresh, ...keys];
        build();
        return json(res, 200, { kid: fresh.kid });
      }
      if (url.pathname === '/__test/outage') {
        outage = url.searchParams.get('on') === '1';
        return json(res, 200, { outage });
      }
      return json(res, 404, { error: 'no such admin route' });
    }
    if (outage) {
      req.socket.destroy();
      return undefined;
    }
    return providers[which].callback()(req, res);
  };
}

const plain = http.createServer(handler('http'));
const tls = https.createServer(
  { cert: readFileSync(env('OIDC_TLS_CERT')), key: readFileSync(env('OIDC_TLS_KEY')) },
  handler('https'),
);
await Promise.all([
  new Promise((resolve) => plain.listen(HTTP_PORT, '127.0.0.1', resolve)),
  new Promise((resolve) => tls.listen(HTTPS_PORT, '127.0.0.1', resolve)),
]);
console.log(`oidc-provider ready http=${HTTP_ISSUER} https=${HTTPS_ISSUER}`);

const stop = () => {
  plain.close();
  tls.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
