package config

// ConnectionPool bounds how long Envoy reuses a connection to a host. Left unset, Envoy keeps
// an idle connection for an hour and reuses a connection for any number of requests.
type ConnectionPool struct {
	// MaxRequestsPerConnection closes a connection after it has carried this many requests
	// (1 or more), so long-lived connections do not pin load to one host.
	MaxRequestsPerConnection int `yaml:"maxRequestsPerConnection,omitempty"`
	// IdleTimeout closes a connection that has carried no request for this long.
	IdleTimeout string `yaml:"idleTimeout,omitempty"`
	// MaxConnectionDuration closes a connection this long after it was opened, draining it
	// first.
	MaxConnectionDuration string `yaml:"maxConnectionDuration,omitempty"`
}

// checkConnectionPool checks spec.options.connectionPool; an empty block would change nothing,
// which is more likely a mistake than intent.
func (v *validator) checkConnectionPool(s subject, o *UpstreamOptions) {
	const p = "spec.options.connectionPool"
	cp := o.ConnectionPool
	if cp == nil || !s.src.valid(p) {
		return
	}
	if *cp == (ConnectionPool{}) {
		v.errorf(s, p, "empty connection pool; set maxRequestsPerConnection, idleTimeout or maxConnectionDuration, or remove it")
		return
	}
	v.checkCount(s, p+".maxRequestsPerConnection", cp.MaxRequestsPerConnection)
	v.checkDuration(s, p+".idleTimeout", cp.IdleTimeout)
	v.checkDuration(s, p+".maxConnectionDuration", cp.MaxConnectionDuration)
}
