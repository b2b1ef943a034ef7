package config

import (
	"cmp"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The conversion turns Gateway API documents into Portico resources before validation, so
// that validation, translation and status treat them like any other. Every Portico field it
// writes is recorded in the new resource's Source at the position of the Gateway API field it
// came from, so validation's messages point into the user's Kubernetes YAML, and origins maps
// each new resource back to its document so that those messages name it.
//
// The mapping (docs/gateway-api.md has it for users):
//   - a Gateway becomes one Portico Gateway per listener port: named after the Gateway when it
//     has one port, "<gateway>-<port>" otherwise; the HTTPS listeners of a port share it, each
//     listener's certificates answering its hostname;
//   - an HTTPRoute becomes a VirtualService of the same name attached to the Portico Gateways
//     of its parent listeners (HTTPRoutes with the same hostnames on the same listeners become
//     one); each rule's matches become routes, ordered by the Gateway API's precedence;
//   - a Service port a route names becomes an Upstream "<service>-<port>": static for the IP
//     addresses of its portico.dev/hosts annotation, DNS for names or type ExternalName;
//   - a kubernetes.io/tls Secret becomes a tls Secret of the same name holding its PEM data.

// origin is the Gateway API document a Portico resource was converted from (the first, for a
// VirtualService merged from several HTTPRoutes), and for each Portico field path the Gateway
// API field it came from.
type origin struct {
	kind, name string
	fields     map[string]gwField
}

// gatewayAPIConversion is one conversion's state.
type gatewayAPIConversion struct {
	docs  gatewayAPIDocs
	out   Config
	diags Diagnostics
	// origins maps each Portico resource made to the document it came from.
	origins map[ResourceRef]origin

	secrets   map[string]*k8sSecret  // namespace/name
	services  map[string]*k8sService // namespace/name
	listeners map[string][]listenerTarget
	upstreams map[string]bool
}

// listenerTarget is a Gateway API listener and the Portico Gateway serving it.
type listenerTarget struct {
	gw      *k8sGateway
	index   int
	portico string
}

func (l listenerTarget) listener() k8sListener { return l.gw.Spec.Listeners[l.index] }

func (l listenerTarget) path(field string) string {
	return joinPath(fmt.Sprintf("spec.listeners[%d]", l.index), field)
}

// convertGatewayAPI converts the Gateway API documents of a load into Portico resources.
func convertGatewayAPI(docs gatewayAPIDocs) (*Config, []*GatewayAPIResource, map[ResourceRef]origin, Diagnostics) {
	c := &gatewayAPIConversion{
		docs:      docs,
		origins:   map[ResourceRef]origin{},
		secrets:   map[string]*k8sSecret{},
		services:  map[string]*k8sService{},
		listeners: map[string][]listenerTarget{},
		upstreams: map[string]bool{},
	}
	var resources []*GatewayAPIResource
	for _, gc := range docs.classes {
		resources = append(resources, &GatewayAPIResource{Kind: KindGatewayAPIClass, Name: gc.Metadata.Name, Source: gc.Source})
	}
	for _, s := range docs.secrets {
		resources = append(resources, c.secret(s))
	}
	for _, s := range docs.services {
		c.services[s.Metadata.namespace()+"/"+s.Metadata.Name] = s
		c.checkService(s)
	}
	for _, g := range docs.gateways {
		resources = append(resources, c.gateway(g))
	}
	var units []*routeUnit
	for _, r := range docs.routes {
		res, u := c.route(r)
		resources = append(resources, res)
		if u != nil {
			units = append(units, u)
		}
	}
	c.mergeRoutes(units)
	// Services are converted on demand, one Upstream per port routes use; their status is
	// that of those Upstreams.
	for _, s := range docs.services {
		res := &GatewayAPIResource{Kind: KindCoreService, Name: s.Metadata.Name, Source: s.Source}
		for _, u := range c.out.Upstreams {
			if c.origins[ResourceRef{Kind: KindUpstream, Name: u.Metadata.Name}].name == s.Metadata.Name {
				res.Produces = append(res.Produces, ResourceRef{Kind: KindUpstream, Name: u.Metadata.Name})
			}
		}
		resources = append(resources, res)
	}
	applyDefaults(&c.out)
	return &c.out, resources, c.origins, c.diags
}

func (c *gatewayAPIConversion) errorf(kind string, meta k8sMetadata, src Source, field, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{
		Pos: src.At(field), Severity: SeverityError, Kind: kind, Name: meta.Name, Field: field,
		Message: fmt.Sprintf(format, args...),
	})
}

// gwField is a field of a Gateway API document.
type gwField struct {
	src  *Source
	name string // the document's name
	path string
}

// built collects a new Portico resource's field positions: Portico path -> Gateway API field.
// A VirtualService merged from several HTTPRoutes has fields of each.
type built struct {
	from  *Source
	name  string
	paths map[string]gwField
}

func newBuilt(from *Source, name string) *built {
	return &built{from: from, name: name, paths: map[string]gwField{}}
}

// at records that the Portico field at path came from the field at gwPath of b's document.
func (b *built) at(path, gwPath string) {
	b.paths[path] = gwField{src: b.from, name: b.name, path: gwPath}
}

// source returns the Source of r: every field r has a value in is recorded as written, at the
// position of the nearest Gateway API field it came from.
func (b *built) source(r any) Source {
	src := Source{Doc: b.from.Doc}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if path != "" {
			f := b.field(path)
			src.set(path, f.src.At(f.path))
		}
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			info := structInfoOf(v.Type())
			for _, f := range info.order {
				if fv := v.Field(f.index); !fv.IsZero() {
					walk(fv, joinPath(path, f.name))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), path+"["+strconv.Itoa(i)+"]")
			}
		case reflect.Map:
			f := b.field(path)
			for it := v.MapRange(); it.Next(); {
				src.set(joinPath(path, it.Key().String()), f.src.At(f.path))
			}
		}
	}
	walk(reflect.ValueOf(r).Elem(), "")
	return src
}

// field is the Gateway API field of the nearest recorded parent of the Portico path p; the
// document itself when there is none.
func (b *built) field(p string) gwField {
	for ; p != ""; p = parentPath(p) {
		if f, ok := b.paths[p]; ok {
			return f
		}
	}
	return gwField{src: b.from, name: b.name}
}

func (c *gatewayAPIConversion) record(kind, name string, b *built, gwKind, gwName string) {
	c.origins[ResourceRef{Kind: kind, Name: name}] = origin{kind: gwKind, name: gwName, fields: b.paths}
}

// secret converts a kubernetes.io/tls Secret into a tls Secret holding its PEM data.
func (c *gatewayAPIConversion) secret(s *k8sSecret) *GatewayAPIResource {
	res := &GatewayAPIResource{Kind: KindCoreSecret, Name: s.Metadata.Name, Source: s.Source}
	c.secrets[s.Metadata.namespace()+"/"+s.Metadata.Name] = s
	fail := func(field, format string, args ...any) {
		c.errorf(KindCoreSecret, s.Metadata, s.Source, field, format, args...)
	}
	if s.Type != "kubernetes.io/tls" {
		if s.Source.valid("type") {
			fail("type", "type %q is not supported; Portico reads Secrets of type kubernetes.io/tls (listener certificates)", s.Type)
		}
		return res
	}
	data := map[string][]byte{}
	for _, k := range sortedKeys(s.Data) {
		switch b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Data[k])); {
		case k != "tls.crt" && k != "tls.key":
			fail("data."+k, "key %q is not supported; a kubernetes.io/tls Secret holds tls.crt and tls.key", k)
		case err != nil:
			fail("data."+k, "not valid base64: %v; put PEM text in stringData instead", err)
		default:
			data[k] = b
		}
	}
	for _, k := range sortedKeys(s.StringData) {
		switch _, dup := data[k]; {
		case k != "tls.crt" && k != "tls.key":
			fail("stringData."+k, "key %q is not supported; a kubernetes.io/tls Secret holds tls.crt and tls.key", k)
		case dup:
			fail("stringData."+k, "%s is also in data; keep one", k)
		default:
			data[k] = []byte(s.StringData[k])
		}
	}
	field := func(k string) string {
		if _, ok := s.StringData[k]; ok {
			return "stringData." + k
		}
		return "data." + k
	}
	cert, key := data["tls.crt"], data["tls.key"]
	if cert == nil || key == nil {
		fail("data", "a kubernetes.io/tls Secret needs tls.crt and tls.key in data or stringData")
		return res
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		fail(field("tls.crt"), "tls.crt and tls.key do not form a certificate and its key: %s", keyPairProblem(err))
		return res
	}
	out := &Secret{Metadata: Metadata{Name: s.Metadata.Name, Labels: s.Metadata.Labels},
		Spec: SecretSpec{Type: SecretTypeTLS, CertPEM: cert, KeyPEM: key, inline: true}}
	b := newBuilt(&s.Source, s.Metadata.Name)
	b.at("metadata", "metadata")
	b.at("spec.type", "type")
	b.at("spec", field("tls.crt"))
	out.Source = b.source(out)
	// Validation asks whether a tls Secret has a certificate by its certFile and keyFile.
	out.Source.set("spec.certFile", s.Source.At(field("tls.crt")))
	out.Source.set("spec.keyFile", s.Source.At(field("tls.key")))
	c.out.Secrets = append(c.out.Secrets, out)
	c.record(KindSecret, out.Metadata.Name, b, KindCoreSecret, s.Metadata.Name)
	res.Produces = []ResourceRef{{Kind: KindSecret, Name: out.Metadata.Name}}
	return res
}

// checkService reports what is wrong with a Service as a whole; its Upstreams are made when
// routes name its ports.
func (c *gatewayAPIConversion) checkService(s *k8sService) {
	fail := func(field, format string, args ...any) {
		c.errorf(KindCoreService, s.Metadata, s.Source, field, format, args...)
	}
	_, hasHosts := s.Metadata.Annotations[HostsAnnotation]
	switch s.Spec.Type {
	case "ExternalName":
		if s.Spec.ExternalName == "" {
			fail("spec", "a Service of type ExternalName needs externalName, the DNS name of its hosts")
		}
		if hasHosts {
			fail("metadata.annotations."+HostsAnnotation, "a Service of type ExternalName has its hosts in externalName; remove the %s annotation", HostsAnnotation)
		}
	case "", "ClusterIP":
		if !hasHosts {
			fail("metadata", "Portico runs without a cluster to find this Service's endpoints: list them in the %s annotation (IP addresses or DNS names, optionally with :port, comma-separated), or make it type ExternalName", HostsAnnotation)
		}
		if s.Spec.ExternalName != "" {
			fail("spec.externalName", "externalName is for Services of type ExternalName; set type: ExternalName or remove it")
		}
	default:
		if s.Source.valid("spec.type") {
			fail("spec.type", "type %q is not supported; use ClusterIP (with the %s annotation) or ExternalName", s.Spec.Type, HostsAnnotation)
		}
	}
	for i, p := range s.Spec.Ports {
		if p.Protocol != "" && p.Protocol != "TCP" {
			fail(fmt.Sprintf("spec.ports[%d].protocol", i), "protocol %q is not supported; Portico proxies HTTP over TCP", p.Protocol)
		}
	}
}

// upstream returns the name of the Upstream for port of the Service named at field of a
// route, making it on first use; "" when the Service cannot serve it (reported).
func (c *gatewayAPIConversion) upstream(r *k8sHTTPRoute, field string, ref k8sBackendObjectRef) string {
	fail := func(f, format string, args ...any) {
		c.errorf(KindGatewayAPIHTTPRoute, r.Metadata, r.Source, f, format, args...)
	}
	if ref.Group != nil && *ref.Group != "" || ref.Kind != "" && ref.Kind != "Service" {
		fail(field, "backends of kind %s are not supported; name a Service", groupKind(ref.Group, ref.Kind))
		return ""
	}
	if ref.Namespace != "" && ref.Namespace != r.Metadata.namespace() {
		fail(field+".namespace", "a backend in another namespace needs a ReferenceGrant, which Portico does not support; use namespace %q", r.Metadata.namespace())
		return ""
	}
	svc := c.services[r.Metadata.namespace()+"/"+ref.Name]
	if svc == nil {
		fail(field+".name", "%s", notDefined("Service", ref.Name, c.serviceNames()))
		return ""
	}
	if ref.Port == 0 {
		fail(field, "missing port: a backend that is a Service needs the Service port to use")
		return ""
	}
	var sp *k8sServicePort
	var ports []string
	for i := range svc.Spec.Ports {
		ports = append(ports, strconv.Itoa(svc.Spec.Ports[i].Port))
		if svc.Spec.Ports[i].Port == ref.Port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		fail(field+".port", "Service %q (%s) has no port %d (ports: %s)", ref.Name, svc.Source.At("spec.ports"), ref.Port, strings.Join(ports, ", "))
		return ""
	}
	name := fmt.Sprintf("%s-%d", svc.Metadata.Name, ref.Port)
	if c.upstreams[name] {
		return name
	}
	c.upstreams[name] = true
	u := &Upstream{Metadata: Metadata{Name: name, Labels: svc.Metadata.Labels}}
	b := newBuilt(&svc.Source, svc.Metadata.Name)
	b.at("metadata", "metadata.name")
	target := cmp.Or(sp.TargetPort, sp.Port)
	portIndex := slices.IndexFunc(svc.Spec.Ports, func(p k8sServicePort) bool { return p.Port == ref.Port })
	portField := fmt.Sprintf("spec.ports[%d]", portIndex)
	if svc.Spec.Type == "ExternalName" {
		u.Spec.DNS = &DNSUpstream{Hosts: []DNSHost{{Hostname: svc.Spec.ExternalName, Port: sp.Port}}}
		b.at("spec.dns.hosts[0].hostname", "spec.externalName")
		b.at("spec.dns.hosts[0].port", portField+".port")
	} else {
		hosts, ok := svc.Metadata.Annotations[HostsAnnotation]
		if !ok {
			return "" // reported at the Service
		}
		var static []Host
		var dns []DNSHost
		for _, h := range strings.Split(hosts, ",") {
			h = strings.TrimSpace(h)
			addr, port, err := splitHostDefaultPort(h, target)
			if err != nil {
				c.errorf(KindCoreService, svc.Metadata, svc.Source, "metadata.annotations."+HostsAnnotation, "%q: %v", h, err)
				return ""
			}
			if net.ParseIP(addr) != nil {
				static = append(static, Host{Address: addr, Port: port})
			} else {
				dns = append(dns, DNSHost{Hostname: addr, Port: port})
			}
		}
		switch {
		case len(static) > 0 && len(dns) > 0:
			c.errorf(KindCoreService, svc.Metadata, svc.Source, "metadata.annotations."+HostsAnnotation, "mixes IP addresses and DNS names; list one kind (use two Services and a weighted route for both)")
			return ""
		case len(static) > 0:
			u.Spec.Static = &StaticUpstream{Hosts: static}
		default:
			u.Spec.DNS = &DNSUpstream{Hosts: dns}
		}
		b.at("spec", "metadata.annotations."+HostsAnnotation)
	}
	u.Source = b.source(u)
	c.out.Upstreams = append(c.out.Upstreams, u)
	c.record(KindUpstream, name, b, KindCoreService, svc.Metadata.Name)
	return name
}

// splitHostDefaultPort splits "host:port", or takes port for a bare host or IP address.
func splitHostDefaultPort(h string, port int) (string, int, error) {
	if h == "" {
		return "", 0, fmt.Errorf("empty entry; list hosts separated by commas")
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return strings.Trim(h, "[]"), port, nil
	}
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		if strings.Contains(h, ":") {
			return "", 0, fmt.Errorf("not a host or host:port")
		}
		return h, port, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return host, n, nil
}

func (c *gatewayAPIConversion) serviceNames() []string {
	var names []string
	for _, s := range c.docs.services {
		names = append(names, s.Metadata.Name)
	}
	return names
}

// gateway converts a Gateway into one Portico Gateway per listener port.
func (c *gatewayAPIConversion) gateway(g *k8sGateway) *GatewayAPIResource {
	res := &GatewayAPIResource{Kind: KindGatewayAPIGateway, Name: g.Metadata.Name, Source: g.Source}
	fail := func(field, format string, args ...any) {
		c.errorf(KindGatewayAPIGateway, g.Metadata, g.Source, field, format, args...)
	}
	if len(c.docs.classes) > 0 && g.Source.valid("spec.gatewayClassName") &&
		!slices.ContainsFunc(c.docs.classes, func(gc *k8sGatewayClass) bool { return gc.Metadata.Name == g.Spec.GatewayClassName }) {
		var names []string
		for _, gc := range c.docs.classes {
			names = append(names, gc.Metadata.Name)
		}
		fail("spec.gatewayClassName", "%s", notDefined("GatewayClass", g.Spec.GatewayClassName, names))
	}
	bind := ""
	for i, a := range g.Spec.Addresses {
		switch {
		case i > 0:
			fail(fmt.Sprintf("spec.addresses[%d]", i), "Portico binds one address per Gateway; list one")
		case a.Type != "" && a.Type != "IPAddress":
			fail(fmt.Sprintf("spec.addresses[%d].type", i), "type %q is not supported; use IPAddress", a.Type)
		default:
			bind = a.Value
		}
	}
	var ports []int
	byPort := map[int][]int{}
	for i, l := range g.Spec.Listeners {
		if !slices.Contains(ports, l.Port) {
			ports = append(ports, l.Port)
		}
		byPort[l.Port] = append(byPort[l.Port], i)
	}
	key := g.Metadata.namespace() + "/" + g.Metadata.Name
	for _, port := range ports {
		name := g.Metadata.Name
		if len(ports) > 1 {
			name = fmt.Sprintf("%s-%d", g.Metadata.Name, port)
		}
		first := byPort[port][0]
		out := &Gateway{Metadata: Metadata{Name: name, Labels: g.Metadata.Labels},
			Spec: GatewaySpec{BindAddress: bind, BindPort: port, Protocol: ProtocolHTTP}}
		b := newBuilt(&g.Source, g.Metadata.Name)
		b.at("metadata", "metadata.name")
		b.at("spec", fmt.Sprintf("spec.listeners[%d]", first))
		b.at("spec.bindAddress", "spec.addresses[0].value")
		b.at("spec.bindPort", fmt.Sprintf("spec.listeners[%d].port", first))
		protocol := g.Spec.Listeners[first].Protocol
		ok := true
		for _, i := range byPort[port] {
			l := g.Spec.Listeners[i]
			lt := listenerTarget{gw: g, index: i, portico: name}
			switch {
			case l.Protocol != "HTTP" && l.Protocol != "HTTPS":
				if g.Source.valid(lt.path("protocol")) {
					fail(lt.path("protocol"), "protocol %q is not supported; use HTTP or HTTPS", l.Protocol)
				}
				ok = false
				continue
			case l.Protocol != protocol:
				fail(lt.path("protocol"), "listener %q is %s on port %d, where listener %q is %s; one port speaks one protocol",
					l.Name, l.Protocol, port, g.Spec.Listeners[first].Name, protocol)
				ok = false
				continue
			}
			c.checkAllowedRoutes(g, lt)
			if l.Protocol == "HTTPS" {
				certs, certsOK := c.listenerCertificates(g, lt, len(byPort[port]) > 1)
				ok = ok && certsOK
				if out.Spec.TLS == nil {
					out.Spec.TLS = &GatewayTLS{}
					out.Spec.Protocol = ProtocolHTTPS
					b.at("spec.protocol", lt.path("protocol"))
				}
				for _, cert := range certs {
					b.at(fmt.Sprintf("spec.tls.certificates[%d]", len(out.Spec.TLS.Certificates)), cert.field)
					out.Spec.TLS.Certificates = append(out.Spec.TLS.Certificates, cert.TLSCertificate)
				}
			} else if l.TLS != nil {
				fail(lt.path("tls"), "tls is for HTTPS listeners; remove it or make the listener HTTPS")
			}
			c.listeners[key] = append(c.listeners[key], lt)
		}
		if !ok {
			continue
		}
		out.Source = b.source(out)
		c.out.Gateways = append(c.out.Gateways, out)
		c.record(KindGateway, name, b, KindGatewayAPIGateway, g.Metadata.Name)
		res.Produces = append(res.Produces, ResourceRef{Kind: KindGateway, Name: name})
	}
	return res
}

func (c *gatewayAPIConversion) checkAllowedRoutes(g *k8sGateway, lt listenerTarget) {
	ar := lt.listener().AllowedRoutes
	if ar == nil {
		return
	}
	if ns := ar.Namespaces; ns != nil && ns.From != "" && ns.From != "Same" && ns.From != "All" {
		c.errorf(KindGatewayAPIGateway, g.Metadata, g.Source, lt.path("allowedRoutes.namespaces.from"),
			"from %q is not supported; use Same or All", ns.From)
	}
	for i, k := range ar.Kinds {
		if (k.Group != nil && *k.Group != gatewayAPIGroup) || k.Kind != "HTTPRoute" {
			c.errorf(KindGatewayAPIGateway, g.Metadata, g.Source, lt.path(fmt.Sprintf("allowedRoutes.kinds[%d]", i)),
				"routes of kind %s are not supported; Portico serves HTTPRoutes", groupKind(k.Group, k.Kind))
		}
	}
}

// allows reports whether the listener accepts an HTTPRoute from namespace ns.
func (lt listenerTarget) allows(ns string) bool {
	ar := lt.listener().AllowedRoutes
	if ar != nil && len(ar.Kinds) > 0 && !slices.ContainsFunc(ar.Kinds, func(k k8sGroupKind) bool { return k.Kind == "HTTPRoute" }) {
		return false
	}
	if ar != nil && ar.Namespaces != nil && ar.Namespaces.From == "All" {
		return true
	}
	return ns == lt.gw.Metadata.namespace()
}

type listenerCert struct {
	TLSCertificate
	field string
}

func (c *gatewayAPIConversion) listenerCertificates(g *k8sGateway, lt listenerTarget, shared bool) ([]listenerCert, bool) {
	fail := func(field, format string, args ...any) {
		c.errorf(KindGatewayAPIGateway, g.Metadata, g.Source, field, format, args...)
	}
	l := lt.listener()
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		fail(lt.path("tls"), "an HTTPS listener needs tls.certificateRefs naming a kubernetes.io/tls Secret")
		return nil, false
	}
	if l.TLS.Mode != "" && l.TLS.Mode != "Terminate" {
		fail(lt.path("tls.mode"), "mode %q is not supported; Portico terminates TLS (mode Terminate)", l.TLS.Mode)
		return nil, false
	}
	var out []listenerCert
	ok := true
	for i, ref := range l.TLS.CertificateRefs {
		field := lt.path(fmt.Sprintf("tls.certificateRefs[%d]", i))
		switch {
		case ref.Group != nil && *ref.Group != "" || ref.Kind != "" && ref.Kind != "Secret":
			fail(field, "certificates in a %s are not supported; name a Secret", groupKind(ref.Group, ref.Kind))
			ok = false
		case ref.Namespace != "" && ref.Namespace != g.Metadata.namespace():
			fail(field+".namespace", "a Secret in another namespace needs a ReferenceGrant, which Portico does not support; use namespace %q", g.Metadata.namespace())
			ok = false
		case c.secrets[g.Metadata.namespace()+"/"+ref.Name] == nil:
			var names []string
			for _, s := range c.docs.secrets {
				names = append(names, s.Metadata.Name)
			}
			fail(field+".name", "%s; add a Secret of type kubernetes.io/tls to the configuration", notDefined("Secret", ref.Name, names))
			ok = false
		default:
			cert := TLSCertificate{Secret: ref.Name}
			if shared && l.Hostname != "" {
				cert.ServerNames = []string{l.Hostname}
			}
			out = append(out, listenerCert{TLSCertificate: cert, field: field})
		}
	}
	return out, ok
}

func groupKind(group *string, kind string) string {
	if group == nil || *group == "" {
		return cmp.Or(kind, "(no kind)")
	}
	return kind + "." + *group
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// routeUnit is an HTTPRoute converted, before the HTTPRoutes with the same hostnames on the
// same listeners are merged into one VirtualService.
type routeUnit struct {
	res    *GatewayAPIResource
	r      *k8sHTTPRoute
	vs     *VirtualService // metadata, domains and gateways; routes are in routes
	b      *built          // the fields of vs
	routes []rankedRoute
}

// rankedRoute is one match of a rule, converted, with what decides its precedence.
type rankedRoute struct {
	route Route
	match k8sRouteMatch
	// paths maps the route's fields (relative, starting with ".") to the HTTPRoute's.
	paths map[string]gwField
}

// route converts an HTTPRoute; nil when it cannot be (reported).
func (c *gatewayAPIConversion) route(r *k8sHTTPRoute) (*GatewayAPIResource, *routeUnit) {
	res := &GatewayAPIResource{Kind: KindGatewayAPIHTTPRoute, Name: r.Metadata.Name, Source: r.Source}
	fail := func(field, format string, args ...any) {
		c.errorf(KindGatewayAPIHTTPRoute, r.Metadata, r.Source, field, format, args...)
	}
	ns := r.Metadata.namespace()
	b := newBuilt(&r.Source, r.Metadata.Name)
	b.at("metadata", "metadata.name")
	b.at("spec", "spec")
	vs := &VirtualService{Metadata: Metadata{Name: r.Metadata.Name, Labels: r.Metadata.Labels}}
	if len(r.Spec.ParentRefs) == 0 {
		fail("spec", "missing parentRefs: name the Gateway (and listener, with sectionName) this route attaches to")
		return res, nil
	}
	var listenerHosts []string
	anyHost := false
	ok := true
	for i, p := range r.Spec.ParentRefs {
		field := fmt.Sprintf("spec.parentRefs[%d]", i)
		if p.Group != nil && *p.Group != gatewayAPIGroup || p.Kind != "" && p.Kind != "Gateway" {
			fail(field, "parents of kind %s are not supported; name a Gateway", groupKind(p.Group, p.Kind))
			ok = false
			continue
		}
		key := cmp.Or(p.Namespace, ns) + "/" + p.Name
		all := c.listeners[key]
		if len(all) == 0 {
			var names []string
			for _, g := range c.docs.gateways {
				names = append(names, g.Metadata.Name)
			}
			fail(field+".name", "%s", notDefined("Gateway", p.Name, names))
			ok = false
			continue
		}
		var matched []listenerTarget
		for _, lt := range all {
			l := lt.listener()
			if (p.SectionName == "" || p.SectionName == l.Name) && (p.Port == 0 || p.Port == l.Port) {
				matched = append(matched, lt)
			}
		}
		if len(matched) == 0 {
			var names []string
			for _, lt := range all {
				names = append(names, fmt.Sprintf("%s (port %d)", lt.listener().Name, lt.listener().Port))
			}
			want := fmt.Sprintf("sectionName %q", p.SectionName)
			if p.Port != 0 {
				want = fmt.Sprintf("%s and port %d", want, p.Port)
			}
			fail(field, "Gateway %q has no listener matching %s (listeners: %s)", p.Name, want, strings.Join(names, ", "))
			ok = false
			continue
		}
		// A parentRef that names no listener attaches to those that accept the route, as the
		// Gateway API says; it is an error only when none does. One that names a listener must
		// be accepted by it.
		type refusal struct{ field, msg string }
		var refused []refusal
		attached := 0
		for _, lt := range matched {
			l := lt.listener()
			if !lt.allows(ns) {
				refused = append(refused, refusal{field, fmt.Sprintf("listener %q of Gateway %q (%s) does not allow this route (allowedRoutes)", l.Name, p.Name, lt.gw.Source.At(lt.path("allowedRoutes")))})
				continue
			}
			if l.Hostname != "" && len(r.Spec.Hostnames) > 0 && !slices.ContainsFunc(r.Spec.Hostnames, func(h string) bool { return hostnamesIntersect(h, l.Hostname) }) {
				refused = append(refused, refusal{"spec.hostnames", fmt.Sprintf("no hostname matches listener %q's hostname %q (%s)", l.Name, l.Hostname, lt.gw.Source.At(lt.path("hostname")))})
				continue
			}
			attached++
			if !slices.Contains(vs.Spec.Gateways, lt.portico) {
				b.at(fmt.Sprintf("spec.gateways[%d]", len(vs.Spec.Gateways)), field)
				vs.Spec.Gateways = append(vs.Spec.Gateways, lt.portico)
			}
			if l.Hostname == "" {
				anyHost = true
			} else if !slices.Contains(listenerHosts, l.Hostname) {
				listenerHosts = append(listenerHosts, l.Hostname)
			}
		}
		if attached == 0 || p.SectionName != "" {
			for _, rf := range refused {
				fail(rf.field, "%s", rf.msg)
				ok = false
			}
		}
	}
	switch {
	case len(r.Spec.Hostnames) > 0:
		vs.Spec.Domains = slices.Clone(r.Spec.Hostnames)
		b.at("spec.domains", "spec.hostnames")
	case !anyHost && len(listenerHosts) > 0:
		vs.Spec.Domains = listenerHosts
		b.at("spec.domains", "spec.parentRefs")
	}
	u := &routeUnit{res: res, r: r, vs: vs, b: b}
	for i, rule := range r.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []k8sRouteMatch{{}}
		}
		for j, m := range matches {
			mfield := fmt.Sprintf("%s.matches[%d]", field, j)
			rt, paths, rok := c.rule(r, field, mfield, rule, m)
			ok = ok && rok
			rr := rankedRoute{route: rt, match: m, paths: map[string]gwField{"": {src: &r.Source, name: r.Metadata.Name, path: field}}}
			for pp, gp := range paths {
				rr.paths[pp] = gwField{src: &r.Source, name: r.Metadata.Name, path: gp}
			}
			u.routes = append(u.routes, rr)
		}
	}
	if !ok {
		return res, nil
	}
	return res, u
}

// mergeRoutes makes a VirtualService of the HTTPRoutes with the same hostnames on the same
// listeners, as the Gateway API merges their rules; Portico gives a domain of a Gateway to one
// VirtualService. It is named after the first HTTPRoute by name.
func (c *gatewayAPIConversion) mergeRoutes(units []*routeUnit) {
	groups := map[string][]*routeUnit{}
	var keys []string
	for _, u := range units {
		gws := slices.Sorted(slices.Values(u.vs.Spec.Gateways))
		var domains []string
		for _, d := range u.vs.Spec.Domains {
			domains = append(domains, strings.ToLower(d))
		}
		slices.Sort(domains)
		key := strings.Join(gws, ",") + "|" + strings.Join(domains, ",")
		if groups[key] == nil {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], u)
	}
	for _, key := range keys {
		group := groups[key]
		// Between HTTPRoutes the Gateway API orders by age, then by namespace and name; the
		// files have no age.
		slices.SortStableFunc(group, func(a, b *routeUnit) int {
			return cmp.Or(cmp.Compare(a.r.Metadata.namespace(), b.r.Metadata.namespace()), cmp.Compare(a.r.Metadata.Name, b.r.Metadata.Name))
		})
		vs, b := group[0].vs, group[0].b
		var routes []rankedRoute
		for _, u := range group {
			routes = append(routes, u.routes...)
		}
		// Portico matches routes in order; the Gateway API by precedence: exact paths, then
		// regular expressions, then the longest prefix; then a method, the most headers, the
		// most query parameters; then the HTTPRoute's and the rule's order.
		slices.SortStableFunc(routes, func(x, y rankedRoute) int {
			a, b := x.match, y.match
			return cmp.Or(
				cmp.Compare(pathRank(a), pathRank(b)),
				-cmp.Compare(len(pathValue(a)), len(pathValue(b))),
				-cmp.Compare(len(a.Method), len(b.Method)),
				-cmp.Compare(len(a.Headers), len(b.Headers)),
				-cmp.Compare(len(a.QueryParams), len(b.QueryParams)),
			)
		})
		for i, rr := range routes {
			vs.Spec.Routes = append(vs.Spec.Routes, rr.route)
			for p, f := range rr.paths {
				b.paths[fmt.Sprintf("spec.routes[%d]", i)+p] = f
			}
		}
		vs.Source = b.source(vs)
		c.out.VirtualServices = append(c.out.VirtualServices, vs)
		c.record(KindVirtualService, vs.Metadata.Name, b, KindGatewayAPIHTTPRoute, vs.Metadata.Name)
		for _, u := range group {
			u.res.Produces = []ResourceRef{{Kind: KindVirtualService, Name: vs.Metadata.Name}}
		}
	}
}

// hostnamesIntersect reports whether a route hostname and a listener hostname, either of which
// may be a "*." wildcard, can match one request.
func hostnamesIntersect(a, b string) bool {
	match := func(wild, h string) bool {
		suffix, ok := strings.CutPrefix(wild, "*")
		return ok && strings.HasSuffix(h, suffix) && len(h) > len(suffix)
	}
	return strings.EqualFold(a, b) || match(a, b) || match(b, a)
}

func pathType(m k8sRouteMatch) string {
	if m.Path == nil {
		return "PathPrefix"
	}
	return cmp.Or(m.Path.Type, "PathPrefix")
}

func pathValue(m k8sRouteMatch) string {
	if m.Path == nil {
		return "/"
	}
	return cmp.Or(m.Path.Value, "/")
}

func pathRank(m k8sRouteMatch) int {
	switch pathType(m) {
	case "Exact":
		return 0
	case "RegularExpression":
		return 1
	default:
		return 2
	}
}

// segmentPrefix is a PathPrefix value without its trailing slashes: the Gateway API matches
// whole path segments, so "/api" and "/api/" both match /api and /api/x but not /apix.
func segmentPrefix(v string) string { return strings.TrimRight(v, "/") }

// rule converts one match of a rule into a route. paths maps the route's field paths (relative,
// starting with ".") to the Gateway API fields they came from.
func (c *gatewayAPIConversion) rule(r *k8sHTTPRoute, field, mfield string, rule k8sRouteRule, m k8sRouteMatch) (Route, map[string]string, bool) {
	fail := func(f, format string, args ...any) {
		c.errorf(KindGatewayAPIHTTPRoute, r.Metadata, r.Source, f, format, args...)
	}
	ok := true
	paths := map[string]string{".match": mfield}
	var rt Route
	value := pathValue(m)
	switch pathType(m) {
	case "Exact":
		rt.Match.Exact = value
		paths[".match.exact"] = mfield + ".path.value"
	case "RegularExpression":
		rt.Match.Regex = value
		paths[".match.regex"] = mfield + ".path.value"
	case "PathPrefix":
		if !strings.HasPrefix(value, "/") {
			fail(mfield+".path.value", "a PathPrefix must start with /")
			ok = false
		}
		if p := segmentPrefix(value); p == "" {
			rt.Match.Prefix = "/"
			paths[".match.prefix"] = mfield + ".path"
		} else {
			rt.Match.Regex = "^" + regexp.QuoteMeta(p) + "(/.*)?$"
			paths[".match.regex"] = mfield + ".path"
		}
	default:
		fail(mfield+".path.type", "type %q is not supported; use PathPrefix, Exact or RegularExpression", pathType(m))
		ok = false
	}
	for i, h := range m.Headers {
		hf := fmt.Sprintf("%s.headers[%d]", mfield, i)
		hm := HeaderMatch{Name: h.Name}
		if !exactOrRegex(h.Type, h.Value, &hm.Exact, &hm.Regex) {
			fail(hf+".type", "type %q is not supported; use Exact or RegularExpression", h.Type)
			ok = false
		}
		paths[fmt.Sprintf(".match.headers[%d]", i)] = hf
		rt.Match.Headers = append(rt.Match.Headers, hm)
	}
	for i, q := range m.QueryParams {
		qf := fmt.Sprintf("%s.queryParams[%d]", mfield, i)
		qm := QueryParameterMatch{Name: q.Name}
		if !exactOrRegex(q.Type, q.Value, &qm.Exact, &qm.Regex) {
			fail(qf+".type", "type %q is not supported; use Exact or RegularExpression", q.Type)
			ok = false
		}
		paths[fmt.Sprintf(".match.queryParameters[%d]", i)] = qf
		rt.Match.QueryParameters = append(rt.Match.QueryParameters, qm)
	}
	if m.Method != "" {
		rt.Match.Methods = []string{m.Method}
		paths[".match.methods"] = mfield + ".method"
	}

	opts := &RouteOptions{}
	var redirect *Redirect
	for i, f := range rule.Filters {
		ff := fmt.Sprintf("%s.filters[%d]", field, i)
		set := 0
		for _, present := range []bool{f.RequestHeaderModifier != nil, f.ResponseHeaderModifier != nil, f.RequestRedirect != nil, f.URLRewrite != nil, f.RequestMirror != nil} {
			if present {
				set++
			}
		}
		want := map[string]bool{
			"RequestHeaderModifier":  f.RequestHeaderModifier != nil,
			"ResponseHeaderModifier": f.ResponseHeaderModifier != nil,
			"RequestRedirect":        f.RequestRedirect != nil,
			"URLRewrite":             f.URLRewrite != nil,
			"RequestMirror":          f.RequestMirror != nil,
		}
		has, known := want[f.Type]
		switch {
		case !known:
			if r.Source.valid(ff + ".type") {
				fail(ff+".type", "filter type %q is not supported; use RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite or RequestMirror", f.Type)
			}
			ok = false
			continue
		case !has || set != 1:
			fail(ff, "a %s filter sets %s and nothing else", f.Type, strings.ToLower(f.Type[:1])+f.Type[1:])
			ok = false
			continue
		}
		switch {
		case f.RequestHeaderModifier != nil:
			hm := f.RequestHeaderModifier
			opts.RequestHeadersToSet = append(opts.RequestHeadersToSet, hm.Set...)
			opts.RequestHeadersToAdd = append(opts.RequestHeadersToAdd, hm.Add...)
			opts.RequestHeadersToRemove = append(opts.RequestHeadersToRemove, hm.Remove...)
			paths[".options.requestHeadersToSet"] = ff + ".requestHeaderModifier.set"
			paths[".options.requestHeadersToAdd"] = ff + ".requestHeaderModifier.add"
			paths[".options.requestHeadersToRemove"] = ff + ".requestHeaderModifier.remove"
		case f.ResponseHeaderModifier != nil:
			hm := f.ResponseHeaderModifier
			opts.ResponseHeadersToSet = append(opts.ResponseHeadersToSet, hm.Set...)
			opts.ResponseHeadersToAdd = append(opts.ResponseHeadersToAdd, hm.Add...)
			opts.ResponseHeadersToRemove = append(opts.ResponseHeadersToRemove, hm.Remove...)
			paths[".options.responseHeadersToSet"] = ff + ".responseHeaderModifier.set"
			paths[".options.responseHeadersToAdd"] = ff + ".responseHeaderModifier.add"
			paths[".options.responseHeadersToRemove"] = ff + ".responseHeaderModifier.remove"
		case f.RequestRedirect != nil:
			rr := f.RequestRedirect
			redirect = &Redirect{SchemeRedirect: rr.Scheme, HostRedirect: rr.Hostname, PortRedirect: rr.Port, ResponseCode: cmp.Or(rr.StatusCode, 302)}
			paths[".redirect"] = ff + ".requestRedirect"
			if p := rr.Path; p != nil {
				switch p.Type {
				case "ReplaceFullPath":
					redirect.PathRedirect = p.ReplaceFullPath
				case "ReplacePrefixMatch":
					if rt.Match.Prefix != "/" {
						fail(ff+".requestRedirect.path", "ReplacePrefixMatch in a redirect is supported with a PathPrefix match of / only; use ReplaceFullPath")
						ok = false
					}
					redirect.PrefixRewrite = p.ReplacePrefixMatch
				default:
					fail(ff+".requestRedirect.path.type", "type %q is not supported; use ReplaceFullPath or ReplacePrefixMatch", p.Type)
					ok = false
				}
			}
		case f.URLRewrite != nil:
			uw := f.URLRewrite
			opts.HostRewrite = uw.Hostname
			paths[".options.hostRewrite"] = ff + ".urlRewrite.hostname"
			if p := uw.Path; p != nil {
				paths[".options.regexRewrite"] = ff + ".urlRewrite.path"
				switch p.Type {
				case "ReplaceFullPath":
					opts.RegexRewrite = &RegexRewrite{Pattern: "^.*$", Substitution: p.ReplaceFullPath}
				case "ReplacePrefixMatch":
					if pathType(m) != "PathPrefix" {
						fail(ff+".urlRewrite.path", "ReplacePrefixMatch needs a PathPrefix match")
						ok = false
						break
					}
					opts.RegexRewrite = prefixRewrite(segmentPrefix(value), p.ReplacePrefixMatch)
				default:
					fail(ff+".urlRewrite.path.type", "type %q is not supported; use ReplaceFullPath or ReplacePrefixMatch", p.Type)
					ok = false
				}
			}
		case f.RequestMirror != nil:
			rm := f.RequestMirror
			up := c.upstream(r, ff+".requestMirror.backendRef", rm.BackendRef)
			if up == "" {
				ok = false
				continue
			}
			mirror := &Mirror{Upstream: up}
			switch {
			case rm.Percent != nil && rm.Fraction != nil:
				fail(ff+".requestMirror", "set percent or fraction, not both")
				ok = false
			case rm.Percent != nil:
				mirror.Percentage = float64(*rm.Percent)
			case rm.Fraction != nil:
				mirror.Percentage = 100 * float64(rm.Fraction.Numerator) / float64(cmp.Or(rm.Fraction.Denominator, 100))
			}
			opts.Mirror = mirror
			paths[".options.mirror"] = ff + ".requestMirror"
		}
	}
	if t := rule.Timeouts; t != nil {
		switch {
		case t.Request != "" && t.BackendRequest != "" && t.Request != t.BackendRequest:
			fail(field+".timeouts", "Portico has one upstream timeout per route (no retries here): set request, or backendRequest, or both to the same value")
			ok = false
		default:
			opts.Timeout = cmp.Or(t.Request, t.BackendRequest)
			paths[".options.timeout"] = field + ".timeouts"
		}
	}
	if !reflect.ValueOf(*opts).IsZero() {
		rt.Options = opts
	}

	var dests []Destination
	for i, br := range rule.BackendRefs {
		bf := fmt.Sprintf("%s.backendRefs[%d]", field, i)
		up := c.upstream(r, bf, k8sBackendObjectRef{Group: br.Group, Kind: br.Kind, Name: br.Name, Namespace: br.Namespace, Port: br.Port})
		if up == "" {
			ok = false
			continue
		}
		w := 1
		if br.Weight != nil {
			w = *br.Weight
		}
		if w > 0 {
			paths[fmt.Sprintf(".destinations[%d]", len(dests))] = bf
			dests = append(dests, Destination{Upstream: up, Weight: w})
		}
	}
	switch {
	case redirect != nil:
		if len(rule.BackendRefs) > 0 {
			fail(field+".backendRefs", "a rule with a RequestRedirect filter answers the request itself; remove backendRefs")
			ok = false
		}
		rt.Redirect = redirect
	case len(dests) == 1:
		rt.Upstream = dests[0].Upstream
		paths[".upstream"] = paths[".destinations[0]"]
		delete(paths, ".destinations[0]")
	case len(dests) > 1:
		rt.Destinations = dests
	default:
		// The Gateway API answers 500 when a rule has no backend to send to.
		rt.DirectResponse = &DirectResponse{Status: 500}
		paths[".directResponse"] = field
	}
	return rt, paths, ok
}

// prefixRewrite replaces the path segments prefix p (without trailing slash) with repl.
func prefixRewrite(p, repl string) *RegexRewrite {
	repl = strings.TrimRight(repl, "/")
	if repl == "" {
		return &RegexRewrite{Pattern: "^" + regexp.QuoteMeta(p) + "/*(.*)$", Substitution: `/\1`}
	}
	return &RegexRewrite{Pattern: "^" + regexp.QuoteMeta(p) + "(/.*)?$", Substitution: repl + `\1`}
}

// exactOrRegex sets exact or regex from a Gateway API header or query parameter match of type
// typ (Exact by default); false means the type is not supported.
func exactOrRegex(typ, value string, exact, regex *string) bool {
	switch typ {
	case "", "Exact":
		*exact = value
	case "RegularExpression":
		*regex = value
	default:
		return false
	}
	return true
}
