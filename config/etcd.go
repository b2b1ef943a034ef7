package config

import (
	"fmt"
	"net/url"
	"strings"
)

// EtcdUpstream discovers an Upstream's hosts from etcd (v3 API, 3.4 or later): every key under
// Prefix is one host, and Portico follows additions, changes and deletions as they happen.
// A key's value is either "<IP>:<port>" ("[<IPv6>]:<port>" for IPv6) or a JSON object
// {"address": "<IP>", "port": <1-65535>, "weight": <1 or more, default 1>}. A value that is
// neither is skipped, logged and shown in `portico status`; the other keys still serve.
type EtcdUpstream struct {
	// Endpoints are etcd's client URLs, http://<host>:<port>, tried in order.
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the key prefix whose keys are the hosts, such as /services/web/.
	Prefix string `yaml:"prefix"`
}

func (v *validator) checkEtcd(s subject, e *EtcdUpstream) {
	if s.src.valid("spec.etcd.endpoints") && len(e.Endpoints) == 0 {
		v.errorf(s, "spec.etcd.endpoints", "no endpoints; add etcd's client URL, such as http://127.0.0.1:2379")
	}
	seen := map[string]int{}
	for i, ep := range e.Endpoints {
		p := fmt.Sprintf("spec.etcd.endpoints[%d]", i)
		if !s.src.valid(p) {
			continue
		}
		if problem := etcdEndpointProblem(ep); problem != "" {
			v.errorf(s, p, "%q %s", excerpt(ep), problem)
			continue
		}
		if j, dup := seen[ep]; dup {
			v.errorf(s, p, "%q is listed twice (also endpoints[%d]); list each etcd member once", excerpt(ep), j)
		}
		seen[ep] = i
	}
	if s.src.valid("spec.etcd.prefix") && e.Prefix == "" {
		v.errorf(s, "spec.etcd.prefix", "empty prefix; name the keys of this Upstream's hosts, such as /services/web/ (an empty prefix would take every key in etcd)")
	}
}

// etcdEndpointProblem says what is wrong with an etcd client URL, "" if nothing. Only plain
// http is spoken: Portico's etcd client has no TLS or authentication (see
// docs/configuration.md).
func etcdEndpointProblem(ep string) string {
	u, err := url.Parse(ep)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "is not a URL; use http://<host>:<port>, such as http://127.0.0.1:2379"
	case strings.ToLower(u.Scheme) == "https":
		return "uses https, which Portico's etcd client does not speak; use http:// to an etcd on a trusted network"
	case strings.ToLower(u.Scheme) != "http":
		return "is not an http URL; use http://<host>:<port>"
	case u.User != nil:
		return "carries credentials, which Portico's etcd client does not send; use an etcd without authentication"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "has a path, query or fragment; use only http://<host>:<port>"
	case u.Port() == "":
		return "has no port; etcd's client port is usually 2379: http://<host>:2379"
	}
	return ""
}
