// node oidc-provider, configured for the same grants as Keyturn's benchmark workloads
// (bench/run starts it; it is not part of Keyturn):
//   - client credentials with opaque access tokens  (client "cc-opaque")
//   - client credentials with JWT access tokens     (client "cc-jwt": its default resource
//     indicator names a resource server whose accessTokenFormat is "jwt", signed ES256
//     like Keyturn's)
//   - token introspection by a resource server      (client "rs")
// In-memory adapter (oidc-provider's default), one process, 127.0.0.1 only.
//
// Environment: BENCH_PORT (required), BENCH_SECRET (the three clients' secret).
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.BENCH_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('set BENCH_PORT');
  process.exit(2);
}
const secret = process.env.BENCH_SECRET || 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';
const issuer = `http://127.0.0.1:${port}`;
const JWT_RESOURCE = 'urn:keyturn-bench:api';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const client = (clientId, scope) => ({
  client_id: clientId,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope,
});

const provider = new Provider(issuer, {
  clients: [client('cc-opaque', 'sms'), client('cc-jwt', 'sms'), client('rs', 'sms')],
  jwks: { keys: [signingKey] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  scopes: ['sms'],
  ttl: { ClientCredentials: 3600, AccessToken: 3600 },
  routes: { token: '/oauth/token', introspection: '/oauth/introspect', jwks: '/oauth/jwks' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Like Keyturn's --resource-server: "rs" may introspect every token; a client its own.
      allowedPolicy: async (ctx, caller, token) => caller.clientId === 'rs' || caller.clientId === token.clientId,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, requester, oneOf) => oneOf ?? (requester.clientId === 'cc-jwt' ? JWT_RESOURCE : undefined),
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resource) => {
        if (resource !== JWT_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: 'sms',
          audience: issuer,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

const server = createServer(provider.callback());
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  console.error(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 2000).unref());
}
