package config

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/portico-gw/portico/internal/filelimit"
)

// maxJWKSBytes bounds a JWKS file: real key sets are a few kilobytes, and the keys are copied
// into Envoy's configuration.
const maxJWKSBytes = 256 << 10

// jwk is the part of a JSON Web Key (RFC 7517) that decides whether Envoy can verify with it.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// jwsAlgorithms are the asymmetric signature algorithms Envoy's jwt_authn verifies.
var jwsAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// ecCurves maps a JWK curve name to its curve, which checks that a public point lies on it.
var ecCurves = map[string]ecdh.Curve{"P-256": ecdh.P256(), "P-384": ecdh.P384(), "P-521": ecdh.P521()}

// readJWKS reads a JWKS file and checks every key in it. It returns the file's content, or a
// message that names the file and, for broken JSON, the line and column. Messages never quote
// key material.
func readJWKS(path string) (string, string) {
	data, err := filelimit.Read(path, maxJWKSBytes)
	var tl *filelimit.TooLargeError
	switch {
	case errors.As(err, &tl):
		return "", fmt.Sprintf("%s holds more than the %d bytes a key set needs; is it the right file?", path, maxJWKSBytes)
	case err != nil:
		return "", fmt.Sprintf("%s cannot be read: %v", path, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return "", fmt.Sprintf("%s is not a JSON Web Key Set: %s", path, jsonProblem(path, data, err))
	}
	if len(set.Keys) == 0 {
		return "", fmt.Sprintf("%s has no keys; a JWKS is {\"keys\": [...]} with at least one public key", path)
	}
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return "", fmt.Sprintf("%s: keys[%d] is not a JSON Web Key: it must be an object of strings", path, i)
		}
		if msg := k.problem(); msg != "" {
			what := fmt.Sprintf("keys[%d]", i)
			if k.Kid != "" {
				what += fmt.Sprintf(" (kid %q)", excerpt(k.Kid))
			}
			return "", fmt.Sprintf("%s: %s %s", path, what, msg)
		}
	}
	return string(data), ""
}

// problem says why Envoy could not verify a signature with k, or returns "".
func (k *jwk) problem() string {
	if k.Use != "" && k.Use != "sig" {
		return fmt.Sprintf("has use %q; signing keys have use \"sig\" or none", excerpt(k.Use))
	}
	if k.Alg != "" && !slices.Contains(jwsAlgorithms, k.Alg) {
		return fmt.Sprintf("has alg %q, which Envoy does not verify with (supported: RS*, PS*, ES*, EdDSA)", excerpt(k.Alg))
	}
	switch k.Kty {
	case "RSA":
		n, errN := b64url(k.N)
		e, errE := b64url(k.E)
		switch {
		case errN != nil || len(n) < 256:
			return "has no valid \"n\": an RSA modulus of at least 2048 bits, base64url-encoded"
		case errE != nil || len(e) == 0 || len(e) > 4:
			return "has no valid \"e\": the RSA exponent, base64url-encoded (usually \"AQAB\")"
		}
	case "EC":
		curve, ok := ecCurves[k.Crv]
		if !ok {
			return fmt.Sprintf("has crv %q; use P-256, P-384 or P-521", excerpt(k.Crv))
		}
		x, errX := b64url(k.X)
		y, errY := b64url(k.Y)
		if errX != nil || errY != nil {
			return "has an \"x\" or \"y\" that is not base64url"
		}
		if _, err := curve.NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			return fmt.Sprintf("has an \"x\" and \"y\" that are not a point on %s", k.Crv)
		}
	case "OKP":
		x, err := b64url(k.X)
		switch {
		case k.Crv != "Ed25519":
			return fmt.Sprintf("has crv %q; Envoy verifies OKP keys of curve Ed25519 only", excerpt(k.Crv))
		case err != nil || len(x) != 32:
			return "has no valid \"x\": an Ed25519 public key is 32 bytes, base64url-encoded"
		}
	case "oct":
		return "is a symmetric (oct) key: its secret would be copied into Envoy's configuration; sign tokens with an RSA, EC or Ed25519 key"
	case "":
		return "has no \"kty\"; set it to RSA, EC or OKP"
	default:
		return fmt.Sprintf("has kty %q; use RSA, EC or OKP", excerpt(k.Kty))
	}
	return ""
}

// b64url decodes unpadded base64url, the encoding of JWK members; padding is tolerated.
func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(string(bytes.TrimRight([]byte(s), "=")))
}

// jsonProblem words a JSON decoding error with the line and column it happened at.
func jsonProblem(path string, data []byte, err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s: %s", offsetPosition(path, data, syntax.Offset), syntax.Error())
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("%s: a JWKS is a JSON object {\"keys\": [...]}, found a JSON %s", offsetPosition(path, data, typ.Offset), typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: %q must be a list of keys, found a JSON %s", offsetPosition(path, data, typ.Offset), typ.Field, typ.Value)
	default:
		return err.Error()
	}
}

// offsetPosition turns a byte offset into path:line:column.
func offsetPosition(path string, data []byte, offset int64) Position {
	offset = min(offset, int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return Position{File: path, Line: line, Column: col}
}
