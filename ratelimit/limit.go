package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// Descriptor keys that Envoy's rate_limit actions put in the descriptors they build. A limit
// on a request header uses the action's own descriptor_key instead.
const (
	// KeyRemoteAddress is the key of the remote_address action; its value is the client IP.
	KeyRemoteAddress = "remote_address"
	// KeyGenericKey is the default key of the generic_key action, used to name a route.
	KeyGenericKey = "generic_key"
	// KeyHeaderMatch is the default key of the header_value_match action.
	KeyHeaderMatch = "header_match"
)

// Unit is the length of a limit's window.
type Unit int

// The units a limit can be written in. Their windows are aligned to UTC.
const (
	Second Unit = iota + 1
	Minute
	Hour
	Day
)

// Duration is the length of u's window.
func (u Unit) Duration() time.Duration {
	switch u {
	case Second:
		return time.Second
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

func (u Unit) String() string {
	switch u {
	case Second:
		return "second"
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	}
	return "Unit(" + strconv.Itoa(int(u)) + ")"
}

// proto is u as Envoy's RateLimit message names it.
func (u Unit) proto() rlsv3.RateLimitResponse_RateLimit_Unit {
	switch u {
	case Second:
		return rlsv3.RateLimitResponse_RateLimit_SECOND
	case Minute:
		return rlsv3.RateLimitResponse_RateLimit_MINUTE
	case Hour:
		return rlsv3.RateLimitResponse_RateLimit_HOUR
	case Day:
		return rlsv3.RateLimitResponse_RateLimit_DAY
	}
	return rlsv3.RateLimitResponse_RateLimit_UNKNOWN
}

// DescriptorMatch matches one entry of a descriptor Envoy sends.
type DescriptorMatch struct {
	// Key is the entry's key: one of the Key constants or a request_headers descriptor_key.
	Key string
	// Value, when set, is the only value that matches. When empty every value matches and each
	// distinct value has its own counter: "per client IP", "per API key".
	Value string
}

// Limit is one rate limit as a user writes it.
type Limit struct {
	// Name identifies the limit in responses, metrics and counters. Counters are keyed by name,
	// so renaming a limit starts its counts again.
	Name string
	// Descriptors are the entries a descriptor must have, in any order and no others, for the
	// limit to apply to it.
	Descriptors []DescriptorMatch
	// RequestsPerUnit is how many requests a window allows.
	RequestsPerUnit uint32
	// Unit is the window's length.
	Unit Unit
	// Shadow counts requests and reports in metrics what would have been limited, but never
	// rejects, and is invisible to clients: it adds no RateLimit headers.
	Shadow bool
}

// specificity orders limits matching the same descriptor: each fixed value outranks any number
// of "every value" entries, so a limit for one API key overrides the limit for all keys.
func (l *Limit) specificity() int {
	n := 0
	for _, d := range l.Descriptors {
		if d.Value != "" {
			n++
		}
	}
	return n
}

// validateLimits reports every problem in limits at once, each naming the limit.
func validateLimits(limits []Limit) error {
	var errs []error
	names := make(map[string]int, len(limits))
	for i, l := range limits {
		where := fmt.Sprintf("limits[%d] %q", i, l.Name)
		if l.Name == "" {
			errs = append(errs, fmt.Errorf("limits[%d]: name is empty", i))
		} else if j, dup := names[l.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name is already used by limits[%d]", where, j))
		} else {
			names[l.Name] = i
		}
		if len(l.Descriptors) == 0 {
			errs = append(errs, fmt.Errorf("%s: no descriptors: a limit must match at least one descriptor key", where))
		}
		keys := make(map[string]bool, len(l.Descriptors))
		for k, d := range l.Descriptors {
			switch {
			case d.Key == "":
				errs = append(errs, fmt.Errorf("%s: descriptors[%d]: key is empty", where, k))
			case keys[d.Key]:
				errs = append(errs, fmt.Errorf("%s: descriptors[%d]: key %q appears twice", where, k, d.Key))
			}
			keys[d.Key] = true
		}
		if l.RequestsPerUnit == 0 {
			errs = append(errs, fmt.Errorf("%s: requests per unit is 0: use at least 1", where))
		}
		if l.Unit.Duration() == 0 {
			errs = append(errs, fmt.Errorf("%s: unit %v is not one of second, minute, hour, day", where, l.Unit))
		}
	}
	return errors.Join(errs...)
}
