package controller

import (
	"sync"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// applyingLog records what Options.Applying was told, and how many pushes had happened then.
type applyingLog struct {
	mu    sync.Mutex
	calls []applyingCall
}

type applyingCall struct {
	upstreams   int
	pushesSoFar int
}

// TestApplyingPrecedesEveryPush: the in-process services learn each configuration before
// Envoy can have it, and learn the kept one back when Envoy rejects a change.
func TestApplyingPrecedesEveryPush(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	var log applyingLog
	h.ctrl.o.Applying = func(cfg *config.Config) {
		log.mu.Lock()
		defer log.mu.Unlock()
		log.calls = append(log.calls, applyingCall{upstreams: len(cfg.Upstreams), pushesSoFar: h.xds.pushCount()})
	}
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Envoy "has" a configuration once its ACK has been followed; only then is there one to
	// fall back to.
	envoyHasCurrent := func() bool {
		h.ctrl.mu.Lock()
		defer h.ctrl.mu.Unlock()
		return h.ctrl.envoyHas != nil && h.ctrl.envoyHas.plan.Config == h.ctrl.current.plan.Config
	}
	eventually(t, "envoy has the first generation", envoyHasCurrent)
	base := len(h.ctrl.Current().Upstreams)
	h.set(validConfig() + upstreamYAML("c", 9003))
	// Adding a cluster goes make-before-break: the step pushes it, the final push is the same.
	if got := h.ctrl.Reload(t.Context()); got != ResultApplied && got != ResultUnchanged {
		t.Fatalf("reload = %s", got)
	}
	eventually(t, "envoy has the second generation", envoyHasCurrent)
	h.xds.reject = func(res xds.Resources) *xds.NACKError {
		if len(res[resource.ClusterType]) == base+2 {
			return &xds.NACKError{TypeURL: resource.ClusterType, Names: []string{"d"}, Message: "no"}
		}
		return nil
	}
	h.set(validConfig() + upstreamYAML("c", 9003) + upstreamYAML("d", 9004))
	h.ctrl.Reload(t.Context())
	eventually(t, "the rejection is recorded", func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.calls) >= 4
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []applyingCall{
		{upstreams: base, pushesSoFar: 0},
		{upstreams: base + 1, pushesSoFar: 1},
		{upstreams: base + 2, pushesSoFar: 2},
		{upstreams: base + 1}, // the configuration Envoy keeps
	}
	for i, w := range want {
		got := log.calls[i]
		if got.upstreams != w.upstreams || (i < 3 && got.pushesSoFar > w.pushesSoFar) {
			t.Errorf("call %d: %+v, want %d upstreams before push %d", i, got, w.upstreams, w.pushesSoFar+1)
		}
	}
}
