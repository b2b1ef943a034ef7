package supervisor

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Listener is an address Envoy will be asked to listen on, and what asked for it, for messages.
type Listener struct {
	Owner   string // e.g. `gateway "web"`
	Address string // an IP address; "" means every address
	Port    int
}

// CheckListeners binds and releases every listener's address, and reports each that cannot be
// bound with its owner and what to do. Envoy would otherwise reject the listener long after
// start, with a message in its own log that names neither the file nor the Gateway.
func CheckListeners(listeners []Listener) error {
	var errs []error
	for _, l := range listeners {
		addr := net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			continue
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			errs = append(errs, fmt.Errorf("%s: port %d on %s is already in use by another process; stop it or choose another port", l.Owner, l.Port, hostOrAll(l.Address)))
		case errors.Is(err, syscall.EACCES):
			errs = append(errs, fmt.Errorf("%s: port %d on %s needs privileges to bind; use a port above 1023 or grant CAP_NET_BIND_SERVICE", l.Owner, l.Port, hostOrAll(l.Address)))
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			errs = append(errs, fmt.Errorf("%s: address %s is not an address of this machine", l.Owner, l.Address))
		default:
			errs = append(errs, fmt.Errorf("%s: cannot listen on %s: %w", l.Owner, addr, err))
		}
	}
	return errors.Join(errs...)
}

func hostOrAll(address string) string {
	if address == "" || address == "0.0.0.0" || address == "::" {
		return "all addresses"
	}
	return address
}
