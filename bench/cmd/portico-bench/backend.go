package main

import (
	"fmt"
	"net"
	"net/http"
)

// backend is a Go HTTP server on loopback answering every request with its name. It speaks
// HTTP/1.1 and prior-knowledge h2c, so the direct baseline can be measured with h2load too.
type backend struct {
	name string
	port int
	srv  *http.Server
}

func startBackend(name string) (*backend, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	body := []byte(name)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(l) }()
	return &backend{name: name, port: l.Addr().(*net.TCPAddr).Port, srv: srv}, nil
}

func (b *backend) close() { _ = b.srv.Close() }
