package config

import (
	"fmt"
	"strings"
)

// directResponseForbiddenHeaders are headers a direct response cannot set: hop-by-hop headers
// describe one connection, not the response, and content-length is computed by Envoy from the
// body; setting any of them would produce a malformed or misleading answer.
var directResponseForbiddenHeaders = map[string]string{
	"connection":        "hop-by-hop",
	"keep-alive":        "hop-by-hop",
	"proxy-connection":  "hop-by-hop",
	"te":                "hop-by-hop",
	"trailer":           "hop-by-hop",
	"transfer-encoding": "hop-by-hop",
	"upgrade":           "hop-by-hop",
	"content-length":    "computed from the body",
}

// checkDirectResponseHeaders checks the headers a direct response sets.
func (v *validator) checkDirectResponseHeaders(s subject, field string, headers []HeaderValue) {
	v.checkHeadersToAdd(s, field, headers)
	for i, h := range headers {
		p := fmt.Sprintf("%s[%d].name", field, i)
		if why, ok := directResponseForbiddenHeaders[strings.ToLower(h.Name)]; ok && s.src.valid(p) {
			v.errorf(s, p, "header %q cannot be set on a direct response (%s); remove it", excerpt(h.Name), why)
		}
	}
}
