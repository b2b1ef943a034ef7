package xds

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingObserver keeps what it hears, in order.
type recordingObserver struct {
	mu      sync.Mutex
	pushed  []uint64
	answers []string // "ack <type>" or "nack <type>"
	applied []uint64
}

var _ Observer = (*recordingObserver)(nil)

func (o *recordingObserver) Pushed(gen uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pushed = append(o.pushed, gen)
}

func (o *recordingObserver) Answered(typeURL string, acked bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	verdict := "nack "
	if acked {
		verdict = "ack "
	}
	o.answers = append(o.answers, verdict+typeURL)
}

func (o *recordingObserver) Applied(gen uint64, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.applied = append(o.applied, gen)
}

func (o *recordingObserver) snapshot() (pushed []uint64, answers []string, applied []uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.pushed), slices.Clone(o.answers), slices.Clone(o.applied)
}

func TestObserverHearsPushesAnswersAndApplied(t *testing.T) {
	s := New(testLogger(t), testNode)
	obs := &recordingObserver{}
	s.SetObserver(obs)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := handshake(t, s, startServer(t, s), "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	mustPush(t, s, gateway(t, 10000, "two"), 2)
	got := f.collect(map[string]string{cds: "2", lds: "2", rds: "2"})
	f.ack(got[cds])
	f.ack(got[lds])
	f.nack(got[rds], "bad routes")
	// The NACK rolls back to generation 1's content as generation 3, which Envoy takes.
	f.ackAll(map[string]string{cds: "3", lds: "3", rds: "3"})
	if err := s.WaitACK(waitCtx(t), 3); err != nil {
		t.Fatal(err)
	}

	// Generation 3 counts as applied once the types that carry resources are ACKed; the
	// ACK of the empty cluster list may still be in flight, so wait for every answer.
	want := map[string]int{"ack " + cds: 3, "ack " + lds: 3, "ack " + rds: 2, "nack " + rds: 1}
	total := 0
	for _, n := range want {
		total += n
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, answers, _ := obs.snapshot(); len(answers) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	pushed, answers, applied := obs.snapshot()
	if want := []uint64{1, 2, 3}; !slices.Equal(pushed, want) {
		t.Errorf("pushed = %v, want %v", pushed, want)
	}
	if want := []uint64{1, 3}; !slices.Equal(applied, want) {
		t.Errorf("applied = %v, want %v (the rejected generation 2 never applies)", applied, want)
	}
	count := func(answer string) int {
		n := 0
		for _, a := range answers {
			if a == answer {
				n++
			}
		}
		return n
	}
	for answer, want := range want {
		if got := count(answer); got != want {
			t.Errorf("%q heard %d times, want %d (all: %v)", answer, got, want, answers)
		}
	}
}
