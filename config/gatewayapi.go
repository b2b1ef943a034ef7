package config

// This file reads Kubernetes Gateway API documents (gateway.networking.k8s.io/v1 Gateway and
// HTTPRoute, core v1 Service and Secret) so that Envoy Gateway users can bring the YAML they
// have. They are decoded by the same strict decoder as Portico's own documents, into small
// structs that mirror the parts of the Gateway API spec Portico supports; fields of the spec
// that Portico does not support have the type notSupported, which the decoder refuses by
// name. gatewayapi_convert.go turns the documents into Portico resources before validation.

import (
	"reflect"

	"gopkg.in/yaml.v3"
)

// The apiVersions of the Kubernetes documents Portico reads besides its own.
const (
	GatewayAPIVersion = "gateway.networking.k8s.io/v1"
	gatewayAPIGroup   = "gateway.networking.k8s.io"
	CoreAPIVersion    = "v1"
)

// The kinds of Kubernetes document, as status and diagnostics name them: apiVersion/kind, so a
// Gateway API Gateway is never confused with a Portico Gateway.
const (
	KindGatewayAPIClass     = GatewayAPIVersion + "/GatewayClass"
	KindGatewayAPIGateway   = GatewayAPIVersion + "/Gateway"
	KindGatewayAPIHTTPRoute = GatewayAPIVersion + "/HTTPRoute"
	KindCoreService         = CoreAPIVersion + "/Service"
	KindCoreSecret          = CoreAPIVersion + "/Secret"
)

// HostsAnnotation on a Service lists where its endpoints are, since no cluster tells Portico:
// comma-separated IP addresses or DNS names, each optionally with :port.
const HostsAnnotation = "portico.dev/hosts"

// GatewayAPIResource is one Kubernetes document of the configuration and the Portico resources
// it became, so that status can report on the documents the user wrote.
type GatewayAPIResource struct {
	Kind   string
	Name   string
	Source Source
	// Produces names the Portico resources converted from the document.
	Produces []ResourceRef
}

// notSupported is the type of the Gateway API fields Portico does not implement: the decoder
// reports any value written there as unsupported instead of as an unknown field.
type notSupported struct{}

var notSupportedType = reflect.TypeFor[notSupported]()

// k8sMetadata is a Kubernetes object's metadata. Labels and annotations are accepted on every
// document; only HostsAnnotation on a Service means anything to Portico.
type k8sMetadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

func (m k8sMetadata) namespace() string {
	if m.Namespace == "" {
		return "default"
	}
	return m.Namespace
}

// k8sGatewayClass is accepted so that files written for a cluster load as they are; there is
// no controller to choose, so it only names the classes Gateways may use.
type k8sGatewayClass struct {
	Metadata k8sMetadata         `yaml:"metadata"`
	Spec     k8sGatewayClassSpec `yaml:"spec"`
	Source   Source              `yaml:"-"`
}

type k8sGatewayClassSpec struct {
	ControllerName string        `yaml:"controllerName"`
	Description    string        `yaml:"description,omitempty"`
	ParametersRef  *notSupported `yaml:"parametersRef,omitempty"`
}

type k8sGateway struct {
	Metadata k8sMetadata    `yaml:"metadata"`
	Spec     k8sGatewaySpec `yaml:"spec"`
	Source   Source         `yaml:"-"`
}

type k8sGatewaySpec struct {
	GatewayClassName string        `yaml:"gatewayClassName"`
	Listeners        []k8sListener `yaml:"listeners"`
	Addresses        []k8sAddress  `yaml:"addresses,omitempty"`
	Infrastructure   *notSupported `yaml:"infrastructure,omitempty"`
	TLS              *notSupported `yaml:"tls,omitempty"`
	AllowedListeners *notSupported `yaml:"allowedListeners,omitempty"`
	BackendTLS       *notSupported `yaml:"backendTLS,omitempty"`
	DefaultScope     *notSupported `yaml:"defaultScope,omitempty"`
}

type k8sAddress struct {
	Type  string `yaml:"type,omitempty"`
	Value string `yaml:"value"`
}

type k8sListener struct {
	Name          string            `yaml:"name"`
	Hostname      string            `yaml:"hostname,omitempty"`
	Port          int               `yaml:"port"`
	Protocol      string            `yaml:"protocol"`
	TLS           *k8sListenerTLS   `yaml:"tls,omitempty"`
	AllowedRoutes *k8sAllowedRoutes `yaml:"allowedRoutes,omitempty"`
}

type k8sListenerTLS struct {
	Mode               string         `yaml:"mode,omitempty"`
	CertificateRefs    []k8sObjectRef `yaml:"certificateRefs,omitempty"`
	Options            *notSupported  `yaml:"options,omitempty"`
	FrontendValidation *notSupported  `yaml:"frontendValidation,omitempty"`
}

type k8sObjectRef struct {
	Group     *string `yaml:"group,omitempty"`
	Kind      string  `yaml:"kind,omitempty"`
	Name      string  `yaml:"name"`
	Namespace string  `yaml:"namespace,omitempty"`
}

type k8sAllowedRoutes struct {
	Namespaces *k8sRouteNamespaces `yaml:"namespaces,omitempty"`
	Kinds      []k8sGroupKind      `yaml:"kinds,omitempty"`
}

type k8sRouteNamespaces struct {
	From     string        `yaml:"from,omitempty"`
	Selector *notSupported `yaml:"selector,omitempty"`
}

type k8sGroupKind struct {
	Group *string `yaml:"group,omitempty"`
	Kind  string  `yaml:"kind"`
}

type k8sHTTPRoute struct {
	Metadata k8sMetadata      `yaml:"metadata"`
	Spec     k8sHTTPRouteSpec `yaml:"spec"`
	Source   Source           `yaml:"-"`
}

type k8sHTTPRouteSpec struct {
	ParentRefs []k8sParentRef `yaml:"parentRefs,omitempty"`
	Hostnames  []string       `yaml:"hostnames,omitempty"`
	Rules      []k8sRouteRule `yaml:"rules,omitempty"`
}

type k8sParentRef struct {
	Group       *string `yaml:"group,omitempty"`
	Kind        string  `yaml:"kind,omitempty"`
	Namespace   string  `yaml:"namespace,omitempty"`
	Name        string  `yaml:"name"`
	SectionName string  `yaml:"sectionName,omitempty"`
	Port        int     `yaml:"port,omitempty"`
}

type k8sRouteRule struct {
	Name               string          `yaml:"name,omitempty"`
	Matches            []k8sRouteMatch `yaml:"matches,omitempty"`
	Filters            []k8sFilter     `yaml:"filters,omitempty"`
	BackendRefs        []k8sBackendRef `yaml:"backendRefs,omitempty"`
	Timeouts           *k8sTimeouts    `yaml:"timeouts,omitempty"`
	Retry              *notSupported   `yaml:"retry,omitempty"`
	SessionPersistence *notSupported   `yaml:"sessionPersistence,omitempty"`
}

type k8sRouteMatch struct {
	Path        *k8sPathMatch   `yaml:"path,omitempty"`
	Headers     []k8sValueMatch `yaml:"headers,omitempty"`
	QueryParams []k8sValueMatch `yaml:"queryParams,omitempty"`
	Method      string          `yaml:"method,omitempty"`
}

type k8sPathMatch struct {
	Type  string `yaml:"type,omitempty"`
	Value string `yaml:"value,omitempty"`
}

type k8sValueMatch struct {
	Type  string `yaml:"type,omitempty"`
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type k8sFilter struct {
	Type                   string              `yaml:"type"`
	RequestHeaderModifier  *k8sHeaderModifier  `yaml:"requestHeaderModifier,omitempty"`
	ResponseHeaderModifier *k8sHeaderModifier  `yaml:"responseHeaderModifier,omitempty"`
	RequestRedirect        *k8sRequestRedirect `yaml:"requestRedirect,omitempty"`
	URLRewrite             *k8sURLRewrite      `yaml:"urlRewrite,omitempty"`
	RequestMirror          *k8sRequestMirror   `yaml:"requestMirror,omitempty"`
	ExtensionRef           *notSupported       `yaml:"extensionRef,omitempty"`
	CORS                   *notSupported       `yaml:"cors,omitempty"`
	ExternalAuth           *notSupported       `yaml:"externalAuth,omitempty"`
}

type k8sHeaderModifier struct {
	Set    []HeaderValue `yaml:"set,omitempty"`
	Add    []HeaderValue `yaml:"add,omitempty"`
	Remove []string      `yaml:"remove,omitempty"`
}

type k8sRequestRedirect struct {
	Scheme     string           `yaml:"scheme,omitempty"`
	Hostname   string           `yaml:"hostname,omitempty"`
	Path       *k8sPathModifier `yaml:"path,omitempty"`
	Port       int              `yaml:"port,omitempty"`
	StatusCode int              `yaml:"statusCode,omitempty"`
}

type k8sURLRewrite struct {
	Hostname string           `yaml:"hostname,omitempty"`
	Path     *k8sPathModifier `yaml:"path,omitempty"`
}

type k8sPathModifier struct {
	Type               string `yaml:"type"`
	ReplaceFullPath    string `yaml:"replaceFullPath,omitempty"`
	ReplacePrefixMatch string `yaml:"replacePrefixMatch,omitempty"`
}

type k8sRequestMirror struct {
	BackendRef k8sBackendObjectRef `yaml:"backendRef"`
	Percent    *int                `yaml:"percent,omitempty"`
	Fraction   *k8sFraction        `yaml:"fraction,omitempty"`
}

type k8sFraction struct {
	Numerator   int `yaml:"numerator"`
	Denominator int `yaml:"denominator,omitempty"`
}

type k8sBackendObjectRef struct {
	Group     *string `yaml:"group,omitempty"`
	Kind      string  `yaml:"kind,omitempty"`
	Name      string  `yaml:"name"`
	Namespace string  `yaml:"namespace,omitempty"`
	Port      int     `yaml:"port,omitempty"`
}

type k8sBackendRef struct {
	Group     *string       `yaml:"group,omitempty"`
	Kind      string        `yaml:"kind,omitempty"`
	Name      string        `yaml:"name"`
	Namespace string        `yaml:"namespace,omitempty"`
	Port      int           `yaml:"port,omitempty"`
	Weight    *int          `yaml:"weight,omitempty"`
	Filters   *notSupported `yaml:"filters,omitempty"`
}

type k8sTimeouts struct {
	Request        string `yaml:"request,omitempty"`
	BackendRequest string `yaml:"backendRequest,omitempty"`
}

type k8sService struct {
	Metadata k8sMetadata    `yaml:"metadata"`
	Spec     k8sServiceSpec `yaml:"spec"`
	Source   Source         `yaml:"-"`
}

type k8sServiceSpec struct {
	Type         string           `yaml:"type,omitempty"`
	ExternalName string           `yaml:"externalName,omitempty"`
	Ports        []k8sServicePort `yaml:"ports"`
	// Selector finds Pods in a cluster; standalone there are none, see HostsAnnotation.
	Selector        *notSupported `yaml:"selector,omitempty"`
	ClusterIP       *notSupported `yaml:"clusterIP,omitempty"`
	SessionAffinity *notSupported `yaml:"sessionAffinity,omitempty"`
}

type k8sServicePort struct {
	Name        string        `yaml:"name,omitempty"`
	Protocol    string        `yaml:"protocol,omitempty"`
	Port        int           `yaml:"port"`
	TargetPort  int           `yaml:"targetPort,omitempty"`
	AppProtocol *notSupported `yaml:"appProtocol,omitempty"`
}

type k8sSecret struct {
	Metadata   k8sMetadata       `yaml:"metadata"`
	Type       string            `yaml:"type"`
	Data       map[string]string `yaml:"data,omitempty"`
	StringData map[string]string `yaml:"stringData,omitempty"`
	Immutable  *bool             `yaml:"immutable,omitempty"`
	Source     Source            `yaml:"-"`
}

// gatewayAPIDocs are the Kubernetes documents of one file, or of a whole load, as decoded.
// They are converted, never changed, so a DecodeCache can share them between loads.
type gatewayAPIDocs struct {
	classes  []*k8sGatewayClass
	gateways []*k8sGateway
	routes   []*k8sHTTPRoute
	services []*k8sService
	secrets  []*k8sSecret
}

func (g *gatewayAPIDocs) add(o gatewayAPIDocs) {
	g.classes = append(g.classes, o.classes...)
	g.gateways = append(g.gateways, o.gateways...)
	g.routes = append(g.routes, o.routes...)
	g.services = append(g.services, o.services...)
	g.secrets = append(g.secrets, o.secrets...)
}

// gatewayAPIKinds are the kinds read under each Kubernetes apiVersion.
var gatewayAPIKinds = map[string][]string{
	GatewayAPIVersion: {"GatewayClass", "Gateway", "HTTPRoute"},
	CoreAPIVersion:    {"Service", "Secret"},
}

// decodeKubernetes decodes a Kubernetes document; the caller has checked that its apiVersion is
// one of gatewayAPIKinds' and its kind one read under it. src is filled as it decodes.
func (f *fileDocs) decodeKubernetes(d *decoder, root *yaml.Node, src *Source, apiVersion, kind string) {
	top := []string{"apiVersion", "kind"}
	d.kind = apiVersion + "/" + kind
	switch d.kind {
	case KindGatewayAPIClass:
		r := &k8sGatewayClass{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = *src
		f.gw.classes = append(f.gw.classes, r)
	case KindGatewayAPIGateway:
		r := &k8sGateway{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = *src
		f.gw.gateways = append(f.gw.gateways, r)
	case KindGatewayAPIHTTPRoute:
		r := &k8sHTTPRoute{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = *src
		f.gw.routes = append(f.gw.routes, r)
	case KindCoreService:
		r := &k8sService{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = *src
		f.gw.services = append(f.gw.services, r)
	case KindCoreSecret:
		r := &k8sSecret{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = *src
		f.gw.secrets = append(f.gw.secrets, r)
	}
}

// kubernetesAPIVersion reports whether apiVersion is a Kubernetes one Portico reads, and the
// kinds it reads under it.
func kubernetesAPIVersion(apiVersion *yaml.Node) ([]string, bool) {
	if apiVersion == nil || apiVersion.Kind != yaml.ScalarNode || apiVersion.ShortTag() != "!!str" {
		return nil, false
	}
	kinds, ok := gatewayAPIKinds[apiVersion.Value]
	return kinds, ok
}
