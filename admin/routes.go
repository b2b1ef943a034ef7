package admin

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/metrics"
	"github.com/portico-gw/portico/translator"
)

// Route is one row of the route table: a route as Envoy serves it, in Envoy's order.
type Route struct {
	Gateway        string   `json:"gateway"`
	Domains        []string `json:"domains"`
	VirtualService string   `json:"virtualService"`
	// Name is the route's name: the one in access logs and the envoy_route label.
	Name   string `json:"name"`
	Match  string `json:"match"`
	Action string `json:"action"`
	// Upstream names where requests go: one Upstream, or a split such as "a 90%, b 10%".
	Upstream string `json:"upstream,omitempty"`
	// Status is the VirtualService's state (Accepted, Warning or Rejected).
	Status string `json:"status"`
}

// RouteTable lists the routes cfg makes Envoy serve. It translates cfg again rather than
// walking the user's routes, so delegation is flattened exactly as Envoy receives it.
func RouteTable(cfg *config.Config, st controller.Status) ([]Route, error) {
	if cfg == nil {
		return nil, nil
	}
	out, err := translator.Translate(cfg)
	if err != nil {
		return nil, fmt.Errorf("translate the served configuration: %w", err)
	}
	states := map[string]string{}
	for _, r := range st.Resources {
		if r.Kind == config.KindVirtualService {
			states[r.Name] = r.State
		}
	}
	var rows []Route
	for _, rc := range out.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			vs := metrics.UnescapeStatName(vh.GetName())
			for _, r := range vh.GetRoutes() {
				action, upstream := describeAction(r)
				rows = append(rows, Route{
					Gateway: rc.GetName(), Domains: vh.GetDomains(), VirtualService: vs, Name: r.GetName(),
					Match: describeMatch(r.GetMatch()), Action: action, Upstream: upstream, Status: states[vs],
				})
			}
		}
	}
	return rows, nil
}

func describeMatch(m *routev3.RouteMatch) string {
	var parts []string
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		parts = append(parts, "prefix "+p.Prefix)
	case *routev3.RouteMatch_Path:
		parts = append(parts, "exact "+p.Path)
	case *routev3.RouteMatch_SafeRegex:
		parts = append(parts, "regex "+p.SafeRegex.GetRegex())
	case *routev3.RouteMatch_PathSeparatedPrefix:
		parts = append(parts, "prefix "+p.PathSeparatedPrefix)
	}
	if cs := m.GetCaseSensitive(); cs != nil && !cs.GetValue() {
		parts[len(parts)-1] += " (any case)"
	}
	for _, h := range m.GetHeaders() {
		if h.GetName() == ":method" {
			// Several methods are an alternation of plain tokens: "GET|POST" reads as it is.
			parts = append(parts, "method "+strings.TrimPrefix(describeString(h.GetStringMatch()), "~"))
			continue
		}
		not := ""
		if h.GetInvertMatch() {
			not = "not "
		}
		if h.GetPresentMatch() {
			parts = append(parts, fmt.Sprintf("%sheader %s present", not, h.GetName()))
		} else {
			parts = append(parts, fmt.Sprintf("%sheader %s=%s", not, h.GetName(), describeString(h.GetStringMatch())))
		}
	}
	for _, q := range m.GetQueryParameters() {
		if q.GetPresentMatch() {
			parts = append(parts, fmt.Sprintf("query %s present", q.GetName()))
		} else {
			parts = append(parts, fmt.Sprintf("query %s=%s", q.GetName(), describeString(q.GetStringMatch())))
		}
	}
	return strings.Join(parts, ", ")
}

func describeString(m *matcherv3.StringMatcher) string {
	if re := m.GetSafeRegex(); re != nil {
		return "~" + re.GetRegex()
	}
	return m.GetExact()
}

func describeAction(r *routev3.Route) (action, upstream string) {
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		if wc := a.Route.GetWeightedClusters(); wc != nil {
			var total uint32
			for _, c := range wc.GetClusters() {
				total += c.GetWeight().GetValue()
			}
			var split []string
			for _, c := range wc.GetClusters() {
				split = append(split, fmt.Sprintf("%s %d%%", c.GetName(), percentOf(c.GetWeight().GetValue(), total)))
			}
			return "split", strings.Join(split, ", ")
		}
		return "forward", a.Route.GetCluster()
	case *routev3.Route_Redirect:
		return "redirect " + describeRedirect(a.Redirect), ""
	case *routev3.Route_DirectResponse:
		return fmt.Sprintf("respond %d", a.DirectResponse.GetStatus()), ""
	}
	return "other", ""
}

func percentOf(w, total uint32) uint32 {
	if total == 0 {
		return 0
	}
	return (w*100 + total/2) / total
}

var redirectCodes = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  301,
	routev3.RedirectAction_FOUND:              302,
	routev3.RedirectAction_SEE_OTHER:          303,
	routev3.RedirectAction_TEMPORARY_REDIRECT: 307,
	routev3.RedirectAction_PERMANENT_REDIRECT: 308,
}

func describeRedirect(r *routev3.RedirectAction) string {
	to := []string{fmt.Sprint(redirectCodes[r.GetResponseCode()])}
	if s := r.GetSchemeRedirect(); s != "" {
		to = append(to, "scheme "+s)
	}
	if r.GetHttpsRedirect() {
		to = append(to, "scheme https")
	}
	if h := r.GetHostRedirect(); h != "" {
		to = append(to, "host "+h)
	}
	if p := r.GetPortRedirect(); p != 0 {
		to = append(to, fmt.Sprintf("port %d", p))
	}
	if p := r.GetPathRedirect(); p != "" {
		to = append(to, "path "+p)
	}
	if p := r.GetPrefixRewrite(); p != "" {
		to = append(to, "prefix "+p)
	}
	return to[0] + " to " + strings.Join(to[1:], ", ")
}
