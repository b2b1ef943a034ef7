package xds

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// generation is one published configuration and what Envoy made of it.
type generation struct {
	number uint64
	// content is nil once no push, rollback or NACK can need it (see releaseContentLocked).
	content content
	// required lists the type URLs Envoy must ACK at >= number for the generation to count.
	required []string
	// rollbackOf is the rejected generation this one replaced, 0 for an ordinary push.
	rollbackOf uint64
	// restored is, for a rollback, the ACKed generation whose content it re-publishes.
	restored uint64
	acked    bool
	nack     *NACKError
	// published is when the generation was put in the cache, for push-to-ACK latency.
	published time.Time
}

// NACKError reports that Envoy rejected a generation.
type NACKError struct {
	Generation uint64
	TypeURL    string
	// Names lists the resources of TypeURL that were sent in the rejected response, if known.
	Names []string
	// Message is Envoy's error_detail.message.
	Message string
}

func (e *NACKError) Error() string {
	return fmt.Sprintf("envoy rejected generation %d (%s): %s", e.Generation, e.TypeURL, e.Message)
}

// streamState is what one ADS stream has been sent and has ACKed.
type streamState struct {
	id int64
	// sent holds the last response per type URL: the only one a request may ACK or NACK, since
	// the server ignores requests that carry an older nonce.
	sent map[string]sentResponse
	// acked holds, per type URL, the highest generation ACKed on this stream.
	acked map[string]uint64
	// subscribed holds, per type URL, the resource names of the stream's latest request.
	subscribed map[string][]string
}

type sentResponse struct {
	nonce   string
	version string
	// requested is the resource names the answered request asked for, empty for a wildcard.
	requested []string
}

func (s *Server) callbacks() server.CallbackFuncs {
	return server.CallbackFuncs{
		StreamOpenFunc:     s.onStreamOpen,
		StreamClosedFunc:   s.onStreamClosed,
		StreamRequestFunc:  s.onStreamRequest,
		StreamResponseFunc: s.onStreamResponse,
		// The ADS service also carries incremental xDS, which this server does not track.
		DeltaStreamOpenFunc: func(context.Context, int64, string) error {
			return status.Error(codes.Unimplemented, "only state-of-the-world xDS is served: set ads_config.api_type to GRPC")
		},
	}
}

func (s *Server) onStreamOpen(_ context.Context, id int64, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A restarted Envoy opens a new stream and has to ACK everything again; its old stream may
	// linger until the connection times out, so the newest stream is the one that counts.
	s.streams[id] = &streamState{id: id, sent: make(map[string]sentResponse), acked: make(map[string]uint64), subscribed: make(map[string][]string)}
	s.current = id
	s.currentFrom = 0
	if s.served != nil {
		s.currentFrom = s.served.number
	}
	s.releaseContentLocked()
	s.logger.Debug("envoy xds stream opened", "stream", id)
	s.notifyLocked()
	return nil
}

func (s *Server) onStreamClosed(id int64, node *core.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, id)
	if s.current == id {
		s.current = 0
		s.releaseContentLocked()
	}
	s.logger.Debug("envoy xds stream closed", "stream", id, "node", node.GetId())
	s.notifyLocked()
}

func (s *Server) onStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return
	}
	st.sent[resp.GetTypeUrl()] = sentResponse{
		nonce:     resp.GetNonce(),
		version:   resp.GetVersionInfo(),
		requested: req.GetResourceNames(),
	}
	s.logger.Debug("sent xds response", "stream", id, "type", resp.GetTypeUrl(),
		"version", resp.GetVersionInfo(), "resources", len(resp.GetResources()))
}

// onStreamRequest runs before the server hands req to the cache, which is what lets a NACK be
// rewritten there (see nackLocked).
func (s *Server) onStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	if got := req.GetNode().GetId(); got != s.nodeID {
		s.logger.Warn("refusing xds stream from an unexpected node", "stream", id, "node", got, "expected", s.nodeID)
		return status.Errorf(codes.PermissionDenied, "node id %q is not served here (expected %q)", got, s.nodeID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return nil
	}
	st.subscribed[req.GetTypeUrl()] = req.GetResourceNames()
	sent, ok := st.sent[req.GetTypeUrl()]
	if !ok || req.GetResponseNonce() != sent.nonce {
		// A first request for the type, or one answering an older response: the server
		// ignores the latter, so must we.
		return nil
	}
	gen, err := strconv.ParseUint(sent.version, 10, 64)
	if err != nil {
		return nil
	}
	if req.GetErrorDetail() != nil {
		if s.nackLocked(st, req, sent, gen) {
			// Ending the stream makes Envoy reconnect and ask for everything afresh.
			return status.Error(codes.Unavailable, "configuration rolled back after a rejection; reconnect to resynchronise")
		}
		return nil
	}
	if req.GetVersionInfo() != sent.version || st.id != s.current {
		return nil
	}
	if gen > st.acked[req.GetTypeUrl()] {
		st.acked[req.GetTypeUrl()] = gen
	}
	if s.observer != nil {
		s.observer.Answered(req.GetTypeUrl(), true)
	}
	s.logger.Debug("envoy acked xds response", "stream", id, "type", req.GetTypeUrl(), "generation", gen)
	s.recomputeACKLocked()
	s.notifyLocked()
	return nil
}

// nackLocked handles Envoy's rejection of generation gen of one type. It reports whether the
// stream must be reset for Envoy to receive the rollback (see stalledTypes).
func (s *Server) nackLocked(st *streamState, req *discovery.DiscoveryRequest, sent sentResponse, gen uint64) bool {
	// Envoy's NACK carries its last accepted version. The cache answers any request whose
	// version differs from the snapshot's, so it would send the rejected resources straight
	// back, be rejected again, and so on. Presenting the rejected version as the client's makes
	// the cache hold the request until a newer snapshot: the rollback below or the next Push.
	req.VersionInfo = sent.version
	if st.id != s.current {
		s.logger.Debug("envoy rejected xds response on a superseded stream", "stream", st.id,
			"type", req.GetTypeUrl(), "generation", gen)
		return false
	}
	nack := &NACKError{Generation: gen, TypeURL: req.GetTypeUrl(), Message: req.GetErrorDetail().GetMessage()}
	if s.observer != nil {
		s.observer.Answered(req.GetTypeUrl(), false)
	}
	g := s.gens[gen]
	if g != nil {
		nack.Names = sentNames(g.content, req.GetTypeUrl(), sent.requested)
		if !g.acked && g.nack == nil {
			g.nack = nack
		}
	}
	s.lastNACK = nack
	// A released generation, older than the last good one, cannot be compared with a push.
	if g != nil && g.rollbackOf == 0 && g.nack != nil && g.content != nil {
		s.rejected = g
	}
	s.logger.Warn("envoy rejected xds generation", "generation", gen, "type", nack.TypeURL,
		"resources", nack.Names, "message", nack.Message)
	var stalled []string
	if g != nil {
		stalled = stalledTypes(g.content, st)
	}
	rolledBack := s.rollbackLocked(gen)
	s.notifyLocked()
	if rolledBack && len(stalled) > 0 {
		s.logger.Info("resetting envoy's xds stream so that it receives the rollback", "stalled", stalled)
		return true
	}
	return false
}

// stalledTypes lists the types requested by name (routes, endpoints, secrets) for which c holds
// resources the stream has not asked for. In ADS mode the cache answers such a request only
// once it names every resource, and drops its watch meanwhile: Envoy asks again only when it
// takes the listener or cluster that needs the new name. If it rejected that listener or
// cluster instead, it never asks again, and nothing more of that type would reach it.
func stalledTypes(c content, st *streamState) []string {
	var out []string
	for _, typeURL := range []string{resource.EndpointType, resource.RouteType, resource.SecretType} {
		names, ok := st.subscribed[typeURL]
		if !ok || len(names) == 0 {
			continue
		}
		for _, n := range c.names(typeURL) {
			if !slices.Contains(names, n) {
				out = append(out, typeURL)
				break
			}
		}
	}
	return out
}

// rollbackLocked re-publishes the last fully ACKed content as a new generation after Envoy
// rejected generation rejected, so that Envoy, or an Envoy that restarts, is served the last
// good configuration rather than the rejected one.
func (s *Server) rollbackLocked(rejected uint64) bool {
	switch {
	case s.served == nil || s.served.number != rejected:
		// A newer push already replaced the rejected generation.
		return false
	case s.lastGood == nil:
		s.logger.Warn("no acknowledged xds generation to roll back to; the rejected one stays published but is not re-sent on this stream",
			"generation", rejected)
		return false
	case s.lastGood.content.equal(s.served.content):
		// Envoy rejects the last good content itself (a restarted Envoy may, when a port is
		// taken): publishing it again would only repeat the rejection.
		return false
	}
	// This runs on the stream's own goroutine, which is also the one that drains the answers
	// the cache queues for it. That cannot deadlock: the stream's response channel holds one
	// answer per resource type and each type has at most one pending.
	g, err := s.publishLocked(context.Background(), s.lastGood.content, rejected)
	if err != nil {
		s.logger.Error("roll back rejected xds generation", "generation", rejected, "error", err)
		return false
	}
	s.logger.Warn("rolled back rejected xds generation", "rejected", rejected,
		"restored", g.restored, "generation", g.number)
	return true
}

// recomputeACKLocked finds the newest generation that the current stream has ACKed for every
// required type, and marks it and the generations it superseded as applied.
func (s *Server) recomputeACKLocked() {
	if s.served == nil {
		return
	}
	var floor uint64
	if s.lastGood != nil {
		floor = s.lastGood.number
	}
	st := s.streams[s.current]
	var best *generation
	for n := s.served.number; n > floor; n-- {
		g, ok := s.gens[n]
		if !ok {
			break
		}
		if g.nack == nil && applied(g, st) {
			best = g
			break
		}
	}
	if best == nil {
		return
	}
	for n := floor + 1; n <= best.number; n++ {
		if g, ok := s.gens[n]; ok && g.nack == nil {
			g.acked = true
		}
	}
	s.lastGood = best
	s.releaseContentLocked()
	if s.observer != nil {
		s.observer.Applied(best.number, time.Since(best.published))
	}
	s.logger.Debug("envoy applied xds generation", "generation", best.number)
}

// releaseContentLocked drops the resources of the generations that nothing can ask for again:
// Push compares with the served and the last rejected content, a rollback restores the last
// good one, and a NACK names the resources of the generation it rejects, which can only be one
// sent on the current stream and not older than the last good one. Each generation holds a
// whole configuration's protos (about 10 MB at 10,000 routes), so keeping the content of every
// remembered generation made the live heap grow with each reload, up to historyLimit
// configurations. A released generation keeps its outcome, which is what WaitACK reads.
func (s *Server) releaseContentLocked() {
	if s.served == nil {
		return
	}
	// The current stream was only ever sent generations from currentFrom on; without a stream,
	// the next one will be sent the served generation first.
	floor := s.currentFrom
	if s.current == 0 {
		floor = s.served.number
	}
	if s.lastGood != nil {
		floor = max(floor, s.lastGood.number)
	}
	for n, g := range s.gens {
		if n < floor && g != s.served && g != s.lastGood && g != s.rejected {
			g.content = nil
		}
	}
}

func applied(g *generation, st *streamState) bool {
	for _, typeURL := range g.required {
		if st == nil || st.acked[typeURL] < g.number {
			return false
		}
	}
	return true
}

// sentNames returns the names of the resources of typeURL in c that a response to a request for
// requested carried.
func sentNames(c content, typeURL string, requested []string) []string {
	names := c.names(typeURL)
	if len(requested) == 0 {
		return names
	}
	return slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(requested, n) })
}
