// Package ratelimit is Portico's global rate limit service: an in-process implementation of
// Envoy's RateLimitService (envoy.service.ratelimit.v3) that Envoy's envoy.filters.http.ratelimit
// filter asks, over a Unix socket, whether a request is over a limit.
//
// It owns three things: the model of limits users write (Limit: a name, the descriptor keys and
// optional values it matches, requests per second/minute/hour/day, and a shadow switch); the
// decision for one request (match each descriptor Envoy sends against the limits, most specific
// first, count it, answer with the limit, the remaining budget and the time until reset so that
// Envoy can emit RateLimit headers); and the counters behind the decisions (Store: in memory by
// default, or Redis so that several Portico instances enforce one shared limit).
//
// It must not know the user's YAML or Envoy's route configuration: the config package decodes
// limits and the translator emits the rate_limits actions whose descriptors this package
// matches (see the Key constants). It does not create its socket either: Serve takes a listener,
// so the socket's directory and permissions are the caller's, as for the xDS socket.
//
// Counting is fixed-window by default: a window is aligned to its unit (a minute window starts at
// second 0 of the minute, UTC), every request that matches a limit adds to its counter, rejected
// ones included, and the counter starts again at zero when the window ends. The Redis store can
// count in a sliding window instead; see RedisConfig.Sliding for the approximation it uses.
//
// When the store fails (Redis unreachable, slow or answering errors) the service fails open by
// default: requests are allowed, the failure is counted and Status reports Degraded until the
// store answers again. Config.FailClosed rejects requests that match a limit instead.
package ratelimit
