package ratelimit

import (
	"cmp"
	"slices"
	"strconv"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
)

// matcher is an immutable, validated set of limits, most specific first. It is swapped whole
// when limits change, so a decision never sees half of an update.
type matcher struct {
	limits []Limit
}

func newMatcher(limits []Limit) (*matcher, error) {
	if err := validateLimits(limits); err != nil {
		return nil, err
	}
	sorted := make([]Limit, len(limits))
	for i, l := range limits {
		l.Descriptors = slices.Clone(l.Descriptors)
		sorted[i] = l
	}
	// Stable: among equally specific limits the one declared first wins.
	slices.SortStableFunc(sorted, func(a, b Limit) int { return cmp.Compare(b.specificity(), a.specificity()) })
	return &matcher{limits: sorted}, nil
}

// match returns the most specific limit whose descriptor matches entries and the counter key
// for this descriptor under it, or nil when no limit applies.
func (m *matcher) match(entries []*commonrl.RateLimitDescriptor_Entry) (*Limit, string) {
	for i := range m.limits {
		l := &m.limits[i]
		if matches(l.Descriptors, entries) {
			return l, counterKey(l, entries)
		}
	}
	return nil, ""
}

// matches reports whether entries has exactly the keys of want, with the wanted values.
func matches(want []DescriptorMatch, entries []*commonrl.RateLimitDescriptor_Entry) bool {
	if len(want) != len(entries) {
		return false
	}
	for _, d := range want {
		e := entry(entries, d.Key)
		if e == nil || (d.Value != "" && e.GetValue() != d.Value) {
			return false
		}
	}
	return true
}

// entry finds key in entries. Descriptors have a handful of entries: a scan beats a map.
func entry(entries []*commonrl.RateLimitDescriptor_Entry, key string) *commonrl.RateLimitDescriptor_Entry {
	for _, e := range entries {
		if e.GetKey() == key {
			return e
		}
	}
	return nil
}

// counterKey names the counter of one distinct descriptor under l: the limit's name and the
// values in the limit's key order, each length-prefixed so that no two descriptors share a key
// whatever bytes their values hold.
func counterKey(l *Limit, entries []*commonrl.RateLimitDescriptor_Entry) string {
	n := len(l.Name) + 1
	for _, d := range l.Descriptors {
		n += len(entry(entries, d.Key).GetValue()) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, l.Name...)
	for _, d := range l.Descriptors {
		v := entry(entries, d.Key).GetValue()
		b = append(b, '|')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}
