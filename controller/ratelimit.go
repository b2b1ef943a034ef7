package controller

import "time"

// RateLimitStatus is the health of the global rate limit service, filled in by whoever runs
// it: the controller only carries it to /status and `portico status`.
type RateLimitStatus struct {
	// Limits is how many global limits the service enforces.
	Limits int `json:"limits"`
	// Store is where counters are kept: "memory", or "redis" with its address.
	Store string `json:"store"`
	// FailureMode is what happens while the store fails: "open" allows, "closed" rejects.
	FailureMode string `json:"failureMode"`
	// Degraded is set while the store fails and decisions follow FailureMode.
	Degraded      bool       `json:"degraded"`
	DegradedSince *time.Time `json:"degradedSince,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	// StoreErrors counts failed store calls since start.
	StoreErrors uint64 `json:"storeErrors"`
}
