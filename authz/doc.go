// Package authz is Portico's in-process authentication service: an implementation of Envoy's
// external authorization API (envoy.service.auth.v3 Authorization/Check) that Envoy's ext_authz
// filter asks, over a Unix socket, whether a request carries a valid API key or HTTP basic
// credentials.
//
// It owns the decision for one request and the credentials behind it: the Secrets in force
// (SetSecrets), each a credential file that it reads, watches (its directory, so that rename
// saves and symlink swaps are seen) and reloads when it changes, keeping the last good
// credentials when a changed file does not parse. The policy for a request, which Secrets and
// where the key is read, arrives with the request in the ext_authz context extensions that the
// translator writes (Policy.ContextExtensions), so a route and its policy can never be out of
// step. An allowed request goes upstream with the identity in a header the policy names,
// replacing any value the client sent, and without the credential it was allowed with.
//
// It must not know the user's YAML or Envoy's route configuration, and it never logs or returns
// a key, password or hash: errors name files and lines only. It does not create its socket:
// Serve takes a listener, as the rate limit service does.
package authz
