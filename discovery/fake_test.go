package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// fakeEtcd serves the part of etcd's v3 JSON gateway discovery uses: range and watch over a
// key space held in memory. down makes it refuse everything and end open watches, as an etcd
// that cannot be reached would.
type fakeEtcd struct {
	srv *httptest.Server

	mu        sync.Mutex
	kvs       map[string]string
	revision  int64
	compacted int64
	down      bool
	// hung makes reads fail while open watches stay open and silent, as over a network path
	// that died without a reset.
	hung bool
	// log holds every change, by revision, for watches that start in the past.
	log     []change
	notify  chan struct{} // closed and replaced on every change
	watches int
}

type change struct {
	revision int64
	key      string
	value    string
	deleted  bool
}

func newFakeEtcd(t *testing.T) *fakeEtcd {
	f := &fakeEtcd{kvs: map[string]string{}, revision: 1, notify: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/kv/range", f.rangeHandler)
	mux.HandleFunc("POST /v3/watch", f.watchHandler)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.setDown(true) // ends open watches, which Close would wait for
		f.srv.Close()
	})
	return f
}

func (f *fakeEtcd) url() string { return f.srv.URL }

func (f *fakeEtcd) put(key, value string) { f.record(change{key: key, value: value}) }
func (f *fakeEtcd) del(key string)        { f.record(change{key: key, deleted: true}) }

func (f *fakeEtcd) record(c change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revision++
	c.revision = f.revision
	if c.deleted {
		delete(f.kvs, c.key)
	} else {
		f.kvs[c.key] = c.value
	}
	f.log = append(f.log, c)
	close(f.notify)
	f.notify = make(chan struct{})
}

func (f *fakeEtcd) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	close(f.notify)
	f.notify = make(chan struct{})
}

// compact forgets the history up to now: a watch from an older revision is refused.
func (f *fakeEtcd) compact() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.compacted = f.revision
}

func (f *fakeEtcd) watchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches
}

func (f *fakeEtcd) rangeHandler(w http.ResponseWriter, r *http.Request) {
	var req rangeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || f.hung {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	resp := rangeResponse{Header: responseHeader{Revision: f.revision}}
	for k, v := range f.kvs {
		if inRange(k, req.Key, req.RangeEnd) && !req.CountOnly {
			resp.KVs = append(resp.KVs, keyValue{Key: []byte(k), Value: []byte(v)})
		}
	}
	writeJSON(w, resp)
}

func inRange(k string, start, end []byte) bool {
	return bytes.Compare([]byte(k), start) >= 0 && bytes.Compare([]byte(k), end) < 0
}

func (f *fakeEtcd) watchHandler(w http.ResponseWriter, r *http.Request) {
	var req watchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cr := req.CreateRequest
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.watches++
	header := fmt.Sprintf(`{"revision":"%d"}`, f.revision)
	compacted, compactRevision := cr.StartRevision <= f.compacted, f.compacted
	f.mu.Unlock()
	flusher := w.(http.Flusher)
	if compacted {
		fmt.Fprintf(w, `{"result":{"header":%s,"created":true,"canceled":true,"compact_revision":"%d"}}`+"\n", header, compactRevision)
		return
	}
	fmt.Fprintf(w, `{"result":{"header":%s,"created":true}}`+"\n", header)
	flusher.Flush()
	next := cr.StartRevision
	for {
		f.mu.Lock()
		if f.down {
			f.mu.Unlock()
			return
		}
		var events []watchEvent
		for _, c := range f.log {
			if c.revision >= next && inRange(c.key, cr.Key, cr.RangeEnd) {
				e := watchEvent{KV: keyValue{Key: []byte(c.key), Value: []byte(c.value)}}
				if c.deleted {
					e.Type = "DELETE"
				}
				events = append(events, e)
			}
		}
		rev, notify := f.revision, f.notify
		f.mu.Unlock()
		next = rev + 1
		if len(events) > 0 {
			raw, _ := json.Marshal(events)
			fmt.Fprintf(w, `{"result":{"header":{"revision":"%d"},"events":%s}}`+"\n", rev, raw)
			flusher.Flush()
		}
		select {
		case <-notify:
		case <-r.Context().Done():
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
