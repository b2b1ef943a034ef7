package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// envoyAdminTimeout bounds a request to Envoy's admin API made on behalf of a client.
const envoyAdminTimeout = 5 * time.Second

// droppedKeys are fields whose value is a secret wherever they appear.
var droppedKeys = map[string]bool{
	"private_key": true, "password": true, "session_ticket_keys": true,
	// AWS keys of the aws_lambda filter's per-route configuration.
	"secret_access_key": true, "session_token": true,
}

// inlineKeys hold a data source's inline content: a secret inside a secret, a response body
// elsewhere.
var inlineKeys = map[string]bool{"inline_string": true, "inline_bytes": true}

// RedactConfigDump removes secrets from Envoy's /config_dump output: private keys, passwords,
// session ticket keys, and inline content anywhere inside a secret (static, dynamic or generic).
func RedactConfigDump(raw []byte) ([]byte, error) {
	var dump any
	if err := json.Unmarshal(raw, &dump); err != nil {
		return nil, fmt.Errorf("decode envoy config dump: %w", err)
	}
	out, err := json.MarshalIndent(redact(dump, false), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func redact(v any, inSecret bool) any {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if droppedKeys[k] || inSecret && inlineKeys[k] {
				delete(v, k)
				continue
			}
			v[k] = redact(child, inSecret || isSecretScope(k))
		}
	case []any:
		for i, child := range v {
			v[i] = redact(child, inSecret)
		}
	}
	return v
}

// isSecretScope reports whether key holds secrets: static_secrets, dynamic_active_secrets,
// a generic_secret's secret, and the like.
func isSecretScope(key string) bool {
	return strings.HasSuffix(key, "secret") || strings.HasSuffix(key, "secrets")
}

// configDump fetches Envoy's configuration dump from its admin API at addr.
func configDump(ctx context.Context, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, envoyAdminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/config_dump?include_eds", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask envoy for its config dump: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read envoy's config dump: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("envoy's config dump: %s", resp.Status)
	}
	return RedactConfigDump(body)
}
