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
		if err := CheckPort(l.Address, l.Port); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.Owner, err))
		}
	}
	return errors.Join(errs...)
}

// CheckPort binds and releases address:port (address "" means every address), and says why
// and what to do when it cannot be bound.
func CheckPort(address string, port int) error {
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln.Close()
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("port %d on %s is already in use by another process; stop it or choose another port", port, hostOrAll(address))
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("port %d on %s needs privileges to bind; use a port above 1023 or grant CAP_NET_BIND_SERVICE", port, hostOrAll(address))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("address %s is not an address of this machine", address)
	default:
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
}

func hostOrAll(address string) string {
	if address == "" || address == "0.0.0.0" || address == "::" {
		return "all addresses"
	}
	return address
}
