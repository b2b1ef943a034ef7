package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// routeActions are the Route fields that say what to do with a request; exactly one is set.
var routeActions = []string{"upstream", "destinations", "upstreamGroup", "redirect", "directResponse", "delegate", "lambda"}

// pathMatchers are the RouteMatch fields that match the path; exactly one is set.
var pathMatchers = []string{"prefix", "exact", "regex"}

// httpMethods are the methods a route can match; others are almost always typos.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// redirectCodes are the redirect statuses Envoy can answer.
var redirectCodes = []int{301, 302, 303, 307, 308}

// maxDirectResponseBody is Envoy's default limit on an inline direct response body; a larger
// body makes Envoy reject the whole route configuration.
const maxDirectResponseBody = 4096

// checkRoutes checks the route list of a VirtualService or RouteTable at spec.routes.
func (v *validator) checkRoutes(s subject, routes []Route) {
	if s.src.valid("spec.routes") && len(routes) == 0 {
		v.errorf(s, "spec.routes", "no routes; add at least one route")
	}
	names := map[string]string{} // route name -> path of the route that has it
	var earlier shadowIndex
	for i := range routes {
		p := fmt.Sprintf("spec.routes[%d]", i)
		if !s.src.valid(p) {
			continue
		}
		r := &routes[i]
		if s.src.valid(p+".name") && r.Name != "" {
			if prev, dup := names[r.Name]; dup {
				v.errorf(s, p+".name", "route name %q is already used by %s; route names must be unique within a %s", excerpt(r.Name), prev, s.kind)
			} else {
				names[r.Name] = p
			}
		}
		if m, ok := v.checkMatch(s, p+".match", r.Match); ok {
			m.partial = m.partial || s.src.has(p+".delegate")
			if e, ok := earlier.coveredBy(m); ok {
				v.warnf(s, p+".match", "route is unreachable: %s (%s) matches every request this one would; move this route before it or remove it", e.path, e)
			}
			earlier.add(m)
		}
		v.checkAction(s, p, r)
		v.checkRouteOptions(s, p, r)
		v.checkRouteResponsePolicies(s, p, r)
	}
}

// checkMatch checks a route's match and returns its path condition when it is well formed.
func (v *validator) checkMatch(s subject, p string, m RouteMatch) (pathMatch, bool) {
	if !s.src.valid(p) {
		return pathMatch{}, false
	}
	v.checkHeaderMatches(s, p, m.Headers)
	v.checkQueryMatches(s, p, m.QueryParameters)
	v.checkMethods(s, p, m.Methods)
	v.checkGRPCMatch(s, p, m)
	var set []string
	for _, f := range pathMatchers {
		if s.src.has(p + "." + f) {
			set = append(set, f)
		}
	}
	switch len(set) {
	case 0:
		v.errorf(s, p, "no path to match; set one of %s", strings.Join(pathMatchers, ", "))
		return pathMatch{}, false
	case 1:
	default:
		v.errorf(s, p, "set only one of %s", strings.Join(set, ", "))
		return pathMatch{}, false
	}
	pm := pathMatch{
		path:          strings.TrimSuffix(p, ".match"),
		kind:          set[0],
		caseSensitive: m.IsCaseSensitive(),
		partial:       len(m.Headers) > 0 || len(m.QueryParameters) > 0 || len(m.Methods) > 0 || m.GRPC,
	}
	field := p + "." + pm.kind
	switch pm.kind {
	case "prefix":
		pm.value = m.Prefix
	case "exact":
		pm.value = m.Exact
	case "regex":
		pm.value = m.Regex
	}
	if !s.src.valid(field) {
		return pathMatch{}, false
	}
	if pm.kind == "regex" {
		if !v.checkRegex(s, field, m.Regex) {
			return pathMatch{}, false
		}
		if s.src.valid(p+".caseSensitive") && !pm.caseSensitive {
			v.errorf(s, p+".caseSensitive", "caseSensitive does not apply to a regex; remove it and start the regex with (?i) instead")
			return pathMatch{}, false
		}
		return pm, true
	}
	if !strings.HasPrefix(pm.value, "/") {
		v.errorf(s, field, "path %q must start with \"/\"", excerpt(pm.value))
		return pathMatch{}, false
	}
	return pm, true
}

// checkRegex checks an RE2 regular expression as Envoy will compile it. Go's regexp/syntax
// implements the same RE2 syntax, so what it rejects Envoy rejects too.
func (v *validator) checkRegex(s subject, field, re string) bool {
	if !s.src.valid(field) {
		return false
	}
	_, err := syntax.Parse(re, syntax.Perl)
	if err == nil {
		return true
	}
	msg := err.Error()
	var se *syntax.Error
	if errors.As(err, &se) {
		msg = string(se.Code)
		// Some errors quote the whole expression; an offset helps only for a fragment.
		if at := strings.Index(re, se.Expr); se.Expr != "" && se.Expr != re && at >= 0 {
			msg += fmt.Sprintf(" at offset %d (%q)", at, excerpt(se.Expr))
		}
	}
	v.errorf(s, field, "invalid RE2 regex %q: %s; fix the expression (it must match the whole value)", excerpt(re), msg)
	return false
}

// headerNameRE is an HTTP header name (RFC 9110 token), optionally a pseudo-header like :authority.
var headerNameRE = regexp.MustCompile("^:?[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

func (v *validator) checkHeaderName(s subject, field, name string) {
	if s.src.valid(field) && !headerNameRE.MatchString(name) {
		v.errorf(s, field, "%q is not a valid header name; use letters, digits and '-' such as \"x-request-id\"", excerpt(name))
	}
}

// checkStringMatch checks the one-of exact | regex | present of a header or query condition.
func (v *validator) checkStringMatch(s subject, p, regex string, present bool) {
	var set []string
	for _, f := range []string{"exact", "regex", "present"} {
		if s.src.has(p + "." + f) {
			set = append(set, f)
		}
	}
	switch {
	case len(set) == 0:
		v.errorf(s, p, "no condition; set one of exact, regex or present: true")
	case len(set) > 1:
		v.errorf(s, p, "set only one of %s", strings.Join(set, ", "))
	}
	if s.src.has(p + ".regex") {
		v.checkRegex(s, p+".regex", regex)
	}
	if s.src.valid(p+".present") && !present {
		v.errorf(s, p+".present", "present: false matches nothing here; to match when it is absent use present: true with invert: true (headers), or remove the condition")
	}
}

func (v *validator) checkHeaderMatches(s subject, p string, headers []HeaderMatch) {
	for i, h := range headers {
		hp := fmt.Sprintf("%s.headers[%d]", p, i)
		if !s.src.valid(hp) {
			continue
		}
		v.checkHeaderName(s, hp+".name", h.Name)
		v.checkStringMatch(s, hp, h.Regex, h.Present)
	}
}

func (v *validator) checkQueryMatches(s subject, p string, params []QueryParameterMatch) {
	for i, q := range params {
		qp := fmt.Sprintf("%s.queryParameters[%d]", p, i)
		if !s.src.valid(qp) {
			continue
		}
		if s.src.valid(qp+".name") && q.Name == "" {
			v.errorf(s, qp+".name", "query parameter name is empty; name the parameter, such as \"version\"")
		}
		v.checkStringMatch(s, qp, q.Regex, q.Present)
	}
}

func (v *validator) checkMethods(s subject, p string, methods []string) {
	if s.src.valid(p+".methods") && len(methods) == 0 {
		v.errorf(s, p+".methods", "no methods; list at least one, or remove methods to match any method")
	}
	seen := map[string]bool{}
	for i, m := range methods {
		mp := fmt.Sprintf("%s.methods[%d]", p, i)
		switch {
		case !s.src.valid(mp):
		case !slices.Contains(httpMethods, m):
			v.errorf(s, mp, "unknown method %q; use one of %s%s", excerpt(m), strings.Join(httpMethods, ", "), didYouMean(m, httpMethods))
		case seen[m]:
			v.errorf(s, mp, "method %q is listed more than once; remove the repeat", m)
		}
		seen[m] = true
	}
}

func (v *validator) checkAction(s subject, p string, r *Route) {
	var set []string
	for _, a := range routeActions {
		if s.src.has(p + "." + a) {
			set = append(set, a)
		}
	}
	switch {
	case len(set) == 0:
		v.errorf(s, p, "no action; set one of: %s", strings.Join(routeActions, ", "))
	case len(set) > 1:
		v.errorf(s, p, "set only one action, not all of: %s", strings.Join(set, ", "))
	}
	if s.src.valid(p+".upstream") && v.upstreams[r.Upstream] == nil {
		v.errorf(s, p+".upstream", "%s", notDefined(KindUpstream, r.Upstream, v.upstreamNames))
	}
	v.checkNotLambdaUpstream(s, p+".upstream", r.Upstream)
	if r.Lambda != nil {
		v.checkLambda(s, p+".lambda", r.Lambda)
		v.checkLambdaRouteOptions(s, p+".options")
	}
	if s.src.valid(p + ".destinations") {
		v.checkDestinations(s, p+".destinations", r.Destinations)
	}
	v.checkUpstreamGroupRef(s, p+".upstreamGroup", r.UpstreamGroup)
	if r.Redirect != nil && s.src.valid(p+".redirect") {
		v.checkRedirect(s, p, r)
	}
	if r.DirectResponse != nil && s.src.valid(p+".directResponse") {
		if st := r.DirectResponse.Status; s.src.valid(p+".directResponse.status") && (st < 200 || st > 599) {
			v.errorf(s, p+".directResponse.status", "status %d is out of range; use 200-599", st)
		}
		if b := r.DirectResponse.Body; s.src.valid(p+".directResponse.body") && len(b) > maxDirectResponseBody {
			v.errorf(s, p+".directResponse.body", "body is %d bytes; Envoy allows at most %d in a direct response, serve larger content from an Upstream", len(b), maxDirectResponseBody)
		}
		v.checkDirectResponseHeaders(s, p+".directResponse.headers", r.DirectResponse.Headers)
	}
	if r.Delegate != nil && s.src.valid(p+".delegate") {
		v.checkDelegate(s, p, r)
	}
}

func (v *validator) checkDestinations(s subject, p string, dests []Destination) {
	if len(dests) == 0 {
		v.errorf(s, p, "no destinations; list at least one {upstream: <name>, weight: <1 or more>}")
		return
	}
	seen := map[string]bool{}
	total := 0
	for i, d := range dests {
		dp := fmt.Sprintf("%s[%d]", p, i)
		if !s.src.valid(dp) {
			continue
		}
		if s.src.valid(dp + ".upstream") {
			switch {
			case v.upstreams[d.Upstream] == nil:
				v.errorf(s, dp+".upstream", "%s", notDefined(KindUpstream, d.Upstream, v.upstreamNames))
			case seen[d.Upstream]:
				v.errorf(s, dp+".upstream", "Upstream %q is listed more than once; merge the weights into one destination", excerpt(d.Upstream))
			}
			seen[d.Upstream] = true
			v.checkNotLambdaUpstream(s, dp+".upstream", d.Upstream)
		}
		if s.src.valid(dp + ".weight") {
			if d.Weight < 1 || d.Weight > math.MaxUint32 {
				v.errorf(s, dp+".weight", "weight %d is out of range; use 1 or more (weights are relative to each other)", d.Weight)
				continue
			}
			total += d.Weight
		}
	}
	if total > math.MaxUint32 {
		v.errorf(s, p, "weights add up to %d, more than Envoy's limit of %d; scale them down", total, uint32(math.MaxUint32))
	}
}

func (v *validator) checkRedirect(s subject, p string, r *Route) {
	rd, rp := r.Redirect, p+".redirect"
	has := func(f string) bool { return s.src.has(rp + "." + f) }
	if !has("hostRedirect") && !has("pathRedirect") && !has("prefixRewrite") && !has("schemeRedirect") &&
		!has("httpsRedirect") && !has("portRedirect") && !has("stripQuery") {
		v.errorf(s, rp, "the redirect changes nothing and would loop; set hostRedirect, pathRedirect, prefixRewrite, schemeRedirect, httpsRedirect, portRedirect or stripQuery")
	}
	if has("pathRedirect") && has("prefixRewrite") {
		v.errorf(s, rp, "set only one of pathRedirect or prefixRewrite")
	}
	if has("schemeRedirect") && has("httpsRedirect") {
		v.errorf(s, rp, "set only one of schemeRedirect or httpsRedirect")
	}
	if s.src.valid(rp+".hostRedirect") && !validHostname(rd.HostRedirect) {
		v.errorf(s, rp+".hostRedirect", "%q is not a host name; use a name such as \"www.example.com\" (set a port with portRedirect)", excerpt(rd.HostRedirect))
	}
	for _, f := range []string{"pathRedirect", "prefixRewrite"} {
		val := rd.PathRedirect
		if f == "prefixRewrite" {
			val = rd.PrefixRewrite
		}
		if s.src.valid(rp+"."+f) && !strings.HasPrefix(val, "/") {
			v.errorf(s, rp+"."+f, "path %q must start with \"/\"", excerpt(val))
		}
	}
	if s.src.valid(rp+".prefixRewrite") && s.src.valid(p+".match") && !s.src.has(p+".match.prefix") {
		v.errorf(s, rp+".prefixRewrite", "prefixRewrite replaces the matched prefix, so the route must match by prefix; use pathRedirect instead")
	}
	if s.src.valid(rp+".schemeRedirect") && rd.SchemeRedirect != "http" && rd.SchemeRedirect != "https" {
		v.errorf(s, rp+".schemeRedirect", "scheme %q is not supported; use http or https", excerpt(rd.SchemeRedirect))
	}
	if s.src.valid(rp+".httpsRedirect") && !rd.HTTPSRedirect {
		v.errorf(s, rp+".httpsRedirect", "httpsRedirect: false does nothing; remove it")
	}
	if s.src.valid(rp+".portRedirect") && !validPort(rd.PortRedirect) {
		v.errorf(s, rp+".portRedirect", "%s", portRangeMessage(rd.PortRedirect))
	}
	if s.src.valid(rp+".stripQuery") && !rd.StripQuery {
		v.errorf(s, rp+".stripQuery", "stripQuery: false is the default; remove it")
	}
	if s.src.valid(rp+".responseCode") && !slices.Contains(redirectCodes, rd.ResponseCode) {
		v.errorf(s, rp+".responseCode", "response code %d is not a redirect; use 301, 302, 303, 307 or 308", rd.ResponseCode)
	}
}

// hostnameRE is a DNS name: dot-separated labels of letters, digits and inner '-'.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$`)

func validHostname(h string) bool { return len(h) <= 253 && hostnameRE.MatchString(h) }

// pathMatch is a route's path condition, as far as reachability is concerned.
type pathMatch struct {
	path          string // the route's field path, for messages
	kind          string // prefix, exact or regex
	value         string
	caseSensitive bool
	// partial is set when the route matches fewer requests than its path says: it also matches
	// headers, query parameters, methods or only gRPC requests, or it delegates and so matches
	// only the paths of the delegated routes. Such a route covers nothing.
	partial bool
}

// covers reports whether every request that later matches also matches m. Envoy's prefix
// match is a plain string prefix, not a path-segment one. Regexes are judged only by the
// literal text every match must begin with, so a regex never covers another route.
func (m pathMatch) covers(later pathMatch) bool {
	if m.partial || m.kind == "regex" {
		return false
	}
	value, laterSensitive := later.value, later.caseSensitive
	if later.kind == "regex" {
		re, err := regexp.Compile(later.value)
		if err != nil {
			return false
		}
		// A regex matches the whole path, so every path it matches starts with this prefix.
		value, _ = re.LiteralPrefix()
		laterSensitive = true
	}
	if m.caseSensitive && !laterSensitive {
		return false // later also matches case variants that m does not
	}
	if !m.caseSensitive {
		value, m.value = strings.ToLower(value), strings.ToLower(m.value)
	}
	if m.kind == "exact" {
		return later.kind == "exact" && value == m.value
	}
	return strings.HasPrefix(value, m.value)
}

// shadowIndex finds, among the earlier routes of one list, the first that covers a later route,
// without comparing every pair: lists of thousands of routes are common, and a pairwise scan
// made this check dominate reload time. Only earlier matches that can cover anything (plain
// prefix or exact paths without further conditions) are indexed, by their lower-cased path;
// the candidates for a later route are those whose key is a prefix of its own lower-cased path,
// and covers decides among them.
type shadowIndex struct {
	all   []pathMatch
	byKey map[string][]int // lower-cased path -> indexes into all, ascending
}

func (x *shadowIndex) add(m pathMatch) {
	i := len(x.all)
	x.all = append(x.all, m)
	if m.partial || m.kind == "regex" {
		return
	}
	if x.byKey == nil {
		x.byKey = map[string][]int{}
	}
	k := strings.ToLower(m.value)
	x.byKey[k] = append(x.byKey[k], i)
}

// coveredBy returns the earliest indexed route that covers later.
func (x *shadowIndex) coveredBy(later pathMatch) (pathMatch, bool) {
	if len(x.byKey) == 0 {
		return pathMatch{}, false
	}
	value := later.value
	if later.kind == "regex" {
		re, err := regexp.Compile(later.value)
		if err != nil {
			return pathMatch{}, false
		}
		value, _ = re.LiteralPrefix()
	}
	value = strings.ToLower(value)
	best := -1
	for n := 1; n <= len(value); n++ {
		for _, i := range x.byKey[value[:n]] {
			if (best < 0 || i < best) && x.all[i].covers(later) {
				best = i
				break // indexes are ascending: the first that covers is the earliest for this key
			}
		}
	}
	if best < 0 {
		return pathMatch{}, false
	}
	return x.all[best], true
}

func (m pathMatch) String() string {
	return fmt.Sprintf("%s %q", m.kind, excerpt(m.value))
}
