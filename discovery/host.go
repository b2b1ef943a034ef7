package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"

	"github.com/portico-gw/portico/config"
)

// hostValue is the JSON form of a key's value.
type hostValue struct {
	Address *string `json:"address"`
	Port    *int    `json:"port"`
	Weight  *int    `json:"weight"`
}

// parseHost reads a key's value: "<IP>:<port>" ("[<IPv6>]:<port>"), or the JSON object
// {"address": "<IP>", "port": <port>, "weight": <n>} with weight optional (default 1). Its
// errors say what to write instead, for the log and `portico status`.
func parseHost(value []byte) (config.Host, error) {
	v := bytes.TrimSpace(value)
	if len(v) > 0 && v[0] == '{' {
		return parseJSONHost(v)
	}
	host, port, err := net.SplitHostPort(string(v))
	if err != nil {
		return config.Host{}, errors.New(`not "<IP>:<port>" nor a JSON object {"address": "<IP>", "port": <port>}`)
	}
	if err := checkAddress(host); err != nil {
		return config.Host{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return config.Host{}, fmt.Errorf("port %q is not a number from 1 to 65535", truncate(port))
	}
	return config.Host{Address: host, Port: p, Weight: config.DefaultHostWeight}, nil
}

func parseJSONHost(v []byte) (config.Host, error) {
	var hv hostValue
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hv); err != nil {
		return config.Host{}, fmt.Errorf(`not a JSON object {"address": "<IP>", "port": <port>, "weight": <n>}: %w`, err)
	}
	if dec.More() {
		return config.Host{}, errors.New("more than one JSON value; write one object per key")
	}
	switch {
	case hv.Address == nil:
		return config.Host{}, errors.New(`no "address"; add the host's IP address`)
	case hv.Port == nil:
		return config.Host{}, errors.New(`no "port"; add the host's port`)
	}
	if err := checkAddress(*hv.Address); err != nil {
		return config.Host{}, err
	}
	if p := *hv.Port; p < 1 || p > 65535 {
		return config.Host{}, fmt.Errorf("port %d is out of range; use 1-65535", p)
	}
	h := config.Host{Address: *hv.Address, Port: *hv.Port, Weight: config.DefaultHostWeight}
	if hv.Weight != nil {
		if w := *hv.Weight; w < 1 || w > math.MaxUint32 {
			return config.Host{}, fmt.Errorf("weight %d is out of range; use 1 or more", w)
		}
		h.Weight = *hv.Weight
	}
	return h, nil
}

// checkAddress accepts an IP address as Envoy's endpoints need it: EDS does not resolve names.
func checkAddress(a string) error {
	ip, err := netip.ParseAddr(a)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("address %q is not an IP address; endpoints are not resolved, so write the host's IP", truncate(a))
	}
	return nil
}

// truncate keeps a value from etcd short enough for a log line.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
