package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Hit adds Hits requests to the counter Key, whose window is Window long.
type Hit struct {
	Key    string
	Hits   uint64
	Window time.Duration
}

// Count is a counter's state right after a Hit.
type Count struct {
	// Used is how many requests the window holds, the hit included.
	Used uint64
	// ResetIn is the time until the current window ends.
	ResetIn time.Duration
}

// Store counts hits. One call carries all hits of one request so that a remote store can send
// them in one round trip. Add fills counts[i] for hits[i]; on error counts are meaningless.
type Store interface {
	Add(ctx context.Context, now time.Time, hits []Hit, counts []Count) error
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*RedisStore)(nil)
)

// sweepInterval is how often the memory store drops ended windows. Sweeping walks every
// counter, so it is not done per request.
const sweepInterval = time.Minute

// MemoryStore counts in fixed windows in this process. Limits are per Portico instance.
type MemoryStore struct {
	mu        sync.Mutex
	counters  map[string]window
	nextSweep time.Time
}

type window struct {
	end  time.Time
	used uint64
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{counters: make(map[string]window)}
}

// Add counts hits in windows aligned to their length (see Unit). It never fails.
func (m *MemoryStore) Add(_ context.Context, now time.Time, hits []Hit, counts []Count) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.nextSweep) {
		for k, w := range m.counters {
			if !now.Before(w.end) {
				delete(m.counters, k)
			}
		}
		m.nextSweep = now.Add(sweepInterval)
	}
	for i, h := range hits {
		w := m.counters[h.Key]
		if !now.Before(w.end) {
			start := now.Truncate(h.Window)
			w = window{end: start.Add(h.Window)}
		}
		w.used += h.Hits
		m.counters[h.Key] = w
		counts[i] = Count{Used: w.used, ResetIn: w.end.Sub(now)}
	}
	return nil
}
