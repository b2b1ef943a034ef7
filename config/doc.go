// Package config reads Portico's declarative YAML (apiVersion portico.dev/v1), decodes it
// strictly and validates it as a whole, so that everything past this package can trust a Config.
//
// It owns the user schema (types.go), the decoder, defaults and every check a user can fix by
// editing a file: each problem is reported with file:line:col and a hint, and all problems are
// reported at once (Diagnostics). It must not import Envoy or go-control-plane types, log, or
// know how a Config is served: translation to Envoy resources belongs to the translator.
//
// The decoder is driven by the struct tags in types.go, so adding a field there needs no decoder
// change. The tags carry the schema's rules:
//   - a field is read by its yaml tag name; untagged and `yaml:"-"` fields are not user-settable;
//   - a field without ",omitempty" is required: leaving it out (or empty, `field:`) is an error;
//   - a pointer field is optional and stays nil when absent, which is how one-of choices such
//     as a route's action or an Upstream's discovery type tell which member was chosen.
package config
