package controller

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
	"github.com/portico-gw/portico/xds"
)

// The states a resource can be in.
const (
	// StateAccepted: served as written, without findings.
	StateAccepted = "Accepted"
	// StateWarning: served as written, with findings worth a look.
	StateWarning = "Warning"
	// StateRejected: not served as written, by Portico's validation or by Envoy; its last good
	// version, if any, keeps serving.
	StateRejected = "Rejected"
)

// The outcomes of a reload, as counted in Status.Reloads.
const (
	ResultApplied   = "applied"   // a new configuration was pushed
	ResultPartial   = "partial"   // pushed, with some resources held back
	ResultUnchanged = "unchanged" // the files produce what is served already
	ResultInvalid   = "invalid"   // validation rejected the whole change
	ResultRejected  = "rejected"  // Envoy rejected the change
)

// Results lists every reload result, for counters that start at zero.
var Results = []string{ResultApplied, ResultPartial, ResultUnchanged, ResultInvalid, ResultRejected}

// The sources a served configuration can come from.
const (
	SourceFiles    = "files"
	SourceLastGood = "last-known-good"
)

const reasonNotServed = "not served"

// Status is what `portico status` and the admin /status endpoint report.
type Status struct {
	// Ready is true when Envoy has acknowledged the generation Portico wants served.
	Ready bool `json:"ready"`
	// NotReadyReason says why Ready is false.
	NotReadyReason string           `json:"notReadyReason,omitempty"`
	Envoy          EnvoyStatus      `json:"envoy"`
	Generation     GenerationStatus `json:"generation"`
	// Source is where the served configuration came from: "files", or "last-known-good" when
	// the files were invalid at start.
	Source     string            `json:"source"`
	LastReload *ReloadStatus     `json:"lastReload,omitempty"`
	Reloads    map[string]uint64 `json:"reloads"`
	Resources  []ResourceStatus  `json:"resources"`
	// RateLimit is the global rate limit service's health; nil when it does not run.
	RateLimit *RateLimitStatus `json:"rateLimit,omitempty"`
	// Discovery is, per Upstream that discovers its hosts at run time, how that goes.
	Discovery []DiscoveryStatus `json:"discovery,omitempty"`
}

// EnvoyStatus describes the Envoy Portico serves.
type EnvoyStatus struct {
	// Connected reports whether Envoy's xDS stream is open.
	Connected bool   `json:"connected"`
	Version   string `json:"version,omitempty"`
	// LastRejection is Envoy's last NACK, if any.
	LastRejection string `json:"lastRejection,omitempty"`
}

// GenerationStatus numbers configurations: every change Portico pushes is a new generation.
type GenerationStatus struct {
	// Current is the generation of the configuration Portico wants served.
	Current uint64 `json:"current"`
	// Served is the generation offered to Envoy now; it differs from Current while a change is
	// rolled out in steps or after Envoy rejected Current and the last good one was restored.
	Served uint64 `json:"served"`
	// ACKed is the last generation Envoy acknowledged.
	ACKed uint64 `json:"acked"`
}

// ReloadStatus is the outcome of the last reload.
type ReloadStatus struct {
	Time       time.Time `json:"time"`
	Result     string    `json:"result"`
	Generation uint64    `json:"generation"`
	Problems   []Problem `json:"problems,omitempty"`
}

// ResourceStatus is one resource's state and why.
type ResourceStatus struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	State   string   `json:"state"`
	Reasons []string `json:"reasons,omitempty"`
	// File is where the resource is defined.
	File string `json:"file,omitempty"`
}

// resourceStatuses derives every resource's status. served is what is configured now;
// rejected are resources of the files it holds back; invalid is the last whole-change
// failure, if the files are broken now; nacked are resources Envoy rejected with message.
func resourceStatuses(served *config.Config, rejected []config.Rejection, invalid config.Diagnostics, nacked []config.ResourceRef, nackMessage string) []ResourceStatus {
	byRef := map[config.ResourceRef]*ResourceStatus{}
	add := func(kind, name string, src config.Source) {
		byRef[config.ResourceRef{Kind: kind, Name: name}] = &ResourceStatus{Kind: kind, Name: name, State: StateAccepted, File: src.Doc.String()}
	}
	if served != nil {
		for _, r := range served.Gateways {
			add(config.KindGateway, r.Metadata.Name, r.Source)
		}
		for _, r := range served.VirtualServices {
			add(config.KindVirtualService, r.Metadata.Name, r.Source)
		}
		for _, r := range served.RouteTables {
			add(config.KindRouteTable, r.Metadata.Name, r.Source)
		}
		for _, r := range served.Upstreams {
			add(config.KindUpstream, r.Metadata.Name, r.Source)
		}
		for _, r := range served.Proxies {
			add(config.KindProxy, r.Metadata.Name, r.Source)
		}
		for _, r := range served.Secrets {
			add(config.KindSecret, r.Metadata.Name, r.Source)
		}
		for _, r := range served.GatewayAPI {
			add(r.Kind, r.Name, r.Source)
		}
		for _, w := range served.Warnings {
			if st := byRef[config.ResourceRef{Kind: w.Kind, Name: w.Name}]; st != nil {
				st.State = StateWarning
				st.Reasons = append(st.Reasons, w.Error())
			}
		}
	}
	reject := func(ref config.ResourceRef, reason string) {
		st := byRef[ref]
		if st == nil {
			st = &ResourceStatus{Kind: ref.Kind, Name: ref.Name}
			byRef[ref] = st
		}
		if st.State != StateRejected {
			st.State, st.Reasons = StateRejected, nil
		}
		st.Reasons = append(st.Reasons, reason)
	}
	for _, r := range rejected {
		for _, d := range r.Problems {
			reject(r.ResourceRef, d.Error())
		}
		if r.Kept {
			reject(r.ResourceRef, "its previous version keeps serving")
		} else {
			reject(r.ResourceRef, reasonNotServed)
		}
	}
	for _, d := range invalid {
		if d.Severity == config.SeverityError && d.Kind != "" && d.Name != "" {
			reject(config.ResourceRef{Kind: d.Kind, Name: d.Name}, d.Error())
		}
	}
	for _, ref := range nacked {
		reject(ref, "envoy rejected it: "+nackMessage)
	}
	if served != nil {
		// A Gateway API document is as well as the Portico resources it became.
		for _, r := range served.GatewayAPI {
			st := byRef[config.ResourceRef{Kind: r.Kind, Name: r.Name}]
			for _, ref := range r.Produces {
				if p := byRef[ref]; p != nil && p.State != StateAccepted && st.State != StateRejected {
					st.State = p.State
					st.Reasons = append(st.Reasons, p.Reasons...)
				}
			}
		}
	}
	out := make([]ResourceStatus, 0, len(byRef))
	for _, st := range byRef {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b ResourceStatus) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func kindOrder(kind string) int {
	order := []string{config.KindGateway, config.KindVirtualService, config.KindRouteTable, config.KindUpstream, config.KindProxy, config.KindSecret,
		config.KindGatewayAPIClass, config.KindGatewayAPIGateway, config.KindGatewayAPIHTTPRoute, config.KindCoreService, config.KindCoreSecret}
	if i := slices.Index(order, kind); i >= 0 {
		return i
	}
	return len(order)
}

// nackedResources maps Envoy's rejection back to the user's resources. Envoy resource names
// are the user's names: listeners and route configurations are Gateways, virtual hosts are
// VirtualServices, clusters and load assignments are Upstreams. A NACK lists every resource
// of the type that was sent; Envoy's message names the culprits, so those mentioned in it are
// preferred, down to the VirtualService whose virtual host broke a route configuration.
func nackedResources(n *xds.NACKError, cfg *config.Config) []config.ResourceRef {
	var kind string
	switch n.TypeURL {
	case resource.ListenerType, resource.RouteType:
		kind = config.KindGateway
	case resource.ClusterType, resource.EndpointType:
		kind = config.KindUpstream
	default:
		return nil
	}
	if n.TypeURL == resource.RouteType && cfg != nil {
		var vss []config.ResourceRef
		for _, vs := range cfg.VirtualServices {
			// Envoy names virtual hosts in statistics form: a dotted name appears escaped.
			if mentions(n.Message, vs.Metadata.Name) || mentions(n.Message, translator.StatName(vs.Metadata.Name)) {
				vss = append(vss, config.ResourceRef{Kind: config.KindVirtualService, Name: vs.Metadata.Name})
			}
		}
		if len(vss) > 0 {
			return vss
		}
	}
	var all, named []config.ResourceRef
	for _, name := range n.Names {
		ref := config.ResourceRef{Kind: kind, Name: name}
		all = append(all, ref)
		if mentions(n.Message, name) {
			named = append(named, ref)
		}
	}
	if len(named) > 0 {
		return named
	}
	return all
}

// mentions reports whether msg contains name as a whole word: not as part of a longer name
// ("web" is not mentioned by "web2").
func mentions(msg, name string) bool {
	if name == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(msg[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !nameChar(msg[start-1])) && (end == len(msg) || !nameChar(msg[end])) {
			return true
		}
		i = start + 1
	}
}

func nameChar(c byte) bool {
	// '.' is allowed in names but also ends Envoy's sentences, so it counts as a boundary.
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// readiness decides whether Envoy serves what Portico wants, and if not, why.
func readiness(xs xds.Status, current uint64, nack *xds.NACKError) (bool, string) {
	switch {
	case current == 0:
		return false, "no configuration pushed yet"
	case nack != nil:
		return false, fmt.Sprintf("envoy rejected generation %d: %s", nack.Generation, nack.Message)
	case !xs.Connected:
		return false, "envoy is not connected"
	case xs.ACKedGeneration < current || xs.ACKedGeneration != xs.PushedGeneration:
		return false, fmt.Sprintf("envoy has not acknowledged generation %d yet (acknowledged: %d)", xs.PushedGeneration, xs.ACKedGeneration)
	}
	return true, ""
}
